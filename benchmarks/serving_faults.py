"""The local server under a bounded load while versions come and go, and
its memory after a large batch.

    python -m benchmarks.serving_faults [--serving-dir outputs/serving]
        [--requests 5000] [--concurrency 8] [--swap-seconds 1]

Starts `serving.server` (a subprocess, its defaults: two versions served,
requests bounded) on a copy of the newest pushed recommender, then sends
`--requests` one-user requests from `--concurrency` threads while, every
`--swap-seconds`, a new version appears (a copy renamed into place, as the
pusher does) and the oldest disappears. Reports requests, errors by kind,
p50/p99 latency and the server's peak resident memory; then the server's
memory before and after requests of 1,000 users (the largest batch it
accepts), five times in a row: memory held after the first must not grow
with the next. Results: `benchmarks/results/
serving_faults.json` and the table in `benchmarks/README.md`.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Sequence

from benchmarks import common
from benchmarks import report

MODEL = 'recommender'
DEFAULT_OUTPUT = 'benchmarks/results/serving_faults.json'
DEFAULT_WORK_DIR = 'benchmarks/work/serving_faults'
RESULTS_BEGIN = '<!-- results:serving_faults -->'
RESULTS_END = '<!-- /results:serving_faults -->'
LARGE_BATCH = 1000
LARGE_BATCH_REPEATS = 5


def memory_kib(pid: int, field: str = 'VmRSS') -> Optional[int]:
  """A /proc/<pid>/status memory field (VmRSS, VmHWM) in KiB."""
  try:
    with open(f'/proc/{pid}/status', encoding='ascii') as f:
      for line in f:
        if line.startswith(field + ':'):
          return int(line.split()[1])
  except OSError:
    return None
  return None


def versions(model_dir: str) -> List[int]:
  return sorted(int(v) for v in os.listdir(model_dir) if v.isdigit())


def swap_once(model_dir: str, keep: int = 2) -> int:
  """Adds a version (a copy of the newest, renamed into place) and removes
  those beyond the newest `keep`; returns the new version."""
  present = versions(model_dir)
  new = present[-1] + 1
  staging = os.path.join(model_dir, f'.push-bench-{new}')
  shutil.copytree(os.path.join(model_dir, str(present[-1])), staging)
  os.rename(staging, os.path.join(model_dir, str(new)))
  for old in versions(model_dir)[:-keep]:
    shutil.rmtree(os.path.join(model_dir, str(old)))
  return new


def summarise(latencies: Sequence[float], errors: Dict[str, int],
              wall: float) -> Dict[str, Any]:
  ordered = sorted(latencies)
  return {
      'requests': len(latencies) + sum(errors.values()),
      'answered': len(latencies),
      'errors': dict(errors),
      'p50_ms': round(1000 * common.percentile(ordered, 50), 2)
                if ordered else None,
      'p99_ms': round(1000 * common.percentile(ordered, 99), 2)
                if ordered else None,
      'wall_seconds': round(wall, 1),
  }


def measure(serving_dir: str, work_dir: str, requests: int,
            concurrency: int, swap_seconds: float) -> Dict[str, Any]:
  from serving import client as serving_client  # pylint: disable=g-import-not-at-top
  source = common.latest_version(os.path.join(serving_dir, MODEL))
  if source is None:
    raise ValueError(f'no pushed {MODEL} under {serving_dir}: run the '
                     'pipeline first')
  shutil.rmtree(work_dir, ignore_errors=True)
  model_dir = os.path.join(work_dir, 'serving', MODEL)
  shutil.copytree(source, os.path.join(model_dir, '1'))
  server, address = common.start_local_server(
      os.path.join(work_dir, 'serving'))
  try:
    client = serving_client.ServingClient(address, timeout=30)
    rss_idle = memory_kib(server.pid)

    stop = threading.Event()
    swapped: List[int] = []

    def swapper():
      while not stop.wait(swap_seconds):
        swapped.append(swap_once(model_dir))

    latencies: List[float] = []
    errors: Dict[str, int] = {}
    lock = threading.Lock()

    def one(index: int) -> None:
      started = time.perf_counter()
      try:
        client.recommend([str(1 + index % 943)], model=MODEL, top_k=10)
      except serving_client.ServingError as e:
        with lock:
          errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
        return
      with lock:
        latencies.append(time.perf_counter() - started)

    thread = threading.Thread(target=swapper, daemon=True)
    started = time.monotonic()
    thread.start()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
      list(pool.map(one, range(requests)))
    stop.set()
    thread.join()
    load = summarise(latencies, errors, time.monotonic() - started)
    load.update(versions_pushed=len(swapped), concurrency=concurrency,
                peak_rss_mib=round((memory_kib(server.pid, 'VmHWM') or 0)
                                   / 1024, 1),
                idle_rss_mib=round((rss_idle or 0) / 1024, 1))

    time.sleep(2 * swap_seconds + 2)  # The last swap loaded.
    before = memory_kib(server.pid)
    after_each, seconds = [], []
    for _ in range(LARGE_BATCH_REPEATS):
      batch_started = time.perf_counter()
      answers = client.recommend(
          [str(u) for u in range(1, LARGE_BATCH + 1)], model=MODEL, top_k=10)
      seconds.append(time.perf_counter() - batch_started)
      time.sleep(1)
      after_each.append(round((memory_kib(server.pid) or 0) / 1024, 1))
    batch = {'users': LARGE_BATCH, 'answered': len(answers),
             'seconds': round(min(seconds), 2),
             'rss_before_mib': round((before or 0) / 1024, 1),
             'rss_after_each_mib': after_each}
    client.close()
  finally:
    server.terminate()
    try:
      server.wait(timeout=30)
    except subprocess.TimeoutExpired:
      server.kill()
  return {'benchmark': 'serving_faults', 'updated': report.now_utc(),
          'machine': report.machine_info(), 'code': common.git_revision(),
          'source': source, 'load_during_swaps': load, 'large_batch': batch}


def render_markdown(results: Dict[str, Any]) -> str:
  load, batch = results['load_during_swaps'], results['large_batch']
  code = results['code']
  errors = ', '.join(f'{k} {v}' for k, v in load['errors'].items()) or '0'
  return '\n'.join([
      f"Measured {results['updated']} on "
      f"{results['machine']['cpu_cores']} cores, code "
      f"{(code.get('commit') or '?')[:7]}"
      f"{' + uncommitted changes' if code.get('dirty') else ''}; the "
      f"recommender of `{results['source']}`.", '',
      '| Load during version swaps | Value |', '|---|---:|',
      f"| requests (concurrency {load['concurrency']}) | "
      f"{load['requests']:,} |",
      f"| versions pushed during the load | {load['versions_pushed']} |",
      f'| errors | {errors} |',
      f"| p50 / p99 latency (ms) | {load['p50_ms']} / {load['p99_ms']} |",
      f"| server RSS idle / peak (MiB) | {load['idle_rss_mib']} / "
      f"{load['peak_rss_mib']} |", '',
      f"Requests of {batch['users']:,} users, {len(batch['rss_after_each_mib'])} "
      f"one after another (the fastest answered in {batch['seconds']} s): "
      f"server RSS {batch['rss_before_mib']} MiB before, then "
      + ', '.join(f'{v}' for v in batch['rss_after_each_mib']) +
      ' MiB after each.',
  ])


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--serving-dir', default='outputs/serving')
  parser.add_argument('--requests', type=int, default=5000)
  parser.add_argument('--concurrency', type=int, default=8)
  parser.add_argument('--swap-seconds', type=float, default=1.0)
  parser.add_argument('--work-dir', default=DEFAULT_WORK_DIR)
  parser.add_argument('--output', default=DEFAULT_OUTPUT)
  parser.add_argument('--no-readme', action='store_true')
  args = parser.parse_args(argv)
  if min(args.requests, args.concurrency) < 1 or args.swap_seconds <= 0:
    parser.error('--requests and --concurrency must be >= 1, '
                 '--swap-seconds > 0')
  try:
    results = measure(args.serving_dir, args.work_dir, args.requests,
                      args.concurrency, args.swap_seconds)
  except (ValueError, RuntimeError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  common.write_json(args.output, results)
  print(render_markdown(results))
  if not args.no_readme:
    report.replace_section(
        os.path.join(common.REPO_ROOT, 'benchmarks', 'README.md'),
        RESULTS_BEGIN, RESULTS_END, render_markdown(results),
        heading='## Serving under faults (`serving_faults.py`)')
  return 0


if __name__ == '__main__':
  sys.exit(main())
