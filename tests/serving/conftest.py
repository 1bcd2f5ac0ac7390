"""Tiny SavedModels with the three serving contracts, and a local server.

The models are plain TF with a few hard-coded movies, so every answer can be
computed by hand:

  movie vectors  10: [1, 0]   20: [0, 1]   30: [1, 1]   40: [-1, 0]
                 50: [0, -1]
  user vectors   '1': [2, 1]   '2': [-1, 3]   any other id: [3, -1]

  scores q . m        10   20   30   40   50    top 3 (retrieval)
  user '1'             2    1    3   -2   -1    30 10 20
  user '2'            -1    3    2    1   -3    20 30 40
  unknown              3   -1    2   -3    1    10 30 50

The recommender returns the top 2 of the same scores, with the predicted
rating 2.5 + score / 2 per movie (user '1': 30 -> 4.0, 10 -> 3.5). Version 2 of the
retrieval model (`RETRIEVAL_V2`) negates the user vectors, so user '1' gets
[-2, -1]: scores -2 -1 -3 2 1, top 3: 40 50 20.

Ranking: rating = 3 + user bias + movie bias, biases '1': 0.5, '2': -1,
'10': 1, '20': 0.25, unknown ids 0; so (1, 10) -> 4.5, (2, 20) -> 2.25,
(1, 99) -> 3.5, (x, y) -> 3.0.
"""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from serving import server as serving_server

MOVIE_IDS = ['10', '20', '30', '40', '50']
MOVIE_TITLES = {'10': 'Ten (1990)', '20': 'Twenty (1991)',
                '30': 'Thirty (1992)', '40': 'Forty (1993)',
                '50': 'Fifty (1994)'}
MOVIE_VECTORS = [[1., 0.], [0., 1.], [1., 1.], [-1., 0.], [0., -1.]]
USER_VECTORS = {'1': [2., 1.], '2': [-1., 3.]}
UNKNOWN_USER_VECTOR = [3., -1.]
USER_BIAS = {'1': 0.5, '2': -1.0}
MOVIE_BIAS = {'10': 1.0, '20': 0.25}

# (movie ids, scores), best first, from the table above.
RETRIEVAL_TOP3 = {'1': (['30', '10', '20'], [3., 2., 1.]),
                  '2': (['20', '30', '40'], [3., 2., 1.]),
                  'new-user': (['10', '30', '50'], [3., 2., 1.])}
RETRIEVAL_V2_TOP3 = {'1': (['40', '50', '20'], [2., 1., -1.])}
RECOMMENDER_TOP2 = {k: (ids[:2], scores[:2])
                    for k, (ids, scores) in RETRIEVAL_TOP3.items()}
RECOMMENDER_RATINGS = {k: [2.5 + s / 2 for s in scores]
                       for k, (_, scores) in RECOMMENDER_TOP2.items()}
RATINGS = {('1', '10'): 4.5, ('2', '20'): 2.25, ('1', '99'): 3.5,
           ('x', 'y'): 3.0}

RETRIEVAL, RANKING, RECOMMENDER = 'retrieval', 'ranking', 'recommender'
RETRIEVAL_V2 = 'retrieval_v2'
# Models whose serving_default cannot answer the empty string.
NUMERIC_IDS = 'numeric_ids'
NUMERIC_RANKING = 'numeric_ranking'  # rating = user id + movie id.


def _table(keys, default):
  return tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(
          tf.constant(list(keys)), tf.range(len(keys), dtype=tf.int64)),
      default_value=default)


class TinyRecommender(tf.Module):
  """The retrieval / recommender contract: user_id -> top K movies (and
  their predicted ratings, for the recommender)."""

  def __init__(self, k, sign=1.0, with_ratings=False):
    super().__init__()
    self._k = k
    self._with_ratings = with_ratings
    self.users = _table(USER_VECTORS, len(USER_VECTORS))
    self.user_vectors = tf.Variable(
        sign * np.array(list(USER_VECTORS.values()) + [UNKNOWN_USER_VECTOR],
                        np.float32))
    self.movie_vectors = tf.Variable(np.array(MOVIE_VECTORS, np.float32))
    self.movie_ids = tf.constant(MOVIE_IDS)
    self.movie_titles = tf.constant([MOVIE_TITLES[m] for m in MOVIE_IDS])

  def _top_k(self, user_id):
    query = tf.gather(self.user_vectors, self.users.lookup(user_id))
    scores = tf.matmul(query, self.movie_vectors, transpose_b=True)
    top_scores, rows = tf.math.top_k(scores, k=self._k)
    outputs = {'movie_ids': tf.gather(self.movie_ids, rows),
               'movie_titles': tf.gather(self.movie_titles, rows),
               'scores': top_scores}
    if self._with_ratings:
      outputs['ratings'] = 2.5 + top_scores / 2
    return outputs

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                               name='user_id')])
  def serve(self, user_id):
    return self._top_k(user_id)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                               name='examples')])
  def serve_examples(self, examples):
    parsed = tf.io.parse_example(examples, {
        'user_id': tf.io.FixedLenFeature([], tf.string, default_value='')})
    return self._top_k(parsed['user_id'])


