"""The trend features on hand-built ratings: counts from strictly earlier
days only, windows, now, bucket widening, bad input, and the reader of
the training files."""

import numpy as np
import pytest
import tensorflow as tf

from modules import trend
from tests.modules.test_training_data import scanned

pytestmark = pytest.mark.unit

DAY = trend.DAY_SECONDS
T0 = 1_000 * DAY  # A UTC midnight.

# Movie 1: rated on days 0, 3 (twice: 10:00 and 20:00), 5 and 12.
# Movie 2: rated on day 3 only. Row 0 (OOV) never.
ROWS = np.array([1, 1, 1, 2, 1, 1])
TIMES = np.array([T0 + 3600, T0 + 3 * DAY + 36000, T0 + 3 * DAY + 72000,
                  T0 + 3 * DAY + 1, T0 + 5 * DAY + 50, T0 + 12 * DAY + 9])


def _features(table, rows, times, windows=(7, 2)):
  layer = trend.RecentPopularity(table, windows)
  values = layer(tf.constant(rows),
                 None if times is None else tf.constant(times, tf.int64))
  return np.round(np.expm1(values.numpy())).astype(int).tolist()


def test_each_rating_counts_only_ratings_of_earlier_days():
  table = trend.build_table(ROWS, TIMES, num_movies=3)

  # [7-day, 2-day] counts of each rating's own movie at its own time.
  assert _features(table, ROWS, TIMES) == [
      [0, 0],  # day 0: nothing before.
      [1, 0],  # day 3, 10:00: day 0 only; not itself, not 20:00 that day.
      [1, 0],  # day 3, 20:00: the 10:00 rating the same day does not count.
      [0, 0],  # movie 2 on day 3: itself excluded.
      [3, 2],  # day 5: days 0 and 3 (two) in 7 days; day 3 in 2 days.
      [1, 0],  # day 12: days 5-11 hold day 5's rating; days 10-11 none.
  ]


def test_a_rating_never_changes_the_features_of_itself_or_earlier_ones():
  table = trend.build_table(ROWS, TIMES, num_movies=3)
  # The same ratings plus a burst of later ones of movie 1 (day 12, after
  # every time asked about but the last, and days 20-21).
  late = np.array([T0 + 12 * DAY + 10, T0 + 20 * DAY, T0 + 21 * DAY])
  more = trend.build_table(np.concatenate([ROWS, [1, 1, 1]]),
                           np.concatenate([TIMES, late]), num_movies=3)

  assert _features(more, ROWS, TIMES) == _features(table, ROWS, TIMES)


def test_now_is_after_the_last_day_and_counts_every_rating_in_the_window():
  table = trend.build_table(ROWS, TIMES, num_movies=3)

  assert table.now == T0 + 13 * DAY
  # Now: days 6-12 hold movie 1's day-12 rating; days 11-12 the same.
  assert _features(table, [1, 2, 0], None) == [[1, 1], [0, 0], [0, 0]]
  # A time past the data is now; one before it sees nothing.
  assert _features(table, [1, 1], [T0 + 400 * DAY, T0 - 5 * DAY]) == [
      [1, 1], [0, 0]]


def test_a_long_history_widens_the_buckets_to_stay_under_the_bound():
  table = trend.build_table(ROWS, TIMES, num_movies=3, max_cells=3 * 7)

  # 13 days + 1 row at 3 movies is 42 cells: 2-day buckets (7 + 1 rows).
  assert table.bucket_seconds == 2 * DAY
  assert table.cumulative.shape == (8, 3)
  assert table.window_buckets(7) == 4 and table.window_buckets(1) == 1
  # Day 5 is in bucket 2 (days 4-5): the 4 buckets before hold days 0-3.
  assert _features(table, [1], [T0 + 5 * DAY], windows=(7,)) == [[3]]


@pytest.mark.parametrize('rows, times, message', [
    ([], [], 'at least one rating'),
    ([3], [T0], r'movie rows must be in \[0, 3\), got 3..3'),
    ([1, 2], [T0], 'must be 1-D of one length'),
])
def test_bad_input_is_refused_with_what_was_wrong(rows, times, message):
  with pytest.raises(ValueError, match=message):
    trend.build_table(np.array(rows, np.int64), np.array(times, np.int64),
                      num_movies=3)


