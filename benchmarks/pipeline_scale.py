"""How the pipeline's cost grows with data: wall time per component, end to
end, and peak memory, from ML-100K to synthetic data of 25M ratings.

    python -m benchmarks.pipeline_scale                       # ML-100K, minutes
    python -m benchmarks.pipeline_scale --sizes 1M,5M,25M     # synthetic, hours

For each size:
1. Data: `ml-100k` is the real release (`make data`); a size such as `1M`
   is synthetic data in the ml-25m layout written by `python -m
   movielens.synthetic --layout ml-25m` (seed 0), generated once under
   `--work-dir` and reused; its generation time is reported apart.
2. A fresh `runner_local.py` run (no cache, its own output folder) in a
   subprocess, with `--beam-workers` DirectRunner processes (default: one
   per core) and a fixed number of epochs for both trainers (`--epochs`,
   default 1), so the work per rating is the same at every size.
3. While it runs, the process tree is sampled every `--sample-seconds`:
   the sum of the resident set sizes of the runner and all its children
   (Beam workers) is the peak RSS reported; the sum of proportional set
   sizes (PSS, shared pages counted once) is reported beside it, since the
   RSS sum counts pages that forked workers share more than once.
4. Per-component seconds come from the runner's progress lines.

Results are written to the JSON file after each size ends, merged with the
sizes already there, so a long run (25M takes hours) records each finished
size as it ends; progress goes to `<work-dir>/progress.log` as well as the
console. Run the big sizes in the background:

    nohup python -m benchmarks.pipeline_scale --sizes 1M,5M,25M &
    tail -f benchmarks/work/scale/progress.log

The table lands in `benchmarks/README.md` between
`<!-- results:pipeline_scale -->` and `<!-- /results:pipeline_scale -->`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

from benchmarks import common, report
from benchmarks.common import REPO_ROOT

DEFAULT_OUTPUT = os.path.join('benchmarks', 'results', 'pipeline_scale.json')
DEFAULT_WORK_DIR = os.path.join('benchmarks', 'work', 'scale')
README_PATHS = (os.path.join(REPO_ROOT, 'benchmarks', 'README.md'),)
RESULTS_BEGIN = '<!-- results:pipeline_scale -->'
RESULTS_END = '<!-- /results:pipeline_scale -->'
ML100K = 'ml-100k'
DEFAULT_ML100K_DIR = os.path.join('data', 'ml-100k')
SYNTHETIC_SEED = 0
# Targets for the synthetic 25M run on 2 cores / 24 GB.
TARGET_SECONDS_25M = 2 * 3600
TARGET_PEAK_RSS_BYTES = 16 * 2**30
TARGET_SCALING = 1.3  # s per million ratings at 25M vs at 1M

_SUFFIXES = {'K': 10**3, 'M': 10**6, 'G': 10**9}


def parse_size(text: str) -> int:
  """'1M' -> 1_000_000, '250K' -> 250_000, '5000' -> 5000."""
  text = text.strip().upper()
  try:
    if text and text[-1] in _SUFFIXES:
      value = float(text[:-1]) * _SUFFIXES[text[-1]]
    else:
      value = float(text)
  except ValueError:
    raise ValueError(f'size {text!r}: expected a number of ratings such as '
                     f'1M, 250K or 5000, or {ML100K!r}') from None
  if value < 1000 or value != int(value):
    raise ValueError(f'size {text!r}: expected a whole number of at least '
                     '1000 ratings')
  return int(value)


def size_label(ratings: int) -> str:
  """1_000_000 -> '1M', 250_000 -> '250K' (the inverse of parse_size for
  round sizes)."""
  for suffix, factor in (('G', 10**9), ('M', 10**6), ('K', 10**3)):
    if ratings % factor == 0:
      return f'{ratings // factor}{suffix}'
  return str(ratings)


def component_seconds(lines: Sequence[str]) -> Dict[str, float]:
  """Component id -> wall seconds, from the runner's progress lines
  (components reused from cache are left out: they did no work)."""
  return {t['component']: t['wall_seconds']
          for t in common.component_times(lines)}


@dataclasses.dataclass
class MemoryPeak:
  """Peaks over the samples of a process tree, in bytes."""
  rss_sum: int = 0  # sum of RSS over the tree
  pss_sum: int = 0  # sum of PSS over the tree (shared pages counted once)
  largest_process_rss: int = 0
  processes: int = 0  # most processes alive at once


class TreeSampler:
  """Samples the memory of a process and its descendants in a thread."""

  def __init__(self, pid: int, interval: float = 1.0, pss_every: int = 5):
    import psutil  # pylint: disable=g-import-not-at-top
    self._psutil = psutil
    self._root = psutil.Process(pid)
    self._interval = interval
    self._pss_every = pss_every
    self.peak = MemoryPeak()
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True)

  def __enter__(self) -> 'TreeSampler':
    self._thread.start()
    return self

  def __exit__(self, *exc) -> None:
    self._stop.set()
    self._thread.join()

  def sample(self, with_pss: bool) -> None:
    try:
      processes = [self._root] + self._root.children(recursive=True)
    except self._psutil.Error:
      return
    rss = pss = largest = alive = 0
    for process in processes:
      try:
        if with_pss:
          info = process.memory_full_info()
          pss += info.pss
        else:
          info = process.memory_info()
      except self._psutil.Error:  # Ended between listing and reading.
        continue
      alive += 1
      rss += info.rss
      largest = max(largest, info.rss)
    peak = self.peak
    peak.rss_sum = max(peak.rss_sum, rss)
    peak.pss_sum = max(peak.pss_sum, pss)
    peak.largest_process_rss = max(peak.largest_process_rss, largest)
    peak.processes = max(peak.processes, alive)

  def _run(self) -> None:
    count = 0
    while not self._stop.is_set():
      self.sample(with_pss=count % self._pss_every == 0)
      count += 1
      self._stop.wait(self._interval)


def generate(ratings: int, dest: str,
             log: common.Progress) -> Optional[float]:
  """Writes synthetic data of `ratings` ratings to `dest` unless already
  there; returns the seconds it took, None when reused."""
  if os.path.exists(os.path.join(dest, 'ratings.csv')):
    log(f'{size_label(ratings)}: reusing synthetic data in {dest}')
    return None
  log(f'{size_label(ratings)}: generating {ratings:,} synthetic ratings '
      f'(ml-25m layout, seed {SYNTHETIC_SEED}) in {dest}')
  partial = dest + '.partial'
  shutil.rmtree(partial, ignore_errors=True)
  started = time.monotonic()
  subprocess.run(
      [sys.executable, '-m', 'movielens.synthetic', '--layout', 'ml-25m',
       '--ratings', str(ratings), '--seed', str(SYNTHETIC_SEED),
       '--dest', partial], check=True, cwd=REPO_ROOT)
  os.replace(partial, dest)
  return time.monotonic() - started


def run_pipeline(data_dir: str, output_dir: str, beam_workers: int,
                 epochs: int, sample_seconds: float, log: common.Progress,
                 label: str, runner_args: Sequence[str] = ()
                ) -> Dict[str, Any]:
  """Runs runner_local.py once, from scratch; returns its measurements."""
  shutil.rmtree(output_dir, ignore_errors=True)
  command = common.runner_command(data_dir, output_dir, [
      '--beam-workers', str(beam_workers), '--epochs', str(epochs),
      '--ranking-epochs', str(epochs), '--no-cache', *runner_args])
  env = common.child_env(PYTHONUNBUFFERED='1')
  log(f'{label}: {" ".join(command)}')
  lines: List[str] = []
  started = time.monotonic()
  with subprocess.Popen(command, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True, env=env,
                        cwd=REPO_ROOT) as process:
    with TreeSampler(process.pid, interval=sample_seconds) as sampler:
      for line in process.stdout:
        lines.append(line.rstrip('\n'))
        if common.is_progress_line(line):
          log(f'{label}: {line.strip()}')
      returncode = process.wait()
  wall = time.monotonic() - started
  if returncode != 0:
    log(f'{label}: runner failed with exit code {returncode}; last lines:\n' +
        '\n'.join(lines[-20:]))
  peak = sampler.peak
  return {
      'exit_code': returncode,
      'wall_seconds': round(wall, 1),
      'components': component_seconds(lines),
      'peak_rss_sum_bytes': peak.rss_sum,
      'peak_pss_sum_bytes': peak.pss_sum,
      'peak_largest_process_rss_bytes': peak.largest_process_rss,
      'max_processes': peak.processes,
  }


def measure_size(size: str, args: argparse.Namespace,
                 log: common.Progress) -> Dict[str, Any]:
  """Data (generated if needed) plus one pipeline run for `size`."""
  work_dir = os.path.abspath(args.work_dir)
  if size == ML100K:
    data_dir = os.path.abspath(args.ml100k_dir)
    if not os.path.isdir(data_dir):
      raise SystemExit(f'{data_dir}: no ml-100k folder; run `make data` or '
                       'pass --ml100k-dir')
    generation = None
    source = 'ml-100k (GroupLens)'
    label = ML100K
  else:
    ratings = parse_size(size)
    label = size_label(ratings)
    data_dir = os.path.join(work_dir, 'data', label)
    generation = generate(ratings, data_dir, log)
    source = f'synthetic, ml-25m layout, seed {SYNTHETIC_SEED}'
  ratings = common.count_ratings(data_dir)
  result = run_pipeline(data_dir, os.path.join(work_dir, 'runs', label),
                        args.beam_workers, args.epochs, args.sample_seconds,
                        log, label, args.runner_arg)
  result.update({
      'size': label,
      'data': source,
      'ratings': ratings,
      'generation_seconds': (None if generation is None
                             else round(generation, 1)),
      'seconds_per_million_ratings': round(
          result['wall_seconds'] / (ratings / 1e6), 1),
      'beam_workers': args.beam_workers,
      'epochs': args.epochs,
      'runner_args': list(args.runner_arg),
      'code': common.git_revision()['commit'],
      'finished': report.now_utc(),
  })
  log(f'{label}: exit {result["exit_code"]}, {result["wall_seconds"]:.0f}s '
      f'({result["seconds_per_million_ratings"]:.0f}s per million ratings), '
      f'peak RSS {result["peak_rss_sum_bytes"] / 2**30:.2f} GiB')
  return result


def merge_results(previous: Optional[Mapping[str, Any]],
                  result: Mapping[str, Any]) -> Dict[str, Any]:
  """The results file with `result` added (replacing its size's entry)."""
  runs = [r for r in (previous or {}).get('runs', [])
          if r.get('size') != result['size']]
  runs.append(dict(result))
  runs.sort(key=lambda r: r['ratings'])
  return {
      'benchmark': 'pipeline_scale',
      'machine': report.machine_info(),
      'versions': report.package_versions(),
      'updated': report.now_utc(),
      'runs': runs,
  }


def _gib(value: int) -> str:
  return f'{value / 2**30:.2f}'


def render_markdown(results: Mapping[str, Any]) -> str:
  """The README table: one row per size, then the targets' verdicts."""
  runs = results.get('runs', [])
  machine = results.get('machine', {})
  lines = [
      f'Measured {results.get("updated", "?")} on {machine.get("cpu_cores")} '
      f'cores ({machine.get("cpu_model")}), {machine.get("memory_gib")} GiB.',
      '',
      '| Data | Ratings | Beam workers | Epochs | Wall (s) | s per M ratings '
      '| Peak RSS sum (GiB) | Peak PSS sum (GiB) | Largest process (GiB) '
      '| Slowest components |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ]
  for run in runs:
    slowest = sorted(run['components'].items(), key=lambda kv: -kv[1])[:3]
    status = '' if run['exit_code'] == 0 else ' (FAILED)'
    lines.append(
        f'| {run["size"]}{status} | {run["ratings"]:,} | '
        f'{run["beam_workers"]} | {run["epochs"]} | '
        f'{run["wall_seconds"]:.0f} | {run["seconds_per_million_ratings"]:.0f} '
        f'| {_gib(run["peak_rss_sum_bytes"])} | {_gib(run["peak_pss_sum_bytes"])} '
        f'| {_gib(run["peak_largest_process_rss_bytes"])} | ' +
        ', '.join(f'{name} {seconds:.0f}s' for name, seconds in slowest) +
        ' |')
  extra = [f'{run["size"]}: `{" ".join(run["runner_args"])}`'
           for run in runs if run.get('runner_args')]
  if extra:
    lines += ['', 'Extra runner arguments: ' + '; '.join(extra) + '.']
  by_size = {run['size']: run for run in runs if run['exit_code'] == 0}
  verdicts = []
  if '25M' in by_size:
    big = by_size['25M']
    verdicts.append(
        f'25M end to end {big["wall_seconds"] / 3600:.2f} h (target ≤ 2 h: '
        f'{"met" if big["wall_seconds"] <= TARGET_SECONDS_25M else "NOT met"})'
        f', peak RSS {_gib(big["peak_rss_sum_bytes"])} GiB (target ≤ 16 GiB: '
        f'{"met" if big["peak_rss_sum_bytes"] <= TARGET_PEAK_RSS_BYTES else "NOT met"}).')
    if '1M' in by_size:
      ratio = (big['seconds_per_million_ratings'] /
               by_size['1M']['seconds_per_million_ratings'])
      verdicts.append(
          f'Seconds per million ratings, 25M / 1M = {ratio:.2f} (target ≤ '
          f'{TARGET_SCALING}: {"met" if ratio <= TARGET_SCALING else "NOT met"}).')
  else:
    verdicts.append('25M: not measured yet (targets: ≤ 2 h, peak RSS ≤ 16 GiB,'
                    ' s per M ratings within 1.3× of 1M).')
  return '\n'.join(lines + [''] + verdicts)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      description=__doc__.split('\n\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--sizes', default=ML100K,
                      help=f'comma-separated: {ML100K} and/or numbers of '
                      'synthetic ratings such as 1M,5M,25M')
  parser.add_argument('--beam-workers', type=int, default=os.cpu_count() or 1,
                      help='Beam DirectRunner worker processes')
  parser.add_argument('--epochs', type=int, default=1,
                      help='epochs of each trainer, at every size')
  parser.add_argument('--runner-arg', action='append', default=[],
                      metavar='ARG',
                      help='an extra runner_local.py argument, given as '
                      '--runner-arg=ARG and recorded with '
                      'the results (repeatable), e.g. '
                      '--runner-arg=--hparam=batch_size=2048')
  parser.add_argument('--work-dir', default=DEFAULT_WORK_DIR,
                      help='synthetic data and pipeline outputs (not '
                      'versioned)')
  parser.add_argument('--ml100k-dir', default=DEFAULT_ML100K_DIR)
  parser.add_argument('--output', default=DEFAULT_OUTPUT,
                      help='results JSON (merged per size)')
  parser.add_argument('--sample-seconds', type=float, default=1.0,
                      help='memory sampling interval')
  parser.add_argument('--no-readme', action='store_true',
                      help='do not update the README tables')
  args = parser.parse_args(argv)
  args.sizes = [s.strip() for s in args.sizes.split(',') if s.strip()]
  for size in args.sizes:
    if size != ML100K:
      try:
        parse_size(size)
      except ValueError as e:
        parser.error(str(e))
  return args


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  log = common.Progress(os.path.join(args.work_dir, 'progress.log'))
  for size in args.sizes:
    result = measure_size(size, args, log)
    results = merge_results(common.read_json(args.output), result)
    common.write_json(args.output, results, sort_keys=True)
    log(f'{result["size"]}: results written to {args.output}')
    if not args.no_readme:
      table = render_markdown(results)
      for path in README_PATHS:
        try:
          report.replace_section(path, RESULTS_BEGIN, RESULTS_END, table)
        except ValueError as e:
          log(f'README not updated: {e}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
