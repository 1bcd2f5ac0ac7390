"""Side by side on the same data and machine: the TFX/TFRS "recommenders"
tutorial's pipeline and ours, wall and CPU time end to end and per component.

    python -m benchmarks.pipeline_speed                  # both, minutes
    python -m benchmarks.pipeline_speed --only tutorial  # one of them

1. Tutorial (`benchmarks/tutorial/`): CsvExampleGen (8/2 hash split of a
   user_id, movie_title CSV written from the raw files) → StatisticsGen →
   SchemaGen → ExampleValidator → Transform (two vocabularies) → Trainer
   (TFRS two-tower on ids, 32-d, Adagrad 0.1, batches of 4096, 5 epochs,
   FactorizedTopK on the eval split) → Pusher, run by
   `python -m benchmarks.tutorial.pipeline`.
2. Ours: `runner_local.py --data-dir DATA --output-dir WORK/ours --no-cache`,
   exactly as a user runs it (plus `--runner-args`, for trials).
3. Ours again, nothing changed, cache on (`--no-rerun` skips it): every
   component should be reused and no model version pushed. Reported as its
   wall time over the first run's, and the versions pushed by it.

Each runs in its own subprocess from a fresh folder, so both pay their
imports. Measured for each: wall time of the subprocess, its CPU seconds
(itself and its descendants, from `getrusage`), and each component's wall
and CPU seconds from its progress lines (`pipeline/progress.py`). The ratio
is ours / tutorial, wall time end to end. Each run records the commit
measured (`code`) and whether tracked files differed from it (`dirty`;
changes to benchmarks/results and benchmarks/README.md, which the
benchmarks write, aside): the table shows both, since a time is that
commit's only when the tree was clean.

Results go to `benchmarks/results/pipeline_speed.json` (a run with `--only`
replaces that pipeline's entry and keeps the other's) and the table to
`benchmarks/README.md` between `<!-- results:pipeline_speed -->` and
`<!-- /results:pipeline_speed -->`. Progress lines go to the console and to
`<work-dir>/progress.log`, each subprocess's whole output to
`<work-dir>/<pipeline>.out`.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import shutil
import subprocess
import sys
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

from benchmarks import common, report
from benchmarks.common import REPO_ROOT

DEFAULT_DATA_DIR = os.path.join('data', 'ml-100k')
DEFAULT_WORK_DIR = os.path.join('benchmarks', 'work', 'speed')
DEFAULT_OUTPUT = os.path.join('benchmarks', 'results', 'pipeline_speed.json')
README_PATH = os.path.join(REPO_ROOT, 'benchmarks', 'README.md')
RESULTS_BEGIN = '<!-- results:pipeline_speed -->'
RESULTS_END = '<!-- /results:pipeline_speed -->'
TUTORIAL = 'tutorial'
OURS = 'ours'
RERUN = 'ours_rerun'
SERVABLES = ('retrieval', 'ranking', 'recommender')
PIPELINES = (TUTORIAL, OURS)
TITLES = {TUTORIAL: 'Tutorial', OURS: 'Ours'}


def tutorial_command(data_dir: str, work_dir: str) -> List[str]:
  """The tutorial pipeline's command line."""
  return [sys.executable, '-m', 'benchmarks.tutorial.pipeline',
          '--data-dir', data_dir, '--work-dir', work_dir]


def ours_command(data_dir: str, output_dir: str,
                 runner_args: Sequence[str] = (),
                 cache: bool = False) -> List[str]:
  """runner_local.py's command line, as a user types it."""
  return common.runner_command(
      data_dir, output_dir, [*([] if cache else ['--no-cache']), *runner_args])


def pushed_versions(output_dir: str) -> Dict[str, List[str]]:
  """Servable -> its pushed version folders under `output_dir`/serving."""
  versions = {}
  for servable in SERVABLES:
    base = os.path.join(output_dir, 'serving', servable)
    versions[servable] = sorted(os.listdir(base)) if os.path.isdir(
        base) else []
  return versions


