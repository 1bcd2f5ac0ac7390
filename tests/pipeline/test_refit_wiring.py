"""create_pipeline with and without the refit Trainers: which model each
Evaluator judges, and which one the Indexer, Pushers and recommender use."""

import pytest

from pipeline import configs
from tests.pipeline.conftest import components_by_id as _components

pytestmark = pytest.mark.unit


def _producer(component, key):
  return component.inputs[key].producer_component_id


def test_refit_trainers_are_served_and_the_early_stopped_models_judged():
  by_id = _components(retrieval_refit_fn=configs.RETRIEVAL_REFIT_FN,
                      ranking_refit_fn=configs.RANKING_REFIT_FN)

  for refit, trainer, run_fn in (
      ('RetrievalRefit', 'RetrievalTrainer', configs.RETRIEVAL_REFIT_FN),
      ('RankingRefit', 'RankingTrainer', configs.RANKING_REFIT_FN)):
    assert by_id[refit].exec_properties['run_fn'] == run_fn
    assert _producer(by_id[refit], 'base_model') == trainer
    # Same hyper-parameters as the early-stopped Trainer.
    assert (by_id[refit].exec_properties['custom_config'] ==
            by_id[trainer].exec_properties['custom_config'])
  assert _producer(by_id['RetrievalIndexer'], 'model') == 'RetrievalRefit'
  assert _producer(by_id['RetrievalIndexer'],
                   'eval_model') == 'RetrievalTrainer'
  assert _producer(by_id['RankingEvaluator'], 'model') == 'RankingTrainer'
  assert _producer(by_id['RankingPusher'], 'model') == 'RankingRefit'
  assert _producer(by_id['RankingPusher'],
                   'model_blessing') == 'RankingEvaluator'
  assert _producer(by_id['RecommenderBuilder'], 'ranking') == 'RankingRefit'


def test_without_refit_the_early_stopped_models_are_served():
  by_id = _components()

  assert not {'RetrievalRefit', 'RankingRefit'} & set(by_id)
  assert _producer(by_id['RetrievalIndexer'], 'model') == 'RetrievalTrainer'
  assert 'eval_model' not in by_id['RetrievalIndexer'].inputs
  assert _producer(by_id['RankingPusher'], 'model') == 'RankingTrainer'
  assert _producer(by_id['RecommenderBuilder'],
                   'ranking') == 'RankingTrainer'


@pytest.mark.parametrize('flags, present', [([], True),
                                            (['--no-refit'], False)])
def test_runner_local_refits_unless_told_not_to(flags, present):
  import runner_local  # pylint: disable=g-import-not-at-top
  args = runner_local.parse_args(flags)
  assert args.no_refit is not present
