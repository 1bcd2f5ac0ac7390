"""Runs the pipeline on this machine: LocalDagRunner, SQLite ML Metadata,
Beam DirectRunner.

  python runner_local.py [--data-dir DIR] [--output-dir DIR] [...]

Outputs under --output-dir: pipeline/ (artifacts), metadata/ (ML Metadata)
and logs/ (full logs of each run). Unchanged components are reused from the
cache on a rerun.
"""

import os

# TFRS and tensorflow-transform need Keras 2; must precede any TF import.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import argparse  # noqa: E402
import datetime  # noqa: E402
import importlib.util  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from typing import List, Optional  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
  from pipeline import configs, flags  # Light: no TensorFlow.
  parser = argparse.ArgumentParser(
      description='Run the MovieLens TFX pipeline locally.',
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument(
      '--data-dir', default=configs.DEFAULT_DATA_DIR,
      help='folder with a raw MovieLens release: ml-100k (u.data, u.item, '
      'u.user), ml-1m (ratings.dat, movies.dat, users.dat) or ml-20m/ml-25m '
      '(ratings.csv, movies.csv); `make data` downloads ml-100k')
  parser.add_argument(
      '--output-dir', default=configs.DEFAULT_OUTPUT_DIR,
      help='where the pipeline root, ML Metadata and logs go')
  parser.add_argument(
      '--eval-fraction', type=float, default=configs.EVAL_FRACTION,
      help="share of each user's newest ratings held out for evaluation")
  parser.add_argument(
      '--max-eval-ratings', type=int, default=configs.MAX_EVAL_RATINGS,
      help='about how many ratings the eval split holds at most: beyond '
      'it, only a sample of users is held out (0: every user)')
  parser.add_argument(
      '--beam-workers', type=int, default=1,
      help='Beam DirectRunner workers; >1 runs them as processes '
      '(worth it from about a million ratings)')
  parser.add_argument(
      '--epochs', type=int, default=None,
      help='maximum training epochs of the retrieval model (early stopping '
      'may end sooner); default from modules/hparams.py')
  parser.add_argument(
      '--hparam', action='append', default=[], metavar='NAME=VALUE',
      help='override a retrieval hyper-parameter of modules/hparams.py '
      '(repeatable), e.g. --hparam temperature=0.2')
  parser.add_argument(
      '--top-k', type=int, default=configs.RETRIEVAL_TOP_K,
      help='movies the retrieval servable returns per user')
  parser.add_argument(
      '--no-exclude-seen', action='store_true',
      help="export the servable without excluding the user's rated movies")
  parser.add_argument(
      '--retrieval-index', choices=configs.RETRIEVAL_INDEXES,
      default=configs.RETRIEVAL_INDEX,
      help="the retrieval servable's index: exact brute force, or "
      'approximate ScaNN for large catalogues (needs the scann package, '
      'and a TF Serving build with its ops to serve it)')
  parser.add_argument(
      '--min-lift-over-popularity', type=float,
      default=configs.MIN_LIFT_OVER_POPULARITY,
      help='bless only if recall@100 beats most-popular by this relative '
      'margin')
  parser.add_argument(
      '--max-regression', type=float, default=configs.MAX_REGRESSION,
      help='bless only if recall@100 is at most this much below the latest '
      'blessed model')
  parser.add_argument(
      '--ranking-epochs', type=int, default=None,
      help='maximum training epochs of the ranking model; default from '
      'modules/hparams.py')
  parser.add_argument(
      '--ranking-hparam', action='append', default=[], metavar='NAME=VALUE',
      help='override a ranking hyper-parameter of modules/hparams.py '
      '(repeatable), e.g. --ranking-hparam architecture=mlp')
  parser.add_argument(
      '--max-rmse', type=float, default=configs.MAX_RMSE,
      help='bless the ranking model only if its eval RMSE is at most this')
  parser.add_argument(
      '--max-rmse-increase', type=float, default=configs.MAX_RMSE_INCREASE,
      help='... and at most this much above the latest blessed ranking '
      "model's")
  parser.add_argument(
      '--recommender-top-k', type=int, default=configs.RECOMMENDER_TOP_K,
      help='movies the two-stage recommender returns per user')
  parser.add_argument(
      '--no-ranking', action='store_true',
      help='retrieval only: leave out the ranking model and the recommender')
  parser.add_argument(
      '--no-refit', action='store_true',
      help='serve the early-stopped models instead of refitting them on '
      'train + eval (README, "What is evaluated and what is served")')
  parser.add_argument('--no-cache', action='store_true',
                      help='rerun every component even when unchanged')
  parser.add_argument('--verbose', action='store_true',
                      help='show TFX and Beam logs on the console')
  args = parser.parse_args(argv)
  if not 0.0 < args.eval_fraction < 1.0:
    parser.error('--eval-fraction must be between 0 and 1')
  if args.max_eval_ratings < 0:
    parser.error('--max-eval-ratings must be >= 0 (0: no bound)')
  if args.beam_workers < 1:
    parser.error('--beam-workers must be at least 1')
  if args.epochs is not None and args.epochs < 1:
    parser.error('--epochs must be at least 1')
  if args.top_k < 1:
    parser.error('--top-k must be at least 1')
  if args.ranking_epochs is not None and args.ranking_epochs < 1:
    parser.error('--ranking-epochs must be at least 1')
  if (args.retrieval_index == 'scann' and
      importlib.util.find_spec('scann') is None):
    parser.error("--retrieval-index scann needs ScaNN, which is not "
                 "installed: .venv/bin/python -m pip install 'scann==1.3.2' "
                 "(the release built for TensorFlow 2.16)")
  if not 1 <= args.recommender_top_k <= args.top_k:
    parser.error(f'--recommender-top-k must be between 1 and --top-k '
                 f'({args.top_k}): the recommender re-ranks the retrieval '
                 'top K')
  # No TensorFlow import here.
  from modules.hparams import RankingHParams, RetrievalHParams  # pylint: disable=g-import-not-at-top
  args.hparams = flags.hparam_overrides(
      parser, '--hparam', args.hparam, args.epochs, RetrievalHParams)
  args.ranking_hparams = flags.hparam_overrides(
      parser, '--ranking-hparam', args.ranking_hparam, args.ranking_epochs,
      RankingHParams)
  return args


def beam_pipeline_args(workers: int) -> List[str]:
  """DirectRunner options: in-process for one worker, else processes."""
  if workers == 1:
    return ['--direct_running_mode=in_memory', '--direct_num_workers=1']
  return ['--direct_running_mode=multi_processing',
          f'--direct_num_workers={workers}']


def main(argv: Optional[List[str]] = None) -> int:
  args = parse_args(argv)
  data_dir = os.path.abspath(args.data_dir)
  output_dir = os.path.abspath(args.output_dir)
  if not os.path.isdir(data_dir):
    print(f'error: data folder {data_dir} does not exist. Download ml-100k '
          'with `make data` (or pass --data-dir).', file=sys.stderr)
    return 2

  # Google client libraries warn at import about Python 3.10 and older
  # pinned dependencies; TFX 1.16 supports nothing newer, so it is noise.
  warnings.filterwarnings('ignore', category=FutureWarning,
                          module=r'google\.')
  from pipeline import configs, progress  # pylint: disable=g-import-not-at-top
  log_dir = os.path.join(output_dir, 'logs')
  os.makedirs(log_dir, exist_ok=True)
  os.makedirs(os.path.dirname(configs.metadata_path(output_dir)),
              exist_ok=True)
  log_file = os.path.join(
      log_dir, datetime.datetime.now().strftime('run-%Y%m%d-%H%M%S.log'))
  reporter = progress.install(log_file, verbose=args.verbose)
  print(f'Pipeline {configs.PIPELINE_NAME}: data {data_dir}, outputs '
        f'{output_dir}\nFull logs: {log_file}', flush=True)

  # Heavy imports after the console is set up.
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from components.anomaly_gate.gate import DataAnomaliesError  # pylint: disable=g-import-not-at-top
  from movielens.layout import RawDataError  # pylint: disable=g-import-not-at-top
  from pipeline import summary  # pylint: disable=g-import-not-at-top
  from pipeline.pipeline import create_pipeline  # pylint: disable=g-import-not-at-top

  pipeline = create_pipeline(
      pipeline_name=configs.PIPELINE_NAME,
      pipeline_root=configs.pipeline_root(output_dir),
      data_path=data_dir,
      schema_path=configs.schema_path(data_dir),
      preprocessing_fn=configs.PREPROCESSING_FN,
      retrieval_run_fn=configs.RETRIEVAL_RUN_FN,
      serving_dir=configs.serving_dir(output_dir),
      eval_fraction=args.eval_fraction,
      max_eval_ratings=args.max_eval_ratings,
      retrieval_hparams=args.hparams,
      retrieval_top_k=args.top_k,
      exclude_seen=not args.no_exclude_seen,
      retrieval_index=args.retrieval_index,
      min_lift_over_popularity=args.min_lift_over_popularity,
      max_regression=args.max_regression,
      ranking_run_fn=None if args.no_ranking else configs.RANKING_RUN_FN,
      retrieval_refit_fn=None if args.no_refit else configs.RETRIEVAL_REFIT_FN,
      ranking_refit_fn=None if args.no_refit else configs.RANKING_REFIT_FN,
      ranking_hparams=args.ranking_hparams,
      max_rmse=args.max_rmse,
      max_rmse_increase=args.max_rmse_increase,
      recommender_top_k=args.recommender_top_k,
      enable_cache=not args.no_cache,
      beam_pipeline_args=beam_pipeline_args(args.beam_workers),
      metadata_connection_config=tfx.orchestration.metadata
      .sqlite_metadata_connection_config(configs.metadata_path(output_dir)),
  )
  try:
    tfx.orchestration.LocalDagRunner().run(pipeline)
  except (RawDataError, DataAnomaliesError) as e:
    print(f'\nPipeline stopped: {e}', file=sys.stderr)
    return 1
  total = sum(seconds for _, seconds, _ in reporter.finished)
  print(f'Pipeline finished: {len(reporter.finished)} components in '
        f'{total:.1f}s. Artifacts under {configs.pipeline_root(output_dir)}')
  print(summary.retrieval_report(configs.metadata_path(output_dir)))
  if not args.no_ranking:
    print(summary.ranking_report(configs.metadata_path(output_dir)))
  return 0


if __name__ == '__main__':
  sys.exit(main())
