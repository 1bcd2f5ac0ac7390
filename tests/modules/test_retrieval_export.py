"""RetrievalServable over a fake towers SavedModel with hand-chosen 2-d
embeddings: the saved signatures' contract, exact top-K answers, seen-movie
exclusion in each signature, unknown and heavy users, K capped at the
catalogue, and feature overrides through `serving_examples`."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from modules import features, retrieval_export, retrieval_index

pytestmark = pytest.mark.integration

# Catalogue: five movies with hand-chosen candidate embeddings.
MOVIES = [b'm1', b'm2', b'm3', b'm4', b'm5']
TITLES = [b'One (1991)', b'Two (1992)', b'Three (1993)', b'Four (1994)',
          b'Five (1995)']
MOVIE_VECTORS = np.array([[3., 0.], [0., 3.], [2., 1.], [1., -1.], [-2., 2.]])

# The fake query tower: a vector per user id (unknown -> [-1, 0]), plus
# [-1, 2] when the Example's gender is 'F'. Scores q . c of the 5 movies:
#
#   query                       m1   m2   m3   m4   m5   ranking
#   u1 (M)        [1, 0]         3    0    2    1   -2   m1 m3 m4 m2 m5
#   u1 as F       [0, 2]         0    6    2   -2    4   m2 m5 m3 m1 m4
#   u2 (F)        [-1, 3]       -3    9    1   -4    8   m2 m5 m3 m1 m4
#   u2 as M       [0, 1]         0    3    1   -1    2   m2 m5 m3 m1 m4
#   unknown       [-1, 0]       -3    0   -2   -1    2   m5 m2 m4 m3 m1
#   unknown as F  [-2, 2]       -6    6   -2   -4    8   m5 m2 m3 m4 m1
USER_VECTORS = {b'u1': [1., 0.], b'u2': [0., 1.]}
UNKNOWN_VECTOR = [-1., 0.]
FEMALE_OFFSET = [-1., 2.]

# Histories (catalogue rows): u1 rated m1 in train and m4 in eval; u2 rated
# m2, m5, m3 in train and m1 in eval, so only m4 is left to recommend.
USERS = [b'u1', b'u2']
USER_FEATURES = {
    b'u1': {features.AGE: 20, features.GENDER: b'M',
            features.OCCUPATION: b'student', features.ZIP_CODE: b'85711',
            features.TIMESTAMP: 30},
    b'u2': {features.AGE: 40, features.GENDER: b'F',
            features.OCCUPATION: b'writer', features.ZIP_CODE: None,
            features.TIMESTAMP: 50},
}
TRAIN_ROWS = [[0], [1, 4, 2]]
EVAL_ROWS = [[3], [0]]

INF = float('inf')


class _FakeTowers(tf.Module):
  """The Trainer's towers contract, over serialized raw Examples."""

  def __init__(self):
    super().__init__()
    self._users = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(USER_VECTORS)),
            tf.range(len(USER_VECTORS), dtype=tf.int64)),
        default_value=len(USER_VECTORS))
    self._user_vectors = tf.constant(
        list(USER_VECTORS.values()) + [UNKNOWN_VECTOR])
    self._movies = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(MOVIES), tf.range(len(MOVIES), dtype=tf.int64)),
        default_value=len(MOVIES))
    self._movie_vectors = tf.constant(
        np.concatenate([MOVIE_VECTORS, [[0., 0.]]]), tf.float32)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def query_embedding(self, examples):
    parsed = tf.io.parse_example(examples, {
        key: tf.io.FixedLenFeature([], tf.string, default_value='')
        for key in (features.USER_ID, features.GENDER)})
    vectors = tf.gather(self._user_vectors,
                        self._users.lookup(parsed[features.USER_ID]))
    female = tf.cast(tf.equal(parsed[features.GENDER], 'F'), tf.float32)
    return {'embedding': vectors + female[:, None] * FEMALE_OFFSET}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def candidate_embedding(self, examples):
    parsed = tf.io.parse_example(examples, {
        features.MOVIE_ID: tf.io.FixedLenFeature([], tf.string)})
    return {'embedding': tf.gather(
        self._movie_vectors, self._movies.lookup(parsed[features.MOVIE_ID]))}


