"""RetrievalEvaluator: the metrics and the popularity baseline on hand-computed
cases, the blessing rule, the executor on generated records with a real tiny
servable, interoperability of the blessing with Pusher and
LatestBlessedModelStrategy, and construction and wiring."""

import json
import math
import os

import pytest
import tensorflow as tf
from tfx import types
from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.compiler import compiler
from tfx.dsl.components.common import importer
from tfx.dsl.input_resolution.strategies import latest_blessed_model_strategy
from tfx.orchestration import pipeline as pipeline_lib
from tfx.types import artifact_utils, standard_artifacts

from components.retrieval_evaluator import RetrievalEvaluator
from components.retrieval_evaluator import blessing, executor, metrics, spec
from modules import features

pytestmark = pytest.mark.integration

# 1 / log2(3): the discount of rank 2. Rank 1 has 1 / log2(2) = 1, rank 3
# has 1 / log2(4) = 1/2.
D2 = 1 / math.log2(3)

# ------------------------------------------------------------------ metrics

# Three users, five movies m1..m5; each user's relevant (eval) movies and
# the ranked list a model returned:
#
#   user  relevant      ranked          hits by rank
#   A     {m1, m3}      [m3, m2, m1]    1 0 1
#   B     {m4}          [m1, m2, m3]    0 0 0
#   C     {m2, m4, m5}  [m4, m5, m1]    1 1 0
#
# recall@2:  A 1/2 (m3), B 0/1, C 2/3 (m4, m5)  -> (1/2 + 0 + 2/3) / 3 = 7/18
# recall@3:  A 2/2, B 0/1, C 2/3                -> (1 + 0 + 2/3) / 3 = 5/9
# nDCG@3:
#   A  DCG = 1 + 0 + 1/2 = 3/2;  IDCG (2 hits) = 1 + D2  -> 1.5 / (1 + D2)
#   B  DCG = 0                                           -> 0
#   C  DCG = 1 + D2;  IDCG (3 hits) = 1 + D2 + 1/2  -> (1 + D2) / (1.5 + D2)
#   mean = (0.919721 + 0 + 0.765361) / 3 = 0.561694
# nDCG@2 (the ideal list is cut at k: C has 3 relevant, IDCG@2 = 1 + D2):
#   A  DCG = 1;  IDCG = 1 + D2   B  0   C  DCG = 1 + D2 = IDCG -> 1
#   mean = (0.613147 + 0 + 1) / 3 = 0.537716
# hit_rate@1: A m3 yes, B m1 no, C m4 yes         -> 2/3
# coverage@1: {m3, m1, m4} of 5 movies            -> 3/5
# coverage@2: {m3, m2} | {m1, m2} | {m4, m5} = all 5 -> 5/5
CATALOG = ['m1', 'm2', 'm3', 'm4', 'm5']
RELEVANT = {'A': {'m1', 'm3'}, 'B': {'m4'}, 'C': {'m2', 'm4', 'm5'}}
RANKED = {'A': ['m3', 'm2', 'm1'], 'B': ['m1', 'm2', 'm3'],
          'C': ['m4', 'm5', 'm1']}


def test_per_user_metrics_of_user_a():
  assert metrics.recall_at_k(RANKED['A'], RELEVANT['A'], 2) == 1 / 2
  assert metrics.recall_at_k(RANKED['A'], RELEVANT['A'], 3) == 1.0
  # Rank 1 is a hit; only min(2, 1) = 1 ideal hit fits in the top 1.
  assert metrics.ndcg_at_k(RANKED['A'], RELEVANT['A'], 1) == 1.0
  # DCG = 1 (m3) + 0 (m2) = 1; IDCG = 1 + D2.
  assert metrics.ndcg_at_k(RANKED['A'], RELEVANT['A'], 2) == pytest.approx(
      1 / (1 + D2))
  assert metrics.ndcg_at_k(RANKED['A'], RELEVANT['A'], 3) == pytest.approx(
      1.5 / (1 + D2))
  assert metrics.hit_at_k(RANKED['A'], RELEVANT['A'], 1) == 1.0
  assert metrics.hit_at_k(RANKED['B'], RELEVANT['B'], 3) == 0.0


def test_metrics_averaged_over_three_users_match_the_hand_calculation():
  specs = metrics.parse_metric_names([
      'recall_at_2', 'recall_at_3', 'ndcg_at_2', 'ndcg_at_3',
      'hit_rate_at_1', 'coverage_at_1', 'coverage_at_2'])

  results = metrics.evaluate(RANKED, RELEVANT, CATALOG, specs)

  assert list(results) == ['recall_at_2', 'recall_at_3', 'ndcg_at_2',
                           'ndcg_at_3', 'hit_rate_at_1', 'coverage_at_1',
                           'coverage_at_2']
  assert results['recall_at_2'] == pytest.approx(7 / 18)
  assert results['recall_at_3'] == pytest.approx(5 / 9)
  assert results['ndcg_at_2'] == pytest.approx((1 / (1 + D2) + 0 + 1) / 3)
  assert results['ndcg_at_2'] == pytest.approx(0.537716, abs=1e-6)
  assert results['ndcg_at_3'] == pytest.approx(
      (1.5 / (1 + D2) + 0 + (1 + D2) / (1.5 + D2)) / 3)
  assert results['ndcg_at_3'] == pytest.approx(0.561694, abs=1e-6)
  assert results['hit_rate_at_1'] == pytest.approx(2 / 3)
  assert results['coverage_at_1'] == pytest.approx(3 / 5)
  assert results['coverage_at_2'] == 1.0