def count_cached(lines: Sequence[str]) -> int:
  """How many progress lines say `reused from cache`."""
  return sum(1 for line in lines if 'reused from cache' in line)


def _shown(command: Sequence[str]) -> str:
  """The command as a reader would type it from the repository root."""
  parts = ['python']
  for part in command[1:]:
    if os.path.isabs(part) and part.startswith(REPO_ROOT + os.sep):
      part = os.path.relpath(part, REPO_ROOT)
    parts.append(shlex.quote(part))
  return ' '.join(parts)


def run_measured(command: Sequence[str], label: str, output_path: str,
                 log: common.Progress) -> Dict[str, Any]:
  """Runs `command` from the repository root; returns its exit code, wall
  and CPU seconds, and its components' times.

  The whole output (stdout and stderr) goes to `output_path`; progress
  lines also to `log`.
  """
  env = common.child_env(PYTHONUNBUFFERED='1')
  log(f'{label}: {_shown(command)}')
  lines: List[str] = []
  os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
  # Only this child is waited for in between, so the difference in the
  # children's usage is its CPU (and that of the descendants it waited for).
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  started = time.monotonic()
  with open(output_path, 'w', encoding='utf-8') as output, subprocess.Popen(
      command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      env=env, cwd=REPO_ROOT) as process:
    for line in process.stdout:
      output.write(line)
      lines.append(line.rstrip('\n'))
      if common.is_progress_line(line):
        log(f'{label}: {line.strip()}')
    returncode = process.wait()
  wall = time.monotonic() - started
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
  if returncode != 0:
    log(f'{label}: failed with exit code {returncode}; last lines:\n' +
        '\n'.join(lines[-20:]))
  return {
      'exit_code': returncode,
      'wall_seconds': round(wall, 1),
      'cpu_seconds': round(cpu, 1),
      'components': common.component_times(lines),
      'cached_components': count_cached(lines),
      'command': _shown(command),
  }


def code_measured() -> Dict[str, Any]:
  """{'code': the commit measured, 'dirty': whether tracked files outside
  the benchmark results differed from it}: a time is the time of that
  commit only when `dirty` is False."""
  revision = common.git_revision()
  return {'code': revision['commit'], 'dirty': revision['dirty']}


def code_text(run: Mapping[str, Any]) -> str:
  """'e9da52b', 'e9da52b + uncommitted changes', or '?' when unknown."""
  if not run.get('code'):
    return '?'
  short = run['code'][:7]
  if run.get('dirty'):
    return f'{short} + uncommitted changes'
  return short if run.get('dirty') is False else f'{short} (dirty: ?)'


def measure(pipeline: str, args: argparse.Namespace,
            log: common.Progress) -> Dict[str, Any]:
  """One fresh run of `pipeline` ('tutorial' or 'ours') on args.data_dir."""
  data_dir = os.path.abspath(args.data_dir)
  work_dir = os.path.join(os.path.abspath(args.work_dir), pipeline)
  shutil.rmtree(work_dir, ignore_errors=True)
  if pipeline == TUTORIAL:
    command = tutorial_command(data_dir, work_dir)
  else:
    command = ours_command(data_dir, work_dir, args.runner_args)
  result = run_measured(
      command, pipeline,
      os.path.join(os.path.abspath(args.work_dir), f'{pipeline}.out'), log)
  result.update({
      'data': os.path.basename(data_dir.rstrip(os.sep)),
      'ratings': common.count_ratings(data_dir),
      'runner_args': list(args.runner_args) if pipeline == OURS else [],
      **code_measured(),
      'finished': report.now_utc(),
  })
  log(f'{pipeline}: exit {result["exit_code"]}, wall '
      f'{result["wall_seconds"]:.1f}s, cpu {result["cpu_seconds"]:.1f}s')
  return result


