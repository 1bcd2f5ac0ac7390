"""Ranking and two-stage quality on MovieLens 100K, DCN against a plain MLP.

    python -m benchmarks.ranking_quality --data-dir data/ml-100k \
        --output benchmarks/results/ranking_quality.json

Same protocols, splits and work folder as `benchmarks.retrieval_quality`
(see benchmarks/README.md). For each protocol the pipeline runs on the
protocol's training split (reusing the run that retrieval_quality left in
`--work-dir/<protocol>/pipeline` when its servables are there) and the
pushed servables are queried through their `serving_default` signatures, as
a client would:

  tfrs   rating prediction: RMSE of the ranking servable's `rating` on the
         test ratings; anchors: the global-mean predictor (measured), the
         TFRS tutorials' models (published).
  msrec  top 10 of the two-stage recommender (nDCG@10, Precision@10,
         Recall@10) beside retrieval alone from the same run, most-popular
         and EASE (measured in this run).

The ranking network is then switched to the other architecture (DCN-v2,
`--ranking-hparam architecture=dcn`) and the pipeline rerun in the same
folder: only the ranking Trainer and what follows rerun (cache), and the
same figures are taken again. That run passes `--max-rmse-increase` large
enough that its model is pushed even when worse than the default, so that
it can be scored.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import sys
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

from benchmarks import baselines
from benchmarks import common
from benchmarks import protocols
from benchmarks import report
from benchmarks import retrieval_quality as rq
from benchmarks.protocols import MSREC, NDCG, PRECISION, RECALL, TFRS

DEFAULT_OUTPUT = os.path.join('benchmarks', 'results',
                              'ranking_quality.json')
RESULTS_BEGIN = '<!-- results:ranking_quality -->'
RESULTS_END = '<!-- /results:ranking_quality -->'
SECTION_TITLE = '## Ranking and two-stage quality (`ranking_quality.py`)'
ARCHITECTURES = ('mlp', 'dcn')  # The first is the pipeline's default.
RMSE = 'rmse'
TARGETS = {TFRS: {RMSE: 0.92}, MSREC: {NDCG: 0.48}}
ANCHORS = {
    TFRS: [('TFRS tutorial basic ranking model', 1.10,
            'https://www.tensorflow.org/recommenders/examples/basic_ranking'),
           ('TFRS tutorial DCN', 0.933,
            'https://www.tensorflow.org/recommenders/examples/dcn')],
    MSREC: [('EASE (reference value)', 0.48, 'benchmark plan'),
            ('BiVAE (Recommenders README table)', 0.4751, rq.MSREC_README),
            ('Most popular (reference value)', 0.25, 'benchmark plan')],
}


def latest_version(output_dir: str, model: str) -> str:
  """<output_dir>/serving/<model>/<largest integer version>/."""
  root = os.path.join(output_dir, 'serving', model)
  latest = common.latest_version(root)
  if latest is None:
    raise RuntimeError(f'no pushed {model} model under {root}')
  return latest


def rmse(pairs: Sequence[protocols.Rating],
         predicted: Sequence[float]) -> float:
  """Root mean squared error of predicted against the pairs' ratings."""
  if not pairs:
    raise ValueError('no ratings to score')
  return math.sqrt(sum((r.rating - p) ** 2 for r, p in zip(pairs, predicted))
                   / len(pairs))


def served_ratings(model_dir: str, pairs: Sequence[protocols.Rating],
                   batch: int = 4096) -> List[float]:
  """The ranking servable's predicted rating of each (user, movie) pair."""
  os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  loaded = tf.saved_model.load(model_dir)
  serve = loaded.signatures['serving_default']
  predicted: List[float] = []
  for i in range(0, len(pairs), batch):
    chunk = pairs[i:i + batch]
    out = serve(user_id=tf.constant([r.user_id for r in chunk]),
                movie_id=tf.constant([r.movie_id for r in chunk]))
    predicted.extend(out['rating'].numpy().tolist())
  return predicted


