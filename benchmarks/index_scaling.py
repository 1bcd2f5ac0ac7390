"""Retrieval latency and recall versus catalogue size, brute force and ScaNN.

    python -m benchmarks.index_scaling                        # 1.7K, 60K, 1M
    python -m benchmarks.index_scaling --sizes 1682,60000     # quicker
    python -m benchmarks.index_scaling --sizes 1682,60000 \
        --embeddings-from outputs/serving/retrieval/<version>

For each catalogue size N (movies):
1. Candidate embeddings. By default synthetic, of the model's dimension
   (`RetrievalHParams.embedding_dim`, 64): unit vectors, 80% of them around
   one of 100 "taste" centres and 20% uniform, so that nearest neighbours
   are structured as real ones are (on uniform random vectors, ANN recall
   says little); `--queries` query vectors come from the same mixture, a
   different stream; all deterministic by `--seed`. With
   `--embeddings-from` a pushed brute-force retrieval servable: its movie
   embeddings (D + 1 with the candidate bias), with jittered copies beyond
   its catalogue (each a real movie's vector plus noise), and its query
   tower's embeddings of its known users (by id only: no demographics).
2. Indexes: TFRS' `BruteForce` and, when ScaNN is installed, TFRS' `ScaNN`
   with the configuration the export uses for N
   (`modules.retrieval_index.scann_params`). Reported: build seconds, the
   index's size (bytes of its variables) and the growth of this process's
   resident memory over the build.
3. Latency: each index called through a `tf.function` with one query
   ([1, D]) per call, top `--k`, for `--latency-queries` queries after
   `--warmup` unmeasured ones; p50 and p99 (nearest rank) and mean, ms.
   TensorFlow's default thread pools (all cores).
4. Recall@K of ScaNN against brute force over all `--queries` queries.

Results are merged into `--output` per (embeddings, size), so runs of other
sizes or sources add rows; the table lands in `benchmarks/README.md`
between `<!-- results:index_scaling -->` and
`<!-- /results:index_scaling -->`.
"""

from __future__ import annotations

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import argparse  # noqa: E402
import gc  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import (Any, Callable, Dict, List, Mapping, Optional,  # noqa: E402
                    Sequence, Tuple)

import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks import report  # noqa: E402
from benchmarks.common import REPO_ROOT, percentile  # noqa: E402

DEFAULT_OUTPUT = os.path.join('benchmarks', 'results', 'index_scaling.json')
README_PATHS = (os.path.join(REPO_ROOT, 'benchmarks', 'README.md'),)
RESULTS_BEGIN = '<!-- results:index_scaling -->'
RESULTS_END = '<!-- /results:index_scaling -->'
# ML-100K's catalogue, ML-25M's (62K, rounded down), a large one.
DEFAULT_SIZES = (1682, 60_000, 1_000_000)
SYNTHETIC = 'synthetic'
# The synthetic mixture: unit vectors around CENTRES taste directions.
CENTRES = 100
CLUSTERED_SHARE = 0.8
SPREAD = 0.7
JITTER = 0.1  # noise added to copies of real embeddings (relative)
_CHUNK = 100_000  # rows generated at a time
_SUFFIXES = {'K': 10**3, 'M': 10**6}


# --- Parsing and the math (tested in tests/benchmarks/test_index_scaling.py)


def parse_sizes(text: str) -> List[int]:
  """'1682,60K,1M' -> [1682, 60000, 1000000] (each at least 1)."""
  sizes = []
  for item in text.split(','):
    item = item.strip().upper()
    if not item:
      continue
    try:
      if item[-1] in _SUFFIXES:
        value = float(item[:-1]) * _SUFFIXES[item[-1]]
      else:
        value = float(item)
    except ValueError:
      raise ValueError(f'size {item!r}: expected a number of movies such as '
                       '1682, 60K or 1M') from None
    if value < 1 or value != int(value):
      raise ValueError(f'size {item!r}: expected a whole number of movies, '
                       'at least 1')
    sizes.append(int(value))
  if not sizes:
    raise ValueError('no sizes given')
  return sizes


