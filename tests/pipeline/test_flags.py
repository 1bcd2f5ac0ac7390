"""pipeline.flags: the flags every runner shares, with the same defaults in
each runner, and the create_pipeline arguments they make."""

import argparse

import pytest

from pipeline import configs, flags
import runner_kubeflow
import runner_local
import runner_vertex
from tests.kubeflow import specs

pytestmark = pytest.mark.unit

SHARED = {
    'eval_fraction': 0.2, 'max_eval_ratings': 1_000_000, 'epochs': None,
    'hparam': [], 'top_k': 100, 'no_exclude_seen': False,
    'retrieval_index': 'brute_force', 'min_lift_over_popularity': 0.0,
    'max_regression': 0.01, 'ranking_epochs': None, 'ranking_hparam': [],
    'max_rmse': 1.1, 'max_rmse_increase': 0.01, 'recommender_top_k': 10,
    'no_ranking': False, 'no_refit': False, 'beam_workers': 1,
    'no_cache': False, 'hparams': {}, 'ranking_hparams': {},
}


def _shared_flags_parser():
  parser = argparse.ArgumentParser(prog='runner')
  flags.add_flags(parser)
  return parser


def test_the_shared_flags_and_their_defaults():
  args = flags.parse_args(_shared_flags_parser(), [])

  assert vars(args) == SHARED


@pytest.mark.parametrize('parse', [
    lambda: runner_local.parse_args([]),
    lambda: runner_vertex.parse_args(specs.BASE_FLAGS),
    lambda: runner_kubeflow.parse_args(specs.BASE_FLAGS),
], ids=['local', 'vertex', 'kubeflow'])
def test_every_runner_has_the_shared_flags_with_the_same_defaults(parse):
  args = vars(parse())

  assert {name: args[name] for name in SHARED} == SHARED


def test_the_default_create_pipeline_arguments():
  args = flags.parse_args(_shared_flags_parser(), [])

  kwargs = flags.create_pipeline_kwargs(args, pipeline_root='/root',
                                        beam_pipeline_args=['--x'])

  assert kwargs == {
      'pipeline_name': 'movielens-tfx',
      'preprocessing_fn': 'modules.preprocessing.preprocessing_fn',
      'retrieval_run_fn': 'modules.retrieval_trainer.run_fn',
      'eval_fraction': 0.2, 'max_eval_ratings': 1_000_000,
      'retrieval_hparams': {}, 'retrieval_top_k': 100,
      'exclude_seen': True, 'retrieval_index': 'brute_force',
      'min_lift_over_popularity': 0.0, 'max_regression': 0.01,
      'ranking_run_fn': 'modules.ranking_trainer.run_fn',
      'retrieval_refit_fn': 'modules.retrieval_trainer.refit_fn',
      'ranking_refit_fn': 'modules.ranking_trainer.refit_fn',
      'ranking_hparams': {}, 'max_rmse': 1.1, 'max_rmse_increase': 0.01,
      'recommender_top_k': 10, 'enable_cache': True,
      'pipeline_root': '/root', 'beam_pipeline_args': ['--x'],
  }


def test_flags_switch_stages_and_settings_off():
  args = flags.parse_args(_shared_flags_parser(), [
      '--no-ranking', '--no-refit', '--no-cache', '--no-exclude-seen',
      '--hparam', 'temperature=0.2', '--epochs', '4',
      '--ranking-hparam', 'dropout=0.1', '--top-k', '50',
      '--recommender-top-k', '5'])

  kwargs = flags.create_pipeline_kwargs(args)

  assert kwargs['ranking_run_fn'] is None
  assert kwargs['retrieval_refit_fn'] is None
  assert kwargs['ranking_refit_fn'] is None
  assert kwargs['enable_cache'] is False
  assert kwargs['exclude_seen'] is False
  assert kwargs['retrieval_hparams'] == {'temperature': '0.2', 'epochs': 4}
  assert kwargs['ranking_hparams'] == {'dropout': '0.1'}
  assert kwargs['retrieval_top_k'] == 50
  assert kwargs['recommender_top_k'] == 5


def test_a_runner_cannot_override_a_shared_flag_silently():
  args = flags.parse_args(_shared_flags_parser(), [])

  with pytest.raises(TypeError, match=r"\['enable_cache'\] come from the "
                     'shared flags'):
    flags.create_pipeline_kwargs(args, enable_cache=False)


@pytest.mark.parametrize('argv, message', [
    (['--eval-fraction', '0'], '--eval-fraction must be between 0 and 1'),
    (['--max-eval-ratings', '-1'],
     '--max-eval-ratings must be >= 0 (0: no bound)'),
    (['--epochs', '0'], '--epochs must be at least 1'),
    (['--ranking-epochs', '0'], '--ranking-epochs must be at least 1'),
    (['--top-k', '0'], '--top-k must be at least 1'),
    (['--beam-workers', '0'], '--beam-workers must be at least 1'),
    (['--recommender-top-k', '0'],
     '--recommender-top-k must be between 1 and --top-k (100): the '
     'recommender re-ranks the retrieval top K'),
])
def test_each_shared_check_stops_with_its_message(argv, message, capsys):
  with pytest.raises(SystemExit) as exit_info:
    flags.parse_args(_shared_flags_parser(), argv)

  assert exit_info.value.code == 2
  assert capsys.readouterr().err.endswith(f'runner: error: {message}\n')


def test_the_defaults_are_the_configs():
  args = flags.parse_args(_shared_flags_parser(), [])

  assert (args.eval_fraction, args.max_eval_ratings, args.top_k,
          args.retrieval_index, args.min_lift_over_popularity,
          args.max_regression, args.max_rmse, args.max_rmse_increase,
          args.recommender_top_k) == (
              configs.EVAL_FRACTION, configs.MAX_EVAL_RATINGS,
              configs.RETRIEVAL_TOP_K, configs.RETRIEVAL_INDEX,
              configs.MIN_LIFT_OVER_POPULARITY, configs.MAX_REGRESSION,
              configs.MAX_RMSE, configs.MAX_RMSE_INCREASE,
              configs.RECOMMENDER_TOP_K)
