"""PreviousBlessedModelStrategy: the latest blessed model other than the
candidate, on hand-made Model and ModelBlessing artifacts; and which
strategy each runner's pipeline uses."""

import pytest
from tfx.types import standard_artifacts

from pipeline import baseline

pytestmark = pytest.mark.unit


def _model(artifact_id):
  model = standard_artifacts.Model()
  model.id = artifact_id
  return model


def _blessing(model_id, blessed):
  blessing = standard_artifacts.ModelBlessing()
  blessing.id = 100 + model_id
  blessing.set_int_custom_property('current_model_id', model_id)
  blessing.set_int_custom_property('blessed', int(blessed))
  return blessing


def _resolve(models, blessings, candidate):
  return baseline.PreviousBlessedModelStrategy().resolve_artifacts(
      None, {'model': models, 'model_blessing': blessings,
             'candidate': candidate})


def test_the_candidate_is_never_its_own_baseline():
  one = _model(1)
  result = _resolve([one], [_blessing(1, True)], [one])
  assert result == {'model': [], 'model_blessing': [], 'candidate': [one]}


def test_the_latest_blessed_other_model_is_the_baseline():
  one, two, three, four = (_model(i) for i in (1, 2, 3, 4))
  blessings = [_blessing(1, True), _blessing(2, True), _blessing(3, False)]
  # 4 is judged now; 3 was not blessed; 2 is the latest blessed.
  result = _resolve([one, two, three, four], blessings, [four])
  assert [m.id for m in result['model']] == [2]
  assert [b.id for b in result['model_blessing']] == [102]
  # A rerun judging 2 again (cached) compares it with 1, not with itself.
  result = _resolve([one, two, three, four], blessings, [two])
  assert [m.id for m in result['model']] == [1]


def test_nothing_blessed_yet_resolves_empty():
  one = _model(1)
  assert _resolve([one], [], [one])['model'] == []
  assert _resolve([], [], [one])['model'] == []


def test_local_pipeline_excludes_the_candidate_it_judges(pipeline_components):
  by_id = pipeline_components()
  for resolver, candidate, evaluator in (
      ('LatestBlessedRetrieval', 'RetrievalIndexer', 'RetrievalEvaluator'),
      ('LatestBlessedRanking', 'RankingTrainer', 'RankingEvaluator')):
    node = by_id[resolver]
    assert (node.exec_properties['resolver_class'] is
            baseline.PreviousBlessedModelStrategy)
    assert node.raw_inputs['candidate'].producer_component_id == candidate
    assert node.raw_inputs['model_blessing'].producer_component_id == evaluator
    assert (by_id[evaluator].inputs['baseline_model'].producer_component_id
            == resolver)
