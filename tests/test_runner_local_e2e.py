"""End to end: `runner_local.py` on synthetic data, raw files to the pushed
retrieval, ranking and two-stage recommender servables.

Checks each artifact through ML Metadata, the blessings and the pushed
models' answers, the cache on a rerun, that a failing threshold pushes
nothing (and, for either model, no recommender), and that data breaking the
schema stops the run before Transform.
"""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma
import tensorflow_transform as tft
from tensorflow_data_validation.utils import anomalies_util
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.types import artifact_utils, standard_artifacts

import runner_local
from components.retrieval_evaluator import executor as retrieval_evaluator
from components.retrieval_evaluator import metrics as retrieval_metrics
from modules import features, retrieval_export, trend_calibration
from movielens import synthetic
from pipeline import configs

pytestmark = pytest.mark.e2e

COMPONENTS = ['MovieLensExampleGen', 'StatisticsGen', 'ImportSchemaGen',
              'ExampleValidator', 'AnomalyGate', 'Transform',
              'RetrievalTrainer', 'RetrievalRefit', 'RetrievalIndexer',
              'RetrievalEvaluator', 'RetrievalPusher', 'RankingTrainer',
              'RankingRefit', 'RankingEvaluator',
              'RankingPusher', 'RecommenderBuilder', 'RecommenderPusher']
EPOCHS = ['--epochs', '6', '--ranking-epochs', '4']
MODELS = ('retrieval', 'ranking', 'recommender')


def _pushed_versions(output_dir, model='retrieval'):
  base = os.path.join(output_dir, 'serving', model)
  return sorted(os.listdir(base)) if os.path.isdir(base) else []


def _run(data_dir, output_dir, *flags):
  return runner_local.main(['--data-dir', data_dir, '--output-dir',
                            output_dir] + EPOCHS + list(flags))


def _store(output_dir):
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = configs.metadata_path(output_dir)
  return metadata_store.MetadataStore(config)


def _latest(store, type_name, component=''):
  """The newest artifact of a type, optionally written by one component."""
  artifacts = [a for a in store.get_artifacts_by_type(type_name)
               if not component or f'/{component}/' in a.uri]
  assert artifacts, f'no {type_name} artifact of {component} in ML Metadata'
  return max(artifacts, key=lambda a: a.id)


def _count_records(pattern):
  files = glob.glob(pattern)
  assert files, pattern
  return sum(1 for _ in tf.data.TFRecordDataset(files, 'GZIP'))


@pytest.fixture(scope='module')
def synthetic_data(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp('raw'))
  # More movies than the servable's K (100), so recall@100 is not trivial;
  # flatter popularity and stronger tastes than the defaults, so a model
  # that learns users' tastes must beat the most-popular baseline.
  summary = synthetic.generate(data_dir, num_users=150, num_movies=300,
                               num_ratings=6000, seed=7, zipf_exponent=0.6,
                               taste_weight=40)
  return data_dir, summary


@pytest.fixture(scope='module')
def first_run(synthetic_data, tmp_path_factory):
  data_dir, summary = synthetic_data
  output_dir = str(tmp_path_factory.mktemp('outputs'))
  code = _run(data_dir, output_dir)
  return code, output_dir, data_dir, summary


def test_pipeline_succeeds_and_writes_every_artifact(first_run):
  code, output_dir, _, summary = first_run
  assert code == 0
  store = _store(output_dir)
  executions = store.get_executions()
  assert len(executions) >= len(COMPONENTS)
  assert all(e.last_known_state == metadata_store_pb2.Execution.COMPLETE
             for e in executions)

  ratings = _latest(store, 'Examples', 'MovieLensExampleGen/ratings')
  movies = _latest(store, 'Examples', 'MovieLensExampleGen/movies')
  train = _count_records(os.path.join(ratings.uri, 'Split-train', '*.gz'))
  eval_ = _count_records(os.path.join(ratings.uri, 'Split-eval', '*.gz'))
  assert train + eval_ == summary['ratings']
  # Each user's newest floor(20%) ratings are held out.
  assert 0.15 * summary['ratings'] < eval_ < 0.2 * summary['ratings'] + 1
  assert _count_records(os.path.join(movies.uri, 'Split-catalog',
                                     '*.gz')) == summary['movies']