def size_label(size: int) -> str:
  """1_000_000 -> '1M', 60_000 -> '60K', 1682 -> '1.7K', 500 -> '500'."""
  for suffix, factor in (('M', 10**6), ('K', 10**3)):
    if size >= factor:
      value = size / factor
      return (f'{value:.0f}{suffix}' if value == int(value) or value >= 10
              else f'{value:.1f}{suffix}')
  return str(size)


def latency_summary(seconds: Sequence[float]) -> Dict[str, float]:
  """p50, p99 and mean of per-query latencies, in ms."""
  ordered = sorted(seconds)
  return {'p50_ms': percentile(ordered, 50) * 1e3,
          'p99_ms': percentile(ordered, 99) * 1e3,
          'mean_ms': sum(ordered) / len(ordered) * 1e3,
          'calls': len(ordered)}


def _unit(rows: np.ndarray) -> np.ndarray:
  return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def synthetic_embeddings(rows: int, dim: int, seed: int,
                         stream: int) -> np.ndarray:
  """[rows, dim] float32 unit vectors: CLUSTERED_SHARE of them around one
  of CENTRES centres (the same for every stream of a seed), the rest
  uniform on the sphere. `stream` 0 is the catalogue, 1 the queries.

  Deterministic: the same (rows, dim, seed, stream) gives the same array;
  generated in chunks, so 1M x 64 needs no more than the result.
  """
  centres = _unit(np.random.default_rng([seed, 0]).standard_normal(
      (CENTRES, dim)))
  rng = np.random.default_rng([seed, 1 + stream])
  out = np.empty((rows, dim), np.float32)
  for start in range(0, rows, _CHUNK):
    count = min(_CHUNK, rows - start)
    noise = rng.standard_normal((count, dim)) / np.sqrt(dim)
    centre = centres[rng.integers(CENTRES, size=count)]
    clustered = rng.random(count) < CLUSTERED_SHARE
    out[start:start + count] = _unit(
        np.where(clustered[:, None], centre + SPREAD * noise, noise))
  return out


def grow_catalogue(real: np.ndarray, rows: int, seed: int) -> np.ndarray:
  """`rows` candidates from the real ones: the real rows first, then
  copies of them in turn, each plus Gaussian noise of JITTER times the
  mean row norm (per dimension, / sqrt(D)), deterministic by `seed`."""
  if rows <= len(real):
    return np.asarray(real[:rows], np.float32)
  rng = np.random.default_rng([seed, 2])
  scale = JITTER * float(np.linalg.norm(real, axis=1).mean()) / np.sqrt(
      real.shape[1])
  out = np.empty((rows, real.shape[1]), np.float32)
  out[:len(real)] = real
  for start in range(len(real), rows, _CHUNK):
    count = min(_CHUNK, rows - start)
    source = real[np.arange(start, start + count) % len(real)]
    out[start:start + count] = source + scale * rng.standard_normal(
        source.shape)
  return out


def variables_bytes(variables) -> int:
  """Bytes held by `variables` (strings: their lengths)."""
  total = 0
  for variable in variables:
    value = variable.numpy()
    if value.dtype == object:
      total += sum(len(v) for v in np.ravel(value))
    else:
      total += value.nbytes
  return total


def _rss_bytes() -> int:
  with open('/proc/self/status', encoding='utf-8') as f:
    for line in f:
      if line.startswith('VmRSS:'):
        return int(line.split()[1]) * 1024
  return 0


# --- Measuring ---------------------------------------------------------------


def time_queries(search: Callable, queries: np.ndarray, count: int,
                 warmup: int) -> Dict[str, float]:
  """Latency of `search` on one query per call: `warmup` calls, then
  `count` timed ones (queries taken in turn)."""
  import tensorflow as tf
  singles = [tf.constant(queries[i:i + 1]) for i in range(len(queries))]
  for i in range(warmup):
    search(singles[i % len(singles)])[1].numpy()
  seconds = []
  for i in range(count):
    query = singles[i % len(singles)]
    start = time.perf_counter()
    search(query)[1].numpy()
    seconds.append(time.perf_counter() - start)
  return latency_summary(seconds)