def test_repeats_short_lists_and_unknown_ids():
  # A repeated hit counts once, at its first rank: recall 1/2, DCG = 1.
  assert metrics.recall_at_k(['m1', 'm1'], {'m1', 'm2'}, 2) == 1 / 2
  assert metrics.ndcg_at_k(['m1', 'm1'], {'m1', 'm2'}, 2) == pytest.approx(
      1 / (1 + D2))
  # A list shorter than k: missing ranks are misses.
  assert metrics.recall_at_k(['m2'], {'m1', 'm2'}, 10) == 1 / 2
  # Ids outside the catalogue do not count towards coverage: {m1} of 5.
  assert metrics.coverage_at_k([['m1', 'x9']], CATALOG, 2) == 1 / 5


def test_metric_errors_are_clear():
  with pytest.raises(ValueError, match='relevant is empty'):
    metrics.recall_at_k(['m1'], set(), 1)
  with pytest.raises(ValueError, match='k must be a positive integer'):
    metrics.ndcg_at_k(['m1'], {'m1'}, 0)
  with pytest.raises(ValueError, match=r"1 evaluated users have no ranking, "
                     r"e.g. \['C'\]"):
    metrics.evaluate({'A': [], 'B': []}, RELEVANT, CATALOG,
                     metrics.parse_metric_names(['recall_at_1']))
  assert metrics.relative_lift(0.3, 0.2) == pytest.approx(0.5)
  assert metrics.relative_lift(0.3, 0.0) is None


@pytest.mark.parametrize('names, message', [
    ('recall_at_10', 'must be a list'),
    ([], 'metric_names is empty'),
    (['recall@10'], "'recall@10' is not a metric name"),
    (['precision_at_10'], "'precision_at_10' is not a metric name"),
    (['recall_at_0'], "'recall_at_0' is not a metric name"),
    (['ndcg_at_10', 'ndcg_at_10'], r"lists \['ndcg_at_10'\] more than once"),
])
def test_invalid_metric_names_are_rejected(names, message):
  with pytest.raises(ValueError, match=message):
    metrics.parse_metric_names(names)


def test_metric_names_parse_into_kind_and_depth():
  specs = metrics.parse_metric_names(list(metrics.DEFAULT_METRIC_NAMES))
  assert [(s.kind, s.k) for s in specs] == [
      ('recall', 10), ('recall', 50), ('recall', 100), ('ndcg', 10),
      ('hit_rate', 100), ('coverage', 10)]
  assert metrics.max_depth(specs) == 100


# -------------------------------------------------------- popularity baseline

# Train ratings per user; 'm9' is rated but not in the catalogue m1..m6:
#   u1: m2 m5   u2: m2 m1   u3: m2 m3 m1   u4: m3 m9
# Counts: m2 3, m1 2, m3 2, m5 1, m9 1 (not a candidate), m4 0, m6 0.
# Order, ties by id: m2 (3), m1 (2) before m3 (2), m5 (1), m4 (0) before
# m6 (0)  ->  [m2, m1, m3, m5, m4, m6].
# Top 3 per user, seen movies skipped:
#   u1 (seen m2 m5)     -> [m1, m3, m4]
#   u3 (seen m2 m3 m1)  -> [m5, m4, m6]
#   u4 (seen m3 m9)     -> [m2, m1, m5]
#   u5 (no train, cold) -> [m2, m1, m3]
TRAIN_RATINGS = [('u1', 'm2'), ('u1', 'm5'), ('u2', 'm2'), ('u2', 'm1'),
                 ('u3', 'm2'), ('u3', 'm3'), ('u3', 'm1'), ('u4', 'm3'),
                 ('u4', 'm9')]


def test_popularity_order_breaks_ties_by_movie_id_and_keeps_the_catalogue():
  counts = {}
  for _, movie in TRAIN_RATINGS:
    counts[movie] = counts.get(movie, 0) + 1
  assert metrics.popularity_order(
      counts, ['m6', 'm5', 'm4', 'm3', 'm2', 'm1']) == [
          'm2', 'm1', 'm3', 'm5', 'm4', 'm6']


