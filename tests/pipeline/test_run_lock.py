"""One run per output folder: a second run is refused with the first's PID;
a killed run's lock is free again."""

import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline import run_lock

pytestmark = pytest.mark.integration

_HOLD = """
import sys, time
from pipeline import run_lock
with run_lock.RunLock(sys.argv[1]):
  print('locked', flush=True)
  time.sleep(60)
"""


def test_a_second_run_is_refused_naming_the_first(tmp_path):
  with run_lock.RunLock(str(tmp_path)):
    with pytest.raises(run_lock.OutputDirBusy) as busy:
      with run_lock.RunLock(str(tmp_path)):
        pass
  assert str(busy.value).startswith(
      f'{tmp_path} is in use by another run (PID {os.getpid()}, started ')
  assert str(busy.value).endswith(
      'wait for it to end or pass another --output-dir')
  # Released on exit: the next run takes it.
  with run_lock.RunLock(str(tmp_path)):
    pass


def test_a_killed_run_leaves_no_stale_lock(tmp_path):
  holder = subprocess.Popen(
      [sys.executable, '-c', _HOLD, str(tmp_path)], stdout=subprocess.PIPE,
      env=dict(os.environ, PYTHONPATH=os.getcwd()), text=True)
  try:
    assert holder.stdout.readline().strip() == 'locked'
    with pytest.raises(run_lock.OutputDirBusy, match=f'PID {holder.pid},'):
      with run_lock.RunLock(str(tmp_path)):
        pass
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  deadline = time.monotonic() + 10
  while True:
    try:
      with run_lock.RunLock(str(tmp_path)) as lock:
        with open(lock.path, encoding='utf-8') as f:
          assert f.read().startswith(f'PID {os.getpid()}, started ')
      break
    except run_lock.OutputDirBusy:
      assert time.monotonic() < deadline, 'the killed run kept its lock'
      time.sleep(0.1)
