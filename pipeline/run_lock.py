"""One run per output folder at a time.

Two runs on one `--output-dir` would share ML Metadata, the pipeline root
and the serving folders: both would train, and both would push, a second
version seconds after the first with no regression check between them. So
`runner_local.py` takes an exclusive lock on `<output-dir>/.run.lock` for
the whole run, and a second run is refused at once, naming the first's PID.

The lock is an `flock` on the file, held by the process: the kernel drops
it when the process ends, however it ends (`kill -9` included), so a killed
run leaves no stale lock behind; the file itself stays, with the last
holder's PID in it, and is reused. A run waits for nothing: refusing at
once tells the user what is going on, where waiting would look like a hang.
"""

import datetime
import errno
import fcntl
import os
from typing import Optional

LOCK_NAME = '.run.lock'


class OutputDirBusy(RuntimeError):
  """Another run holds the output folder."""


class RunLock:
  """Context manager: holds `<output_dir>/.run.lock` exclusively.

  Raises `OutputDirBusy` on entry when another process holds it.
  """

  def __init__(self, output_dir: str):
    self.path = os.path.join(output_dir, LOCK_NAME)
    self._fd: Optional[int] = None

  def __enter__(self) -> 'RunLock':
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      holder = _read(fd)
      os.close(fd)
      if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
        raise
      raise OutputDirBusy(
          f'{os.path.dirname(self.path)} is in use by another run '
          f'({holder or "PID unknown"}); wait for it to end or pass another '
          '--output-dir') from None
    os.ftruncate(fd, 0)
    started = datetime.datetime.now().isoformat(timespec='seconds')
    os.write(fd, f'PID {os.getpid()}, started {started}\n'.encode())
    os.fsync(fd)
    self._fd = fd
    return self

  def __exit__(self, *exc_info) -> None:
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None


def _read(fd: int) -> str:
  try:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 200).decode(errors='replace').strip()
  except OSError:
    return ''