def test_most_popular_excludes_each_users_train_movies():
  order = ['m2', 'm1', 'm3', 'm5', 'm4', 'm6']
  seen = {}
  for user, movie in TRAIN_RATINGS:
    seen.setdefault(user, set()).add(movie)

  assert metrics.most_popular(order, seen, ['u1', 'u3', 'u4', 'u5'], 3) == {
      'u1': ['m1', 'm3', 'm4'],
      'u3': ['m5', 'm4', 'm6'],
      'u4': ['m2', 'm1', 'm5'],
      'u5': ['m2', 'm1', 'm3'],
  }
  # u3 has seen 3 of 6 movies, so asking for 10 gives the other 3.
  assert metrics.most_popular(order, seen, ['u3'], 10) == {
      'u3': ['m5', 'm4', 'm6']}


# ------------------------------------------------------------------ blessing

# Blessing metric recall_at_100; popularity scores 0.20 on it.
POPULARITY = {'recall_at_100': 0.20}
NAMES = ['recall_at_10', 'recall_at_100']


def _decide(model, baseline=None, **thresholds):
  return blessing.decide(
      {'recall_at_100': model}, POPULARITY,
      blessing.validate_thresholds(NAMES, **thresholds),
      None if baseline is None else {'recall_at_100': baseline})


def test_first_run_is_judged_on_thresholds_alone():
  decision = _decide(0.25)

  assert decision.blessed
  assert decision.reasons == [
      'PASS beats popularity: recall_at_100 0.2500 > 0.2000 = popularity '
      '0.2000 x (1 + 0.00)',
      'PASS absolute floor: recall_at_100 0.2500 >= min_value 0.0000',
      'SKIP no regression: no baseline model (no model blessed yet), judged '
      'on the thresholds alone',
  ]
  assert [(c.name, c.passed) for c in decision.checks] == [
      ('beats_popularity', True), ('min_value', True),
      ('no_regression', None)]
  assert decision.message().startswith('BLESSED: PASS beats popularity')


def test_beating_popularity_needs_more_than_the_margin():
  # A tie with popularity is not enough: 0.20 is not > 0.20 x (1 + 0).
  tie = _decide(0.20)
  assert not tie.blessed
  assert tie.reasons[0] == ('FAIL beats popularity: recall_at_100 0.2000 <= '
                            '0.2000 = popularity 0.2000 x (1 + 0.00)')
  # Lift 0.2: 0.20 x 1.2 = 0.24 < 0.25, passes; lift 0.25: 0.20 x 1.25 =
  # 0.25, and 0.25 is not strictly more.
  assert _decide(0.25, min_lift_over_popularity=0.2).blessed
  at_margin = _decide(0.25, min_lift_over_popularity=0.25)
  assert not at_margin.blessed
  assert at_margin.checks[0].threshold == pytest.approx(0.25)


def test_absolute_floor():
  decision = _decide(0.25, min_value=0.3)
  assert not decision.blessed
  assert decision.reasons[1] == ('FAIL absolute floor: recall_at_100 0.2500 < '
                                 'min_value 0.3000')


def test_regression_against_the_baseline_model():
  # Within tolerance: 0.25 >= 0.26 - 0.01 = 0.25 (the boundary passes).
  within = _decide(0.25, baseline=0.26)
  assert within.blessed
  assert within.reasons[2] == (
      'PASS no regression: recall_at_100 0.2500 >= 0.2500 = baseline model '
      '0.2600 - max_regression 0.0100')
  # Outside: 0.25 < 0.27 - 0.01 = 0.26.
  outside = _decide(0.25, baseline=0.27)
  assert not outside.blessed
  assert outside.reasons[2] == (
      'FAIL no regression: recall_at_100 0.2500 < 0.2600 = baseline model '
      '0.2700 - max_regression 0.0100')
  assert outside.checks[2].threshold == pytest.approx(0.26)
  # A wider tolerance accepts it: 0.25 >= 0.27 - 0.05 = 0.22.
  assert _decide(0.25, baseline=0.27, max_regression=0.05).blessed
  # An improvement always passes.
  assert _decide(0.30, baseline=0.27).blessed


def test_every_failure_is_reported():
  decision = _decide(0.15, baseline=0.40, min_value=0.2)
  assert not decision.blessed
  assert [c.passed for c in decision.checks] == [False, False, False]
  assert decision.message().startswith('NOT BLESSED: FAIL beats popularity')


@pytest.mark.parametrize('kwargs, message', [
    ({'blessing_metric': 'ndcg_at_10'},
     r"blessing_metric 'ndcg_at_10' is not among the computed metric_names"),
    ({'blessing_metric': ''}, 'blessing_metric must be a metric name'),
    ({'min_lift_over_popularity': -0.1}, 'min_lift_over_popularity must be'),
    ({'min_lift_over_popularity': True}, 'must be a number'),
    ({'min_value': 1.5}, r'min_value must be in \[0, 1\]'),
    ({'max_regression': -0.01}, 'max_regression is an absolute tolerance'),
    ({'max_regression': float('nan')}, 'max_regression must be finite'),
    ({'min_value': '0.1'}, 'min_value must be a number'),
])
def test_invalid_thresholds_are_rejected(kwargs, message):
  with pytest.raises(ValueError, match=message):
    blessing.validate_thresholds(NAMES, **kwargs)