def _example(**values):
  feature = {}
  for key, value in values.items():
    if isinstance(value, int):
      feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(
          value=[value]))
    else:
      feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[value]))
  return tf.train.Example(features=tf.train.Features(
      feature=feature)).SerializeToString()


@pytest.fixture(scope='module')
def towers(tmp_path_factory):
  """The fake towers, saved and loaded like the Trainer's SavedModel."""
  module = _FakeTowers()
  export_dir = str(tmp_path_factory.mktemp('towers'))
  tf.saved_model.save(module, export_dir, signatures={
      'query_embedding': module.query_embedding,
      'candidate_embedding': module.candidate_embedding})
  return tf.saved_model.load(export_dir)


def _save_servable(towers, export_dir, top_k, exclude_seen=True,
                   index=retrieval_index.BRUTE_FORCE):
  servable = retrieval_export.RetrievalServable(
      towers, MOVIES, TITLES, MOVIE_VECTORS, USERS,
      [retrieval_export.user_example(u, USER_FEATURES[u]) for u in USERS],
      TRAIN_ROWS, EVAL_ROWS, top_k=top_k, exclude_seen=exclude_seen,
      index=index)
  retrieval_export.save(servable, export_dir)
  return tf.saved_model.load(export_dir)


@pytest.fixture(scope='module', params=[
    retrieval_index.BRUTE_FORCE,
    pytest.param(retrieval_index.SCANN, marks=pytest.mark.skipif(
        not retrieval_index.scann_available(),
        reason=f'ScaNN not installed ({retrieval_index.SCANN_INSTALL})'))])
def servables(request, towers, tmp_path_factory):
  """Saved and reloaded: top 3 (default), top 3 keeping seen movies, and
  top 10 (more than the catalogue); each with both indexes, which must give
  the same answers (ScaNN scores a catalogue this small exactly)."""
  root = tmp_path_factory.mktemp('servables')
  index = request.param
  return {
      'top3': _save_servable(towers, str(root / 'top3'), 3, index=index),
      'keep_seen': _save_servable(towers, str(root / 'keep'), 3,
                                  exclude_seen=False, index=index),
      'top10': _save_servable(towers, str(root / 'top10'), 10, index=index),
  }


def _answer(servable, signature, **inputs):
  outputs = servable.signatures[signature](
      **{k: tf.constant(v) for k, v in inputs.items()})
  return {k: v.numpy().tolist() for k, v in outputs.items()}


def _titles(ids):
  return [[TITLES[MOVIES.index(m)] if m else b'' for m in row] for row in ids]


# ------------------------------------------------------------ building blocks


def test_user_example_holds_the_id_and_the_known_features():
  serialized = retrieval_export.user_example(b'u2', USER_FEATURES[b'u2'])

  feature = tf.train.Example.FromString(serialized).features.feature
  # zip_code is None: left out, so the towers use their default.
  assert set(feature) == {'user_id', 'age', 'gender', 'occupation',
                          'timestamp'}
  assert feature['user_id'].bytes_list.value == [b'u2']
  assert feature['age'].int64_list.value == [40]
  assert feature['gender'].bytes_list.value == [b'F']
  assert feature['occupation'].bytes_list.value == [b'writer']
  assert feature['timestamp'].int64_list.value == [50]


def test_user_example_of_an_unknown_user_has_only_the_empty_id():
  feature = tf.train.Example.FromString(
      retrieval_export.user_example(b'', {})).features.feature

  assert set(feature) == {'user_id'}
  assert feature['user_id'].bytes_list.value == [b'']


