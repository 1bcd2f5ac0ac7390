"""RetrievalIndexer: construction, and the executor on generated raw ratings
and catalogue records with a fake towers SavedModel, checked through the
answers of the servable it writes."""

import os
import subprocess
import sys

import pytest
import tensorflow as tf
from tfx import types
from tfx.types import artifact_utils, standard_artifacts

from components.retrieval_indexer import RetrievalIndexer, executor, spec
from modules import features, retrieval_index

pytestmark = pytest.mark.integration

# Candidate embeddings by movie id (the fake candidate tower's table).
MOVIE_VECTORS = {b'm1': [3., 0.], b'm2': [0., 3.], b'm3': [2., 1.],
                 b'm4': [1., -1.], b'm5': [-2., 2.]}
# The fake query tower embeds only the occupation; '' is a missing one.
OCCUPATION_VECTORS = {b'writer': [1., 0.], b'doctor': [0., 1.],
                      b'student': [-1., 0.], b'artist': [-1., -1.],
                      b'': [1., 0.5]}
# Scores q . c:
#
#   occupation       m1    m2    m3    m4    m5
#   writer [1, 0]     3     0     2     1    -2
#   doctor [0, 1]     0     3     1    -1     2
#   student [-1, 0]  -3     0    -2    -1     2
#   artist [-1, -1]  -3    -3    -3     0     0
#   '' [1, 0.5]       3   1.5   2.5   0.5    -1

# The catalogue, in file order (not id order); m5 is rated by nobody and
# has neither a release year nor genres.
CATALOGUE = [
    (b'm3', b'Three Colors: Red (1994)', [b'Drama'], 1994),
    (b'm1', b'Toy Story (1995)', [b'Animation', b'Comedy'], 1995),
    (b'm5', b'Unknown Film', [], None),
    (b'm2', b'GoldenEye (1995)', [b'Action'], 1995),
    (b'm4', b'Heat (1995)', [b'Crime', b'Thriller'], 1995),
]
TITLES = {movie: title for movie, title, _, _ in CATALOGUE}

# (user, movie, timestamp, occupation). u1's train ratings are out of time
# order; the latest (t=30) says writer. Their eval rating says artist, which
# must not be used. u2 also rated m9, which is not in the catalogue.
TRAIN_FILES = [
    [(b'u1', b'm2', 30, b'writer'), (b'u1', b'm1', 10, b'student'),
     (b'u1', b'm3', 20, b'doctor')],
    [(b'u2', b'm2', 5, b'doctor'), (b'u2', b'm9', 6, b'doctor')],
]
EVAL = [(b'u1', b'm4', 40, b'artist')]

INF = float('inf')


def _bytes(*values):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _int(value):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def _movie_features(movie):
  """The movie's features; m9 (rated, not in the catalogue) gets some."""
  _, title, genres, year = next(
      (m for m in CATALOGUE if m[0] == movie), (movie, b'Lost (1990)', [],
                                                1990))
  feature = {features.MOVIE_ID: _bytes(movie), features.TITLE: _bytes(title),
             features.GENRES: _bytes(*genres)}
  if year is not None:
    feature[features.RELEASE_YEAR] = _int(year)
  return feature


def _movie(movie):
  return tf.train.Example(features=tf.train.Features(
      feature=_movie_features(movie)))


def _rating(user, movie, timestamp, occupation):
  """A rating as MovieLensExampleGen writes it: rating, user and movie."""
  feature = _movie_features(movie)
  feature.update({
      features.USER_ID: _bytes(user),
      features.RATING: tf.train.Feature(
          float_list=tf.train.FloatList(value=[4.0])),
      features.TIMESTAMP: _int(timestamp),
      features.AGE: _int(30),
      features.GENDER: _bytes(b'M'),
      features.OCCUPATION: _bytes(occupation),
      features.ZIP_CODE: _bytes(b'85711'),
  })
  return tf.train.Example(features=tf.train.Features(feature=feature))