def measure_rerun(args: argparse.Namespace,
                  log: common.Progress) -> Dict[str, Any]:
  """Ours again on the first run's output folder, cache on."""
  data_dir = os.path.abspath(args.data_dir)
  output_dir = os.path.join(os.path.abspath(args.work_dir), OURS)
  before = pushed_versions(output_dir)
  result = run_measured(
      ours_command(data_dir, output_dir, args.runner_args, cache=True), RERUN,
      os.path.join(os.path.abspath(args.work_dir), f'{RERUN}.out'), log)
  after = pushed_versions(output_dir)
  result.update({
      'data': os.path.basename(data_dir.rstrip(os.sep)),
      'runner_args': list(args.runner_args),
      **code_measured(),
      'finished': report.now_utc(),
      'new_versions_pushed': {
          name: sorted(set(after[name]) - set(before[name]))
          for name in SERVABLES},
  })
  log(f'{RERUN}: exit {result["exit_code"]}, wall '
      f'{result["wall_seconds"]:.1f}s, {result["cached_components"]} '
      'components reused from cache')
  return result


def rerun_ratio(runs: Mapping[str, Mapping[str, Any]]) -> Optional[float]:
  """Rerun / first run of ours, wall seconds; None unless both ran."""
  first, rerun = runs.get(OURS), runs.get(RERUN)
  if not (first and rerun) or first['exit_code'] or rerun['exit_code']:
    return None
  return round(rerun['wall_seconds'] / first['wall_seconds'], 3)


