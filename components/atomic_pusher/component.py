"""AtomicPusher: TFX's Pusher, with version folders that appear whole."""

from tfx.components import Pusher
from tfx.dsl.components.base import executor_spec

from components.atomic_pusher import executor


class AtomicPusher(Pusher):
  """Same interface as `tfx.components.Pusher`; see executor.py for why."""

  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, *args, **kwargs):
    # The stock Pusher checks this only for its own executor.
    if kwargs.get('push_destination') is None:
      raise ValueError('AtomicPusher: push_destination is required (a '
                       'tfx.proto.PushDestination with a filesystem '
                       'base_directory).')
    super().__init__(*args, **kwargs)
