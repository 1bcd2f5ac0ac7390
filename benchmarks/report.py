"""What every benchmark result carries: the machine, the package versions,
the date; and the README tables between result markers.

Which code was measured (commit, uncommitted changes) is
`benchmarks.common.git_revision`.

Shared by the scripts in `benchmarks/`, so a figure from one script can be
compared with a figure from another: same machine description, same
version list, same table placement.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
from typing import Any, Dict, Iterable, Optional

DEFAULT_PACKAGES = ('tensorflow', 'tfx', 'tensorflow-transform',
                    'tensorflow-recommenders', 'apache-beam', 'numpy')


def machine_info() -> Dict[str, Any]:
  """CPU model, cores, memory and OS of this machine."""
  cpu_model = platform.processor() or None
  memory_gib = None
  try:
    with open('/proc/cpuinfo', encoding='utf-8') as f:
      for line in f:
        if line.startswith('model name'):
          cpu_model = line.split(':', 1)[1].strip()
          break
    with open('/proc/meminfo', encoding='utf-8') as f:
      for line in f:
        if line.startswith('MemTotal:'):
          memory_gib = round(int(line.split()[1]) / 2**20, 1)
          break
  except OSError:  # Not Linux: keep what platform knows.
    pass
  return {
      'cpu_model': cpu_model,
      'cpu_cores': os.cpu_count(),
      'memory_gib': memory_gib,
      'platform': platform.platform(),
      'python': platform.python_version(),
  }


def package_versions(
    names: Iterable[str] = DEFAULT_PACKAGES) -> Dict[str, Optional[str]]:
  """Installed versions of `names` (None for a package not installed)."""
  versions = {}
  for name in names:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = None
  return versions


def now_utc() -> str:
  """The current time, UTC, to the second, ISO 8601."""
  return datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec='seconds')


def replace_section(path: str, begin: str, end: str, text: str,
                    heading: Optional[str] = None) -> None:
  """Replaces what lies between the markers `begin` and `end` in `path`.

  Args:
    path: a Markdown file.
    begin: the opening marker, e.g. '<!-- results:NAME -->'.
    end: the closing marker.
    text: the new content between them.
    heading: when given and the markers are missing, a section with this
      heading and the markers is appended to the file instead.

  Raises:
    ValueError: the markers are missing or out of order and no `heading`
      was given (nothing written).
  """
  with open(path, encoding='utf-8') as f:
    content = f.read()
  start, stop = content.find(begin), content.find(end)
  if start < 0 or stop < start:
    if heading is None:
      raise ValueError(f'{path}: markers {begin} ... {end} not found')
    content = f'{content.rstrip()}\n\n{heading}\n\n{begin}\n{end}\n'
    start, stop = content.find(begin), content.find(end)
  content = content[:start + len(begin)] + '\n' + text + '\n' + content[stop:]
  with open(path, 'w', encoding='utf-8') as f:
    f.write(content)
