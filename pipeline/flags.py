"""The flags every runner shares, their checks, and the `create_pipeline`
call they make.

runner_local.py, runner_kubeflow.py and runner_vertex.py (through
pipeline/kubeflow.py) add these flags with `add_flags`, parse with
`parse_args` and build the pipeline from `create_pipeline_kwargs`, adding
only what is theirs (paths, orchestrator, Beam and cloud settings). Defaults
come from pipeline/configs.py and modules/hparams.py.

No TensorFlow import: a bad flag stops the runner in well under a second.
"""

import argparse
from typing import Any, Dict, List, Optional

from pipeline import configs


def add_flags(parser: argparse.ArgumentParser) -> None:
  """Adds the shared flags (data split, models, blessing, Beam workers,
  cache) as one argument group."""
  group = parser.add_argument_group('pipeline (every runner)')
  group.add_argument(
      '--eval-fraction', type=float, default=configs.EVAL_FRACTION,
      help="share of each user's newest ratings held out for evaluation")
  group.add_argument(
      '--max-eval-ratings', type=int, default=configs.MAX_EVAL_RATINGS,
      help='about how many ratings the eval split holds at most: beyond '
      'it, only a sample of users is held out (0: every user)')
  group.add_argument(
      '--epochs', type=int, default=None,
      help='maximum training epochs of the retrieval model (early stopping '
      'may end sooner); default from modules/hparams.py')
  group.add_argument(
      '--hparam', action='append', default=[], metavar='NAME=VALUE',
      help='override a retrieval hyper-parameter of modules/hparams.py '
      '(repeatable), e.g. --hparam temperature=0.2')
  group.add_argument(
      '--top-k', type=int, default=configs.RETRIEVAL_TOP_K,
      help='movies the retrieval servable returns per user')
  group.add_argument(
      '--no-exclude-seen', action='store_true',
      help="export the servable without excluding the user's rated movies")
  group.add_argument(
      '--retrieval-index', choices=configs.RETRIEVAL_INDEXES,
      default=configs.RETRIEVAL_INDEX,
      help="the retrieval servable's index: exact brute force, or "
      'approximate ScaNN for large catalogues (needs the scann package '
      'where the indexer runs, pip install scann==1.3.2, and a TF Serving '
      'build with its ops to serve it)')
  group.add_argument(
      '--min-lift-over-popularity', type=float,
      default=configs.MIN_LIFT_OVER_POPULARITY,
      help='bless only if recall@100 beats most-popular by this relative '
      'margin')
  group.add_argument(
      '--max-regression', type=float, default=configs.MAX_REGRESSION,
      help='bless only if recall@100 is at most this much below the latest '
      'blessed model')
  group.add_argument(
      '--ranking-epochs', type=int, default=None,
      help='maximum training epochs of the ranking model; default from '
      'modules/hparams.py')
  group.add_argument(
      '--ranking-hparam', action='append', default=[], metavar='NAME=VALUE',
      help='override a ranking hyper-parameter of modules/hparams.py '
      '(repeatable), e.g. --ranking-hparam architecture=mlp')
  group.add_argument(
      '--max-rmse', type=float, default=configs.MAX_RMSE,
      help='bless the ranking model only if its eval RMSE is at most this')
  group.add_argument(
      '--max-rmse-increase', type=float, default=configs.MAX_RMSE_INCREASE,
      help="... and at most this much above the latest blessed ranking "
      "model's")
  group.add_argument(
      '--recommender-top-k', type=int, default=configs.RECOMMENDER_TOP_K,
      help='movies the two-stage recommender returns per user')
  group.add_argument(
      '--no-ranking', action='store_true',
      help='retrieval only: leave out the ranking model and the recommender')
  group.add_argument(
      '--no-refit', action='store_true',
      help='serve the early-stopped models instead of refitting them on '
      'train + eval (README, "What is evaluated and what is served")')
  group.add_argument(
      '--beam-workers', type=int, default=1,
      help='Beam DirectRunner workers (on Kubeflow/Vertex, inside the step '
      'container); >1 runs them as processes (worth it from about a '
      'million ratings)')
  group.add_argument(
      '--no-cache', action='store_true',
      help='rerun every component even when unchanged')


def parse_args(parser: argparse.ArgumentParser,
               argv: Optional[List[str]] = None) -> argparse.Namespace:
  """Parses argv and checks the shared flags; a bad one stops the program
  with argparse's error (exit status 2).

  Adds `args.hparams` and `args.ranking_hparams`: the --hparam/--epochs and
  --ranking-hparam/--ranking-epochs overrides, checked against
  `modules.hparams` (names, types and ranges).
  """
  args = parser.parse_args(argv)
  if not 0.0 < args.eval_fraction < 1.0:
    parser.error('--eval-fraction must be between 0 and 1')
  if args.max_eval_ratings < 0:
    parser.error('--max-eval-ratings must be >= 0 (0: no bound)')
  for flag in ('epochs', 'ranking_epochs', 'top_k', 'beam_workers'):
    value = getattr(args, flag)
    if value is not None and value < 1:
      parser.error(f'--{flag.replace("_", "-")} must be at least 1')
  if not 1 <= args.recommender_top_k <= args.top_k:
    parser.error(f'--recommender-top-k must be between 1 and --top-k '
                 f'({args.top_k}): the recommender re-ranks the retrieval '
                 'top K')
  from modules.hparams import RankingHParams, RetrievalHParams  # pylint: disable=g-import-not-at-top
  args.hparams = hparam_overrides(
      parser, '--hparam', args.hparam, args.epochs, RetrievalHParams)
  args.ranking_hparams = hparam_overrides(
      parser, '--ranking-hparam', args.ranking_hparam, args.ranking_epochs,
      RankingHParams)
  return args


def hparam_overrides(parser: argparse.ArgumentParser, flag: str,
                     items: List[str], epochs: Optional[int],
                     hparams_class) -> Dict[str, Any]:
  """NAME=VALUE items (and an epochs flag) as overrides checked by
  `hparams_class.from_config`.

  A bad one stops the program as argparse's errors do (exit status 2, no
  traceback), with one line naming the flag, the field, the value and what
  is allowed; the usage, which says nothing about values, is left out.
  """
  def stop(message: str):
    parser.exit(2, f'{parser.prog}: error: {message}\n')

  overrides = {}
  for item in items:
    name, sep, value = item.partition('=')
    if not sep or not name:
      stop(f'{flag} takes NAME=VALUE, got {item!r}')
    overrides[name.strip()] = value.strip()
  if epochs is not None:
    overrides['epochs'] = epochs
  try:
    hparams_class.from_config(overrides)
  except ValueError as e:
    stop(f'{flag}: {e}')
  return overrides


def create_pipeline_kwargs(args: argparse.Namespace, **runner_kwargs
                          ) -> Dict[str, Any]:
  """`create_pipeline`'s keyword arguments from the shared flags (parsed
  by `parse_args`), with the runner's own: `pipeline_root`, `data_path`,
  `schema_path`, `serving_dir`, `beam_pipeline_args`,
  `metadata_connection_config` and any other `create_pipeline` argument.

  Raises:
    TypeError: a runner argument is also one of the shared flags'.
  """
  kwargs = dict(
      pipeline_name=configs.PIPELINE_NAME,
      preprocessing_fn=configs.PREPROCESSING_FN,
      retrieval_run_fn=configs.RETRIEVAL_RUN_FN,
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
  )
  shared = sorted(set(kwargs) & set(runner_kwargs))
  if shared:
    raise TypeError(f'create_pipeline_kwargs: {shared} come from the shared '
                    'flags')
  return {**kwargs, **runner_kwargs}
