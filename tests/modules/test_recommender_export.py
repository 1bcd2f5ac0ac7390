"""RecommenderServable over fake retrieval and ranking SavedModels with
hand-chosen scores: the saved signature's contract, the re-ranking formula,
top K, blank slots, and the unknown user."""

import math

import numpy as np
import pytest
import tensorflow as tf

from modules import recommender_export

pytestmark = pytest.mark.unit

# Retrieval answers (N = 4, best first) and scores:
#   u1: m1 0.9, m2 0.8, m3 0.5, m4 0.1
#   u2: m2 0.7, m5 0.6, '' (blank: nothing left) -inf, '' -inf
#   anything else (unknown user): m1 0.3, m2 0.2, m3 0.1, m4 0.0
CANDIDATES = {
    b'u1': ([b'm1', b'm2', b'm3', b'm4'], [0.9, 0.8, 0.5, 0.1]),
    b'u2': ([b'm2', b'm5', b'', b''], [0.7, 0.6, -math.inf, -math.inf]),
}
UNKNOWN = ([b'm1', b'm2', b'm3', b'm4'], [0.3, 0.2, 0.1, 0.0])
TITLES = {b'm1': b'One', b'm2': b'Two', b'm3': b'Three', b'm4': b'Four',
          b'm5': b'Five', b'': b''}
# Ranking: relevance per movie (the same for every user), rating = 1 + row.
RELEVANCE = {b'm1': 0.0, b'm2': 1.0, b'm3': 5.0, b'm4': 3.0, b'm5': 2.0,
             b'': -7.0}


def _table(keys, values, default):
  return tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(tf.constant(keys),
                                          tf.constant(values)), default)


class _FakeRetrieval(tf.Module):

  def __init__(self):
    super().__init__()
    users = list(CANDIDATES)
    self._rows = _table(users, list(range(len(users))), len(users))
    self._ids = tf.constant([c[0] for c in CANDIDATES.values()] + [UNKNOWN[0]])
    self._scores = tf.constant([c[1] for c in CANDIDATES.values()] +
                               [UNKNOWN[1]], tf.float32)
    self._titles = _table(list(TITLES), list(TITLES.values()), b'?')

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def serve(self, user_id):
    rows = self._rows.lookup(user_id)
    ids = tf.gather(self._ids, rows)
    return {'movie_ids': ids, 'movie_titles': self._titles.lookup(ids),
            'scores': tf.gather(self._scores, rows)}


class _FakeRanking(tf.Module):

  def __init__(self):
    super().__init__()
    self._relevance = _table(list(RELEVANCE), list(RELEVANCE.values()), 0.0)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string),
                                tf.TensorSpec([None], tf.string)])
  def score(self, user_id, movie_id):
    relevance = self._relevance.lookup(movie_id)
    return {'relevance': relevance, 'rating': 1.0 + relevance / 2.0}


@pytest.fixture(scope='module')
def models(tmp_path_factory):
  root = tmp_path_factory.mktemp('models')
  retrieval, ranking = _FakeRetrieval(), _FakeRanking()
  tf.saved_model.save(retrieval, str(root / 'retrieval'),
                      signatures={'serving_default': retrieval.serve})
  tf.saved_model.save(ranking, str(root / 'ranking'),
                      signatures={'score_pairs': ranking.score})
  return (tf.saved_model.load(str(root / 'retrieval')),
          tf.saved_model.load(str(root / 'ranking')))


@pytest.fixture(scope='module')
def saved(models, tmp_path_factory):
  export_dir = str(tmp_path_factory.mktemp('recommender') / '1')
  recommender_export.save(recommender_export.RecommenderServable(
      *models, top_k=3, retrieval_weight=10.0), export_dir)
  return tf.saved_model.load(export_dir)


def _answer(saved, users):
  out = saved.signatures['serving_default'](user_id=tf.constant(users))
  return {k: v.numpy() for k, v in out.items()}


def test_signature_contract(saved):
  signature = saved.signatures['serving_default']
  inputs = signature.structured_input_signature[1]
  assert list(inputs) == ['user_id']
  assert inputs['user_id'].dtype == tf.string
  assert inputs['user_id'].shape.as_list() == [None]
  outputs = signature.structured_outputs
  # K (3) is static in the saved signature.
  assert {k: (v.dtype, v.shape.as_list()) for k, v in outputs.items()} == {
      'movie_ids': (tf.string, [None, 3]),
      'movie_titles': (tf.string, [None, 3]),
      'scores': (tf.float32, [None, 3]),
      'ratings': (tf.float32, [None, 3]),
  }


def test_candidates_are_reordered_by_relevance_plus_weighted_retrieval(saved):
  # u1, score = relevance + 10 * retrieval score:
  #   m1 0 + 9 = 9, m2 1 + 8 = 9 (tie: retrieval order kept), m3 5 + 5 = 10,
  #   m4 3 + 1 = 4   -> top 3: m3 (10), m1 (9), m2 (9)
  answer = _answer(saved, ['u1'])

  assert answer['movie_ids'].tolist() == [[b'm3', b'm1', b'm2']]
  assert answer['movie_titles'].tolist() == [[b'Three', b'One', b'Two']]
  np.testing.assert_allclose(answer['scores'], [[10.0, 9.0, 9.0]])
  # The predicted rating of each returned movie (fake: 1 + relevance / 2).
  np.testing.assert_allclose(answer['ratings'], [[3.5, 1.0, 1.5]])


def test_blank_candidates_stay_blank_and_last(saved):
  # u2: m2 1 + 7 = 8, m5 2 + 6 = 8 (tie, retrieval order), then no movie.
  answer = _answer(saved, ['u2'])

  assert answer['movie_ids'].tolist() == [[b'm2', b'm5', b'']]
  assert answer['movie_titles'][0][2] == b''
  assert answer['scores'][0][2] == -np.inf
  assert answer['ratings'][0][2] == 0.0


def test_batch_with_an_unknown_user(saved):
  # Unknown: m1 0 + 3, m2 1 + 2, m3 5 + 1, m4 3 + 0 -> m3 6, m1 3, m2 3.
  answer = _answer(saved, ['u1', 'somebody', 'u2'])

  assert answer['movie_ids'].shape == (3, 3)
  assert answer['movie_ids'][1].tolist() == [b'm3', b'm1', b'm2']
  assert answer['movie_ids'][0].tolist() == [b'm3', b'm1', b'm2']


def test_top_k_larger_than_the_candidates_is_capped(models, tmp_path):
  servable = recommender_export.RecommenderServable(*models, top_k=50)

  answer = servable.recommend(tf.constant(['u1']))

  assert answer['movie_ids'].shape == (1, 4)


def test_top_k_must_be_positive(models):
  with pytest.raises(ValueError, match='at least 1'):
    recommender_export.RecommenderServable(*models, top_k=0)