def _write(artifact, split, files):
  split_dir = os.path.join(artifact.uri, f'Split-{split}')
  os.makedirs(split_dir, exist_ok=True)
  for i, examples in enumerate(files):
    path = os.path.join(split_dir,
                        f'data_tfrecord-{i:05d}-of-{len(files):05d}.gz')
    with tf.io.TFRecordWriter(path, 'GZIP') as writer:
      for example in examples:
        writer.write(example.SerializeToString())


def _row_table(keys):
  """keys[i] -> i; any other key -> len(keys)."""
  return tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(
          tf.constant(keys), tf.range(len(keys), dtype=tf.int64)),
      default_value=len(keys))


class _FakeTowers(tf.Module):
  """The Trainer's towers contract, over serialized raw Examples."""

  def __init__(self, scale=1.0):
    super().__init__()
    self._scale = scale  # Of the query embeddings (to tell towers apart).
    # Unknown keys look up the last row: the '' vector, or zeros.
    self._occupations = _row_table(list(OCCUPATION_VECTORS))
    self._occupation_vectors = tf.constant(
        list(OCCUPATION_VECTORS.values()) + [OCCUPATION_VECTORS[b'']])
    self._movies = _row_table(list(MOVIE_VECTORS))
    self._movie_vectors = tf.constant(list(MOVIE_VECTORS.values()) +
                                      [[0., 0.]])

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def query_embedding(self, examples):
    occupation = tf.io.parse_example(examples, {
        features.OCCUPATION: tf.io.FixedLenFeature([], tf.string,
                                                   default_value='')})
    return {'embedding': self._scale * tf.gather(
        self._occupation_vectors,
        self._occupations.lookup(occupation[features.OCCUPATION]))}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def candidate_embedding(self, examples):
    movie = tf.io.parse_example(examples, {
        features.MOVIE_ID: tf.io.FixedLenFeature([], tf.string)})
    return {'embedding': tf.gather(
        self._movie_vectors, self._movies.lookup(movie[features.MOVIE_ID]))}


def _save_towers(towers, path):
  tf.saved_model.save(towers, path, signatures={
      'query_embedding': towers.query_embedding,
      'candidate_embedding': towers.candidate_embedding})


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
  """The towers (in TFX's model layout), raw ratings and the catalogue."""
  root = tmp_path_factory.mktemp('indexer_inputs')
  model = standard_artifacts.Model()
  model.uri = str(root / 'model')
  _save_towers(_FakeTowers(), os.path.join(model.uri, 'Format-Serving'))
  ratings = standard_artifacts.Examples()
  ratings.uri = str(root / 'ratings')
  ratings.split_names = artifact_utils.encode_split_names(['train', 'eval'])
  _write(ratings, 'train', [[_rating(*r) for r in f] for f in TRAIN_FILES])
  _write(ratings, 'eval', [[_rating(*r) for r in EVAL]])
  movies = standard_artifacts.Examples()
  movies.uri = str(root / 'movies')
  movies.split_names = artifact_utils.encode_split_names(['catalog'])
  _write(movies, 'catalog', [[_movie(m[0]) for m in CATALOGUE]])
  return {spec.MODEL_KEY: [model], spec.RATINGS_KEY: [ratings],
          spec.MOVIES_KEY: [movies]}


def _run(inputs, uri, **exec_properties):
  servable = standard_artifacts.Model()
  servable.uri = str(uri)
  executor.Executor().Do(inputs, {spec.SERVABLE_KEY: [servable]},
                         exec_properties)
  return tf.saved_model.load(os.path.join(servable.uri, 'Format-Serving'))


@pytest.fixture(scope='module')
def servable(inputs, tmp_path_factory):
  return _run(inputs, tmp_path_factory.mktemp('servable'),
              **{spec.TOP_K_KEY: 3, spec.EXCLUDE_SEEN_KEY: None})


def _answer(servable, signature, users):
  outputs = servable.signatures[signature](user_id=tf.constant(users))
  answer = {k: v.numpy().tolist() for k, v in outputs.items()}
  assert answer['movie_titles'] == [[TITLES.get(m, b'') for m in row]
                                    for row in answer['movie_ids']]
  return answer['movie_ids'], answer['scores']


# ---------------------------------------------------------------- executor


