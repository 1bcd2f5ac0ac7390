"""Filesystem problems as one line a user can act on.

A full disk, a read-only or unwritable folder, or an output path that is a
file are problems of the machine, not of the code: the runner reports them
as one line naming the path and what to do, and keeps the traceback for
`--verbose`. TFX, Beam and TensorFlow wrap the operating system's error in
their own exceptions (an `OSError` inside a Beam `RuntimeError`, or a
`tf.errors.OpError` whose message holds the system's text), so both the
exception chain and the messages are searched.
"""

import errno
import glob
import os
import re
import tempfile
from typing import Iterator, Optional

_ADVICE = {
    errno.ENOSPC: 'no space left on the device: free some space or pass '
                  'another --output-dir',
    errno.EDQUOT: 'disk quota exceeded: free some space or pass another '
                  '--output-dir',
    errno.EACCES: 'permission denied: check the permissions or pass another '
                  '--output-dir',
    errno.EPERM: 'operation not permitted: check the permissions',
    errno.EROFS: 'read-only file system: pass a writable --output-dir',
    errno.ENOTDIR: 'a part of the path is a file, not a folder',
    errno.EISDIR: 'is a folder where a file was expected',
}
# The same problems as TensorFlow and Beam spell them in their messages.
_MESSAGES = (
    (re.compile(r'No space left on device', re.I), errno.ENOSPC),
    (re.compile(r'Disk quota exceeded', re.I), errno.EDQUOT),
    (re.compile(r'Read-only file system', re.I), errno.EROFS),
    (re.compile(r'Permission denied', re.I), errno.EACCES),
)
_PATH_IN_MESSAGE = re.compile(r"(/[^\s'\"]+)")


class OutputDirError(ValueError):
  """The output folder cannot be used; the message says why and what to
  do."""


def _chain(error: BaseException) -> Iterator[BaseException]:
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    yield error
    error = error.__cause__ or error.__context__


def describe(error: BaseException) -> Optional[str]:
  """One line for a filesystem problem anywhere in `error`'s chain, or None
  when it is not one (then it is a bug, worth its traceback)."""
  for link in _chain(error):
    if isinstance(link, OSError) and link.errno in _ADVICE:
      where = link.filename or ''
      return f'{where}: {_ADVICE[link.errno]}' if where else (
          _ADVICE[link.errno])
  for link in _chain(error):
    text = str(link)
    for pattern, code in _MESSAGES:
      if pattern.search(text):
        path = _PATH_IN_MESSAGE.search(text)
        where = f'{path.group(1).rstrip(".:;,")}: ' if path else ''
        return where + _ADVICE[code]
  return None


def check_output_dir(path: str) -> None:
  """Makes sure `path` is a folder this process can write, before any work.

  Raises:
    OutputDirError: naming the path and what to do.
  """
  if glob.escape(path) != path:
    raise OutputDirError(
        f'--output-dir {path}: holds a glob character (*, ? or [); TFX '
        'reads its artifacts through glob patterns, so pass a folder without '
        'them')
  if os.path.exists(path) and not os.path.isdir(path):
    raise OutputDirError(f'--output-dir {path}: is a file; pass a folder '
                         '(it is created if missing)')
  try:
    os.makedirs(path, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path, prefix='.write-check-'):
      pass
  except OSError as e:
    advice = _ADVICE.get(e.errno, e.strerror or str(e))
    raise OutputDirError(f'--output-dir {path}: cannot write there '
                         f'({advice})') from None
