"""The pusher's hidden staging folders, and removing those a dead push left.

The executor stages each push in `<serving_dir>/<model>/.push-XXXX` and
removes it when the push ends, pushed or failed. A push killed mid-copy
(SIGKILL, power loss) cannot: its staging folder stays, invisible to TF
Serving (not an integer) but holding a partial model's bytes.
`remove_stale_staging` deletes them; the local runner calls it at start,
while it holds the output folder's lock, so no push of its own is running.
Plain Python, no TFX.
"""

import os
import shutil
from typing import List

# `tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=<model folder>)`: hidden,
# and not an integer, so no server takes it for a version.
STAGING_PREFIX = '.push-'


def remove_stale_staging(serving_dir: str) -> List[str]:
  """Deletes every `<serving_dir>/*/.push-*` folder.

  Only call it when no push into `serving_dir` can be running: a live
  push's staging folder looks the same. Symbolic links and files named like
  staging folders are left alone.

  Args:
    serving_dir: the pusher's destination root, holding one folder per
      model (e.g. `outputs/serving`); a missing folder has nothing to clean.

  Returns:
    The paths removed, sorted.

  Raises:
    OSError: a staging folder could not be removed.
  """
  if not os.path.isdir(serving_dir):
    return []
  removed = []
  for model in os.scandir(serving_dir):
    if not model.is_dir(follow_symlinks=False):
      continue
    for entry in os.scandir(model.path):
      if (entry.name.startswith(STAGING_PREFIX) and
          entry.is_dir(follow_symlinks=False)):
        shutil.rmtree(entry.path)
        removed.append(entry.path)
  return sorted(removed)