class TinyRanking(tf.Module):
  """The ranking contract: (user_id, movie_id) -> rating."""

  def __init__(self):
    super().__init__()
    self.users = _table(USER_BIAS, len(USER_BIAS))
    self.movies = _table(MOVIE_BIAS, len(MOVIE_BIAS))
    self.user_bias = tf.Variable(list(USER_BIAS.values()) + [0.0])
    self.movie_bias = tf.Variable(list(MOVIE_BIAS.values()) + [0.0])

  @tf.function(input_signature=[
      tf.TensorSpec([None], tf.string, name='user_id'),
      tf.TensorSpec([None], tf.string, name='movie_id')])
  def serve(self, user_id, movie_id):
    return {'rating': 3.0 + tf.gather(self.user_bias,
                                      self.users.lookup(user_id)) +
                      tf.gather(self.movie_bias, self.movies.lookup(movie_id))}


class NumericIds(tf.Module):
  """user_id parsed as a number: fails on '' (no out-of-vocabulary path)."""

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                               name='user_id')])
  def serve(self, user_id):
    return {'scores': tf.strings.to_number(user_id)}


class NumericRanking(tf.Module):
  """The ranking contract with ids parsed as numbers: no unknown id."""

  @tf.function(input_signature=[
      tf.TensorSpec([None], tf.string, name='user_id'),
      tf.TensorSpec([None], tf.string, name='movie_id')])
  def serve(self, user_id, movie_id):
    return {'rating': tf.strings.to_number(user_id) +
                      tf.strings.to_number(movie_id)}


def save_model(name, export_dir):
  """Saves one of the fixture models into export_dir."""
  if name in (RETRIEVAL, RETRIEVAL_V2, RECOMMENDER):
    module = TinyRecommender(k=2 if name == RECOMMENDER else 3,
                             sign=-1.0 if name == RETRIEVAL_V2 else 1.0,
                             with_ratings=name == RECOMMENDER)
    signatures = {'serving_default': module.serve.get_concrete_function(),
                  'serving_examples':
                      module.serve_examples.get_concrete_function()}
  elif name == RANKING:
    module = TinyRanking()
    signatures = {'serving_default': module.serve.get_concrete_function()}
  elif name in (NUMERIC_IDS, NUMERIC_RANKING):
    module = NumericIds() if name == NUMERIC_IDS else NumericRanking()
    signatures = {'serving_default': module.serve.get_concrete_function()}
  else:
    raise ValueError(name)
  tf.saved_model.save(module, export_dir, signatures=signatures)


@pytest.fixture(scope='session')
def model_store(tmp_path_factory):
  """name -> a saved copy of each fixture model (saved once per session)."""
  root = tmp_path_factory.mktemp('saved_models')
  paths = {}
  for name in (RETRIEVAL, RETRIEVAL_V2, RANKING, RECOMMENDER, NUMERIC_IDS,
               NUMERIC_RANKING):
    paths[name] = str(root / name)
    save_model(name, paths[name])
  return paths


def install(model_store, name, model_dir, version):
  """Copies a stored model into <model_dir>/<version>/ as the pusher does:
  complete in a hidden folder first, then renamed into place."""
  os.makedirs(model_dir, exist_ok=True)
  staging = os.path.join(model_dir, f'.push-{version}')
  shutil.copytree(model_store[name], staging)
  final = os.path.join(model_dir, str(version))
  os.rename(staging, final)
  return final


@pytest.fixture(scope='session')
def serving_dir(model_store, tmp_path_factory):
  """<dir>/{retrieval,ranking,recommender}/1/: never modified by tests."""
  root = str(tmp_path_factory.mktemp('serving'))
  for name in (RETRIEVAL, RANKING, RECOMMENDER):
    install(model_store, name, os.path.join(root, name), 1)
  return root


@pytest.fixture(scope='session')
def in_process(serving_dir):
  """name -> the version 1 `serving_default` loaded in this process."""
  return {name: tf.saved_model.load(os.path.join(serving_dir, name, '1'))
          .signatures['serving_default']
          for name in (RETRIEVAL, RANKING, RECOMMENDER)}


@pytest.fixture(scope='session')
def local_server(serving_dir):
  """A LocalServer over `serving_dir` on a free loopback port."""
  server = serving_server.LocalServer(serving_dir, port=0).start()
  yield server
  server.stop()