def test_serving_default_excludes_train_and_eval_movies(servable):
  ids, scores = _answer(servable, 'serving_default', [b'u1', b'u2'])

  # u1 (writer) saw m2, m1, m3 in train and m4 in eval: only m5 is left.
  # u2 (doctor) saw m2 (m9 is not in the catalogue): m5 2, m3 1, m1 0.
  assert ids == [[b'm5', b'', b''], [b'm5', b'm3', b'm1']]
  assert scores == [[-2., -INF, -INF], [2., 1., 0.]]


def test_a_catalogue_movie_nobody_rated_is_recommended(servable):
  ids, _ = _answer(servable, 'serving_default', [b'u2'])

  assert ids[0][0] == b'm5'
  assert b'm5' not in {r[1] for f in TRAIN_FILES for r in f} | {
      r[1] for r in EVAL}


def test_evaluation_excludes_only_train_movies(servable):
  ids, scores = _answer(servable, 'evaluation', [b'u1', b'u2'])

  # u1: m4 (eval) is rankable again: m4 1, m5 -2.
  assert ids == [[b'm4', b'm5', b''], [b'm5', b'm3', b'm1']]
  assert scores == [[1., -2., -INF], [2., 1., 0.]]


def test_user_features_come_from_the_latest_train_rating(servable):
  # Scores of m4 and m5 for u1 in `evaluation` by the occupation used:
  # writer (t=30, latest train) 1, -2; doctor (t=20, last in the file) -1, 2;
  # student (t=10) -1, 2; artist (eval, t=40) 0, 0.
  ids, scores = _answer(servable, 'evaluation', [b'u1'])

  assert ids[0][:2] == [b'm4', b'm5']
  assert scores[0][:2] == [1., -2.]


def test_an_unknown_user_gets_default_features_and_no_exclusions(servable):
  ids, scores = _answer(servable, 'serving_default', [b'u9'])

  # No occupation -> [1, 0.5]: m1 3, m3 2.5, m2 1.5.
  assert ids == [[b'm1', b'm3', b'm2']]
  assert scores == [[3., 2.5, 1.5]]


def test_serving_examples_signature_is_saved(servable):
  example = tf.train.Example(features=tf.train.Features(feature={
      features.USER_ID: _bytes(b'u2'),
      features.OCCUPATION: _bytes(b'writer')})).SerializeToString()

  outputs = servable.signatures['serving_examples'](
      examples=tf.constant([example]))

  # u2 as a writer: m1 3, m3 2, m4 1 (m2 still excluded).
  assert outputs['movie_ids'].numpy().tolist() == [[b'm1', b'm3', b'm4']]


def test_refit_towers_are_served_and_the_early_stopped_ones_evaluated(
    inputs, tmp_path):
  # The refit towers (here: query embeddings x2) to serve, the
  # early-stopped ones (the fixture's) to evaluate.
  refit = standard_artifacts.Model()
  refit.uri = str(tmp_path / 'refit')
  _save_towers(_FakeTowers(scale=2.), os.path.join(refit.uri,
                                                   'Format-Serving'))
  uri = tmp_path / 'servable'
  served = _run(dict(inputs, **{spec.MODEL_KEY: [refit],
                                spec.EVAL_MODEL_KEY: inputs[spec.MODEL_KEY]}),
                uri, **{spec.TOP_K_KEY: 3})
  evaluated = tf.saved_model.load(os.path.join(uri, 'Format-TFMA'))

  # The eval model answers as a servable of the early-stopped towers, with
  # u1's features from their latest train rating (writer: m4 1, m5 -2).
  assert _answer(evaluated, 'evaluation', [b'u1', b'u2']) == (
      [[b'm4', b'm5', b''], [b'm5', b'm3', b'm1']],
      [[1., -2., -INF], [2., 1., 0.]])
  # The served one scores with the refit towers (twice the scores), and
  # takes u1's features from their latest rating in train or eval: the
  # eval rating's artist ([-1, -1]) gives m5 0, where writer gave -4.
  assert _answer(served, 'serving_default', [b'u1', b'u2']) == (
      [[b'm5', b'', b''], [b'm5', b'm3', b'm1']],
      [[0., -INF, -INF], [4., 2., 0.]])