def test_windows_must_be_positive_days():
  table = trend.build_table(ROWS, TIMES, num_movies=3)
  with pytest.raises(ValueError, match='positive days'):
    trend.RecentPopularity(table, (7, 0))


@pytest.mark.parametrize('batch_size', [2, 8192])
def test_the_reader_collects_every_examples_movie_row_and_time(
    tmp_path, batch_size):
  path = str(tmp_path / 'ratings.gz')
  with tf.io.TFRecordWriter(path, 'GZIP') as writer:
    for row, time in zip(ROWS, TIMES):
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          'movie_id_xf': tf.train.Feature(
              int64_list=tf.train.Int64List(value=[row])),
          'timestamp': tf.train.Feature(
              int64_list=tf.train.Int64List(value=[time])),
      })).SerializeToString())
  spec = {'movie_id_xf': tf.io.FixedLenFeature([], tf.int64),
          'timestamp': tf.io.FixedLenFeature([], tf.int64)}

  rows, times = scanned(path, trend.TrendReader(spec), batch_size).result()

  assert rows.tolist() == ROWS.tolist() and times.tolist() == TIMES.tolist()


def test_pairs_give_every_movie_at_every_time_as_single_lookups_do():
  table = trend.build_table(ROWS, TIMES, num_movies=3)
  layer = trend.RecentPopularity(table, (7, 2))
  times = tf.constant([T0 + 3 * DAY + 5, T0 + 5 * DAY + 50, table.now],
                      tf.int64)

  pairs = np.round(np.expm1(layer.pairs(tf.constant([2, 1, 0]),
                                        times).numpy())).astype(int)

  # [time, movie (2, 1, 0), window (7, 2)].
  assert pairs.tolist() == [
      [[0, 0], [1, 0], [0, 0]],  # day 3: movie 1's day-0 rating only.
      [[1, 1], [3, 2], [0, 0]],  # day 5: days 0-4.
      [[0, 0], [1, 1], [0, 0]],  # now (day 13): day 12's rating.
  ]


def _logit_scores(logit, time=T0 + 5 * DAY, rows=(1, 2)):
  return logit(tf.constant([time], tf.int64), tf.constant(rows)).numpy()


def test_trend_logit_weighs_each_windows_log_count():
  table = trend.build_table(ROWS, TIMES, num_movies=3)
  logit = trend.TrendLogit(table, (7, 2))
  logit.weight.assign(np.array([2.0, -1.0]) / logit.WEIGHT_SCALE)

  # Day 5, movie 1: 2 log(1 + 3) - log(1 + 2); movie 2: 2 log 2 - log 2.
  scores = _logit_scores(logit)

  np.testing.assert_allclose(
      scores, [[2 * np.log(4) - np.log(3), np.log(2)]], rtol=1e-6)


def test_trend_logit_starts_at_zero():
  table = trend.build_table(ROWS, TIMES, num_movies=3)

  scores = _logit_scores(trend.TrendLogit(table, (7,)))

  assert scores.tolist() == [[0.0, 0.0]]


def test_layers_on_one_table_share_its_constant():
  # An ensemble's members each build a layer on the same table; saved
  # together, the table is stored once.
  table = trend.build_table(ROWS, TIMES, num_movies=3)
  first = trend.RecentPopularity(table, (7,))
  second = trend.TrendLogit(table, (2,)).popularity

  assert first._cumulative is second._cumulative  # pylint: disable=protected-access
  np.testing.assert_array_equal(first._cumulative.numpy(),  # pylint: disable=protected-access
                                table.cumulative)


def test_pairs_of_a_few_movies_match_those_of_the_whole_table():
  # One movie of a 3-wide table takes the gather by flat index; all three
  # the gather of whole table rows. Both give the same counts.
  table = trend.build_table(ROWS, TIMES, num_movies=3)
  layer = trend.RecentPopularity(table, (7, 2))
  times = tf.constant([T0 + 3 * DAY + 5, T0 + 5 * DAY + 50, table.now],
                      tf.int64)

  every = layer.pairs(tf.constant([0, 1, 2]), times).numpy()
  one = layer.pairs(tf.constant([1]), times).numpy()

  np.testing.assert_array_equal(one, every[:, 1:2])
