"""AtomicPusher: TFX's Pusher, with version folders that appear whole."""

from tfx.components import Pusher
from tfx.dsl.components.base import executor_spec

from components.atomic_pusher import executor


class AtomicPusher(Pusher):
  """Same interface as `tfx.components.Pusher`; see executor.py for why."""

  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