def test_threshold_defaults():
  assert blessing.validate_thresholds(
      list(metrics.DEFAULT_METRIC_NAMES)).as_dict() == {
          'blessing_metric': 'recall_at_100',
          'min_lift_over_popularity': 0.0,
          'min_value': 0.0,
          'max_regression': 0.01,
      }


# ------------------------------------------------------------------ executor

# Catalogue m1..m6. Ratings (u4 has no eval rating, so is not evaluated):
#   train  u1: m1 m2    u2: m1 m3    u3: m1 m2 m4    u4: m1
#   eval   u1: m5 m3    u2: m6       u3: m3
# Train counts m1 4, m2 2, m3 1, m4 1, m5 0, m6 0
#   -> popularity order [m1, m2, m3, m4, m5, m6] (m3/m4 and m5/m6 by id).
# Top 3 of each ranker, relevant movies in capitals:
#   user  relevant    popularity      good model      bad model
#   u1    {m3, m5}    [M3, m4, M5]    [M5, M3, m4]    [m6, m4, M3]
#   u2    {m6}        [m2, m4, m5]    [M6, m2, m4]    [m2, m4, m5]
#   u3    {m3}        [M3, m5, m6]    [M3, m6, m5]    [m5, m6, M3]
# recall@1:   pop (1/2 + 0 + 1)/3 = 1/2;  good (1/2 + 1 + 1)/3 = 5/6;  bad 0
# recall@3:   pop (1 + 0 + 1)/3 = 2/3;    good 1;   bad (1/2 + 0 + 1)/3 = 1/2
# nDCG@3:     pop (1.5/(1 + D2) + 0 + 1)/3 = 0.639907 (u1 hits at ranks 1, 3)
#             good 1 (every user's hits on top)
#             bad  (0.5/(1 + D2) + 0 + 0.5)/3 (hits at rank 3 only)
# hit_rate@3: pop 2/3;  good 1;  bad 2/3
# coverage@3: every ranker shows 5 of the 6 movies -> 5/6
# Blessing on recall@3: good 1 > 2/3 -> BLESSED; bad 1/2 <= 2/3 -> NOT.
EXEC_METRICS = ['recall_at_1', 'recall_at_3', 'ndcg_at_3', 'hit_rate_at_3',
                'coverage_at_3']
TRAIN = [('u1', 'm1'), ('u1', 'm2'), ('u2', 'm1'), ('u2', 'm3'),
         ('u3', 'm1'), ('u3', 'm2'), ('u3', 'm4'), ('u4', 'm1')]
EVAL = [('u1', 'm5'), ('u1', 'm3'), ('u2', 'm6'), ('u3', 'm3')]
MOVIES = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6']
GOOD_TOP3 = {'u1': ['m5', 'm3', 'm4'], 'u2': ['m6', 'm2', 'm4'],
             'u3': ['m3', 'm6', 'm5']}
BAD_TOP3 = {'u1': ['m6', 'm4', 'm3'], 'u2': ['m2', 'm4', 'm5'],
            'u3': ['m5', 'm6', 'm3']}

POPULARITY_METRICS = {
    'recall_at_1': 1 / 2,
    'recall_at_3': 2 / 3,
    'ndcg_at_3': (1.5 / (1 + D2) + 1) / 3,
    'hit_rate_at_3': 2 / 3,
    'coverage_at_3': 5 / 6,
}
GOOD_METRICS = {'recall_at_1': 5 / 6, 'recall_at_3': 1.0, 'ndcg_at_3': 1.0,
                'hit_rate_at_3': 1.0, 'coverage_at_3': 5 / 6}
BAD_METRICS = {'recall_at_1': 0.0, 'recall_at_3': 1 / 2,
               'ndcg_at_3': (0.5 / (1 + D2) + 0.5) / 3,
               'hit_rate_at_3': 2 / 3, 'coverage_at_3': 5 / 6}


class _TableServable(tf.Module):
  """Honours the servable contract from a fixed table of top-K lists.

  Users missing from the table (cold start) get `fallback`.
  """

  def __init__(self, top_k, fallback):
    super().__init__()
    users = sorted(top_k)
    self._rows = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(users), tf.range(len(users), dtype=tf.int64)),
        default_value=len(users))
    lists = [top_k[user] for user in users] + [fallback]
    k = len(fallback)
    self._movie_ids = tf.constant(lists)
    self._titles = tf.constant([[f'Title of {m}' for m in row]
                                for row in lists])
    # Descending scores: k, k - 1, ..., 1.
    self._scores = tf.constant([[float(k - i) for i in range(k)]] * len(lists))

  @tf.function(input_signature=[
      tf.TensorSpec([None], tf.string, name='user_id')])
  def serve(self, user_id):
    rows = self._rows.lookup(user_id)
    return {
        'movie_ids': tf.gather(self._movie_ids, rows),
        'movie_titles': tf.gather(self._titles, rows),
        'scores': tf.gather(self._scores, rows),
    }