def merge_results(previous: Optional[Mapping[str, Any]],
                  runs: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
  """The results file with `runs` (pipeline -> result) replacing those
  pipelines' entries and keeping the others'."""
  merged = dict((previous or {}).get('runs', {}))
  merged.update({name: dict(run) for name, run in runs.items()})
  return {
      'benchmark': 'pipeline_speed',
      'machine': report.machine_info(),
      'versions': report.package_versions(),
      'updated': report.now_utc(),
      'runs': merged,
      'ratio': speed_ratio(merged),
      'rerun_ratio': rerun_ratio(merged),
  }


def speed_ratio(runs: Mapping[str, Mapping[str, Any]]) -> Optional[float]:
  """Ours / tutorial wall seconds end to end; None unless both ran to the
  end on the same data."""
  tutorial, ours = runs.get(TUTORIAL), runs.get(OURS)
  if not (tutorial and ours) or tutorial['exit_code'] or ours['exit_code']:
    return None
  if tutorial.get('data') != ours.get('data'):
    return None
  return round(ours['wall_seconds'] / tutorial['wall_seconds'], 2)


def _seconds(value: Optional[float]) -> str:
  return '–' if value is None else f'{value:.1f}'


def render_markdown(results: Mapping[str, Any]) -> str:
  """The README section: totals per pipeline, the ratio, then the
  components side by side (a row per component id, run order, the
  tutorial's first)."""
  runs = results.get('runs', {})
  machine = results.get('machine', {})
  lines = [
      f'Measured {results.get("updated", "?")} on {machine.get("cpu_cores")} '
      f'cores ({machine.get("cpu_model")}), {machine.get("memory_gib")} GiB.',
      '',
      '| Pipeline | Code | Command | Data | Components | Wall (s) | CPU (s) '
      '| In components: wall / CPU (s) |',
      '|---|---|---|---|---:|---:|---:|---:|',
  ]
  for name in PIPELINES:
    run = runs.get(name)
    if run is None:
      lines.append(f'| {TITLES[name]} | not measured | | | | | | |')
      continue
    status = '' if run['exit_code'] == 0 else ' (FAILED)'
    components = run['components']
    in_wall = sum(c['wall_seconds'] for c in components)
    in_cpu = sum(c['cpu_seconds'] or 0.0 for c in components)
    lines.append(
        f'| {TITLES[name]}{status} | {code_text(run)} | `{run["command"]}` '
        f'| {run["data"]} '
        f'({run["ratings"]:,} ratings) | {len(run["components"])} | '
        f'{run["wall_seconds"]:.1f} | {_seconds(run.get("cpu_seconds"))} | '
        f'{in_wall:.1f} / {in_cpu:.1f} |')
  ratio = speed_ratio(runs)
  if ratio is None:
    lines += ['', 'Ours / tutorial: needs both pipelines run to the end on '
              'the same data.']
  else:
    cpu_ratio = runs[OURS]['cpu_seconds'] / runs[TUTORIAL]['cpu_seconds']
    lines += ['', f'Ours / tutorial, wall time end to end: **{ratio:.2f}×** '
              f'(CPU: {cpu_ratio:.2f}×).']
  rerun = runs.get(RERUN)
  if rerun is not None and rerun_ratio(runs) is not None:
    pushed = sum(len(v) for v in rerun['new_versions_pushed'].values())
    lines += ['', f'Ours again with nothing changed (cache on, '
              f'`{rerun["command"]}`): {rerun["wall_seconds"]:.1f} s, '
              f'**{rerun_ratio(runs):.3f}×** the first run; '
              f'{rerun["cached_components"]} components reused from cache, '
              f'{pushed} model versions pushed.']
  by_pipeline = {
      name: {c['component']: c for c in runs.get(name, {}).get('components',
                                                                [])}
      for name in PIPELINES}
  order: List[str] = []
  for name in PIPELINES:
    order += [c for c in by_pipeline[name] if c not in order]
  if order:
    lines += ['', '| Component | Tutorial wall (s) | Tutorial CPU (s) '
              '| Ours wall (s) | Ours CPU (s) |', '|---|---:|---:|---:|---:|']
    for component in order:
      cells = []
      for name in PIPELINES:
        times = by_pipeline[name].get(component, {})
        cells += [_seconds(times.get('wall_seconds')),
                  _seconds(times.get('cpu_seconds'))]
      lines.append(f'| {component} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      description=__doc__.split('\n\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--data-dir', default=DEFAULT_DATA_DIR,
                      help='raw MovieLens folder both pipelines read')
  parser.add_argument('--work-dir', default=DEFAULT_WORK_DIR,
                      help='pipeline outputs and logs (not versioned); each '
                      "pipeline's folder is wiped before its run")
  parser.add_argument('--output', default=DEFAULT_OUTPUT,
                      help='results JSON (merged per pipeline)')
  parser.add_argument('--only', choices=(TUTORIAL, OURS, 'both'),
                      default='both', help='which pipelines to run')
  parser.add_argument('--runner-args', default='', type=shlex.split,
                      help='extra runner_local.py arguments, one string, '
                      "e.g. --runner-args='--no-ranking' (recorded with the "
                      'results)')
  parser.add_argument('--no-rerun', action='store_true',
                      help='skip the second run of ours with the cache on')
  parser.add_argument('--no-readme', action='store_true',
                      help='do not update the README table')
  return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  if not os.path.isdir(args.data_dir):
    raise SystemExit(f'{args.data_dir}: no such folder; run `make data` or '
                     'pass --data-dir')
  log = common.Progress(os.path.join(args.work_dir, 'progress.log'))
  pipelines = PIPELINES if args.only == 'both' else (args.only,)
  runs = {name: measure(name, args, log) for name in pipelines}
  if OURS in runs and not runs[OURS]['exit_code'] and not args.no_rerun:
    runs[RERUN] = measure_rerun(args, log)
  results = merge_results(common.read_json(args.output), runs)
  common.write_json(args.output, results, sort_keys=True)
  log(f'results written to {args.output}; ours / tutorial wall time: '
      f'{results["ratio"] if results["ratio"] is not None else "n/a"}')
  if not args.no_readme:
    try:
      report.replace_section(README_PATH, RESULTS_BEGIN, RESULTS_END,
                             render_markdown(results))
    except ValueError as e:
      log(f'README not updated: {e}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
