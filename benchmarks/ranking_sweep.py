"""Hyper-parameter sweep of the ranking model: test RMSE and two-stage top 10.

    python -m benchmarks.ranking_sweep --protocol msrec \
        --trial relevance_weight=20 --trial relevance_weight=4,epochs=40
    python -m benchmarks.ranking_sweep --protocol tfrs --trial ''

Like `benchmarks.retrieval_sweep`, it reuses the ExampleGen and Transform
outputs of a pipeline run that `benchmarks.retrieval_quality` (or
`ranking_quality`) made on the protocol's training split, so a trial costs
only training. For each `--trial` (comma-separated NAME=VALUE overrides of
`modules.hparams.RankingHParams`) it trains with
`modules.ranking_trainer.train` (then `refit` on train + eval, as the
pipeline's RankingRefit does, unless `--no-refit`), exports the ranking
servable as the Trainer does, and scores it through its signatures:

  tfrs   RMSE of `serving_default`'s rating on the test ratings;
  msrec  the pushed retrieval servable's top 100 per test user (from the
         same pipeline run), re-ordered by `score_pairs`' relevance +
         w x the retrieval score, as `modules.recommender_export` does, for
         each w of `--retrieval-weights`; nDCG@10, Precision@10 and
         Recall@10 of each, and of the relevance head alone (w = 0).

The defaults in `modules/hparams.py` (`relevance_weight`) and
`modules/recommender_export.py` (`DEFAULT_RETRIEVAL_WEIGHT`) were chosen
this way (benchmarks/README.md).
"""

from __future__ import annotations

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import argparse  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any, Dict, List, Mapping, Optional, Sequence  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks import protocols  # noqa: E402
from benchmarks import ranking_quality  # noqa: E402
from benchmarks import retrieval_quality  # noqa: E402
from benchmarks import retrieval_sweep  # noqa: E402

DEFAULT_OUTPUT = os.path.join('benchmarks', 'results', 'ranking_sweep.json')
DEFAULT_WEIGHTS = '0,2,5,10,20'


def reorder(movie_ids: np.ndarray, retrieval_scores: np.ndarray,
            relevance: np.ndarray, weight: float, k: int
           ) -> List[List[str]]:
  """Each row's best k candidates by relevance + weight x retrieval score,
  blank ids (no candidate) dropped; ties keep the retrieval order."""
  valid = movie_ids != b''
  scores = np.where(valid, relevance + weight * np.where(
      valid, retrieval_scores, 0.0), -np.inf)
  order = np.argsort(-scores, axis=1, kind='stable')[:, :k]
  return [[m.decode('utf-8') for m in row[top] if m]
          for row, top in zip(movie_ids, order)]


def run_trial(overrides: Mapping[str, str], pipeline_output: str,
              protocol: str, split: protocols.Split,
              weights: Sequence[float], refit: bool = True) -> Dict[str, Any]:
  """Trains one configuration (refit on train + eval after early stopping,
  as the pipeline serves it, unless `refit` is False) and scores it under
  the protocol."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  from modules import ranking_trainer, refit_protocol  # pylint: disable=g-import-not-at-top
  from modules.hparams import RankingHParams  # pylint: disable=g-import-not-at-top

  hparams = RankingHParams.from_config(overrides)
  transformed = retrieval_sweep.latest_artifact_dir(
      pipeline_output, 'Transform', 'transformed_examples')
  tft_output = tft.TFTransformOutput(retrieval_sweep.latest_artifact_dir(
      pipeline_output, 'Transform', 'transform_graph'))
  train_files = sorted(glob.glob(os.path.join(transformed, 'Split-train',
                                              '*.gz')))
  eval_files = sorted(glob.glob(os.path.join(transformed, 'Split-eval',
                                             '*.gz')))
  start = time.monotonic()
  model, metrics, movies, users = ranking_trainer.train(
      train_files, eval_files, tft_output, hparams)
  refit_epochs = 0
  if refit:  # As the pipeline serves it (RankingRefit).
    refit_epochs = refit_protocol.refit_epochs(
        metrics['best_epoch'], hparams.refit_extra_epochs)
    model, movies, users = ranking_trainer.refit(
        train_files, eval_files, tft_output, hparams, refit_epochs)
  result: Dict[str, Any] = {
      'train_seconds': round(time.monotonic() - start, 1),
      'best_epoch': metrics['best_epoch'],
      'epochs_run': metrics['epochs_run'],
      'refit_epochs': refit_epochs,
      'val_rmse': round(metrics['val_rmse'], 6)}
  with tempfile.TemporaryDirectory() as export_dir:
    ranking_trainer.save(ranking_trainer.RankingExport(
        model, tft_output, users, movies), export_dir)
    if protocol == protocols.TFRS:
      result['metrics'] = {ranking_quality.RMSE: round(ranking_quality.rmse(
          split.test, ranking_quality.served_ratings(export_dir,
                                                     split.test)), 6)}
      return result
    ranking = tf.saved_model.load(export_dir)
    retrieval = tf.saved_model.load(ranking_quality.latest_version(
        pipeline_output, 'retrieval'))
    user_ids = retrieval_quality._test_users(split)  # pylint: disable=protected-access
    candidates = retrieval.signatures['serving_default'](
        user_id=tf.constant(user_ids))
    movie_ids = candidates['movie_ids'].numpy()
    n = movie_ids.shape[1]
    pairs = ranking.signatures['score_pairs'](
        user_id=tf.constant(np.repeat(user_ids, n)),
        movie_id=tf.constant(movie_ids.reshape(-1)))
    relevance = pairs['relevance'].numpy().reshape(movie_ids.shape)
    k = protocols.TOP_K[protocol]
    result['metrics'] = {}
    for weight in weights:
      recs = dict(zip(user_ids, reorder(
          movie_ids, candidates['scores'].numpy(), relevance, weight, k)))
      result['metrics'][f'retrieval_weight={weight:g}'] = {
          m: round(v, 6) for m, v in protocols.evaluate(
              protocol, split.test, recs).items()}
  return result


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  parser = retrieval_sweep.sweep_parser(__doc__.split('\n\n')[0],
                                        DEFAULT_OUTPUT)
  parser.add_argument('--retrieval-weights', default=DEFAULT_WEIGHTS,
                      help='msrec: weights of the retrieval score to score')
  args = retrieval_sweep.parse_sweep_args(parser, argv)
  try:
    args.weights = [float(w) for w in args.retrieval_weights.split(',')]
  except ValueError as e:
    parser.error(str(e))
  return args


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  dataset = protocols.load_ml100k(args.data_dir)
  split = protocols.split(args.protocol, dataset.ratings, args.seed)
  results = []
  for overrides in args.trials:
    trial = run_trial(overrides, args.pipeline_output, args.protocol, split,
                      args.weights, refit=not args.no_refit)
    trial['overrides'] = overrides
    results.append(trial)
    print(f'[sweep] {overrides or "defaults"}: '
          f'{json.dumps(trial["metrics"])} | best epoch '
          f'{trial["best_epoch"]}/{trial["epochs_run"]}, '
          f'{trial["train_seconds"]}s', flush=True)
  retrieval_sweep.write_report('ranking_sweep', args, results)
  print(f'Results: {args.output}', flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