def answer_all(search: Callable, queries: np.ndarray,
               batch: int) -> np.ndarray:
  """[Q, K] rows found for every query, in batches."""
  import tensorflow as tf
  return np.concatenate([
      search(tf.constant(queries[i:i + batch]))[1].numpy()
      for i in range(0, len(queries), batch)])


def measure_index(name: str, build: Callable, queries: np.ndarray,
                  args: argparse.Namespace) -> Tuple[Dict[str, Any],
                                                     np.ndarray]:
  """Builds one index and measures it: (results, rows for every query)."""
  import tensorflow as tf
  gc.collect()
  rss_before = _rss_bytes()
  start = time.perf_counter()
  layer = build()
  build_seconds = time.perf_counter() - start
  search = tf.function(lambda q: layer(q, k=args.k))
  result = {
      'index': name,
      'build_seconds': build_seconds,
      'index_bytes': variables_bytes(layer.variables),
      'rss_growth_bytes': _rss_bytes() - rss_before,
  }
  result.update(time_queries(search, queries, args.latency_queries,
                             args.warmup))
  rows = answer_all(search, queries, args.batch)
  return result, rows


def load_real(path: str, queries: int) -> Tuple[np.ndarray, np.ndarray]:
  """(movie embeddings [M, D], query embeddings [Q, D]) of a pushed
  brute-force retrieval servable; queries are its known users' (by id
  only), at most `queries`."""
  import tensorflow as tf
  from modules import retrieval_export
  servable = tf.saved_model.load(path)
  if not hasattr(servable, 'movie_embeddings'):
    raise ValueError(f'{path}: not a brute-force retrieval servable (no '
                     'movie_embeddings); export one with --retrieval-index '
                     'brute_force')
  movies = servable.movie_embeddings.numpy()
  keys, _ = tf.raw_ops.LookupTableExportV2(
      table_handle=servable.user_rows.resource_handle, Tkeys=tf.string,
      Tvalues=tf.int64)
  users = sorted(keys.numpy().tolist())[:queries]
  examples = tf.constant([retrieval_export.user_example(u, {})
                          for u in users])
  query = servable.towers.query_embedding(examples=examples)['embedding']
  return movies, query.numpy()


def measure_size(size: int, args: argparse.Namespace,
                 real: Optional[Tuple[np.ndarray, np.ndarray]]
                 ) -> Dict[str, Any]:
  """Both indexes at one catalogue size."""
  import tensorflow as tf
  import tensorflow_recommenders as tfrs
  from modules import retrieval_index
  started = time.perf_counter()
  if real is None:
    candidates = synthetic_embeddings(size, args.dim, args.seed, stream=0)
    queries = synthetic_embeddings(args.queries, args.dim, args.seed,
                                   stream=1)
  else:
    candidates = grow_catalogue(real[0], size, args.seed)
    queries = real[1]
  k = min(args.k, size)
  run = {
      'embeddings': SYNTHETIC if real is None else 'real',
      'source': args.embeddings_from and os.path.abspath(
          args.embeddings_from),
      'size': size, 'label': size_label(size), 'dim': candidates.shape[1],
      'k': k, 'queries': len(queries), 'seed': args.seed,
      'data_seconds': time.perf_counter() - started,
      'load_average_before': os.getloadavg()[0],
      'indexes': [],
  }
  args_k = argparse.Namespace(**{**vars(args), 'k': k})

  def brute_force():
    return tfrs.layers.factorized_top_k.BruteForce(k=k).index(
        tf.constant(candidates))

  result, exact = measure_index(retrieval_index.BRUTE_FORCE, brute_force,
                                queries, args_k)
  result['recall_at_k'] = 1.0
  run['indexes'].append(result)
  _log(f'{run["label"]}: brute force', result)
  if retrieval_index.scann_available():
    params = retrieval_index.scann_params(size, k)

    def scann():
      return tfrs.layers.factorized_top_k.ScaNN(
          k=k, num_leaves=max(params.num_leaves, 1),
          num_leaves_to_search=max(params.num_leaves_to_search, 1),
          dimensions_per_block=params.dimensions_per_block,
          training_iterations=params.training_iterations,
          num_reordering_candidates=params.num_reordering_candidates).index(
              tf.constant(candidates))

    if params.num_leaves:
      result, found = measure_index(retrieval_index.SCANN, scann, queries,
                                    args_k)
      result['params'] = dict(vars(params))
      result['recall_at_k'] = retrieval_index.recall_at_k(found, exact)
      run['indexes'].append(result)
      _log(f'{run["label"]}: ScaNN', result)
    else:
      run['scann_skipped'] = (
          f'under {retrieval_index.MIN_PARTITIONED_CANDIDATES} movies the '
          'export scores every movie exactly')
  else:
    run['scann_skipped'] = (f'ScaNN not installed '
                            f'({retrieval_index.SCANN_INSTALL})')
  if run.get('scann_skipped'):
    print(f'{run["label"]}: ScaNN skipped: {run["scann_skipped"]}',
          flush=True)
  run['seconds'] = time.perf_counter() - started
  run['load_average_after'] = os.getloadavg()[0]
  return run


