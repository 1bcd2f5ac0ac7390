"""RecommenderBuilder: construction, and the executor with fake retrieval
and ranking SavedModels: built and blessed only when both inputs are
blessed, with a blessing message naming the model that was not."""

import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.atomic_pusher import executor as atomic_executor
from components.recommender_builder import RecommenderBuilder, executor, spec
from tests.modules.test_recommender_export import _FakeRanking, _FakeRetrieval

pytestmark = pytest.mark.integration


def _model(tmp_path, name, module, signature_name, function):
  artifact = standard_artifacts.Model()
  artifact.uri = str(tmp_path / name)
  artifact.id = {'retrieval': 1, 'ranking': 2, 'recommender': 3}[name]
  tf.saved_model.save(module, path_utils.serving_model_path(artifact.uri),
                      signatures={signature_name: function})
  return artifact


def _blessing(tmp_path, name, blessed):
  artifact = standard_artifacts.ModelBlessing()
  artifact.uri = str(tmp_path / name)
  os.makedirs(artifact.uri)
  artifact.set_int_custom_property('blessed', int(blessed))
  return artifact


@pytest.fixture(scope='module')
def models(tmp_path_factory):
  root = tmp_path_factory.mktemp('models')
  retrieval, ranking = _FakeRetrieval(), _FakeRanking()
  return (_model(root, 'retrieval', retrieval, 'serving_default',
                 retrieval.serve),
          _model(root, 'ranking', ranking, 'score_pairs', ranking.score))


def _run(tmp_path, models, retrieval_blessed, ranking_blessed, **params):
  tmp_path.mkdir(parents=True, exist_ok=True)
  recommender = standard_artifacts.Model()
  recommender.uri = str(tmp_path / 'recommender')
  recommender.id = 3
  os.makedirs(recommender.uri)
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / 'blessing')
  os.makedirs(blessing.uri)
  executor.Executor().Do(
      {spec.RETRIEVAL_KEY: [models[0]], spec.RANKING_KEY: [models[1]],
       spec.RETRIEVAL_BLESSING_KEY: [_blessing(tmp_path, 'rb',
                                               retrieval_blessed)],
       spec.RANKING_BLESSING_KEY: [_blessing(tmp_path, 'kb',
                                             ranking_blessed)]},
      {spec.RECOMMENDER_KEY: [recommender], spec.BLESSING_KEY: [blessing]},
      params)
  return recommender, blessing


def test_both_blessed_builds_and_blesses(tmp_path, models):
  recommender, blessing = _run(tmp_path, models, True, True,
                               **{spec.TOP_K_KEY: 2})

  assert blessing.get_int_custom_property('blessed') == 1
  assert os.path.exists(os.path.join(blessing.uri, 'BLESSED'))
  assert blessing.get_int_custom_property('current_model_id') == 3
  loaded = tf.saved_model.load(
      path_utils.serving_model_path(recommender.uri))
  answer = loaded.signatures['serving_default'](user_id=tf.constant(['u1']))
  # See test_recommender_export; the default retrieval weight, 5: m1 0 +
  # 4.5, m2 1 + 4, m3 5 + 2.5, m4 3 + 0.5 -> m3 (7.5), m2 (5); top_k 2.
  assert answer['movie_ids'].numpy().tolist() == [[b'm3', b'm2']]
  np.testing.assert_allclose(answer['scores'].numpy(), [[7.5, 5.0]])


@pytest.mark.parametrize('retrieval, ranking, named', [
    (False, True, 'the retrieval model was not blessed'),
    (True, False, 'the ranking model was not blessed'),
    (False, False, 'the retrieval and ranking models were not blessed'),
])
def test_an_unblessed_model_builds_nothing(tmp_path, models, retrieval,
                                           ranking, named):
  recommender, blessing = _run(tmp_path, models, retrieval, ranking)

  assert blessing.get_int_custom_property('blessed') == 0
  assert os.path.exists(os.path.join(blessing.uri, 'NOT_BLESSED'))
  assert named in blessing.get_string_custom_property('blessing_message')
  assert os.listdir(recommender.uri) == []


def test_component_refuses_a_non_positive_top_k():
  from tfx import types  # pylint: disable=g-import-not-at-top
  channel = types.Channel(type=standard_artifacts.Model)
  blessing = types.Channel(type=standard_artifacts.ModelBlessing)
  with pytest.raises(ValueError, match='at least 1'):
    RecommenderBuilder(channel, blessing, channel, blessing, top_k=0)
  component = RecommenderBuilder(channel, blessing, channel, blessing,
                                 top_k=5, retrieval_weight=2.0)
  assert component.exec_properties[spec.TOP_K_KEY] == 5
  assert component.exec_properties[spec.RETRIEVAL_WEIGHT_KEY] == 2.0


def test_rebuilding_from_the_same_models_keeps_the_identity(tmp_path, models):
  first, _ = _run(tmp_path / 'a', models, True, True)
  second, _ = _run(tmp_path / 'b', models, True, True)
  other, _ = _run(tmp_path / 'c', models, True, True, **{spec.TOP_K_KEY: 2})

  def identity(artifact):
    path = os.path.join(path_utils.serving_model_path(artifact.uri),
                        atomic_executor.IDENTITY_FILE)
    return open(path).read()

  # Traced anew, the SavedModels differ, but they are the same model: the
  # Pusher compares this identity and pushes no duplicate version.
  assert identity(first) == identity(second)
  assert len(identity(first)) == 64
  assert identity(other) != identity(first)
