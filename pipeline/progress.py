"""One progress line per component: start, end, seconds, cached or not.

LocalDagRunner runs components one at a time and logs their start and end
through absl. This handler turns those records into short lines on the
console, while the full logs go to a file, so a run is readable without
drowning in TensorFlow's and Beam's output.

Each end line also gives the CPU seconds the component took: on a shared
or small machine wall time alone cannot tell a component that waits from
one that computes, nor how many cores it kept busy. While a component runs,
a heartbeat line every `HEARTBEAT_SECONDS` says it is still running and for
how long: a Beam step (ExampleGen, StatisticsGen, Transform, the Evaluator)
prints nothing of its own, and at 25M ratings runs for twenty minutes.
"""

import logging
import os
import sys
import threading
import time
from typing import Dict, Optional, TextIO

from absl import logging as absl_logging

_STARTED = 'Component %s is running.'
_FINISHED = 'Component %s is finished.'
_CACHED = 'A cached execution %d is used.'
_SKIPPED = 'Skipping component %s.'
HEARTBEAT_SECONDS = 45.0


def cpu_seconds() -> float:
  """CPU seconds (user + system) of this process, all threads, plus those of
  its ended children (Beam workers run as processes with more than one
  worker)."""
  times = os.times()
  return time.process_time() + times.children_user + times.children_system


class ComponentProgress(logging.Handler):
  """Prints `[  12.3s] Transform  done in 8.1s (cpu 12.0s)` style lines.

  Components run one at a time, so the process's CPU between a component's
  start and end is that component's (children count once they have ended).
  """

  def __init__(self, stream: Optional[TextIO] = None,
               heartbeat_seconds: Optional[float] = HEARTBEAT_SECONDS):
    super().__init__(level=logging.INFO)
    self._stream = stream or sys.stdout
    self._heartbeat_seconds = heartbeat_seconds
    self._heartbeat: Optional[threading.Event] = None
    self._heartbeat_lock = threading.Lock()
    self._run_started = time.monotonic()
    self._current: Optional[str] = None
    self._component_started = 0.0
    self._component_cpu_started = 0.0
    self._cached = False
    self.finished = []  # (component id, seconds, cached)
    self.cpu: Dict[str, float] = {}  # component id -> CPU seconds

  def _print(self, text: str) -> None:
    elapsed = time.monotonic() - self._run_started
    print(f'[{elapsed:7.1f}s] {text}', file=self._stream, flush=True)

  def emit(self, record: logging.LogRecord) -> None:
    if record.msg == _STARTED:
      self._current = str(record.args[0])
      self._component_started = time.monotonic()
      self._component_cpu_started = cpu_seconds()
      self._cached = False
      self._print(f'{self._current:<22} started')
      self._start_heartbeat(self._current)
    elif record.msg == _CACHED:
      self._cached = True
    elif record.msg == _FINISHED:
      self._stop_heartbeat()
      seconds = time.monotonic() - self._component_started
      cpu = cpu_seconds() - self._component_cpu_started
      how = 'reused from cache' if self._cached else 'done'
      self._print(f'{record.args[0]:<22} {how} in {seconds:.1f}s '
                  f'(cpu {cpu:.1f}s)')
      self.finished.append((str(record.args[0]), seconds, self._cached))
      self.cpu[str(record.args[0])] = cpu
      self._current = None
    elif record.msg == _SKIPPED:
      self._print(f'{record.args[0]:<22} skipped')

  def _start_heartbeat(self, component: str) -> None:
    self._stop_heartbeat()
    if not self._heartbeat_seconds:
      return
    stop = threading.Event()
    started, cpu_started = self._component_started, cpu_seconds()

    def beat():
      while not stop.wait(self._heartbeat_seconds):
        with self._heartbeat_lock:  # Never after the component's end line.
          if stop.is_set():
            return
          self._print(f'{component:<22} running for '
                      f'{time.monotonic() - started:.0f}s '
                      f'(cpu {cpu_seconds() - cpu_started:.1f}s)')

    threading.Thread(target=beat, name=f'heartbeat-{component}',
                     daemon=True).start()
    self._heartbeat = stop

  def _stop_heartbeat(self) -> None:
    if self._heartbeat is not None:
      with self._heartbeat_lock:
        self._heartbeat.set()
      self._heartbeat = None


def install(log_file: Optional[str] = None,
            verbose: bool = False) -> ComponentProgress:
  """Routes TFX/Beam logs to `log_file` (and the console if verbose), and
  prints one progress line per component event."""
  root = logging.getLogger()
  root.setLevel(logging.INFO)
  absl_logger = logging.getLogger('absl')
  # Idempotent: a second run in the same process replaces our handlers.
  for logger in (root, absl_logger):
    for handler in list(logger.handlers):
      if getattr(handler, '_movielens_tfx', False):
        logger.removeHandler(handler)
        handler.close()
  formatter = logging.Formatter(
      '%(asctime)s %(levelname)s %(name)s: %(message)s')
  if log_file:
    file_handler = logging.FileHandler(log_file)
    file_handler.setFormatter(formatter)
    file_handler._movielens_tfx = True
    root.addHandler(file_handler)
  console = logging.StreamHandler(sys.stderr)
  console.setLevel(logging.INFO if verbose else logging.ERROR)
  console.setFormatter(formatter)
  console._movielens_tfx = True
  root.addHandler(console)
  progress = ComponentProgress()
  progress._movielens_tfx = True
  # Through absl's own flag, not Logger.setLevel: libraries that parse absl
  # flags later (Transform does) re-apply the flag's level to the logger.
  absl_logging.set_verbosity(absl_logging.INFO)
  absl_logger.addHandler(progress)
  return progress