def test_statistics_and_schema_and_no_anomalies(first_run):
  _, output_dir, _, summary = first_run
  store = _store(output_dir)
  statistics = _latest(store, 'ExampleStatistics', 'StatisticsGen')
  stats = tfdv.load_stats_binary(
      os.path.join(statistics.uri, 'Split-train', 'FeatureStats.pb'))
  by_name = {f.path.step[0]: f for f in stats.datasets[0].features}
  assert set(by_name) == set(features.RATING_FEATURES)
  assert by_name['rating'].num_stats.min >= 1
  assert by_name['rating'].num_stats.max <= 5

  schema = _latest(store, 'Schema', 'ImportSchemaGen')
  loaded = tfdv.load_schema_text(os.path.join(schema.uri, 'schema.pbtxt'))
  assert {f.name for f in loaded.feature} == set(features.RATING_FEATURES)

  anomalies = _latest(store, 'ExampleAnomalies', 'ExampleValidator')
  for split in ('train', 'eval'):
    path = os.path.join(anomalies.uri, f'Split-{split}', 'SchemaDiff.pb')
    assert os.path.exists(path)
    assert not anomalies_util.load_anomalies_binary(path).anomaly_info


def test_transform_vocabularies_cover_the_training_users(first_run):
  _, output_dir, data_dir, summary = first_run
  store = _store(output_dir)
  graph = _latest(store, 'TransformGraph')
  output = tft.TFTransformOutput(graph.uri)
  users = {u.decode() for u in output.vocabulary_by_name(
      features.vocabulary_name(features.USER_ID))}
  with open(os.path.join(data_dir, 'u.user')) as f:
    all_users = {line.split('|')[0] for line in f}
  # Every user has >= 5 ratings, so every user has train ratings.
  assert users == all_users
  genres = {g.decode() for g in output.vocabulary_by_name(
      features.vocabulary_name(features.GENRES))}
  assert genres <= set(synthetic_genres())
  transformed = _latest(store, 'Examples', 'Transform')
  assert artifact_utils.decode_split_names(
      transformed.properties['split_names'].string_value) == ['train', 'eval']
  feature_spec = output.transformed_feature_spec()
  assert feature_spec[features.transformed_name(features.USER_ID)].dtype == (
      tf.int64)


def synthetic_genres():
  from movielens import layout
  return layout.ML100K_GENRES


def test_retrieval_model_is_blessed_and_pushed(first_run):
  _, output_dir, _, _ = first_run
  store = _store(output_dir)
  blessing = _latest(store, 'ModelBlessing', 'RetrievalEvaluator')
  assert blessing.custom_properties['blessed'].int_value == 1
  assert os.path.exists(os.path.join(blessing.uri, 'BLESSED'))
  evaluation = _latest(store, 'ModelEvaluation', 'RetrievalEvaluator')
  report = json.load(open(os.path.join(evaluation.uri, 'metrics.json')))
  model, popularity = report['model']['metrics'], report['popularity'][
      'metrics']
  assert model['recall_at_100'] > popularity['recall_at_100']
  assert report['model']['train_movies_in_top_k'] == 0
  versions = _pushed_versions(output_dir)
  assert len(versions) == 1 and versions[0].isdigit()
  pushed = os.path.join(output_dir, 'serving', 'retrieval', versions[0])
  # Complete: graph, variables, and nothing left from staging.
  assert os.path.exists(os.path.join(pushed, 'saved_model.pb'))
  assert os.path.isdir(os.path.join(pushed, 'variables'))
  assert not [n for n in os.listdir(os.path.dirname(pushed))
              if n.startswith('.')]


def _ratings_by_user(data_dir):
  rated = {}
  with open(os.path.join(data_dir, 'u.data')) as f:
    for line in f:
      user, movie, _, _ = line.split('\t')
      rated.setdefault(user, set()).add(movie)
  return rated


