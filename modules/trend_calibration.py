"""A time-honest weight for the retrieval model's trend term.

Training learns the trend weight w (`trend.TrendLogit`) beside id
embeddings that fit each movie's popularity over the whole training period,
the weeks after each training rating included. In-sample the embeddings
know more than a trailing count can tell, so w comes out several times
smaller than what ranks the weeks after the data best; served, only the
trailing counts know what has become popular since (docs/decisions.md,
"Time-aware models").

The calibration measures that gap where it can be measured. A model with
the refit's settings is trained on the ratings before the last
`trend_calibration_days` days (`retrieval_trainer.calibrate`) and ranks
those days' movies for their users as a deployed model would: each user's
latest example before the cut-off is the query, the counts are taken at the
cut-off, movies the user rated before are left out. Of a grid of additions
to w, the one with the best nDCG@10 over those users is kept, and the
refit, trained on everything, serves w + that addition
(`trend.TrendLogit.served_coefficients`).

This module holds what does not need the model: reading the period and
choosing the addition from the embeddings.
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import dataclasses  # noqa: E402
from typing import Dict, List, Mapping, Sequence, Tuple  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from modules import features  # noqa: E402
from modules import training_data  # noqa: E402

# Additions to w tried, in logits per log-count: each window alone and all
# windows together. On ML-100K the best additions lay between 4 and 8
# (docs/decisions.md).
GRID = (0.5, 1.0, 2.0, 4.0, 8.0)
K = 10
# Users ranked at most (evenly spread): the score matrix is computed 256
# users at a time, so this bounds the time, not the memory.
MAX_USERS = 4096
_CHUNK = 256
_READ_BATCH = 8192
_KEYS = {features.USER_ID: tf.io.FixedLenFeature([], tf.string),
         features.MOVIE_ID: tf.io.FixedLenFeature([], tf.string),
         features.TIMESTAMP: tf.io.FixedLenFeature([], tf.int64)}


@dataclasses.dataclass
class Period:
  """The users who rated both before the cut-off and from it on.

  Attributes:
    user_ids: raw ids, sorted.
    queries: transformed-feature dict, one row per user: their latest
      example before the cut-off (the query a deployed model would get).
    seen: per user, catalogue rows rated before the cut-off.
    relevant: per user, catalogue rows rated from the cut-off on and not
      before.
    num_relevant: per user, movies rated from the cut-off on and not
      before, in the catalogue or not (nDCG's ideal ranking counts them
      all).
  """
  user_ids: List[bytes]
  queries: Dict[str, tf.Tensor]
  seen: List[np.ndarray]
  relevant: List[np.ndarray]
  num_relevant: np.ndarray


def read_period(file_pattern, feature_spec, cutoff: int,
                movie_rows: Mapping[bytes, int],
                max_users: int = MAX_USERS) -> Period:
  """The period from `cutoff` on, and each of its users' history before it,
  in one pass over the transformed examples.

  Args:
    file_pattern: the refit's files (train + eval).
    feature_spec: Transform's transformed feature spec (the queries are
      parsed with it, as training batches are).
    cutoff: seconds since the epoch.
    movie_rows: raw movie id -> catalogue row, the catalogue being the
      movies rated before the cut-off.
    max_users: keep at most this many users, evenly spread over the sorted
      ids.
  """
  records = tf.data.TFRecordDataset(training_data.file_names(file_pattern),
                                    'GZIP')
  dataset = records.batch(_READ_BATCH).map(
      lambda records: (records, tf.io.parse_example(records, _KEYS)))
  latest: Dict[bytes, Tuple[int, bytes]] = {}
  seen: Dict[bytes, set] = {}
  after: Dict[bytes, set] = {}
  for records, batch in dataset.as_numpy_iterator():
    users, movies = batch[features.USER_ID], batch[features.MOVIE_ID]
    times = batch[features.TIMESTAMP]
    for i in range(len(users)):
      user, time = users[i], int(times[i])
      if time < cutoff:
        seen.setdefault(user, set()).add(movies[i])
        if user not in latest or time >= latest[user][0]:
          latest[user] = (time, records[i])
      else:
        after.setdefault(user, set()).add(movies[i])
  user_ids = sorted(u for u in latest if after.get(u, set()) - seen[u])
  if len(user_ids) > max_users:
    picked = np.unique(np.linspace(0, len(user_ids) - 1,
                                   max_users).astype(int))
    user_ids = [user_ids[i] for i in picked]

  def rows(movies):
    return np.array(sorted(movie_rows[m] for m in movies if m in movie_rows),
                    np.int64)

  fresh = [after[u] - seen[u] for u in user_ids]
  queries = tf.io.parse_example(
      tf.constant([latest[u][1] for u in user_ids], tf.string),
      feature_spec) if user_ids else {}
  return Period(user_ids=user_ids, queries=queries,
                seen=[rows(seen[u]) for u in user_ids],
                relevant=[rows(f) for f in fresh],
                num_relevant=np.array([len(f) for f in fresh], np.int64))


def ndcg(top: np.ndarray, relevant: Sequence[np.ndarray],
         num_relevant: np.ndarray) -> np.ndarray:
  """Per row, nDCG of the ranked catalogue rows `top` [users, k] against the
  rows in `relevant` (binary gains; the ideal DCG counts `num_relevant`
  movies, at most k): the MS Recommenders definition."""
  k = top.shape[1]
  discounts = 1.0 / np.log2(np.arange(2, k + 2))
  ideal = np.cumsum(discounts)
  hits = np.stack([np.isin(row, rel) for row, rel in zip(top, relevant)]
                 ) if len(top) else np.zeros_like(top, bool)
  dcg = hits @ discounts
  count = np.minimum(num_relevant, k)
  return np.where(count > 0, dcg / ideal[np.maximum(count, 1) - 1], 0.0)


def offsets(num_windows: int) -> List[Tuple[str, np.ndarray]]:
  """The additions tried, smallest first: none, then for each value of
  `GRID` each window alone and all windows together. Named for the log."""
  tried = [('none', np.zeros(num_windows, np.float32))]
  for value in GRID:
    for window in range(num_windows):
      offset = np.zeros(num_windows, np.float32)
      offset[window] = value
      tried.append((f'+{value:g} on window {window + 1}', offset))
    if num_windows > 1:
      tried.append((f'+{value:g} on each',
                    np.full(num_windows, value, np.float32)))
  return tried


def choose(queries: np.ndarray, candidates: np.ndarray,
           popularity: np.ndarray, temperature: float, period: Period,
           k: int = K) -> Tuple[np.ndarray, Dict[str, float]]:
  """The addition to w that ranks the period best.

  Args:
    queries: [users, d] served query embeddings of `period.user_ids`.
    candidates: [movies, d] served candidate embeddings of the catalogue.
    popularity: [movies, windows] the catalogue's log(1 + counts) at the
      cut-off.
    temperature: the model's; an addition c to w moves a served score by
      temperature x c . popularity.
    period: from `read_period`.
    k: the ranking's length.

  Returns:
    (the best addition, [windows]; nDCG@k of each addition tried, by name).
    Ties go to the smaller addition.
  """
  k = min(k, len(candidates))
  tried = offsets(popularity.shape[1])
  shifts = [temperature * (popularity @ offset) for _, offset in tried]
  totals = np.zeros(len(tried))
  for start in range(0, len(queries), _CHUNK):
    scores = queries[start:start + _CHUNK] @ candidates.T
    for row, seen in enumerate(period.seen[start:start + _CHUNK]):
      scores[row, seen] = -np.inf
    relevant = period.relevant[start:start + _CHUNK]
    num_relevant = period.num_relevant[start:start + _CHUNK]
    for j, shift in enumerate(shifts):
      shifted = scores + shift[None, :]
      top = np.argpartition(-shifted, k - 1, axis=1)[:, :k]
      order = np.argsort(-np.take_along_axis(shifted, top, axis=1), axis=1,
                         kind='stable')
      top = np.take_along_axis(top, order, axis=1)
      totals[j] += ndcg(top, relevant, num_relevant).sum()
  means = totals / max(len(queries), 1)
  best = int(np.argmax(means))
  return tried[best][1], {name: float(m) for (name, _), m in zip(tried, means)}
