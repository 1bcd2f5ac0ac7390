"""Recommendations on a global time split: train on the ratings before a
cut-off time, test on what users rate after it.

    python -m benchmarks.time_split [--data-dir data/ml-100k]
        [--cutoffs 0.7:0.9,0.8:1.0] [--skip-pipeline]
        [--hparam NAME=VALUE] [--ranking-hparam NAME=VALUE] [--no-trend]

The other two protocols split at random, so a model is tested on ratings of
the weeks it trained on. A deployed recommender trains on everything up to
today and is judged on what users watch next; this protocol measures that:

  - a cut-off `start:end` takes the ratings before the `start` quantile of
    rating times as train and those from there to the `end` quantile as
    test (both cut-offs below hold out 20% of the ratings);
  - test users are those with at least one train rating; their train movies
    are removed from every ranking;
  - nDCG@10, Precision@10, Recall@10 (the MS Recommenders definitions,
    `protocols.ranking_metrics`) and Recall@100, mean over test users.

Baselines in the same run: most-popular over all of train; most-popular
over the last 1, 2 and 4 weeks before the cut-off (ties broken by all-time
popularity): "what is popular right now"; EASE (λ 500). Unless
`--skip-pipeline`, the pipeline runs on each cut-off's train ratings
(`runner_local.py`) twice: with its defaults ("ours") and with both
models' recent popularity, `trend_windows=7,28` ("ours, trend"; not with
`--no-trend`). Each run's pushed retrieval servable (top 100) and two-stage
recommender (top 10) are scored through their serving signatures. The
pipeline's own eval split holds out each user's newest 20% inside the
train ratings: a per-user time split, never past the cut-off.

Results: `benchmarks/results/time_split.json` and the table in
`benchmarks/README.md`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

import numpy as np

from benchmarks import baselines
from benchmarks import common
from benchmarks import protocols
from benchmarks import report
from benchmarks import retrieval_quality

DEFAULT_DATA_DIR = 'data/ml-100k'
DEFAULT_OUTPUT = 'benchmarks/results/time_split.json'
DEFAULT_WORK_DIR = 'benchmarks/work/time_split'
DEFAULT_CUTOFFS = ((0.7, 0.9), (0.8, 1.0))
WINDOWS_WEEKS = (1, 2, 4)
K = 10
K_RECALL = 100
EASE_L2 = 500.0
RESULTS_BEGIN = '<!-- results:time_split -->'
RESULTS_END = '<!-- /results:time_split -->'
_WEEK = 7 * 24 * 3600
# Both models' recent-popularity options (docs/models.md).
TREND_ARGS = ('--hparam', 'trend_windows=7,28', '--ranking-hparam',
              'trend_windows=7,28')


def quantile_time(ratings: Sequence[protocols.Rating], q: float) -> int:
  """The rating time below which a share `q` of the ratings fall (q = 1:
  one second past the last rating)."""
  times = np.sort(np.array([r.timestamp for r in ratings], dtype=np.int64))
  if q >= 1.0:
    return int(times[-1]) + 1
  return int(times[int(round(q * len(times)))])


def time_split(ratings: Sequence[protocols.Rating], start: int, end: int
              ) -> protocols.Split:
  """Train: ratings before `start`; test: ratings in [start, end) of users
  with a train rating, of movies they did not rate in train."""
  train = tuple(r for r in ratings if r.timestamp < start)
  seen = protocols.movies_by_user(train)
  test = tuple(r for r in ratings
               if start <= r.timestamp < end and r.user_id in seen
               and r.movie_id not in seen[r.user_id])
  return protocols.Split(train=train, test=test)


def rank(scores: np.ndarray, movie_ids: Sequence[str],
         users: Sequence[str], seen: Mapping[str, Set[str]],
         k: int) -> Dict[str, List[str]]:
  """The same scores for every user, their seen movies removed: top k."""
  order = np.argsort(-scores, kind='stable')
  ranked = [movie_ids[i] for i in order]
  return {u: [m for m in ranked if m not in seen.get(u, ())][:k]
          for u in users}


def popularity_scores(train: Sequence[protocols.Rating],
                      movie_ids: Sequence[str], since: Optional[int] = None
                     ) -> np.ndarray:
  """Ratings per movie (of those at or after `since`), ties broken by the
  all-time count, then by catalogue order."""
  index = {m: i for i, m in enumerate(movie_ids)}
  recent = np.zeros(len(movie_ids))
  overall = np.zeros(len(movie_ids))
  for r in train:
    overall[index[r.movie_id]] += 1
    if since is None or r.timestamp >= since:
      recent[index[r.movie_id]] += 1
  return recent * (overall.max() + 1) + overall


def metrics(test: Sequence[protocols.Rating],
            recommendations: Mapping[str, Sequence[str]]) -> Dict[str, float]:
  """nDCG/Precision/Recall@10 and, when the lists are long enough,
  Recall@100."""
  result = protocols.ranking_metrics(test, recommendations, K)
  if all(len(v) >= K_RECALL for v in recommendations.values()):
    result[f'recall@{K_RECALL}'] = protocols.ranking_metrics(
        test, recommendations, K_RECALL)[f'recall@{K_RECALL}']
  return {k: round(v, 6) for k, v in result.items()}


def score_baselines(dataset: protocols.Dataset, split: protocols.Split,
                    start: int) -> Dict[str, Dict[str, float]]:
  users = sorted({r.user_id for r in split.test})
  seen = protocols.movies_by_user(split.train)
  movies = dataset.movie_ids
  results = {'most popular': metrics(split.test, rank(
      popularity_scores(split.train, movies), movies, users, seen,
      K_RECALL))}
  for weeks in WINDOWS_WEEKS:
    results[f'most popular, last {weeks} week(s)'] = metrics(
        split.test, rank(popularity_scores(split.train, movies,
                                           start - weeks * _WEEK),
                         movies, users, seen, K_RECALL))
  ease = baselines.Ease(split.train, movies, l2=EASE_L2)
  results['EASE'] = metrics(split.test, dict(zip(
      users, ease.recommend(users, K_RECALL, exclude_seen=True))))
  return results


def score_pipeline(split: protocols.Split, data_dir: str, work_dir: str,
                   runner_args: Sequence[str], name: str = 'ours'
                  ) -> Dict[str, Dict[str, Any]]:
  """Runs the pipeline on the train ratings; scores both servables, as
  `{name}: retrieval` and `{name}: recommender`."""
  train_dir = protocols.write_train_folder(
      split.train, data_dir, os.path.join(work_dir, 'train'))
  output_dir = os.path.join(work_dir, 'out')
  common.run_runner(common.runner_command(train_dir, output_dir, runner_args))
  users = sorted({r.user_id for r in split.test})
  results = {}
  for model, k in (('retrieval', K_RECALL), ('recommender', K)):
    model_dir = common.latest_version(os.path.join(output_dir, 'serving',
                                                   model))
    if model_dir is None:
      raise RuntimeError(f'no pushed {model} model under {output_dir}')
    recs = retrieval_quality.served_recommendations(model_dir, users, k)
    results[f'{name}: {model}'] = dict(metrics(split.test, recs),
                                     model_dir=model_dir)
  return results


def configurations(runner_args: Sequence[str], with_trend: bool = True
                  ) -> Dict[str, List[str]]:
  """The pipeline's runs at each cut-off: its defaults (plus `runner_args`)
  and, with `with_trend`, the same with both models' recent popularity."""
  runs = {'ours': list(runner_args)}
  if with_trend:
    runs['ours, trend'] = list(runner_args) + list(TREND_ARGS)
  return runs