def _log(label: str, result: Mapping[str, Any]) -> None:
  print(f'{label}: build {result["build_seconds"]:.1f}s, '
        f'{result["index_bytes"] / 2**20:.0f} MiB, p50 '
        f'{result["p50_ms"]:.2f} ms, p99 {result["p99_ms"]:.2f} ms, '
        f'recall@k {result.get("recall_at_k", float("nan")):.4f}',
        flush=True)


def merge_results(previous: Optional[Mapping[str, Any]],
                  runs: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
  """The results file: earlier runs of other (embeddings, size) kept,
  these replacing any of the same key; synthetic first, then by size."""
  by_key = {(r['embeddings'], r['size']): r
            for r in (previous or {}).get('runs', [])}
  by_key.update({(r['embeddings'], r['size']): r for r in runs})
  return {
      'benchmark': 'index_scaling',
      'updated': report.now_utc(),
      'machine': report.machine_info(),
      'packages': report.package_versions(
          ('tensorflow', 'tensorflow-recommenders', 'scann', 'numpy')),
      'runs': [by_key[key] for key in sorted(
          by_key, key=lambda key: (key[0] != SYNTHETIC, key))],
  }


# --- Report ------------------------------------------------------------------


def render_markdown(results: Mapping[str, Any]) -> str:
  """The README table: one row per (embeddings, size, index)."""
  machine, packages = results['machine'], results['packages']
  loads = [run[key] for run in results['runs']
           for key in ('load_average_before', 'load_average_after')
           if key in run]
  load = (f' Load average (1 min) {min(loads):.1f}–{max(loads):.1f} during '
          'the runs: the machine is shared.' if loads else '')
  real = next((run for run in results['runs']
               if run['embeddings'] != SYNTHETIC), None)
  if real:
    source = os.path.relpath(real['source'], REPO_ROOT)
    load += (f' Real: the movie embeddings of `{source}` (jittered '
             'copies beyond its catalogue) and its users\' query embeddings.')
  lines = [
      f'Measured {results["updated"]} on {machine["cpu_model"]} '
      f'({machine["cpu_cores"]} cores, {machine["memory_gib"]} GiB), '
      f'tensorflow {packages.get("tensorflow")}, tensorflow-recommenders '
      f'{packages.get("tensorflow-recommenders")}, scann '
      f'{packages.get("scann") or "not installed"}. One query per call, '
      'top K; recall@K of ScaNN against brute force over all queries.'
      f'{load} Full results: `{DEFAULT_OUTPUT}`.',
      '',
      '| Embeddings | Movies | D | Index | Build s | Index MiB | p50 ms '
      '| p99 ms | Recall@K | Queries | ScaNN leaves (searched) / re-scored |',
      '|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|',
  ]
  for run in results['runs']:
    for index in run['indexes']:
      params = index.get('params')
      config = (f'{params["num_leaves"]} ({params["num_leaves_to_search"]})'
                f' / {params["num_reordering_candidates"]}' if params
                else '–')
      lines.append(
          f'| {run["embeddings"]} | {run["size"]:,} | {run["dim"]} | '
          f'{index["index"]} | {index["build_seconds"]:.1f} | '
          f'{index["index_bytes"] / 2**20:.1f} | {index["p50_ms"]:.2f} | '
          f'{index["p99_ms"]:.2f} | {index["recall_at_k"]:.3f} | '
          f'{run["queries"]} | {config} |')
    if run.get('scann_skipped'):
      lines.append(f'| {run["embeddings"]} | {run["size"]:,} | {run["dim"]} '
                   f'| scann | – | – | – | – | – | – | skipped: '
                   f'{run["scann_skipped"]} |')
  return '\n'.join(lines)


# --- Entry point -------------------------------------------------------------


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  from modules.hparams import RetrievalHParams
  parser = argparse.ArgumentParser(
      prog='python -m benchmarks.index_scaling',
      description=__doc__.split('\n\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--sizes',
                      default=','.join(str(s) for s in DEFAULT_SIZES),
                      help='comma-separated catalogue sizes (movies), e.g. '
                      '1682,60K,1M')
  parser.add_argument('--dim', type=int,
                      default=RetrievalHParams().embedding_dim,
                      help='dimension of synthetic embeddings (the model\'s '
                      'embedding_dim)')
  parser.add_argument('--k', type=int, default=100, help='results per query')
  parser.add_argument('--queries', type=int, default=1000,
                      help='queries for recall (and taken in turn for '
                      'latency)')
  parser.add_argument('--latency-queries', type=int, default=1000,
                      help='timed single-query calls per index')
  parser.add_argument('--warmup', type=int, default=50,
                      help='unmeasured calls before timing')
  parser.add_argument('--batch', type=int, default=50,
                      help='queries per call when answering for recall')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--embeddings-from', default=None, metavar='DIR',
                      help='a pushed brute-force retrieval servable (e.g. '
                      'outputs/serving/retrieval/<version>): its movie and '
                      'user embeddings instead of synthetic ones')
  parser.add_argument('--output', default=DEFAULT_OUTPUT,
                      help='results JSON (merged per embeddings and size)')
  parser.add_argument('--no-readme', action='store_true',
                      help='do not update the README tables')
  args = parser.parse_args(argv)
  try:
    args.sizes = parse_sizes(args.sizes)
  except ValueError as e:
    parser.error(str(e))
  for name in ('dim', 'k', 'queries', 'latency_queries', 'batch'):
    if getattr(args, name) < 1:
      parser.error(f'--{name.replace("_", "-")} must be at least 1')
  if args.warmup < 0:
    parser.error('--warmup must be >= 0')
  if args.embeddings_from and not os.path.isdir(args.embeddings_from):
    parser.error(f'--embeddings-from: {args.embeddings_from} is not a '
                 'folder')
  return args


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  real = None
  if args.embeddings_from:
    try:
      real = load_real(args.embeddings_from, args.queries)
    except ValueError as e:
      print(f'error: {e}', file=sys.stderr)
      return 1
  runs = []
  for size in args.sizes:
    runs.append(measure_size(size, args, real))
    results = merge_results(common.read_json(args.output), runs[-1:])
    common.write_json(args.output, results, sort_keys=True)
  print(f'Results: {args.output}', flush=True)
  if not args.no_readme:
    table = render_markdown(results)
    for path in README_PATHS:
      try:
        report.replace_section(path, RESULTS_BEGIN, RESULTS_END, table)
        print(f'Table: {path}', flush=True)
      except ValueError as e:
        print(f'README not updated: {e}', file=sys.stderr)
  return 0


if __name__ == '__main__':
  sys.exit(main())