def run_in_place(output_dir: str, train_dir: str, protocol: str,
                 extra: Sequence[str]) -> None:
  """Reruns the pipeline in an existing output folder (cache kept)."""
  command = common.runner_command(train_dir, output_dir, extra)
  if not protocols.EXCLUDE_SEEN[protocol]:
    command.append(rq.NO_EXCLUDE_SEEN_FLAG)
  print(f'[{protocol}] running: {" ".join(command)}', flush=True)
  common.run_runner(command)


def score(protocol: str, split: protocols.Split, output_dir: str
         ) -> Dict[str, Any]:
  """The protocol's figures of the servables pushed last in output_dir."""
  if protocol == TFRS:
    model_dir = latest_version(output_dir, 'ranking')
    return {'model_dir': model_dir, 'metrics': {
        RMSE: round(rmse(split.test, served_ratings(model_dir, split.test)),
                    6)}}
  users = rq._test_users(split)  # pylint: disable=protected-access
  results = {}
  for model in ('recommender', 'retrieval'):
    model_dir = latest_version(output_dir, model)
    recs = rq.served_recommendations(model_dir, users, protocols.MSREC_K)
    results[model] = {'model_dir': model_dir, 'metrics': {
        k: round(v, 6) for k, v in protocols.evaluate(
            protocol, split.test, recs).items()}}
  return results


def run_protocol(protocol: str, dataset: protocols.Dataset, data_dir: str,
                 work_dir: str, seed: int, epochs: Optional[int]
                ) -> Dict[str, Any]:
  split = protocols.split(protocol, dataset.ratings, seed)
  output_dir = os.path.join(work_dir, protocol, 'pipeline')
  train_dir = os.path.join(work_dir, protocol, 'data')
  section: Dict[str, Any] = {
      'split': {'seed': seed, 'train_ratings': len(split.train),
                'test_ratings': len(split.test)},
      'target': TARGETS[protocol],
      'anchors': [{'system': s, 'value': v, 'source': src}
                  for s, v, src in ANCHORS[protocol]],
      'results': {}}
  if protocol == TFRS:
    mean = sum(r.rating for r in split.train) / len(split.train)
    section['results']['global_mean'] = {'metrics': {
        RMSE: round(rmse(split.test, [mean] * len(split.test)), 6)}}
  else:
    users = rq._test_users(split)  # pylint: disable=protected-access
    for name, model in (('most_popular', baselines.MostPopular(
        split.train, dataset.movie_ids)), ('ease', baselines.Ease(
            split.train, dataset.movie_ids, EASE_L2))):
      recs = rq._recommend(model, protocol, users)  # pylint: disable=protected-access
      section['results'][name] = {'metrics': {
          k: round(v, 6) for k, v in protocols.evaluate(
              protocol, split.test, recs).items()}}
  try:
    latest_version(output_dir, 'ranking')
    latest_version(output_dir, 'recommender')
    print(f'[{protocol}] reusing the pipeline run in {output_dir}',
          flush=True)
  except RuntimeError:
    protocols.write_train_folder(split.train, data_dir, train_dir)
    rq.run_pipeline(protocol, train_dir, output_dir, epochs)
  for architecture in ARCHITECTURES:
    start = time.monotonic()
    if architecture != ARCHITECTURES[0]:
      extra = ['--ranking-hparam', f'architecture={architecture}',
               '--max-rmse-increase', '100']
      if epochs is not None:
        extra += ['--epochs', str(epochs)]
      run_in_place(output_dir, train_dir, protocol, extra)
    result = score(protocol, split, output_dir)
    result['seconds'] = round(time.monotonic() - start, 1)
    section['results'][architecture] = result
    print(f'[{protocol}] {architecture}: {json.dumps(result)}', flush=True)
  return section


# EASE's λ on msrec as retrieval_quality validates it (benchmarks/README.md).
EASE_L2 = 750.0