def _save_servable(model_uri, top_k, layout='Format-Serving'):
  module = _TableServable(top_k, fallback=['m1', 'm2', 'm3'])
  tf.saved_model.save(module, os.path.join(model_uri, layout),
                      signatures={'serving_default': module.serve})


@pytest.fixture(scope='module')
def servables(tmp_path_factory):
  """URIs of a good and a bad servable (saved once for every test)."""
  root = tmp_path_factory.mktemp('servables')
  uris = {}
  for name, top_k in (('good', GOOD_TOP3), ('bad', BAD_TOP3)):
    uris[name] = str(root / name)
    _save_servable(uris[name], top_k)
  return uris


def _model(uri, model_id):
  model = standard_artifacts.Model()
  model.uri = uri
  model.id = model_id
  return model


def _write_examples(artifact, split, examples):
  split_dir = os.path.join(artifact.uri, f'Split-{split}')
  os.makedirs(split_dir, exist_ok=True)
  with tf.io.TFRecordWriter(
      os.path.join(split_dir, 'data_tfrecord-00000-of-00001.gz'),
      options='GZIP') as writer:
    for example in examples:
      writer.write(example.SerializeToString())


def _bytes(value):
  return tf.train.Feature(bytes_list=tf.train.BytesList(
      value=[value.encode('utf-8')]))


def _rating(user, movie, timestamp):
  return tf.train.Example(features=tf.train.Features(feature={
      features.USER_ID: _bytes(user),
      features.MOVIE_ID: _bytes(movie),
      features.RATING: tf.train.Feature(
          float_list=tf.train.FloatList(value=[4.0])),
      features.TIMESTAMP: tf.train.Feature(
          int64_list=tf.train.Int64List(value=[timestamp])),
  }))


def _movie(movie):
  return tf.train.Example(features=tf.train.Features(feature={
      features.MOVIE_ID: _bytes(movie),
      features.TITLE: _bytes(f'Title of {movie}'),
      features.GENRES: _bytes('Drama'),
  }))


@pytest.fixture
def examples(tmp_path):
  """The raw ratings and catalogue, laid out as MovieLensExampleGen writes."""
  ratings = standard_artifacts.Examples()
  ratings.uri = str(tmp_path / 'ratings')
  ratings.split_names = artifact_utils.encode_split_names(['train', 'eval'])
  _write_examples(ratings, 'train',
                  [_rating(u, m, t) for t, (u, m) in enumerate(TRAIN)])
  _write_examples(ratings, 'eval',
                  [_rating(u, m, 100 + t) for t, (u, m) in enumerate(EVAL)])
  movies = standard_artifacts.Examples()
  movies.uri = str(tmp_path / 'movies')
  movies.split_names = artifact_utils.encode_split_names(['catalog'])
  _write_examples(movies, 'catalog', [_movie(m) for m in MOVIES])
  return ratings, movies


def _run(tmp_path, examples, model, baseline_model=None, **exec_properties):
  ratings, movies = examples
  evaluation = standard_artifacts.ModelEvaluation()
  evaluation.uri = str(tmp_path / 'evaluation')
  model_blessing = standard_artifacts.ModelBlessing()
  model_blessing.uri = str(tmp_path / 'blessing')
  input_dict = {spec.MODEL_KEY: [model], spec.EXAMPLES_KEY: [ratings],
                spec.MOVIES_KEY: [movies]}
  if baseline_model is not None:
    input_dict[spec.BASELINE_MODEL_KEY] = baseline_model
  properties = {spec.METRIC_NAMES_KEY: json.dumps(EXEC_METRICS),
                spec.BLESSING_METRIC_KEY: 'recall_at_3'}
  properties.update(exec_properties)
  executor.Executor().Do(
      input_dict,
      {spec.EVALUATION_KEY: [evaluation], spec.BLESSING_KEY: [model_blessing]},
      properties)
  with open(os.path.join(evaluation.uri, 'metrics.json')) as f:
    return json.load(f), model_blessing


def _approx(values):
  return {name: pytest.approx(value) for name, value in values.items()}


