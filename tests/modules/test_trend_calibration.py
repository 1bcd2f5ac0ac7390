"""The trend calibration's parts that need no model: the period read from
the examples, nDCG on hand-computed rankings, and the addition chosen from
given embeddings."""

import math
import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from modules import features  # noqa: E402
from modules import trend_calibration  # noqa: E402

pytestmark = pytest.mark.unit

SPEC = {features.USER_ID: tf.io.FixedLenFeature([], tf.string),
        features.MOVIE_ID: tf.io.FixedLenFeature([], tf.string),
        features.TIMESTAMP: tf.io.FixedLenFeature([], tf.int64),
        features.AGE: tf.io.FixedLenFeature([], tf.int64)}
CUTOFF = 100
# (user, movie, time, age). ua: m1, m2 before; m3, m1 again and m9 (not in
# the catalogue) after. ub rated only before, uc only after, ud before and
# after but only a movie seen before. ue: m2 before, m1 after.
RATINGS = [
    (b'ua', b'm1', 10, 30), (b'ua', b'm3', 150, 31), (b'ub', b'm1', 20, 40),
    (b'ua', b'm2', 20, 32), (b'ua', b'm1', 160, 33), (b'uc', b'm2', 120, 50),
    (b'ua', b'm9', 170, 34), (b'ud', b'm3', 50, 60), (b'ud', b'm3', 130, 61),
    (b'ue', b'm2', 99, 70), (b'ue', b'm1', 100, 71),
]
MOVIE_ROWS = {b'm1': 0, b'm2': 1, b'm3': 2}


def _write(tmp_path, ratings):
  path = str(tmp_path / 'ratings.gz')
  with tf.io.TFRecordWriter(path, 'GZIP') as writer:
    for user, movie, time, age in ratings:
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          features.USER_ID: tf.train.Feature(
              bytes_list=tf.train.BytesList(value=[user])),
          features.MOVIE_ID: tf.train.Feature(
              bytes_list=tf.train.BytesList(value=[movie])),
          features.TIMESTAMP: tf.train.Feature(
              int64_list=tf.train.Int64List(value=[time])),
          features.AGE: tf.train.Feature(
              int64_list=tf.train.Int64List(value=[age])),
      })).SerializeToString())
  return path


def test_period_holds_users_with_new_movies_on_both_sides_of_the_cutoff(
    tmp_path):
  period = trend_calibration.read_period(_write(tmp_path, RATINGS), SPEC,
                                         CUTOFF, MOVIE_ROWS)

  assert period.user_ids == [b'ua', b'ue']
  # The query is each user's latest example before the cut-off.
  assert period.queries[features.AGE].numpy().tolist() == [32, 70]
  assert period.queries[features.TIMESTAMP].numpy().tolist() == [20, 99]
  assert [s.tolist() for s in period.seen] == [[0, 1], [1]]
  # ua: m3 is new, m1 was seen, m9 is new but not in the catalogue.
  assert [r.tolist() for r in period.relevant] == [[2], [0]]
  assert period.num_relevant.tolist() == [2, 1]


def test_period_keeps_at_most_max_users_evenly_spread(tmp_path):
  ratings = [(f'u{i}'.encode(), b'm1', 10, 20) for i in range(5)] + [
      (f'u{i}'.encode(), b'm2', 150, 20) for i in range(5)]

  period = trend_calibration.read_period(_write(tmp_path, ratings), SPEC,
                                         CUTOFF, MOVIE_ROWS, max_users=3)

  assert period.user_ids == [b'u0', b'u2', b'u4']


def test_period_of_no_users_is_empty(tmp_path):
  period = trend_calibration.read_period(
      _write(tmp_path, [(b'ua', b'm1', 10, 20)]), SPEC, CUTOFF, MOVIE_ROWS)

  assert period.user_ids == [] and period.num_relevant.tolist() == []


def test_ndcg_by_hand():
  top = np.array([[3, 1, 2], [0, 5, 6], [1, 2, 3]])
  relevant = [np.array([1, 2]), np.array([9]), np.array([], np.int64)]

  values = trend_calibration.ndcg(top, relevant, np.array([2, 3, 0]))

  # Hits at ranks 2 and 3 of 2 relevant: (1/log2 3 + 1/log2 4) / (1 +
  # 1/log2 3); no hit; no relevant movie.
  expected = (1 / math.log2(3) + 0.5) / (1 + 1 / math.log2(3))
  np.testing.assert_allclose(values, [expected, 0.0, 0.0])


def test_offsets_try_none_first_then_each_window_and_all_by_size():
  tried = trend_calibration.offsets(2)

  assert len(tried) == 1 + 3 * len(trend_calibration.GRID)
  assert tried[0][0] == 'none' and tried[0][1].tolist() == [0, 0]
  assert [(name, o.tolist()) for name, o in tried[1:4]] == [
      ('+0.5 on window 1', [0.5, 0]), ('+0.5 on window 2', [0, 0.5]),
      ('+0.5 on each', [0.5, 0.5])]
  assert len(trend_calibration.offsets(1)) == 1 + len(
      trend_calibration.GRID)


def _one_user_period(seen):
  return trend_calibration.Period(
      user_ids=[b'u'], queries={}, seen=[np.array(seen, np.int64)],
      relevant=[np.array([2])], num_relevant=np.array([1]))


@pytest.mark.parametrize('seen, expected', [
    # m0 (score 0.9) seen and left out: m2 (0.2 + 0.1 c) must beat m1
    # (0.45): c > 2.5, so 4, the smallest such value of the grid.
    ([0], 4.0),
    # m0 not seen: m2 must beat 0.9: c > 7, so 8.
    ([], 8.0),
])
def test_choose_takes_the_smallest_addition_that_ranks_the_period_best(
    seen, expected):
  queries = np.array([[1.0]])
  candidates = np.array([[0.9], [0.45], [0.2]])
  popularity = np.array([[0.0], [0.0], [1.0]])

  offset, results = trend_calibration.choose(
      queries, candidates, popularity, temperature=0.1,
      period=_one_user_period(seen), k=1)

  assert offset.tolist() == [expected]
  assert results['none'] == 0.0
  assert results[f'+{expected:g} on window 1'] == 1.0