def run(data_dir: str, cutoffs: Sequence[Tuple[float, float]],
        work_dir: str, skip_pipeline: bool,
        runs: Optional[Mapping[str, Sequence[str]]] = None
       ) -> Dict[str, Any]:
  dataset = protocols.load_dataset(data_dir)
  out: Dict[str, Any] = {
      'benchmark': 'time_split', 'data': os.path.basename(data_dir.rstrip('/')),
      'updated': report.now_utc(), 'machine': report.machine_info(),
      'code': common.git_revision(), 'cutoffs': []}
  for start_q, end_q in cutoffs:
    start = quantile_time(dataset.ratings, start_q)
    end = quantile_time(dataset.ratings, end_q)
    split = time_split(dataset.ratings, start, end)
    name = f'{start_q:g}:{end_q:g}'
    print(f'[{name}] train {len(split.train):,} ratings, test '
          f'{len(split.test):,} of {len({r.user_id for r in split.test})} '
          'users', flush=True)
    systems = score_baselines(dataset, split, start)
    if not skip_pipeline:
      for system, args in (runs or configurations(())).items():
        systems.update(score_pipeline(
            split, data_dir,
            os.path.join(work_dir, name, system.replace(', ', '-')), args,
            system))
    for system, figures in systems.items():
      print(f'[{name}] {system:34} ' + '  '.join(
          f'{k} {v:.4f}' for k, v in figures.items()
          if isinstance(v, float)), flush=True)
    out['cutoffs'].append({
        'cutoff': name, 'start_time': start, 'end_time': end,
        'train_ratings': len(split.train), 'test_ratings': len(split.test),
        'test_users': len({r.user_id for r in split.test}),
        'systems': systems})
  return out