def test_executor_blesses_a_model_that_beats_popularity(
    tmp_path, examples, servables, capsys):
  model = _model(servables['good'], 11)
  report, model_blessing = _run(tmp_path, examples, model)

  assert report == {
      'metric_names': EXEC_METRICS,
      'counts': {'users_evaluated': 3, 'eval_ratings': 4, 'train_ratings': 8,
                 'catalog_size': 6, 'cold_start_users': 0},
      'model': {'uri': servables['good'], 'id': 11, 'k': 3,
                'train_movies_in_top_k': 0, 'metrics': _approx(GOOD_METRICS)},
      'popularity': {'k': 3, 'metrics': _approx(POPULARITY_METRICS)},
      'baseline_model': None,
      # good / popularity - 1, e.g. recall@3: 1 / (2/3) - 1 = 1/2.
      'lift_over_popularity': _approx({
          'recall_at_1': 2 / 3, 'recall_at_3': 1 / 2,
          'ndcg_at_3': 1 / POPULARITY_METRICS['ndcg_at_3'] - 1,
          'hit_rate_at_3': 1 / 2, 'coverage_at_3': 0.0}),
      'change_from_baseline_model': None,
      'thresholds': {'blessing_metric': 'recall_at_3',
                     'min_lift_over_popularity': 0.0, 'min_value': 0.0,
                     'max_regression': 0.01},
      'decision': {
          'blessed': True,
          'reasons': [
              'PASS beats popularity: recall_at_3 1.0000 > 0.6667 = '
              'popularity 0.6667 x (1 + 0.00)',
              'PASS absolute floor: recall_at_3 1.0000 >= min_value 0.0000',
              'SKIP no regression: no baseline model (no model blessed yet), '
              'judged on the thresholds alone',
          ],
          'checks': [
              {'name': 'beats_popularity', 'passed': True, 'value': 1.0,
               'threshold': pytest.approx(2 / 3),
               'reason': report['decision']['reasons'][0]},
              {'name': 'min_value', 'passed': True, 'value': 1.0,
               'threshold': 0.0, 'reason': report['decision']['reasons'][1]},
              {'name': 'no_regression', 'passed': None, 'value': 1.0,
               'threshold': None, 'reason': report['decision']['reasons'][2]},
          ],
      },
  }

  # The blessing, as TFX's Evaluator writes it.
  assert sorted(os.listdir(model_blessing.uri)) == ['BLESSED']
  assert model_blessing.get_int_custom_property('blessed') == 1
  assert model_blessing.get_string_custom_property('current_model') == (
      servables['good'])
  assert model_blessing.get_int_custom_property('current_model_id') == 11
  assert not model_blessing.has_custom_property('baseline_model')
  assert not model_blessing.has_custom_property('baseline_model_id')
  assert model_blessing.get_string_custom_property(
      'blessing_message').startswith('BLESSED: PASS beats popularity')

  # The printed summary: pop nDCG@3 = 0.639907, lift 1/0.639907 - 1 = 56.3%.
  assert capsys.readouterr().out.splitlines()[-11:] == [
      'RetrievalEvaluator: 3 users with 4 eval ratings, catalogue of 6 movies.',
      'metric          model  popularity    lift',
      'recall_at_1    0.8333      0.5000  +66.7%',
      'recall_at_3    1.0000      0.6667  +50.0%',
      'ndcg_at_3      1.0000      0.6399  +56.3%',
      'hit_rate_at_3  1.0000      0.6667  +50.0%',
      'coverage_at_3  0.8333      0.8333   +0.0%',
      'Decision on recall_at_3: BLESSED',
      '  PASS beats popularity: recall_at_3 1.0000 > 0.6667 = popularity '
      '0.6667 x (1 + 0.00)',
      '  PASS absolute floor: recall_at_3 1.0000 >= min_value 0.0000',
      '  SKIP no regression: no baseline model (no model blessed yet), judged '
      'on the thresholds alone',
  ]


def test_executor_does_not_bless_a_model_that_loses_to_popularity(
    tmp_path, examples, servables):
  report, model_blessing = _run(tmp_path, examples,
                                _model(servables['bad'], 12))

  assert report['model']['metrics'] == _approx(BAD_METRICS)
  assert report['popularity']['metrics'] == _approx(POPULARITY_METRICS)
  # recall@1 of popularity is 1/2, of the model 0: lift 0 / (1/2) - 1 = -1.
  assert report['lift_over_popularity']['recall_at_1'] == pytest.approx(-1.0)
  assert report['decision']['blessed'] is False
  assert report['decision']['reasons'][0] == (
      'FAIL beats popularity: recall_at_3 0.5000 <= 0.6667 = popularity '
      '0.6667 x (1 + 0.00)')
  assert sorted(os.listdir(model_blessing.uri)) == ['NOT_BLESSED']
  assert model_blessing.get_int_custom_property('blessed') == 0
  assert model_blessing.get_int_custom_property('current_model_id') == 12


def test_executor_evaluates_the_eval_model_when_there_is_one(tmp_path,
                                                             examples):
  # A refit servable: the served model (Format-Serving, here the bad table)
  # has seen the eval split; the eval model (Format-TFMA, the good table)
  # has not, and is what gets measured and blessed.
  uri = str(tmp_path / 'refit')
  _save_servable(uri, BAD_TOP3, 'Format-Serving')
  _save_servable(uri, GOOD_TOP3, 'Format-TFMA')

  report, model_blessing = _run(tmp_path, examples, _model(uri, 13))

  assert report['model']['metrics'] == _approx(GOOD_METRICS)
  assert model_blessing.get_int_custom_property('blessed') == 1