def test_embed_catalogue_keeps_the_order_across_batches(towers):
  # 5 movies in batches of 2: [m3, m1], [m5, m2], [m4].
  order = [b'm3', b'm1', b'm5', b'm2', b'm4']
  examples = [_example(movie_id=m) for m in order]

  embeddings = retrieval_export.embed_catalogue(towers, examples,
                                                batch_size=2)

  expected = MOVIE_VECTORS[[MOVIES.index(m) for m in order]]
  np.testing.assert_array_equal(embeddings, expected)
  assert embeddings.shape == (5, 2)


# ---------------------------------------------------------------- contract


def test_saved_signatures_and_their_inputs_and_outputs(servables):
  servable = servables['top3']

  assert set(servable.signatures) == {'serving_default', 'serving_examples',
                                      'evaluation'}
  outputs = {
      'movie_ids': tf.TensorSpec([None, 3], tf.string, 'movie_ids'),
      'movie_titles': tf.TensorSpec([None, 3], tf.string, 'movie_titles'),
      'scores': tf.TensorSpec([None, 3], tf.float32, 'scores'),
  }
  for name, input_name in (('serving_default', 'user_id'),
                           ('evaluation', 'user_id'),
                           ('serving_examples', 'examples')):
    signature = servable.signatures[name]
    args, kwargs = signature.structured_input_signature
    assert args == ()
    assert kwargs == {
        input_name: tf.TensorSpec([None], tf.string, input_name)}, name
    assert signature.structured_outputs == outputs, name


def test_top_k_is_capped_at_the_catalogue_size(servables):
  signature = servables['top10'].signatures['serving_default']

  assert signature.structured_outputs['movie_ids'].shape.as_list() == [None, 5]
  # Unknown user, nothing excluded: all 5 movies, m5 m2 m4 m3 m1.
  answer = _answer(servables['top10'], 'serving_default', user_id=[b'u9'])
  assert answer['movie_ids'] == [[b'm5', b'm2', b'm4', b'm3', b'm1']]
  assert answer['scores'] == [[2., 0., -1., -2., -3.]]
  # u1 has 2 of the 5 seen: 3 answers, then blanks.
  answer = _answer(servables['top10'], 'serving_default', user_id=[b'u1'])
  assert answer['movie_ids'] == [[b'm3', b'm2', b'm5', b'', b'']]
  assert answer['scores'] == [[2., 0., -2., -INF, -INF]]


# --------------------------------------------------------- serving_default


def test_serving_default_ranks_by_dot_product_without_seen_movies(servables):
  answer = _answer(servables['top3'], 'serving_default', user_id=[b'u1'])

  # u1: m1 3, m3 2, m4 1, m2 0, m5 -2; m1 (train) and m4 (eval) are seen.
  assert answer == {
      'movie_ids': [[b'm3', b'm2', b'm5']],
      'movie_titles': [[b'Three (1993)', b'Two (1992)', b'Five (1995)']],
      'scores': [[2., 0., -2.]],
  }


def test_serving_default_answers_a_batch_of_known_unknown_and_heavy_users(
    servables):
  answer = _answer(servables['top3'], 'serving_default',
                   user_id=[b'u1', b'u9', b'u2', b''])

  assert answer['movie_ids'] == [
      [b'm3', b'm2', b'm5'],
      # Unknown: [-1, 0] scores m5 2, m2 0, m4 -1; nothing excluded.
      [b'm5', b'm2', b'm4'],
      # u2 has seen 4 of 5 movies: m4 (-4), then blanks.
      [b'm4', b'', b''],
      # The empty id is an unknown user too.
      [b'm5', b'm2', b'm4'],
  ]
  assert answer['scores'] == [[2., 0., -2.], [2., 0., -1.],
                              [-4., -INF, -INF], [2., 0., -1.]]
  assert answer['movie_titles'] == _titles(answer['movie_ids'])


