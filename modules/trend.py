"""What is popular when: each movie's ratings in trailing windows of days,
as of any time, from strictly earlier days only.

A recommender judged on what users watch next competes with "the most
rated movies of the last weeks". The models get that signal as features:
for a movie m and a time t, the number of ratings m received in the w days
before t's day, for each window w (`RankingHParams.trend_windows`).

Leak-free by construction: the counts cover whole days before the day of
t, never t's own day, so a training example's feature never counts its own
rating, nor any rating at or after its time; a served "now" is the day
after the last rating (every rating counts). The same table answers both,
so training matches serving.

`TrendTable` is built once from the training data's (movie row, time)
pairs: cumulative daily counts per movie, `cum[d, m]` = ratings of movie m
on the days before day d. A window's count is then two lookups. The table
is kept at most `MAX_CELLS` cells: a longer history (ml-25m spans 25 years
of 59K movies) uses buckets of several days, and windows round to whole
buckets (at least one).

The counts go to the networks as log(1 + count).
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import dataclasses  # noqa: E402
import functools  # noqa: E402
import math  # noqa: E402
from typing import Mapping, Optional, Sequence, Tuple  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from modules import features  # noqa: E402

DAY_SECONDS = 86400
# Cells of the cumulative table (int32): 2**24 is 64 MiB. ML-100K (215 days
# x 1,682 movies) and ML-1M (1,038 x 3,706) fit at one day per bucket.
MAX_CELLS = 2 ** 24

_xf = features.transformed_name


@dataclasses.dataclass(frozen=True)
class TrendTable:
  """Cumulative ratings per movie per bucket of days.

  Attributes:
    cumulative: int32 [num_buckets + 1, num_movies]; row b holds each
      movie's ratings in the buckets before bucket b (row 0 is zeros, the
      last row every rating).
    start: the first bucket's start, seconds since the epoch (UTC
      midnight of the first rating's day).
    bucket_seconds: a bucket's length (one day or more).
  """
  cumulative: np.ndarray
  start: int
  bucket_seconds: int

  @functools.cached_property
  def constant(self) -> tf.Tensor:
    """`cumulative` as one TensorFlow constant, shared by every layer built
    on this table: an ensemble's members then save it once, not once each
    (at ml-25m the table is up to 64 MiB)."""
    return tf.constant(self.cumulative)

  @property
  def num_buckets(self) -> int:
    return self.cumulative.shape[0] - 1

  @property
  def now(self) -> int:
    """The time a servable answers for by default: the end of the last
    bucket, so every rating counts."""
    return self.start + self.num_buckets * self.bucket_seconds

  def window_buckets(self, days: int) -> int:
    """A window of `days` in whole buckets (at least one)."""
    return max(1, int(round(days * DAY_SECONDS / self.bucket_seconds)))


def build_table(movie_rows: np.ndarray, times: np.ndarray, num_movies: int,
                max_cells: int = MAX_CELLS) -> TrendTable:
  """The table of the ratings (`movie_rows[i]` rated at `times[i]`).

  Args:
    movie_rows: int, each rating's movie as its row (Transform's movie-id
      index, OOV bucket included), in [0, num_movies).
    times: int, seconds since the epoch.
    num_movies: the table's width (the movie vocabulary with its OOV
      buckets).
    max_cells: the table's size bound; buckets widen by whole days to keep
      under it.

  Raises:
    ValueError: no ratings, a row outside [0, num_movies), or lengths that
      differ.
  """
  movie_rows = np.asarray(movie_rows, np.int64)
  times = np.asarray(times, np.int64)
  if movie_rows.shape != times.shape or movie_rows.ndim != 1:
    raise ValueError(f'movie_rows and times must be 1-D of one length, got '
                     f'{movie_rows.shape} and {times.shape}')
  if not movie_rows.size:
    raise ValueError('the trend table needs at least one rating')
  if movie_rows.min() < 0 or movie_rows.max() >= num_movies:
    raise ValueError(f'movie rows must be in [0, {num_movies}), got '
                     f'{movie_rows.min()}..{movie_rows.max()}')
  start = int(times.min()) // DAY_SECONDS * DAY_SECONDS
  days = int(times.max() - start) // DAY_SECONDS + 1
  days_per_bucket = max(1, math.ceil((days + 1) * num_movies / max_cells))
  bucket_seconds = days_per_bucket * DAY_SECONDS
  buckets = (times - start) // bucket_seconds
  num_buckets = int(buckets.max()) + 1
  per_bucket = np.bincount((buckets + 1) * num_movies + movie_rows,
                           minlength=(num_buckets + 1) * num_movies)
  return TrendTable(
      np.cumsum(per_bucket.reshape(num_buckets + 1, num_movies), axis=0,
                dtype=np.int32), start, bucket_seconds)


class RecentPopularity(tf.keras.layers.Layer):
  """[N, len(windows)] log(1 + ratings in each trailing window) of movies
  at times, from a `TrendTable` (a constant of the model, not a weight).

  Call with movie rows (int [N]) and times (int64 seconds [N], or None
  for the table's now).
  """

  def __init__(self, table: TrendTable, windows: Sequence[int], **kwargs):
    super().__init__(trainable=False, **kwargs)
    if not windows or min(windows) < 1:
      raise ValueError(f'trend windows must be positive days, got '
                       f'{tuple(windows)}')
    self._start = tf.constant(table.start, tf.int64)
    self._bucket_seconds = tf.constant(table.bucket_seconds, tf.int64)
    self._num_buckets = tf.constant(table.num_buckets, tf.int64)
    self._window_buckets = tf.constant(
        [table.window_buckets(int(w)) for w in windows], tf.int64)
    # Kept out of Keras' weight tracking: saved as a constant of the graph.
    self.__dict__['_cumulative'] = table.constant

  def _window_rows(self, times: Optional[tf.Tensor],
                   shape: tf.Tensor) -> tf.Tensor:
    """[..., 1 + len(windows)] table rows: the time's (the buckets wholly
    before it; the last row for None, of `shape`), then each window's
    start."""
    if times is None:
      bucket = tf.fill(shape, self._num_buckets)
    else:
      bucket = tf.clip_by_value(
          tf.math.floordiv(tf.cast(times, tf.int64) - self._start,
                           self._bucket_seconds), 0, self._num_buckets)
    return tf.concat(
        [bucket[..., None],
         tf.maximum(bucket[..., None] - self._window_buckets, 0)], axis=-1)

  @staticmethod
  def _log_counts(cumulative: tf.Tensor) -> tf.Tensor:
    """log(1 + ratings in each window) from [..., 1 + len(windows)]
    cumulative counts (at the time, then at each window's start)."""
    return tf.math.log1p(
        tf.cast(cumulative[..., :1] - cumulative[..., 1:], tf.float32))

  def call(self, movie_rows: tf.Tensor,
           times: Optional[tf.Tensor] = None) -> tf.Tensor:
    rows = tf.cast(movie_rows, tf.int64)
    window_rows = self._window_rows(times, tf.shape(rows))
    return self._log_counts(tf.gather_nd(self._cumulative, tf.stack(
        [window_rows, tf.broadcast_to(rows[:, None], tf.shape(window_rows))],
        axis=-1)))

  def pairs(self, movie_rows: tf.Tensor, times: tf.Tensor) -> tf.Tensor:
    """[B, N, len(windows)]: every movie of `movie_rows` (int [N]) at every
    time of `times` (int64 seconds [B]), as `call` gives one pair.

    For few movies (a batch's: fewer than half the table's width), one
    gather of the B x N x (windows + 1) cells by flat index; for many (the
    catalogue's), the B times' table rows, then the N movies' columns,
    whose intermediate is [B, windows + 1, table width] int32 but needs no
    index per cell.
    """
    rows = tf.cast(movie_rows, tf.int64)
    window_rows = self._window_rows(times, tf.shape(times))[:, None, :]
    width = tf.shape(self._cumulative, out_type=tf.int64)[1]
    few = 2 * tf.size(rows, out_type=tf.int64) < width
    counts = tf.cond(
        few,
        lambda: tf.gather(tf.reshape(self._cumulative, [-1]),
                          window_rows * width + rows[None, :, None]),
        lambda: tf.transpose(tf.gather(tf.gather(
            self._cumulative, window_rows[:, 0]), rows, axis=2), [0, 2, 1]))
    return self._log_counts(counts)


def required(table: Optional[TrendTable]) -> TrendTable:
  """`table`, which a model with `trend_windows` needs."""
  if table is None:
    raise ValueError('trend_windows needs the trend table of the training '
                     'ratings')
  return table


class TrendLogit(tf.keras.layers.Layer):
  """A learned score of a movie's recent popularity: w . log(1 + counts in
  each trailing window), w a trainable vector (zeros at first, so training
  starts from the model without it).

  The retrieval model adds it to each (query, candidate) logit, with the
  counts taken at the query's time, so a negative is judged at the moment
  the positive was rated. Being linear in the counts' features, it is
  served as extra dimensions of the two towers (`retrieval_model.
  TrendQuery`, `TrendCandidate`): the candidate's features at now against
  the weights in the query.

  w is `WEIGHT_SCALE` times its variable: Adam moves a variable by about
  its learning rate per step, and a few hundred steps of 0.003 leave a
  weight that every example shares far below the values it needs (about
  0.2 logits per log-count on ML-100K; scales of 10 and 30 measured alike,
  1 about half as good: docs/decisions.md).
  """

  WEIGHT_SCALE = 10.0

  def __init__(self, table: TrendTable, windows: Sequence[int], **kwargs):
    super().__init__(**kwargs)
    self.popularity = RecentPopularity(table, windows, name='popularity')
    self.weight = self.add_weight(name='weight', shape=[len(windows)],
                                  initializer='zeros')
    self.calibration = self.add_weight(name='calibration',
                                       shape=[len(windows)],
                                       initializer='zeros', trainable=False)

  @property
  def coefficients(self) -> tf.Tensor:
    """w, [len(windows)]."""
    return self.weight * self.WEIGHT_SCALE

  @property
  def served_coefficients(self) -> tf.Tensor:
    """w + the calibration, [len(windows)]: the weights served. The
    calibration (zeros unless `modules/trend_calibration.py` set it) is
    what the weeks after the training data want beyond the w that
    training learns; training never reads it."""
    return self.coefficients + self.calibration

  def call(self, times: tf.Tensor, movie_rows: tf.Tensor) -> tf.Tensor:
    """[B, N] score of movie n at time b."""
    return tf.linalg.matvec(self.popularity.pairs(movie_rows, times),
                            self.coefficients)


class TrendReader:
  """Reader of `training_data.scan`: each example's movie row and raw
  time, for `build_table`."""

  def __init__(self, feature_spec: Mapping[str, tf.io.FixedLenFeature]):
    self.spec = {k: feature_spec[k]
                 for k in (_xf(features.MOVIE_ID), features.TIMESTAMP)}
    self._rows, self._times = [], []

  def add(self, batch: Mapping[str, tf.Tensor]) -> None:
    self._rows.append(batch[_xf(features.MOVIE_ID)].numpy())
    self._times.append(batch[features.TIMESTAMP].numpy())

  def result(self) -> Tuple[np.ndarray, np.ndarray]:
    """(movie rows, times) of every example read."""
    return (np.concatenate(self._rows) if self._rows else
            np.zeros([0], np.int64),
            np.concatenate(self._times) if self._times else
            np.zeros([0], np.int64))