def test_executor_compares_with_the_baseline_model_on_the_same_users(
    tmp_path, examples, servables):
  good, bad = _model(servables['good'], 21), _model(servables['bad'], 12)

  # The good model against the bad, previously blessed one: 1 >= 1/2 - 0.01.
  report, model_blessing = _run(tmp_path / 'a', examples, good, [bad])
  assert report['baseline_model'] == {
      'uri': servables['bad'], 'id': 12, 'k': 3, 'train_movies_in_top_k': 0,
      'metrics': _approx(BAD_METRICS)}
  assert report['change_from_baseline_model'] == _approx(
      {name: GOOD_METRICS[name] - BAD_METRICS[name] for name in EXEC_METRICS})
  assert report['decision']['blessed'] is True
  assert report['decision']['reasons'][2] == (
      'PASS no regression: recall_at_3 1.0000 >= 0.4900 = baseline model '
      '0.5000 - max_regression 0.0100')
  assert model_blessing.get_string_custom_property('baseline_model') == (
      servables['bad'])
  assert model_blessing.get_int_custom_property('baseline_model_id') == 12

  # The bad model against the good one: 1/2 < 1 - 0.01, and below popularity.
  report, model_blessing = _run(tmp_path / 'b', examples, bad, [good])
  assert [c['passed'] for c in report['decision']['checks']] == [
      False, True, False]
  assert report['decision']['reasons'][2] == (
      'FAIL no regression: recall_at_3 0.5000 < 0.9900 = baseline model '
      '1.0000 - max_regression 0.0100')
  assert model_blessing.get_int_custom_property('blessed') == 0


def test_empty_baseline_channel_is_a_first_run(tmp_path, examples, servables):
  # A Resolver that found no blessed model gives an empty list.
  report, model_blessing = _run(tmp_path, examples,
                                _model(servables['good'], 11), [])
  assert report['baseline_model'] is None
  assert report['decision']['checks'][2]['passed'] is None
  assert model_blessing.get_int_custom_property('blessed') == 1


def test_thresholds_from_exec_properties(tmp_path, examples, servables):
  # 1.0 is not > 2/3 x (1 + 0.5) = 1.0: the margin is not beaten.
  report, model_blessing = _run(
      tmp_path, examples, _model(servables['good'], 11),
      **{spec.MIN_LIFT_OVER_POPULARITY_KEY: 0.5})
  assert report['thresholds']['min_lift_over_popularity'] == 0.5
  assert report['decision']['blessed'] is False
  assert model_blessing.get_int_custom_property('blessed') == 0


def test_executor_rejects_metrics_deeper_than_the_servable(
    tmp_path, examples, servables):
  with pytest.raises(ValueError, match='The model returns top-3 lists, but '
                     'the deepest metric needs top-5'):
    _run(tmp_path, examples, _model(servables['good'], 11),
         **{spec.METRIC_NAMES_KEY: json.dumps(['recall_at_5']),
            spec.BLESSING_METRIC_KEY: 'recall_at_5'})
  # The defaults need top-100 lists.
  with pytest.raises(ValueError, match='needs top-100'):
    _run(tmp_path, examples, _model(servables['good'], 11),
         **{spec.METRIC_NAMES_KEY: None, spec.BLESSING_METRIC_KEY: None})


def test_executor_rejects_bad_inputs_and_exec_properties(
    tmp_path, examples, servables):
  model = _model(servables['good'], 11)
  with pytest.raises(ValueError, match="blessing_metric 'recall_at_100' is "
                     'not among the computed metric_names'):
    _run(tmp_path, examples, model, **{spec.BLESSING_METRIC_KEY: None})
  with pytest.raises(ValueError, match="'metric_names' must be a "
                     'JSON-encoded list'):
    _run(tmp_path, examples, model, **{spec.METRIC_NAMES_KEY: 'recall_at_3'})
  with pytest.raises(FileNotFoundError, match='No SavedModel at'):
    _run(tmp_path, examples, _model(str(tmp_path / 'nowhere'), 3))
  ratings, movies = examples
  movies.split_names = artifact_utils.encode_split_names(['train'])
  with pytest.raises(ValueError, match=r"have splits \['train'\], not "
                     r"'catalog'"):
    _run(tmp_path, (ratings, movies), model)


# ----------------------------------------------- blessing interoperability


def test_pusher_and_latest_blessed_model_strategy_read_the_blessing(
    tmp_path, examples, servables):
  good, bad = _model(servables['good'], 11), _model(servables['bad'], 12)
  _, good_blessing = _run(tmp_path / 'good', examples, good)
  _, bad_blessing = _run(tmp_path / 'bad', examples, bad)

  pusher = pusher_executor.Executor()
  assert pusher.CheckBlessing({'model_blessing': [good_blessing]})
  assert not pusher.CheckBlessing({'model_blessing': [bad_blessing]})

  # The newer model (id 12) was not blessed, so the latest blessed is 11.
  resolved = latest_blessed_model_strategy.LatestBlessedModelStrategy(
  )._resolve({'model': [good, bad],
              'model_blessing': [good_blessing, bad_blessing]},
             'model', 'model_blessing')
  assert resolved['model'] == [good]
  assert resolved['model_blessing'] == [good_blessing]