def test_pushed_model_answers_users(first_run):
  _, output_dir, data_dir, summary = first_run
  version = _pushed_versions(output_dir)[-1]
  loaded = tf.saved_model.load(
      os.path.join(output_dir, 'serving', 'retrieval', version))
  serve = loaded.signatures['serving_default']
  rated = _ratings_by_user(data_dir)
  users = sorted(rated)[:5] + ['no-such-user']
  answer = serve(user_id=tf.constant(users))
  ids = answer['movie_ids'].numpy().astype(str)
  scores = answer['scores'].numpy()
  assert ids.shape == (6, 100) and scores.shape == (6, 100)
  assert answer['movie_titles'].dtype == tf.string
  assert (scores[:, :-1] >= scores[:, 1:]).all()  # best first
  for row, user in enumerate(users[:5]):
    # Never a movie the user rated (train or eval split).
    assert not set(ids[row]) & rated[user]
    assert len(set(ids[row])) == 100
  # The unknown user gets 100 real movies too.
  assert all(ids[5]) and len(set(ids[5])) == 100
  catalogue = {line.split('|')[0]: line.split('|')[1] for line in open(
      os.path.join(data_dir, 'u.item'), encoding='latin-1')}
  titles = answer['movie_titles'].numpy()
  assert titles[0][0].decode() == catalogue[ids[0][0]]


def test_ranking_model_is_evaluated_by_tfma_blessed_and_pushed(first_run):
  _, output_dir, data_dir, _ = first_run
  store = _store(output_dir)
  blessing = _latest(store, 'ModelBlessing', 'RankingEvaluator')
  assert blessing.custom_properties['blessed'].int_value == 1
  evaluation = _latest(store, 'ModelEvaluation', 'RankingEvaluator')
  result = tfma.load_eval_result(evaluation.uri)
  slices = {tuple(key): metrics for key, metrics in result.slicing_metrics}
  overall = next(iter(next(iter(slices[()].values())).values()))
  rmse = overall['root_mean_squared_error']['doubleValue']
  assert 0.3 < rmse < configs.MAX_RMSE
  # Sliced by gender, age bucket and genre.
  keys = {k for key in slices for k, _ in key}
  assert keys == {'gender', 'age_bucket_xf', 'genres'}
  assert (('gender', 'F'),) in slices and (('gender', 'M'),) in slices

  versions = _pushed_versions(output_dir, 'ranking')
  assert len(versions) == 1
  loaded = tf.saved_model.load(
      os.path.join(output_dir, 'serving', 'ranking', versions[0]))
  rated = _ratings_by_user(data_dir)
  user = sorted(rated)[0]
  movie = sorted(rated[user])[0]
  answer = loaded.signatures['serving_default'](
      user_id=tf.constant([user, 'no-such-user', user]),
      movie_id=tf.constant([movie, movie, 'no-such-movie']))
  assert list(answer) == ['rating']
  ratings = answer['rating'].numpy()
  assert ratings.shape == (3,)
  assert ((ratings >= 1) & (ratings <= 5)).all()
  # The contract: inputs user_id/movie_id string [None], output rating
  # float32 [None]; and the signatures TFMA and the recommender use.
  signatures = loaded.signatures
  assert set(signatures) == {'serving_default', 'score_pairs',
                             'serving_examples', 'transform_features'}
  inputs = signatures['serving_default'].structured_input_signature[1]
  assert {k: (v.dtype, v.shape.as_list()) for k, v in inputs.items()} == {
      'user_id': (tf.string, [None]), 'movie_id': (tf.string, [None])}
  outputs = signatures['serving_default'].structured_outputs
  assert {k: (v.dtype, v.shape.as_list()) for k, v in outputs.items()} == {
      'rating': (tf.float32, [None])}
  assert set(signatures['score_pairs'].structured_outputs) == {
      'rating', 'relevance'}


def _examples(uri, splits):
  artifact = standard_artifacts.Examples()
  artifact.uri = uri
  artifact.split_names = artifact_utils.encode_split_names(splits)
  return artifact


def _fingerprint(path):
  return tf.saved_model.experimental.read_fingerprint(path).saved_model_checksum


def _retrieval_recall(path, data):
  """recall@100 on the eval split of the servable SavedModel at `path`, as
  the RetrievalEvaluator computes it (its 'evaluation' signature)."""
  specs = retrieval_metrics.parse_metric_names(['recall_at_100'])
  signature = tf.saved_model.load(path).signatures['evaluation']
  rankings, _ = retrieval_evaluator.rank_with_servable(signature, data.users,
                                                      100)
  return retrieval_metrics.evaluate(rankings, data.relevant, data.catalog,
                                    specs)['recall_at_100']


