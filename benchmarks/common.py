"""What the benchmark scripts share: where the repository is, how they run
the pipeline, which code they measured, and how they read its output.

Each benchmark runs `runner_local.py` as a user does, in a subprocess from
the repository root, and records the commit it measured; keeping the
command, the environment and the records here means every benchmark runs
and describes the pipeline the same way. What a result carries beside this
(machine, package versions, date) and where its table goes is in
`benchmarks/report.py`.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
import subprocess
import sys
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.path.join(REPO_ROOT, 'runner_local.py')
# Files the benchmarks rewrite themselves: changes to them do not make the
# measured code differ from its commit.
RESULT_PATHS = ('benchmarks/results', 'benchmarks/README.md')

# `[  12.3s] Transform              done in 8.1s (cpu 12.0s)`
# (pipeline/progress.py; lines written before the CPU field have none).
_PROGRESS_LINE = re.compile(
    r'^\[\s*[\d.]+s\] (?P<component>\S+)\s+(?P<how>done|reused from cache) '
    r'in (?P<seconds>[\d.]+)s(?: \(cpu (?P<cpu>[\d.]+)s\))?')
# The trainers' progress (modules/training_log.py), also copied to the log.
_TRAINING_LINE = re.compile(
    r'^((retrieval|ranking) epoch \d+:|read [\d,]+ training examples )')


# --- Running the pipeline ----------------------------------------------------


def runner_command(data_dir: str, output_dir: str,
                   runner_args: Sequence[str] = ()) -> List[str]:
  """`runner_local.py --data-dir DATA --output-dir OUT [runner_args]`, run by
  this interpreter."""
  return [sys.executable, RUNNER, '--data-dir', data_dir,
          '--output-dir', output_dir, *runner_args]


def child_env(**overrides: str) -> Dict[str, str]:
  """This process's environment with Keras 2 chosen for the child (TFRS and
  tensorflow-transform need it before TensorFlow is imported)."""
  return dict(os.environ, TF_USE_LEGACY_KERAS='1', **overrides)


def run_runner(command: Sequence[str]) -> None:
  """Runs a `runner_command` from the repository root, output to this
  console.

  Raises:
    RuntimeError: the runner exited with a non-zero code.
  """
  completed = subprocess.run(list(command), cwd=REPO_ROOT, env=child_env(),
                             check=False)
  if completed.returncode != 0:
    raise RuntimeError(f'runner_local.py exited with {completed.returncode}')


def start_local_server(serving_dir: str, threads: Optional[int] = None,
                       extra_flags: Sequence[str] = ()
                      ) -> Tuple[subprocess.Popen, str]:
  """Starts `python -m serving.server` on `serving_dir` at any free port;
  returns (the process, HOST:PORT) once it serves (its first stdout line,
  'Serving N model(s) on HOST:PORT ...', comes after the models loaded)."""
  flags = ['--threads', str(threads)] if threads is not None else []
  process = subprocess.Popen(
      [sys.executable, '-m', 'serving.server', '--serving-dir', serving_dir,
       '--port', '0', *flags, *extra_flags],
      cwd=REPO_ROOT, env=child_env(), stdout=subprocess.PIPE,
      stderr=subprocess.DEVNULL, text=True)
  line = process.stdout.readline()
  if ' on ' not in line:
    process.kill()
    raise RuntimeError(f'the local server did not start (exit code '
                       f'{process.wait()}); run python -m serving.server '
                       f'--serving-dir {serving_dir} to see why')
  return process, line.split(' on ', 1)[1].split()[0]


# --- The code measured -------------------------------------------------------


def git_revision(repo_dir: str = REPO_ROOT) -> Dict[str, Any]:
  """{'commit': the checked-out commit, 'dirty': whether tracked files
  differ from it}, both None outside a git checkout.

  Changes under RESULT_PATHS do not count: the benchmarks write them, so a
  run right after another would otherwise always look dirty. Untracked
  files do not count either: the pipeline does not import them.
  """
  def git(*args: str) -> Optional[str]:
    try:
      return subprocess.run(['git', *args], cwd=repo_dir, check=True,
                            capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
      return None
  commit = git('rev-parse', 'HEAD')
  if commit is None:
    return {'commit': None, 'dirty': None}
  status = git('status', '--porcelain', '--untracked-files=no', '--', '.',
               *(f':(exclude){path}' for path in RESULT_PATHS))
  return {'commit': commit, 'dirty': None if status is None else bool(status)}


# --- The runner's output -----------------------------------------------------


def is_progress_line(line: str) -> bool:
  """Whether a line of the runner's output goes to the progress log:
  components' start and end, the trainers' reading and epochs."""
  line = line.strip()
  return bool(_PROGRESS_LINE.match(line) or 'started' in line or
              _TRAINING_LINE.match(line))


def component_times(lines: Sequence[str]) -> List[Dict[str, Any]]:
  """[{'component', 'wall_seconds', 'cpu_seconds'}], in run order, from
  progress lines such as `[  12.3s] Transform  done in 8.1s (cpu 12.0s)`.

  A list, not a mapping, so that the run order survives the JSON file.
  Components reused from cache are left out (they did no work); a line
  without the CPU field gives `cpu_seconds` None.
  """
  times = []
  for line in lines:
    match = _PROGRESS_LINE.match(line.strip())
    if match and match.group('how') == 'done':
      cpu = match.group('cpu')
      times.append({
          'component': match.group('component'),
          'wall_seconds': float(match.group('seconds')),
          'cpu_seconds': None if cpu is None else float(cpu),
      })
  return times


def count_ratings(data_dir: str) -> int:
  """Ratings in a raw folder (lines of its ratings file, less the header)."""
  from movielens import layout  # pylint: disable=g-import-not-at-top
  data_layout = layout.detect_layout(data_dir)
  with open(os.path.join(data_dir, data_layout.ratings_file), 'rb') as f:
    lines = sum(1 for line in f if line.strip())
  return lines - data_layout.header_lines


def latest_version(root: str) -> Optional[str]:
  """`root`/<largest integer-named folder>/ (a pushed model version, a TFX
  execution id), or None when there is none; '10' is newer than '9'."""
  versions = ([d for d in os.listdir(root) if d.isdigit()]
              if os.path.isdir(root) else [])
  return os.path.join(root, max(versions, key=int)) if versions else None


def latest_artifact_dir(pipeline_output: str, component: str,
                        output_key: str) -> Optional[str]:
  """The newest `<pipeline_output>/pipeline/*/<component>/<output_key>/<id>/`
  of a runner_local.py run, or None."""
  pattern = os.path.join(pipeline_output, 'pipeline', '*', component,
                         output_key, '*')
  found = [p for p in glob.glob(pattern) if os.path.basename(p).isdigit()]
  return max(found, key=lambda p: int(os.path.basename(p))) if found else None


# --- Measuring ---------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
  """Nearest-rank percentile: the smallest value with at least q% of the
  values at or below it (`sorted_values` ascending, 0 < q <= 100)."""
  if not sorted_values:
    raise ValueError('percentile of no values')
  if not 0 < q <= 100:
    raise ValueError(f'q must be in (0, 100], got {q}')
  return sorted_values[math.ceil(q / 100 * len(sorted_values)) - 1]


def load_average() -> Optional[List[float]]:
  """The 1, 5 and 15 minute load averages (None where unknown): the
  machine is shared, so a figure is read with the load it ran under."""
  try:
    return [round(x, 2) for x in os.getloadavg()]
  except OSError:
    return None


class Progress:
  """Lines to the console and to a log file, with a timestamp."""

  def __init__(self, path: str):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    self._file = open(path, 'a', encoding='utf-8')  # pylint: disable=consider-using-with

  def __call__(self, text: str) -> None:
    line = f'{time.strftime("%Y-%m-%d %H:%M:%S")} {text}'
    print(line, flush=True)
    self._file.write(line + '\n')
    self._file.flush()


# --- Results files -----------------------------------------------------------


def read_json(path: str) -> Optional[Dict[str, Any]]:
  """The results file at `path`, or None when there is none yet."""
  if not os.path.exists(path):
    return None
  with open(path, encoding='utf-8') as f:
    return json.load(f)


def write_json(path: str, data: Mapping[str, Any],
               sort_keys: bool = False) -> None:
  """Writes `data` to `path` as indented JSON, whole or not at all (a
  temporary file renamed over it), creating its folder."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path + '.tmp', 'w', encoding='utf-8') as f:
    json.dump(data, f, indent=2, ensure_ascii=False, sort_keys=sort_keys)
    f.write('\n')
  os.replace(path + '.tmp', path)