# -------------------------------------------------------------- construction


def _channel(artifact_type):
  return types.Channel(type=artifact_type)


def test_construction_outputs_and_exec_properties():
  component = RetrievalEvaluator(
      model=_channel(standard_artifacts.Model),
      examples=_channel(standard_artifacts.Examples),
      movies=_channel(standard_artifacts.Examples),
      baseline_model=_channel(standard_artifacts.Model),
      metric_names=['recall_at_20', 'ndcg_at_20'], blessing_metric='ndcg_at_20',
      min_lift_over_popularity=0.1, min_value=0.05, max_regression=0.02)

  assert component.id == 'RetrievalEvaluator'
  assert set(component.outputs) == {'evaluation', 'blessing'}
  assert component.outputs['evaluation'].type is (
      standard_artifacts.ModelEvaluation)
  assert component.outputs['blessing'].type is standard_artifacts.ModelBlessing
  assert set(component.inputs) == {'model', 'examples', 'movies',
                                   'baseline_model'}
  assert component.inputs['baseline_model'].type is standard_artifacts.Model
  assert component.exec_properties == {
      'metric_names': '["recall_at_20", "ndcg_at_20"]',
      'blessing_metric': 'ndcg_at_20',
      'min_lift_over_popularity': 0.1,
      'min_value': 0.05,
      'max_regression': 0.02,
  }


def test_construction_defaults_without_baseline_model():
  component = RetrievalEvaluator(
      model=_channel(standard_artifacts.Model),
      examples=_channel(standard_artifacts.Examples),
      movies=_channel(standard_artifacts.Examples))

  assert set(component.inputs) == {'model', 'examples', 'movies'}
  assert json.loads(component.exec_properties['metric_names']) == [
      'recall_at_10', 'recall_at_50', 'recall_at_100', 'ndcg_at_10',
      'hit_rate_at_100', 'coverage_at_10']
  assert component.exec_properties['blessing_metric'] == 'recall_at_100'
  assert component.exec_properties['min_lift_over_popularity'] == 0.0
  assert component.exec_properties['min_value'] == 0.0
  assert component.exec_properties['max_regression'] == 0.01


def test_construction_rejects_bad_options_when_the_pipeline_is_built():
  channels = dict(model=_channel(standard_artifacts.Model),
                  examples=_channel(standard_artifacts.Examples),
                  movies=_channel(standard_artifacts.Examples))
  with pytest.raises(ValueError, match="'recall@10' is not a metric name"):
    RetrievalEvaluator(**channels, metric_names=['recall@10'])
  with pytest.raises(ValueError, match="blessing_metric 'ndcg_at_50' is not "
                     'among'):
    RetrievalEvaluator(**channels, blessing_metric='ndcg_at_50')
  with pytest.raises(ValueError, match='max_regression'):
    RetrievalEvaluator(**channels, max_regression=-1.0)


def test_compiled_pipeline_wires_the_resolver_to_the_baseline_model(tmp_path):
  def imported(artifact_type, node_id):
    return importer.Importer(
        source_uri=str(tmp_path / node_id),
        artifact_type=artifact_type).with_id(node_id)

  model = imported(standard_artifacts.Model, 'model')
  ratings = imported(standard_artifacts.Examples, 'ratings')
  movies = imported(standard_artifacts.Examples, 'movies')
  model_resolver = tfx.dsl.Resolver(
      strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
      model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
      model_blessing=tfx.dsl.Channel(
          type=tfx.types.standard_artifacts.ModelBlessing),
  ).with_id('latest_blessed_model_resolver')
  evaluator = RetrievalEvaluator(
      model=model.outputs['result'], examples=ratings.outputs['result'],
      movies=movies.outputs['result'],
      baseline_model=model_resolver.outputs['model'])

  ir = compiler.Compiler().compile(
      pipeline_lib.Pipeline(
          pipeline_name='retrieval_evaluator_wiring',
          pipeline_root=str(tmp_path),
          components=[model, ratings, movies, model_resolver, evaluator]))

  nodes = {node.pipeline_node.node_info.id: node.pipeline_node
           for node in ir.nodes}
  evaluator_node = nodes['RetrievalEvaluator']
  assert set(evaluator_node.inputs.inputs) == {
      'model', 'examples', 'movies', 'baseline_model'}
  # Optional input: an empty resolution (no blessed model yet) still runs.
  assert evaluator_node.inputs.inputs['baseline_model'].min_count == 0
  assert evaluator_node.inputs.inputs['model'].min_count == 1