def _eval_rmse(path, ratings_uri):
  """RMSE of the ranking SavedModel at `path` on the raw eval split."""
  serve = tf.saved_model.load(path).signatures['serving_examples']
  records = tf.data.TFRecordDataset(
      glob.glob(os.path.join(ratings_uri, 'Split-eval', '*.gz')), 'GZIP')
  errors = []
  for batch in records.batch(1024):
    predicted = serve(examples=batch)['rating'].numpy()
    labels = tf.io.parse_example(batch, {features.LABEL_KEY: tf.io.
                                         FixedLenFeature([], tf.float32)})
    errors.extend(predicted - labels[features.LABEL_KEY].numpy())
  return float(np.sqrt(np.mean(np.square(errors))))


def _summary(model):
  with open(os.path.join(model.uri, 'training_summary.json')) as f:
    return json.load(f)


def test_refit_models_are_served_and_the_early_stopped_ones_evaluated(
    first_run):
  """The Trainers early-stop on eval; the Refit Trainers fit ensembles of
  three on train + eval for the best epoch count (+1 for retrieval): the
  Evaluators measure the first, the Pushers ship the second."""
  _, output_dir, _, _ = first_run
  store = _store(output_dir)
  ratings = _latest(store, 'Examples', 'MovieLensExampleGen/ratings')
  movies = _latest(store, 'Examples', 'MovieLensExampleGen/movies')
  servable = _latest(store, 'Model', 'RetrievalIndexer')
  ranking = _latest(store, 'Model', 'RankingTrainer')
  ranking_refit = _latest(store, 'Model', 'RankingRefit')
  best = _summary(_latest(store, 'Model', 'RetrievalTrainer'))['best_epoch']
  assert 1 <= best <= 6
  seeds = [42, 43, 44]  # The default ensemble of three, from seed 42.
  retrieval_refit = _latest(store, 'Model', 'RetrievalRefit')
  assert _summary(retrieval_refit) == {'refit_epochs': best + 1,
                                       'ensemble_seeds': seeds}
  assert _summary(ranking_refit) == {
      'refit_epochs': _summary(ranking)['best_epoch'],
      'ensemble_seeds': seeds}
  # The served towers are the three members' side by side: one index of
  # three times the early-stopped model's dimension.
  user = retrieval_export.user_example(b'1', {})
  dims = [tf.saved_model.load(os.path.join(model.uri, 'Format-Serving'))
          .signatures['query_embedding'](examples=tf.constant([user]))
          ['embedding'].shape[1]
          for model in (_latest(store, 'Model', 'RetrievalTrainer'),
                        retrieval_refit)]
  assert dims[1] == 3 * dims[0]
  assert _fingerprint(os.path.join(servable.uri, 'Format-TFMA')) != (
      _fingerprint(os.path.join(servable.uri, 'Format-Serving')))
  for name, model in (('retrieval', servable), ('ranking', ranking_refit)):
    pushed = os.path.join(output_dir, 'serving', name,
                          _pushed_versions(output_dir, name)[-1])
    assert _fingerprint(pushed) == _fingerprint(
        os.path.join(model.uri, 'Format-Serving'))

  # The RetrievalEvaluator's recall@100 is the early-stopped towers'; the
  # refit ones, which trained on the eval split, score far higher on it.
  data = retrieval_evaluator.load_evaluation_data(
      _examples(ratings.uri, ['train', 'eval']),
      _examples(movies.uri, ['catalog']))
  evaluation = _latest(store, 'ModelEvaluation', 'RetrievalEvaluator')
  report = json.load(open(os.path.join(evaluation.uri, 'metrics.json')))
  evaluated = report['model']['metrics']['recall_at_100']
  assert evaluated == pytest.approx(_retrieval_recall(
      os.path.join(servable.uri, 'Format-TFMA'), data), abs=1e-6)
  assert _retrieval_recall(os.path.join(servable.uri, 'Format-Serving'),
                           data) > evaluated + 0.05

  # TFMA's RMSE is the early-stopped ranking model's on the eval split, not
  # the refit's (a few epochs on noisy synthetic ratings: not lower there).
  result = tfma.load_eval_result(
      _latest(store, 'ModelEvaluation', 'RankingEvaluator').uri)
  overall = dict(result.slicing_metrics)[()]
  tfma_rmse = next(iter(next(iter(overall.values())).values()))[
      'root_mean_squared_error']['doubleValue']
  assert tfma_rmse == pytest.approx(
      _eval_rmse(os.path.join(ranking.uri, 'Format-Serving'), ratings.uri),
      abs=1e-4)
  assert _eval_rmse(os.path.join(ranking_refit.uri, 'Format-Serving'),
                    ratings.uri) != pytest.approx(tfma_rmse, abs=1e-3)


