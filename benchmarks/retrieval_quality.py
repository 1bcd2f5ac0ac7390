"""Retrieval quality on MovieLens 100K under two published protocols.

    python -m benchmarks.retrieval_quality --data-dir data/ml-100k \
        --output benchmarks/results/retrieval_quality.json \
        [--protocols tfrs,msrec] [--epochs N] [--skip-pipeline]

For each protocol (see `benchmarks/protocols.py`):
  1. split the ratings (seeded);
  2. score the baselines, most-popular and EASE (`benchmarks/baselines.py`),
     EASE's λ picked by a validation split of the training ratings only;
  3. unless --skip-pipeline: write the training ratings as a raw ml-100k
     folder, run the real pipeline on it (`runner_local.py`, a subprocess),
     load the pushed model and score it through its serving signature, as a
     client would.
Every figure, and the anchors it is compared with, comes from the same run.
The results go to a JSON file (with machine, date and package versions) and
to the table of `benchmarks/README.md`, between its result markers.

Seen movies. The served model removes each user's training movies from its
top K. The `msrec` protocol wants exactly that. The `tfrs` protocol ranks the
whole catalogue, seen movies included, so for it the pipeline is run with
`NO_EXCLUDE_SEEN_FLAG`, which exports a model that does not remove them.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import shutil
import sys
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from benchmarks import baselines
from benchmarks import common
from benchmarks import protocols
from benchmarks import report
from benchmarks.common import REPO_ROOT
from benchmarks.protocols import (MSREC, NDCG, PRECISION, RECALL, TFRS,
                                  TFRS_METRIC)

# Runner flag that exports a model which keeps seen movies in its top K.
NO_EXCLUDE_SEEN_FLAG = '--no-exclude-seen'
# The Pusher's destination under --output-dir: <this>/<integer version>/.
SERVING_SUBDIR = os.path.join('serving', 'retrieval')
SERVING_SIGNATURE = 'serving_default'
SERVING_BATCH = 256  # Users per serving call.

DEFAULT_OUTPUT = os.path.join('benchmarks', 'results',
                              'retrieval_quality.json')
DEFAULT_README = os.path.join(REPO_ROOT, 'benchmarks', 'README.md')
DEFAULT_WORK_DIR = os.path.join(REPO_ROOT, 'benchmarks', 'work')
RESULTS_BEGIN = '<!-- results:retrieval_quality -->'
RESULTS_END = '<!-- /results -->'

# λ candidates for EASE, validated on a split of the training ratings.
EASE_L2_GRID: Tuple[float, ...] = (50.0, 100.0, 200.0, 300.0, 500.0, 750.0,
                                   1000.0, 1500.0, 2000.0, 3000.0, 5000.0)
# The figure each protocol is judged by (and EASE's λ is picked by).
PRIMARY_METRIC = {TFRS: TFRS_METRIC, MSREC: NDCG}
# What the pipeline's retrieval model should reach.
TARGETS = {TFRS: {TFRS_METRIC: 0.30}, MSREC: {NDCG: 0.42}}

TFRS_TUTORIAL = ('https://www.tensorflow.org/recommenders/examples/'
                 'basic_retrieval')
MSREC_BENCHMARK = ('https://github.com/recommenders-team/recommenders/blob/'
                   'main/examples/06_benchmarks/movielens.ipynb')
MSREC_README = ('https://github.com/recommenders-team/recommenders#'
                'algorithm-comparison')
_PLAN = 'reference value of the benchmark plan (no published table)'


@dataclasses.dataclass(frozen=True)
class Anchor:
  """A figure from elsewhere that a measured figure is read against."""
  system: str
  metrics: Mapping[str, float]
  source: str
  approximate: bool = False


ANCHORS: Mapping[str, Tuple[Anchor, ...]] = {
    TFRS: (
        Anchor('TFRS tutorial model (user/movie embeddings, 3 epochs)',
               {TFRS_METRIC: 0.23}, TFRS_TUTORIAL, approximate=True),
        Anchor('Most popular', {TFRS_METRIC: 0.29}, _PLAN, approximate=True),
    ),
    MSREC: (
        Anchor('Most popular', {NDCG: 0.25}, _PLAN, approximate=True),
        Anchor('EASE', {NDCG: 0.48}, _PLAN, approximate=True),
        Anchor('BiVAE (Recommenders README table)',
               {NDCG: 0.475077, PRECISION: 0.411771, RECALL: 0.219145},
               MSREC_README),
    ),
}

DESCRIPTIONS = {
    TFRS: ('TFRS tutorials: seeded random 80/20 split of all ratings; for each '
           'test rating, is its movie in the user\'s top 100 over the whole '
           'catalogue (seen movies kept); mean over test ratings. '
           f'{TFRS_TUTORIAL}'),
    MSREC: ('Microsoft Recommenders: per-user stratified random 75/25 split '
            '(python_stratified_split, filter_by="user"); training movies '
            'removed; top 10 vs the user\'s test movies (binary relevance); '
            f'mean over test users. {MSREC_BENCHMARK}'),
}

SYSTEM_LABELS = {
    'most_popular': 'Most popular',
    'ease': 'EASE',
    'retrieval_model': 'Retrieval model (pipeline, served)',
}
METRIC_LABELS = {
    TFRS_METRIC: 'Top-100 accuracy',
    NDCG: 'nDCG@10',
    PRECISION: 'Precision@10',
    RECALL: 'Recall@10',
}
PROTOCOL_METRICS = {TFRS: (TFRS_METRIC,), MSREC: (NDCG, PRECISION, RECALL)}


def _progress(protocol: str, step: str, seconds: float,
              detail: str = '') -> None:
  print(f'[{protocol}] {step:<26} {seconds:7.1f}s  {detail}'.rstrip(),
        flush=True)


def _format_metrics(metrics: Mapping[str, float]) -> str:
  return ', '.join(f'{METRIC_LABELS.get(k, k)} {v:.4f}'
                   for k, v in metrics.items())


# --- Environment -------------------------------------------------------------


# The packages the quality figures depend on (also the sweeps').
PACKAGES = ('tensorflow', 'tfx', 'tensorflow-recommenders', 'numpy', 'scipy')


# --- Baselines ---------------------------------------------------------------


def _recommend(recommender: baselines.Recommender, protocol: str,
               user_ids: Sequence[str]) -> Dict[str, List[str]]:
  lists = recommender.recommend(user_ids, protocols.TOP_K[protocol],
                                protocols.EXCLUDE_SEEN[protocol])
  return dict(zip(user_ids, lists))


def _test_users(split: protocols.Split) -> List[str]:
  # Numeric ids in numeric order; any other id still sorts.
  return sorted({r.user_id for r in split.test}, key=lambda u: (len(u), u))


def select_ease_l2(protocol: str, train: Sequence[protocols.Rating],
                   movie_ids: Sequence[str], seed: int,
                   grid: Sequence[float] = EASE_L2_GRID
                   ) -> Tuple[float, Dict[str, float]]:
  """Picks EASE's λ on the training ratings only.

  The training ratings are split again by the protocol's own split (seed + 1)
  and each λ is scored by the protocol's primary figure on that validation
  part. The test ratings are never seen.

  Returns:
    The best λ and the validation figure of every λ (keys are str(λ)).
  """
  inner = protocols.split(protocol, train, seed + 1)
  users = _test_users(inner)
  scores = {}
  for l2 in grid:
    recs = _recommend(baselines.Ease(inner.train, movie_ids, l2), protocol,
                      users)
    scores[l2] = protocols.evaluate(protocol, inner.test,
                                    recs)[PRIMARY_METRIC[protocol]]
  best = max(grid, key=lambda l2: (scores[l2], -l2))
  return best, {f'{l2:g}': round(s, 6) for l2, s in scores.items()}


def _score(protocol: str, split: protocols.Split,
           recs: Mapping[str, Sequence[str]]) -> Dict[str, Any]:
  metrics = protocols.evaluate(protocol, split.test, recs)
  return {
      'metrics': {k: round(v, 6) for k, v in metrics.items()},
      'seen_share_of_top_k': round(protocols.seen_share(
          recs, split.train, protocols.TOP_K[protocol]), 6),
  }


def score_baselines(protocol: str, split: protocols.Split,
                    movie_ids: Sequence[str], seed: int,
                    ease_l2: Optional[float]) -> Dict[str, Dict[str, Any]]:
  """Most-popular and EASE under `protocol`, with timings."""
  users = _test_users(split)
  results = {}

  start = time.monotonic()
  recs = _recommend(baselines.MostPopular(split.train, movie_ids), protocol,
                    users)
  results['most_popular'] = _score(protocol, split, recs)
  results['most_popular']['seconds'] = round(time.monotonic() - start, 2)
  _progress(protocol, 'most_popular', time.monotonic() - start,
            _format_metrics(results['most_popular']['metrics']))

  start = time.monotonic()
  if ease_l2 is None:
    ease_l2, sweep = select_ease_l2(protocol, split.train, movie_ids, seed)
    selection = {'method': 'validation split of the training ratings '
                           f'(protocol split, seed {seed + 1}), by '
                           f'{PRIMARY_METRIC[protocol]}',
                 'validation': sweep,
                 'at_grid_edge': ease_l2 in (EASE_L2_GRID[0],
                                             EASE_L2_GRID[-1]),
                 'seconds': round(time.monotonic() - start, 2)}
    _progress(protocol, 'ease lambda sweep', time.monotonic() - start,
              f'λ={ease_l2:g} of {len(EASE_L2_GRID)} candidates')
  else:
    selection = {'method': 'fixed by --ease-l2'}
  start = time.monotonic()
  recs = _recommend(baselines.Ease(split.train, movie_ids, ease_l2), protocol,
                    users)
  results['ease'] = _score(protocol, split, recs)
  results['ease']['params'] = {'l2': ease_l2, 'selection': selection}
  results['ease']['seconds'] = round(time.monotonic() - start, 2)
  _progress(protocol, f'ease (λ={ease_l2:g})', time.monotonic() - start,
            _format_metrics(results['ease']['metrics']))
  return results


# --- The pipeline's model ----------------------------------------------------


def latest_pushed_model(output_dir: str) -> str:
  """<output_dir>/serving/retrieval/<largest integer version>/."""
  root = os.path.join(output_dir, SERVING_SUBDIR)
  latest = common.latest_version(root)
  if latest is None:
    raise RuntimeError(
        f'no pushed model under {root}: the pipeline finished without '
        'pushing (was the model blessed?); see the run log under '
        f'{os.path.join(output_dir, "logs")}')
  return latest


def run_pipeline(protocol: str, train_dir: str, output_dir: str,
                 epochs: Optional[int], hparams: Sequence[str] = (),
                 eval_fraction: Optional[float] = None) -> str:
  """Trains through `runner_local.py` in a subprocess; returns the model dir.

  The output folder is emptied first, so a model pushed by an earlier run
  can never be mistaken for this run's.
  """
  shutil.rmtree(output_dir, ignore_errors=True)
  command = common.runner_command(train_dir, output_dir)
  if epochs is not None:
    command += ['--epochs', str(epochs)]
  for hparam in hparams:
    command += ['--hparam', hparam]
  if eval_fraction is not None:
    command += ['--eval-fraction', str(eval_fraction)]
  if not protocols.EXCLUDE_SEEN[protocol]:
    command.append(NO_EXCLUDE_SEEN_FLAG)
  print(f'[{protocol}] running: {" ".join(command)}', flush=True)
  common.run_runner(command)
  return latest_pushed_model(output_dir)


def served_recommendations(model_dir: str, user_ids: Sequence[str],
                           k: int) -> Dict[str, List[str]]:
  """Top k per user from the SavedModel's serving signature, as a client.

  Calls `signatures['serving_default'](user_id=tf.constant([...]))`, which
  returns `movie_ids` (tf.string [batch, K], best first), `movie_titles` and
  `scores`; K must be at least k. Blank ids (the model pads with '' when
  fewer than K movies are left after exclusion) are dropped.
  """
  # TFRS models need Keras 2, chosen before TensorFlow is first imported.
  os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  loaded = tf.saved_model.load(model_dir)  # Keeps the variables alive.
  serve = loaded.signatures[SERVING_SIGNATURE]
  result = {}
  for start in range(0, len(user_ids), SERVING_BATCH):
    batch = list(user_ids[start:start + SERVING_BATCH])
    movie_ids = serve(user_id=tf.constant(batch))['movie_ids'].numpy()
    if movie_ids.shape[1] < k:
      raise ValueError(f'{model_dir} serves {movie_ids.shape[1]} movies per '
                       f'user; the protocol needs {k}')
    for user_id, row in zip(batch, movie_ids):
      result[user_id] = [m.decode('utf-8') for m in row[:k] if m]
  return result


def score_pipeline_model(protocol: str, split: protocols.Split,
                         data_dir: str, work_dir: str,
                         epochs: Optional[int],
                         hparams: Sequence[str] = (),
                         eval_fraction: Optional[float] = None
                        ) -> Dict[str, Any]:
  """Writes the train folder, runs the pipeline, scores the served model."""
  start = time.monotonic()
  train_dir = protocols.write_train_folder(
      split.train, data_dir, os.path.join(work_dir, protocol, 'data'))
  model_dir = run_pipeline(protocol, train_dir,
                           os.path.join(work_dir, protocol, 'pipeline'),
                           epochs, hparams, eval_fraction)
  train_seconds = time.monotonic() - start
  _progress(protocol, 'pipeline', train_seconds, model_dir)

  start = time.monotonic()
  recs = served_recommendations(model_dir, _test_users(split),
                                protocols.TOP_K[protocol])
  result = _score(protocol, split, recs)
  scoring_seconds = time.monotonic() - start
  _progress(protocol, 'served model', scoring_seconds,
            _format_metrics(result['metrics']))
  result.update({
      'model_dir': model_dir,
      'epochs': epochs,
      'hparams': list(hparams),
      'eval_fraction': eval_fraction,
      'runner_flags': ([] if protocols.EXCLUDE_SEEN[protocol]
                       else [NO_EXCLUDE_SEEN_FLAG]),
      'seconds': {'pipeline': round(train_seconds, 1),
                  'serving': round(scoring_seconds, 1)},
      'meets_target': all(result['metrics'][m] >= v
                          for m, v in TARGETS[protocol].items()),
  })
  return result


# --- One protocol ------------------------------------------------------------


def run_protocol(protocol: str, dataset: protocols.Dataset, data_dir: str,
                 work_dir: str, seed: int, epochs: Optional[int],
                 skip_pipeline: bool,
                 ease_l2: Optional[float],
                 hparams: Sequence[str] = (),
                 eval_fraction: Optional[float] = None) -> Dict[str, Any]:
  """Every figure of one protocol, as a JSON-ready dict."""
  start = time.monotonic()
  split = protocols.split(protocol, dataset.ratings, seed)
  _progress(protocol, 'split', time.monotonic() - start,
            f'{len(split.train)} train / {len(split.test)} test ratings')
  results: Dict[str, Any] = score_baselines(protocol, split,
                                            dataset.movie_ids, seed, ease_l2)
  if skip_pipeline:
    results['retrieval_model'] = {'status': 'skipped',
                                  'reason': '--skip-pipeline'}
  else:
    try:
      results['retrieval_model'] = score_pipeline_model(
          protocol, split, data_dir, work_dir, epochs, hparams,
          eval_fraction)
      results['retrieval_model']['status'] = 'ok'
    except (RuntimeError, ValueError, OSError) as e:
      print(f'[{protocol}] retrieval model FAILED: {e}', file=sys.stderr,
            flush=True)
      results['retrieval_model'] = {'status': 'failed', 'error': str(e)}
  return {
      'description': DESCRIPTIONS[protocol],
      'split': {
          'seed': seed,
          'train_ratings': len(split.train),
          'test_ratings': len(split.test),
          'test_users': len({r.user_id for r in split.test}),
      },
      'k': protocols.TOP_K[protocol],
      'exclude_seen': protocols.EXCLUDE_SEEN[protocol],
      'primary_metric': PRIMARY_METRIC[protocol],
      'target': TARGETS[protocol],
      'anchors': [dataclasses.asdict(a) for a in ANCHORS[protocol]],
      'results': results,
  }


# --- Report ------------------------------------------------------------------


def _cell(value: Optional[float], approximate: bool = False) -> str:
  if value is None:
    return ''
  return f'≈ {value:.2f}' if approximate else f'{value:.4f}'


def render_markdown(results: Mapping[str, Any]) -> str:
  """The README's results section: one table per protocol."""
  machine = results['machine']
  packages = results['packages']
  lines = [
      f'Run of {results["date"]} on {machine["cpu_model"]} '
      f'({machine["cpu_cores"]} cores, {machine["memory_gib"]} GiB), '
      f'tensorflow {packages["tensorflow"]}, tfx {packages["tfx"]}, '
      f'seed {results["config"]["seed"]}. '
      f'Full results: `{results["config"]["output"]}`.',
  ]
  for protocol, section in results['protocols'].items():
    metrics = PROTOCOL_METRICS[protocol]
    k = section['k']
    header = (['System'] + [METRIC_LABELS[m] for m in metrics] +
              [f'Seen share of top {k}', 'Source'])
    lines += [
        '',
        f'**{protocol}**: {section["split"]["train_ratings"]} train / '
        f'{section["split"]["test_ratings"]} test ratings, top {k}, seen '
        f'movies {"removed" if section["exclude_seen"] else "kept"}.',
        '',
        '| ' + ' | '.join(header) + ' |',
        '|' + '---|' * len(header),
    ]
    for system, result in section['results'].items():
      label = SYSTEM_LABELS.get(system, system)
      if 'metrics' not in result:
        status = result.get('reason') or result.get('error', '')
        lines.append(f'| {label} | ' + ' | '.join(
            [f'not run ({status})'] + [''] * (len(metrics) - 1)) +
                     ' | | |')
        continue
      if system == 'ease':
        label += f' (λ={result["params"]["l2"]:g})'
      source = 'measured'
      if system == 'retrieval_model':
        source += ', target ' + ('met' if result['meets_target']
                                 else 'NOT met')
      lines.append(
          f'| {label} | ' +
          ' | '.join(_cell(result['metrics'].get(m)) for m in metrics) +
          f' | {result["seen_share_of_top_k"]:.3f} | {source} |')
    for anchor in section['anchors']:
      source = anchor['source']
      if source.startswith('http'):
        source = f'[published]({source})'
      lines.append(
          f'| *{anchor["system"]}* | ' + ' | '.join(
              _cell(anchor['metrics'].get(m), anchor['approximate'])
              for m in metrics) + f' | | anchor: {source} |')
    target = section['target']
    lines.append('| *Target for the retrieval model* | ' + ' | '.join(
        f'≥ {target[m]:.2f}' if m in target else '' for m in metrics) +
                 ' | | |')
  return '\n'.join(lines)