def test_exclude_seen_false_keeps_the_seen_movies(servables):
  answer = _answer(servables['keep_seen'], 'serving_default',
                   user_id=[b'u1', b'u2'])

  # u1: m1 3, m3 2, m4 1; u2: m2 9, m5 8, m3 1.
  assert answer['movie_ids'] == [[b'm1', b'm3', b'm4'], [b'm2', b'm5', b'm3']]
  assert answer['scores'] == [[3., 2., 1.], [9., 8., 1.]]


# -------------------------------------------------------------- evaluation


def test_evaluation_excludes_only_the_train_movies(servables):
  answer = _answer(servables['top3'], 'evaluation',
                   user_id=[b'u1', b'u2', b'u9'])

  # u1: m1 excluded; m4 (eval) is back: m3 2, m4 1, m2 0.
  # u2: m2, m5, m3 excluded; m1 -3, m4 -4, then a blank.
  assert answer['movie_ids'] == [[b'm3', b'm4', b'm2'], [b'm1', b'm4', b''],
                                 [b'm5', b'm2', b'm4']]
  assert answer['scores'] == [[2., 1., 0.], [-3., -4., -INF], [2., 0., -1.]]
  assert answer['movie_titles'] == _titles(answer['movie_ids'])


def test_evaluation_excludes_train_movies_even_when_serving_keeps_them(
    servables):
  answer = _answer(servables['keep_seen'], 'evaluation', user_id=[b'u1'])

  assert answer['movie_ids'] == [[b'm3', b'm4', b'm2']]


# -------------------------------------------------------- serving_examples


def test_serving_examples_with_only_the_id_uses_the_stored_features(
    servables):
  ids = [b'u1', b'u2', b'u9']
  by_id = _answer(servables['top3'], 'serving_default', user_id=ids)

  by_example = _answer(servables['top3'], 'serving_examples',
                       examples=[_example(user_id=u) for u in ids])

  assert by_example == by_id
  # u2's stored gender F is used: m4 scores -4 (as M it would be -1).
  assert by_example['scores'][1][0] == -4.


def test_features_in_the_example_override_the_stored_ones(servables):
  answer = _answer(servables['top3'], 'serving_examples', examples=[
      _example(user_id=b'u1', gender=b'F'),
      _example(user_id=b'u2', gender=b'M', age=41),
      _example(user_id=b'u9', gender=b'F'),
      _example(gender=b'F'),
  ])

  assert answer['movie_ids'] == [
      # u1 as F [0, 2]: m2 6, m5 4, m3 2 (m1, m4 still excluded).
      [b'm2', b'm5', b'm3'],
      # u2 as M [0, 1]: only m4 is unseen, now scoring -1.
      [b'm4', b'', b''],
      # A new user with a gender gets a cold-start answer: [-2, 2] scores
      # m5 8, m2 6, m3 -2.
      [b'm5', b'm2', b'm3'],
      # No id at all: the same as the new user.
      [b'm5', b'm2', b'm3'],
  ]
  assert answer['scores'] == [[6., 4., 2.], [-1., -INF, -INF], [8., 6., -2.],
                              [8., 6., -2.]]
  assert answer['movie_titles'] == _titles(answer['movie_ids'])


def test_saved_servable_does_not_need_the_towers_directory(tmp_path):
  towers_dir, export_dir = str(tmp_path / 'towers'), str(tmp_path / 'serve')
  module = _FakeTowers()
  tf.saved_model.save(module, towers_dir, signatures={
      'query_embedding': module.query_embedding,
      'candidate_embedding': module.candidate_embedding})
  _save_servable(tf.saved_model.load(towers_dir), export_dir, top_k=1)
  shutil.rmtree(towers_dir)

  servable = tf.saved_model.load(export_dir)

  assert os.path.isfile(os.path.join(export_dir, 'saved_model.pb'))
  assert _answer(servable, 'serving_default', user_id=[b'u1', b'u2']) == {
      'movie_ids': [[b'm3'], [b'm4']],
      'movie_titles': [[b'Three (1993)'], [b'Four (1994)']],
      'scores': [[2.], [-4.]],
  }