def test_recommender_is_built_from_both_models_and_pushed(first_run):
  _, output_dir, data_dir, _ = first_run
  versions = _pushed_versions(output_dir, 'recommender')
  assert len(versions) == 1
  loaded = tf.saved_model.load(
      os.path.join(output_dir, 'serving', 'recommender', versions[0]))
  serve = loaded.signatures['serving_default']
  rated = _ratings_by_user(data_dir)
  users = sorted(rated)[:4] + ['no-such-user']
  answer = serve(user_id=tf.constant(users))
  ids = answer['movie_ids'].numpy().astype(str)
  scores = answer['scores'].numpy()
  assert ids.shape == (5, 10) and scores.shape == (5, 10)
  assert answer['ratings'].shape == (5, 10)
  assert (scores[:, :-1] >= scores[:, 1:]).all()
  retrieval = tf.saved_model.load(os.path.join(
      output_dir, 'serving', 'retrieval',
      _pushed_versions(output_dir)[-1])).signatures['serving_default'](
          user_id=tf.constant(users))['movie_ids'].numpy().astype(str)
  for row, user in enumerate(users):
    assert len(set(ids[row])) == 10 and all(ids[row])
    # Re-ranked from the retrieval candidates; never a rated movie.
    assert set(ids[row]) <= set(retrieval[row])
    assert not set(ids[row]) & rated.get(user, set())


def test_rerun_with_nothing_changed_reuses_every_component(first_run,
                                                            capsys):
  _, output_dir, data_dir, _ = first_run
  before = {m: _pushed_versions(output_dir, m) for m in MODELS}
  code = _run(data_dir, output_dir)
  assert code == 0
  out = capsys.readouterr().out
  # Every component, the evaluators included: their baseline is the latest
  # blessed model other than the one they judge (none), as in the first
  # run, so their inputs are unchanged too. Nothing is pushed again.
  for component in COMPONENTS:
    assert f'{component:<22} reused from cache' in out, out
  assert {m: _pushed_versions(output_dir, m) for m in MODELS} == before
  for model in MODELS:
    assert (f'{model.capitalize()} servable unchanged, already serving '
            f'version {before[model][-1]}') in out, out


def test_failing_threshold_blocks_the_push(first_run, capsys):
  _, output_dir, data_dir, _ = first_run
  before = {m: _pushed_versions(output_dir, m) for m in MODELS}
  # Demand a recall@100 ten times the popularity baseline's: impossible.
  code = _run(data_dir, output_dir, '--min-lift-over-popularity', '9')
  assert code == 0
  out = capsys.readouterr().out
  assert 'RetrievalTrainer       reused from cache' in out
  assert 'Retrieval servable: not pushed (not blessed)' in out
  assert 'Recommender servable: not pushed (not blessed)' in out
  assert {m: _pushed_versions(output_dir, m) for m in MODELS} == before
  blessing = _latest(_store(output_dir), 'ModelBlessing',
                     'RetrievalEvaluator')
  assert blessing.custom_properties['blessed'].int_value == 0


def test_data_breaking_the_schema_stops_before_transform(
    synthetic_data, tmp_path, capsys):
  data_dir, _ = synthetic_data
  broken = tmp_path / 'broken'
  broken.mkdir()
  for name in ('u.data', 'u.item'):
    (broken / name).write_bytes(open(os.path.join(data_dir, name),
                                     'rb').read())
  # An occupation outside the schema's domain.
  users = open(os.path.join(data_dir, 'u.user')).read().splitlines()
  fields = users[0].split('|')
  fields[3] = 'astronaut'
  users[0] = '|'.join(fields)
  (broken / 'u.user').write_text('\n'.join(users) + '\n')

  output_dir = str(tmp_path / 'out')
  code = _run(str(broken), output_dir)
  assert code == 1
  err = capsys.readouterr().err
  assert 'occupation' in err and 'astronaut' in err, err
  store = _store(output_dir)
  assert not store.get_artifacts_by_type('TransformGraph')