def update_readme(path: str, table: str) -> None:
  """Replaces the text between the result markers of `path`."""
  report.replace_section(path, RESULTS_BEGIN, RESULTS_END, table)


# --- Entry point -------------------------------------------------------------


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      description='Retrieval quality on MovieLens 100K under the TFRS and '
      'Microsoft Recommenders protocols, with baselines.',
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--data-dir', default='data/ml-100k',
                      help='raw ml-100k folder (u.data, u.item, u.user)')
  parser.add_argument('--output', default=DEFAULT_OUTPUT,
                      help='where the JSON results go')
  parser.add_argument('--protocols', default=','.join(protocols.PROTOCOLS),
                      help='comma-separated, from: '
                      + ', '.join(protocols.PROTOCOLS))
  parser.add_argument('--epochs', type=int, default=None,
                      help="passed to runner_local.py (default: the "
                      "runner's own)")
  parser.add_argument('--hparam', action='append', default=[],
                      metavar='NAME=VALUE',
                      help='passed to runner_local.py (repeatable): a '
                      'retrieval hyper-parameter override')
  parser.add_argument('--eval-fraction', type=float, default=None,
                      help="passed to runner_local.py: share of each user's "
                      'newest training ratings the pipeline holds out for '
                      "its own evaluation (default: the runner's own)")
  parser.add_argument('--skip-pipeline', action='store_true',
                      help='baselines only: do not train the pipeline model')
  parser.add_argument('--seed', type=int, default=protocols.DEFAULT_SEED,
                      help='seed of the splits')
  parser.add_argument('--ease-l2', type=float, default=None,
                      help='fix EASE λ instead of validating it on the '
                      'training ratings')
  parser.add_argument('--work-dir', default=DEFAULT_WORK_DIR,
                      help='train folders and pipeline outputs per protocol')
  parser.add_argument('--readme', default=DEFAULT_README,
                      help="Markdown file whose results section is "
                      "regenerated; '' to leave it alone")
  args = parser.parse_args(argv)
  args.protocols = [p.strip() for p in args.protocols.split(',') if p.strip()]
  unknown = sorted(set(args.protocols) - set(protocols.PROTOCOLS))
  if unknown or not args.protocols:
    parser.error(f'--protocols: unknown {unknown}; choose from '
                 f'{", ".join(protocols.PROTOCOLS)}')
  if args.epochs is not None and args.epochs < 1:
    parser.error('--epochs must be at least 1')
  return args


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  started = datetime.datetime.now(datetime.timezone.utc)
  start = time.monotonic()
  dataset = protocols.load_dataset(args.data_dir)
  print(f'Loaded {args.data_dir}: {len(dataset.ratings)} ratings, '
        f'{len(dataset.user_ids)} users, {len(dataset.movie_ids)} movies '
        f'({time.monotonic() - start:.1f}s)', flush=True)

  results = {
      'benchmark': 'retrieval_quality',
      'date': started.isoformat(timespec='seconds'),
      'machine': report.machine_info(),
      'packages': report.package_versions(PACKAGES),
      'git': common.git_revision(),
      'data': {'dir': os.path.abspath(args.data_dir),
               'ratings': len(dataset.ratings),
               'users': len(dataset.user_ids),
               'movies': len(dataset.movie_ids)},
      'config': {'protocols': args.protocols, 'seed': args.seed,
                 'epochs': args.epochs, 'hparams': args.hparam,
                 'eval_fraction': args.eval_fraction,
                 'skip_pipeline': args.skip_pipeline,
                 'ease_l2': args.ease_l2, 'output': args.output},
      'protocols': {},
  }
  for protocol in args.protocols:
    results['protocols'][protocol] = run_protocol(
        protocol, dataset, os.path.abspath(args.data_dir),
        os.path.abspath(args.work_dir), args.seed, args.epochs,
        args.skip_pipeline, args.ease_l2, args.hparam, args.eval_fraction)
  results['seconds'] = round(time.monotonic() - start, 1)

  common.write_json(args.output, results)
  print(f'Results: {args.output}', flush=True)
  if args.readme:
    update_readme(args.readme, render_markdown(results))
    print(f'Table: {args.readme}', flush=True)
  failed = [p for p, s in results['protocols'].items()
            if s['results']['retrieval_model']['status'] == 'failed']
  return 1 if failed else 0


if __name__ == '__main__':
  sys.exit(main())