def test_without_an_eval_model_only_the_serving_servable_is_written(
    inputs, tmp_path):
  _run(inputs, tmp_path / 'servable', **{spec.TOP_K_KEY: 3})

  assert sorted(os.listdir(tmp_path / 'servable')) == ['Format-Serving']


def test_defaults_index_the_whole_catalogue_and_exclude_seen(
    inputs, tmp_path):
  servable = _run(inputs, tmp_path / 'servable')

  ids, scores = _answer(servable, 'serving_default', [b'u2'])
  # top_k 100 capped at the 5 movies; m2 excluded.
  assert ids == [[b'm5', b'm3', b'm1', b'm4', b'']]
  assert scores == [[2., 1., 0., -1., -INF]]


def test_exclude_seen_off_keeps_the_seen_movies(inputs, tmp_path):
  servable = _run(inputs, tmp_path / 'servable',
                  **{spec.TOP_K_KEY: 3, spec.EXCLUDE_SEEN_KEY: 0})

  ids, scores = _answer(servable, 'serving_default', [b'u1', b'u2'])
  assert ids == [[b'm1', b'm3', b'm4'], [b'm2', b'm5', b'm3']]
  assert scores == [[3., 2., 1.], [3., 2., 1.]]
  # `evaluation` still leaves out the train movies.
  ids, _ = _answer(servable, 'evaluation', [b'u1'])
  assert ids == [[b'm4', b'm5', b'']]


def test_executor_rejects_a_negative_top_k(inputs, tmp_path):
  with pytest.raises(ValueError, match='top_k must be at least 1, got -1'):
    _run(inputs, tmp_path / 'servable', **{spec.TOP_K_KEY: -1})
  assert not os.path.exists(tmp_path / 'servable')


def test_executor_rejects_top_k_zero(inputs, tmp_path):
  with pytest.raises(ValueError, match='top_k must be at least 1, got 0'):
    _run(inputs, tmp_path / 'servable', **{spec.TOP_K_KEY: 0})


def test_executor_fails_clearly_without_catalogue_records(inputs, tmp_path):
  movies = standard_artifacts.Examples()
  movies.uri = str(tmp_path / 'movies')
  movies.split_names = artifact_utils.encode_split_names(['catalog'])
  os.makedirs(os.path.join(movies.uri, 'Split-catalog'))

  with pytest.raises(ValueError, match='No examples in .*Split-catalog'):
    _run(dict(inputs, **{spec.MOVIES_KEY: [movies]}), tmp_path / 'servable')


def test_default_index_is_brute_force_and_recorded(inputs, tmp_path):
  servable = standard_artifacts.Model()
  servable.uri = str(tmp_path / 'servable')

  executor.Executor().Do(inputs, {spec.SERVABLE_KEY: [servable]},
                         {spec.TOP_K_KEY: 3})

  assert servable.get_string_custom_property('index') == 'brute_force'
  assert not servable.has_custom_property('index_recall_at_k')
  assert not retrieval_index.uses_scann_ops(
      os.path.join(servable.uri, 'Format-Serving'))


@pytest.mark.skipif(not retrieval_index.scann_available(),
                    reason=f'ScaNN not installed '
                    f'({retrieval_index.SCANN_INSTALL})')