def render_markdown(results: Mapping[str, Any]) -> str:
  code = results['code']
  lines = [f"Measured {results['updated']} on {results['data']}, code "
           f"{(code.get('commit') or '?')[:7]}"
           f"{' + uncommitted changes' if code.get('dirty') else ''}. "
           'Full results: `benchmarks/results/time_split.json`.', '']
  for cutoff in results['cutoffs']:
    lines += [f"**Cut-off {cutoff['cutoff']}** (quantiles of rating time): "
              f"train {cutoff['train_ratings']:,} ratings, test "
              f"{cutoff['test_ratings']:,} ratings of "
              f"{cutoff['test_users']} users.", '',
              '| System | nDCG@10 | Precision@10 | Recall@10 | Recall@100 |',
              '|---|---:|---:|---:|---:|']
    for system, figures in cutoff['systems'].items():
      cells = [figures.get(k) for k in
               ('ndcg@10', 'precision@10', 'recall@10', 'recall@100')]
      lines.append(f'| {system} | ' + ' | '.join(
          '–' if v is None else f'{v:.4f}' for v in cells) + ' |')
    lines.append('')
  return '\n'.join(lines).rstrip()


def parse_cutoffs(text: str) -> List[Tuple[float, float]]:
  cutoffs = []
  for part in text.split(','):
    try:
      start, end = (float(v) for v in part.split(':'))
    except ValueError:
      raise argparse.ArgumentTypeError(
          f'cut-off {part!r}: expected START:END quantiles, e.g. 0.8:1.0'
          ) from None
    if not 0 < start < end <= 1:
      raise argparse.ArgumentTypeError(
          f'cut-off {part!r}: expected 0 < START < END <= 1')
    cutoffs.append((start, end))
  return cutoffs


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data-dir', default=DEFAULT_DATA_DIR)
  parser.add_argument('--cutoffs', type=parse_cutoffs,
                      default=list(DEFAULT_CUTOFFS),
                      help='START:END quantiles of rating time, comma '
                      'separated (default 0.7:0.9,0.8:1.0)')
  parser.add_argument('--work-dir', default=DEFAULT_WORK_DIR)
  parser.add_argument('--output', default=DEFAULT_OUTPUT)
  parser.add_argument('--skip-pipeline', action='store_true',
                      help='baselines only (seconds)')
  parser.add_argument('--no-readme', action='store_true')
  parser.add_argument('--hparam', action='append', default=[],
                      metavar='NAME=VALUE',
                      help="the runner's --hparam (retrieval), repeatable")
  parser.add_argument('--ranking-hparam', action='append', default=[],
                      metavar='NAME=VALUE',
                      help="the runner's --ranking-hparam, repeatable")
  parser.add_argument('--no-trend', action='store_true',
                      help='skip the second run of the pipeline, with both '
                      "models' trend_windows=7,28")
  args = parser.parse_args(argv)
  runner_args = ([a for h in args.hparam for a in ('--hparam', h)] +
                 [a for h in args.ranking_hparam
                  for a in ('--ranking-hparam', h)])
  results = run(args.data_dir, args.cutoffs, args.work_dir,
                args.skip_pipeline,
                configurations(runner_args, with_trend=not args.no_trend))
  common.write_json(args.output, results)
  if not args.no_readme:
    report.replace_section(
        os.path.join(common.REPO_ROOT, 'benchmarks', 'README.md'),
        RESULTS_BEGIN, RESULTS_END, render_markdown(results),
        heading='## Global time split (`time_split.py`)')
  print(f'results written to {args.output}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