def test_failing_ranking_threshold_blocks_ranking_and_recommender(
    first_run, capsys):
  _, output_dir, data_dir, _ = first_run
  before = {m: _pushed_versions(output_dir, m) for m in MODELS}
  # An RMSE no model reaches on ratings from 1 to 5.
  code = _run(data_dir, output_dir, '--max-rmse', '0.05')
  assert code == 0
  out = capsys.readouterr().out
  assert 'RankingTrainer         reused from cache' in out
  assert 'Ranking servable: not pushed (not blessed)' in out
  assert 'Recommender servable: not pushed (not blessed)' in out
  assert {m: _pushed_versions(output_dir, m) for m in MODELS} == before
  blessing = _latest(_store(output_dir), 'ModelBlessing', 'RecommenderBuilder')
  assert blessing.custom_properties['blessed'].int_value == 0
  assert 'ranking' in blessing.custom_properties[
      'blessing_message'].string_value


def _ratings_times(ratings_uri):
  """(movie id, time) of every train and eval rating."""
  spec = {features.MOVIE_ID: tf.io.FixedLenFeature([], tf.string),
          features.TIMESTAMP: tf.io.FixedLenFeature([], tf.int64)}
  pairs = []
  for split in ('train', 'eval'):
    files = glob.glob(os.path.join(ratings_uri, f'Split-{split}', '*.gz'))
    for batch in tf.data.TFRecordDataset(files, 'GZIP').batch(4096).map(
        lambda records: tf.io.parse_example(records, spec)):
      pairs += zip(batch[features.MOVIE_ID].numpy().tolist(),
                   batch[features.TIMESTAMP].numpy().tolist())
  return pairs


def test_retrieval_trend_serves_each_movies_recent_ratings_at_now(first_run):
  """Last in this file: it reruns the first run's pipeline with the
  retrieval model's recent popularity (the ranking model's is cached). The
  served candidate embedding ends, for each of the three members, with
  log(1 + the movie's ratings in the 7 and 28 days before now, the day
  after the last rating), divided by sqrt(3). The refit calibrated the
  term on the last 28 days (one of the additions tried, in its summary)."""
  _, output_dir, data_dir, _ = first_run
  code = _run(data_dir, output_dir, '--hparam', 'trend_windows=7,28')
  assert code == 0
  store = _store(output_dir)
  towers = tf.saved_model.load(os.path.join(
      _latest(store, 'Model', 'RetrievalRefit').uri, 'Format-Serving'))
  movies = _latest(store, 'Examples', 'MovieLensExampleGen/movies')
  records = [r.numpy() for r in tf.data.TFRecordDataset(
      glob.glob(os.path.join(movies.uri, 'Split-catalog', '*.gz')), 'GZIP')]
  ids = [tf.train.Example.FromString(r).features.feature[
      features.MOVIE_ID].bytes_list.value[0] for r in records]
  embeddings = towers.signatures['candidate_embedding'](
      examples=tf.constant(records))['embedding'].numpy()

  pairs = _ratings_times(
      _latest(store, 'Examples', 'MovieLensExampleGen/ratings').uri)
  day = 86400
  now = (max(t for _, t in pairs) // day + 1) * day
  expected = np.array([[np.log1p(sum(1 for m, t in pairs
                                     if m == movie and t >= now - w * day))
                        for w in (7, 28)] for movie in ids])
  assert np.expm1(expected[:, 1]).max() >= 3  # Counts worth checking.
  members = embeddings.reshape(len(ids), 3, -1)
  for member in range(3):
    np.testing.assert_allclose(members[:, member, -2:] * np.sqrt(3),
                               expected, atol=1e-5)
  refit = _latest(store, 'Model', 'RetrievalRefit')
  with open(os.path.join(refit.uri, 'training_summary.json')) as f:
    calibration = json.load(f)['trend_calibration']
  assert calibration in [o.tolist() for _, o in trend_calibration.offsets(2)]