def test_scann_index_gives_the_same_answers_and_records_its_recall(
    inputs, tmp_path):
  servable = standard_artifacts.Model()
  servable.uri = str(tmp_path / 'servable')

  executor.Executor().Do(inputs, {spec.SERVABLE_KEY: [servable]},
                         {spec.TOP_K_KEY: 3, spec.INDEX_KEY: 'scann'})

  export_dir = os.path.join(servable.uri, 'Format-Serving')
  assert retrieval_index.uses_scann_ops(export_dir)
  # 5 movies: ScaNN scores them all exactly, as brute force does
  # (see test_serving_default_excludes_train_and_eval_movies).
  loaded = tf.saved_model.load(export_dir)
  ids, scores = _answer(loaded, 'serving_default', [b'u1', b'u2'])
  assert ids == [[b'm5', b'', b''], [b'm5', b'm3', b'm1']]
  assert scores == [[-2., -INF, -INF], [2., 1., 0.]]
  assert servable.get_string_custom_property('index') == 'scann'
  # Both users' queries (u1 writer, u2 doctor) found the exact top 3.
  assert servable.get_float_custom_property('index_recall_at_k') == 1.0
  assert servable.get_int_custom_property('index_recall_queries') == 2
  # A fresh process (no TFX, so no TFRS import registering ScaNN's ops by
  # chance): the local server registers them itself, then answers.
  loaded = subprocess.run(
      [sys.executable, '-c', 'import sys; import tensorflow as tf; '
       'from serving import server; '
       'server.load_version(sys.argv[1], "retrieval", 1); '
       'print(tf.saved_model.load(sys.argv[1]).signatures["serving_default"]'
       '(user_id=tf.constant(["u2"]))["movie_ids"].numpy().tolist())',
       export_dir], capture_output=True, text=True, timeout=300,
      env=dict(os.environ, TF_USE_LEGACY_KERAS='1'), check=False)
  assert loaded.returncode == 0, loaded.stderr[-2000:]
  assert loaded.stdout.strip().endswith("[[b'm5', b'm3', b'm1']]")


def test_executor_rejects_an_unknown_index(inputs, tmp_path):
  with pytest.raises(ValueError, match="Unknown retrieval index 'annoy'"):
    _run(inputs, tmp_path / 'servable', **{spec.INDEX_KEY: 'annoy'})


def test_executor_without_scann_says_what_to_install(inputs, tmp_path,
                                                     monkeypatch):
  monkeypatch.setitem(sys.modules, 'scann', None)  # As if not installed.

  with pytest.raises(ImportError, match=r"pip install 'scann==1\.3\.2'"):
    _run(inputs, tmp_path / 'servable', **{spec.INDEX_KEY: 'scann'})
  assert not os.path.exists(tmp_path / 'servable')


# ------------------------------------------------------------ construction


def _channel(artifact_type):
  return types.Channel(type=artifact_type)


def _indexer(**kwargs):
  return RetrievalIndexer(model=_channel(standard_artifacts.Model),
                          ratings=_channel(standard_artifacts.Examples),
                          movies=_channel(standard_artifacts.Examples),
                          **kwargs)


def test_construction_inputs_outputs_and_exec_properties():
  component = _indexer(top_k=20, exclude_seen=False)

  assert component.id == 'RetrievalIndexer'
  assert {k: c.type for k, c in component.inputs.items()} == {
      'model': standard_artifacts.Model,
      'ratings': standard_artifacts.Examples,
      'movies': standard_artifacts.Examples}
  assert {k: c.type for k, c in component.outputs.items()} == {
      'servable': standard_artifacts.Model}
  assert 'eval_model' not in component.inputs  # Optional: none given.
  with_eval = _indexer(eval_model=_channel(standard_artifacts.Model))
  assert with_eval.inputs['eval_model'].type == standard_artifacts.Model
  # exclude_seen is stored as an int (ExecutionParameter type).
  assert component.exec_properties == {'top_k': 20, 'exclude_seen': 0,
                                       'index': None}
  assert component.executor_spec.executor_class is executor.Executor


def test_construction_defaults_are_left_to_the_executor():
  assert _indexer().exec_properties == {'top_k': None, 'exclude_seen': None,
                                        'index': None}
  assert _indexer(exclude_seen=True).exec_properties['exclude_seen'] == 1


@pytest.mark.parametrize('index', ['brute_force', 'scann'])
def test_construction_takes_an_index_by_name(index):
  # Only the name is checked: the compiling machine may lack ScaNN.
  assert _indexer(index=index).exec_properties['index'] == index


def test_construction_rejects_an_unknown_index():
  with pytest.raises(ValueError, match="Unknown retrieval index 'faiss'; "
                     'known: brute_force, scann'):
    _indexer(index='faiss')


@pytest.mark.parametrize('top_k', [0, -5])
def test_construction_rejects_top_k_below_one(top_k):
  with pytest.raises(ValueError, match=f'top_k must be at least 1, got '
                     f'{top_k}'):
    _indexer(top_k=top_k)