def render_markdown(results: Mapping[str, Any]) -> str:
  machine = results['machine']
  lines = [f'Run of {results["date"]} on {machine["cpu_model"]} '
           f'({machine["cpu_cores"]} cores), tensorflow '
           f'{results["packages"].get("tensorflow")}. Full results: '
           f'`{results["output"]}`.', '']
  tfrs = results['protocols'].get(TFRS)
  if tfrs:
    lines += ['**tfrs** (rating prediction, random 80/20): RMSE of the '
              'ranking servable on the test ratings.', '',
              '| System | RMSE | Source |', '|---|---|---|']
    labels = {'global_mean': 'Global mean rating',
              'dcn': 'Ranking model, DCN (pipeline, served)',
              'mlp': 'Ranking model, MLP (pipeline, served)'}
    for key, label in labels.items():
      if key in tfrs['results']:
        lines.append(f'| {label} | '
                     f'{tfrs["results"][key]["metrics"][RMSE]:.4f} | '
                     'measured |')
    for anchor in tfrs['anchors']:
      lines.append(f'| *{anchor["system"]}* | {anchor["value"]} | '
                   f'[published]({anchor["source"]}) |')
    lines += ['| *Target* | ≤ 0.92 | |', '']
  msrec = results['protocols'].get(MSREC)
  if msrec:
    lines += ['**msrec** (top 10, per-user 75/25, seen removed): the '
              'two-stage recommender against retrieval alone.', '',
              '| System | nDCG@10 | Precision@10 | Recall@10 | Source |',
              '|---|---|---|---|---|']

    def row(label, metrics, source='measured'):
      return (f'| {label} | {metrics[NDCG]:.4f} | {metrics[PRECISION]:.4f} '
              f'| {metrics[RECALL]:.4f} | {source} |')
    results = msrec['results']
    for key, label in (('most_popular', 'Most popular'),
                       ('ease', f'EASE (λ={EASE_L2:g})')):
      lines.append(row(label, results[key]['metrics']))
    for arch in ARCHITECTURES:
      if arch in results:
        lines.append(row(f'Retrieval alone ({arch} run)',
                         results[arch]['retrieval']['metrics']))
        lines.append(row(f'Two-stage recommender, {arch.upper()} ranking',
                         results[arch]['recommender']['metrics']))
    lines += ['| *Target (two-stage)* | ≥ 0.48 | | | |']
  return '\n'.join(lines)


def update_readme(path: str, table: str) -> None:
  """Replaces this benchmark's section of `path` (appended when missing)."""
  report.replace_section(path, RESULTS_BEGIN, RESULTS_END, table,
                         heading=SECTION_TITLE)


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--data-dir', default='data/ml-100k')
  parser.add_argument('--output', default=DEFAULT_OUTPUT)
  parser.add_argument('--protocols', default=','.join(protocols.PROTOCOLS))
  parser.add_argument('--epochs', type=int, default=None)
  parser.add_argument('--seed', type=int, default=protocols.DEFAULT_SEED)
  parser.add_argument('--work-dir', default=rq.DEFAULT_WORK_DIR)
  parser.add_argument('--readme', default=rq.DEFAULT_README)
  args = parser.parse_args(argv)
  dataset = protocols.load_dataset(args.data_dir)
  results = {'benchmark': 'ranking_quality',
             'date': datetime.datetime.now(datetime.timezone.utc).isoformat(
                 timespec='seconds'),
             'machine': report.machine_info(),
             'packages': report.package_versions(rq.PACKAGES),
             'git': common.git_revision(), 'output': args.output,
             'protocols': {}}
  for protocol in [p for p in args.protocols.split(',') if p]:
    results['protocols'][protocol] = run_protocol(
        protocol, dataset, os.path.abspath(args.data_dir),
        os.path.abspath(args.work_dir), args.seed, args.epochs)
  common.write_json(args.output, results)
  if args.readme:
    update_readme(args.readme, render_markdown(results))
  print(f'Results: {args.output}', flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
