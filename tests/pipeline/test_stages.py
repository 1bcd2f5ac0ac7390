"""create_pipeline's stages: which components each option brings, and the
settings a caller does not give, which are pipeline/configs.py's."""

import pytest

from pipeline import configs

pytestmark = pytest.mark.unit

INGEST = {'MovieLensExampleGen', 'StatisticsGen', 'ImportSchemaGen',
          'ExampleValidator', 'AnomalyGate', 'Transform'}
RETRIEVAL = {'RetrievalTrainer', 'RetrievalIndexer', 'LatestBlessedRetrieval',
             'RetrievalEvaluator', 'RetrievalPusher'}
RANKING = {'RankingTrainer', 'LatestBlessedRanking', 'RankingEvaluator',
           'RankingPusher'}
RECOMMENDER = {'RecommenderBuilder', 'RecommenderPusher'}


@pytest.mark.parametrize('kwargs, expected', [
    ({}, INGEST | RETRIEVAL | RANKING | RECOMMENDER),
    ({'ranking_run_fn': None}, INGEST | RETRIEVAL),
    ({'retrieval_refit_fn': configs.RETRIEVAL_REFIT_FN,
      'ranking_refit_fn': configs.RANKING_REFIT_FN},
     INGEST | RETRIEVAL | RANKING | RECOMMENDER |
     {'RetrievalRefit', 'RankingRefit'}),
    ({'ranking_run_fn': None, 'retrieval_refit_fn':
      configs.RETRIEVAL_REFIT_FN}, INGEST | RETRIEVAL | {'RetrievalRefit'}),
], ids=['ranking', 'retrieval-only', 'refits', 'retrieval-refit-only'])
def test_each_stage_brings_its_components(pipeline_components, kwargs,
                                          expected):
  assert set(pipeline_components(**kwargs)) == expected


def test_settings_not_given_are_the_configs(pipeline_components):
  by_id = pipeline_components()

  assert by_id['MovieLensExampleGen'].exec_properties['eval_fraction'] == 0.2
  assert (by_id['MovieLensExampleGen'].exec_properties['max_eval_ratings']
          == 1_000_000)
  assert by_id['RetrievalIndexer'].exec_properties['top_k'] == 100
  assert by_id['RetrievalIndexer'].exec_properties['index'] == 'brute_force'
  evaluator = by_id['RetrievalEvaluator'].exec_properties
  assert evaluator['min_lift_over_popularity'] == 0.0
  assert evaluator['max_regression'] == 0.01
  assert by_id['RecommenderBuilder'].exec_properties['top_k'] == 10


def test_the_stages_share_one_transform_and_schema(pipeline_components):
  by_id = pipeline_components()

  for trainer in ('RetrievalTrainer', 'RankingTrainer'):
    inputs = by_id[trainer].inputs
    assert inputs['examples'].producer_component_id == 'Transform'
    assert inputs['transform_graph'].producer_component_id == 'Transform'
    assert inputs['schema'].producer_component_id == 'ImportSchemaGen'
  builder = by_id['RecommenderBuilder'].inputs
  assert builder['retrieval'].producer_component_id == 'RetrievalIndexer'
  assert (builder['retrieval_blessing'].producer_component_id ==
          'RetrievalEvaluator')
  assert (builder['ranking_blessing'].producer_component_id ==
          'RankingEvaluator')
