"""pipeline.progress: one line per component, with wall and CPU seconds."""

import io
import logging
import re
import subprocess
import sys
import time

from benchmarks import pipeline_scale
from pipeline import progress
import pytest

pytestmark = pytest.mark.unit


def _record(msg, *args):
  return logging.LogRecord('absl', logging.INFO, __file__, 0, msg, args, None)


def _burn_cpu(seconds):
  started = time.process_time()
  while time.process_time() - started < seconds:
    pass


def test_the_done_line_gives_wall_and_cpu_seconds():
  stream = io.StringIO()
  reporter = progress.ComponentProgress(stream)
  reporter.emit(_record('Component %s is running.', 'Transform'))
  _burn_cpu(0.3)
  reporter.emit(_record('Component %s is finished.', 'Transform'))
  started, done = stream.getvalue().splitlines()
  assert re.fullmatch(r'\[\s+\d+\.\ds\] Transform {14}started', started)
  match = re.fullmatch(
      r'\[\s+\d+\.\ds\] Transform {14}done in (\d+\.\d)s \(cpu (\d+\.\d)s\)',
      done)
  assert match
  # 0.3 s of CPU burnt on one thread: at least 0.3 s of wall and of CPU.
  assert float(match.group(1)) >= 0.3 and float(match.group(2)) >= 0.3
  assert reporter.cpu['Transform'] >= 0.3
  assert [(name, cached) for name, _, cached in reporter.finished] == [
      ('Transform', False)]
  # The benchmarks' parser still reads the wall seconds.
  assert pipeline_scale.component_seconds([done]) == {
      'Transform': float(match.group(1))}


def test_a_cached_component_says_so_with_its_cpu():
  stream = io.StringIO()
  reporter = progress.ComponentProgress(stream)
  reporter.emit(_record('Component %s is running.', 'StatisticsGen'))
  reporter.emit(_record('A cached execution %d is used.', 7))
  reporter.emit(_record('Component %s is finished.', 'StatisticsGen'))
  assert re.fullmatch(r'\[\s+\d+\.\ds\] StatisticsGen {10}reused from cache '
                      r'in \d+\.\ds \(cpu \d+\.\ds\)',
                      stream.getvalue().splitlines()[-1])
  assert reporter.finished[0][2] is True


def test_an_ended_child_process_cpu_counts():
  before = progress.cpu_seconds()
  subprocess.run([sys.executable, '-c',
                  'import time\nt = time.process_time()\n'
                  'while time.process_time() - t < 0.5: pass'], check=True)
  # The child burnt 0.5 s; this process only waited for it.
  assert progress.cpu_seconds() - before >= 0.5


def test_a_long_component_prints_a_heartbeat_until_it_ends():
  stream = io.StringIO()
  reporter = progress.ComponentProgress(stream, heartbeat_seconds=0.05)
  reporter.emit(_record('Component %s is running.', 'Transform'))
  deadline = time.monotonic() + 5
  while stream.getvalue().count('running for') < 2:
    assert time.monotonic() < deadline, stream.getvalue()
    time.sleep(0.01)
  reporter.emit(_record('Component %s is finished.', 'Transform'))
  lines = stream.getvalue().splitlines()
  beats = [l for l in lines if 'running for' in l]
  assert all(re.fullmatch(r'\[\s+\d+\.\ds\] Transform {14}running for \d+s '
                          r'\(cpu \d+\.\ds\)', l) for l in beats)
  assert 'done in' in lines[-1]
  time.sleep(0.2)  # Stopped with the component: no line after its end.
  assert stream.getvalue().splitlines() == lines
