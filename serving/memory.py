"""Giving memory back to the system after an unload or a large request.

Two things keep a long-running Python server's resident memory above what
it serves:

- A SavedModel loaded with `tf.saved_model.load` is a web of objects with
  reference cycles (functions, their captures, the trackable graph). When a
  version is unloaded nothing else points at it, but only Python's cyclic
  garbage collector frees it, and that runs when enough new objects have
  been allocated, which a server answering requests may not do for a long
  time. Each unloaded version then stays in memory (on ML-100K's
  recommender, about 50 MB a version).
- TensorFlow allocates tensors with glibc's malloc. After a large request
  the freed blocks stay in malloc's arenas (one per thread that allocated)
  for reuse, instead of going back to the system, so the resident size
  stays at the request's peak.

`release()` runs the collector and then `malloc_trim(0)`. The server calls
it after an unload and `trim()` after a request larger than one chunk;
neither is needed on the path of ordinary requests. Elsewhere than glibc,
trimming is skipped.
"""

import ctypes
import ctypes.util
import gc
from typing import Optional


def _load_malloc_trim() -> Optional[ctypes._CFuncPtr]:
  name = ctypes.util.find_library('c')
  if not name:
    return None
  try:
    function = ctypes.CDLL(name).malloc_trim
  except (OSError, AttributeError):  # Not glibc (musl, macOS).
    return None
  function.argtypes = [ctypes.c_size_t]
  function.restype = ctypes.c_int
  return function


_MALLOC_TRIM = _load_malloc_trim()


def trim() -> bool:
  """Returns malloc's free memory to the system; whether it could."""
  if _MALLOC_TRIM is None:
    return False
  _MALLOC_TRIM(0)
  return True


def release() -> int:
  """Frees unreachable objects (reference cycles included), then trims;
  returns how many objects the collector found unreachable."""
  unreachable = gc.collect()
  trim()
  return unreachable
