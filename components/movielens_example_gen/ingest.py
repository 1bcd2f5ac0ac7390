"""Beam transforms that turn a raw MovieLens folder into tf.Examples.

Plain Apache Beam and TensorFlow protos, no TFX: the executor wires these
into a pipeline, and tests run them directly.

Any layout of `movielens.layout` (ml-100k, ml-1m, the CSV layout of
ml-20m/ml-25m): the layout names the files, their parsers and the header
lines to skip. `ReadFromText` splits on newlines only, which is right for
CSV too: MovieLens titles hold commas (quoted, handled by the layout's
parser) but never newlines, so every line is one record. Releases without
a users file (ml-20m/25m) get no demographic features at all.

Scale: ratings are streamed with `ReadFromText` (splittable, no whole-file
load anywhere). Users and movies are dimension tables (at most ~160K users
and ~60K movies in ml-25m) held as side inputs. The per-user split groups
one user's ratings at a time (tens of thousands at most), as compact
(movie_id, rating, timestamp) rows: the features are joined after the
shuffle, when the Examples are encoded in batches (`_EncodeExamples`).

Bad lines do not fail the pipeline on the first hit: every check counts
them (the counter 'bad_lines') and drops them, so one run finds every kind
of problem, and the executor publishes nothing when any was counted;
`bad_lines.find` then names them in file order. The checks: each line
parses in its layout, each movie and user id is defined once, each
rating's movie and user are defined. A movie a user rated more than once
keeps its newest rating (`newest_ratings`), counted and reported, not an
error.
"""

from __future__ import annotations

import glob
import hashlib
import math
import os
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import tensorflow as tf
from tfx_bsl.coders import example_coder

from modules import features
from movielens import layout as raw

TRAIN = 'train'
EVAL = 'eval'
CATALOG = 'catalog'
METRICS_NAMESPACE = 'movielens_example_gen'
# Rows per Example-encoding batch (Beam sizes batches within these bounds).
_MIN_BATCH = 256
_MAX_BATCH = 8192


def _count_bad(count: int = 1) -> None:
  beam.metrics.Metrics.counter(METRICS_NAMESPACE, 'bad_lines').inc(count)


class _ParseLines(beam.DoFn):
  """Parses raw lines with a layout parser; bad lines are counted and
  dropped."""

  def __init__(self, parse):
    self._parse = parse

  def process(self, line: bytes):
    if not line.strip():  # Blank lines (e.g. a trailing newline) carry
      return []           # nothing.
    try:
      return [self._parse(line)]
    except raw.RawLineError:
      _count_bad()
      return []


def read_records(pipeline: beam.Pipeline, data_dir: str, file_name: str,
                 parse, header_lines: int = 0) -> beam.PCollection:
  """Reads one raw file into parsed records (bad lines counted, dropped).

  The path is escaped: Beam reads a file name as a glob pattern, and a
  folder named e.g. 'ml-100k [copy]' would match nothing.
  """
  return (
      pipeline
      | f'Read[{file_name}]' >> beam.io.ReadFromText(
          glob.escape(os.path.join(data_dir, file_name)),
          coder=beam.coders.BytesCoder(),
          skip_header_lines=header_lines)
      | f'Parse[{file_name}]' >> beam.ParDo(_ParseLines(parse)))


def _count_duplicates(id_and_count: Tuple[str, int]) -> None:
  """Counts the extra definitions of an id (a movie or user defined twice)."""
  if id_and_count[1] > 1:
    _count_bad(id_and_count[1] - 1)


class _CheckRating(beam.DoFn):
  """Checks that a rating's user and movie exist, and keys it by user.

  A rating whose user or movie is missing from the dimension files is a
  bad line of the ratings file, counted and dropped. The output is the
  compact row
  (user_id, (movie_id, rating, timestamp)): only primitives cross the
  shuffle, whose cost and memory grow with the number of ratings, and
  the features are joined after it (`_EncodeExamples`).
  """

  def __init__(self, with_users: bool):
    self._with_users = with_users

  def process(self, rating: raw.Rating, movies: Dict[str, raw.Movie],
              users: Dict[str, raw.User]):
    if rating.movie_id not in movies or (
        self._with_users and rating.user_id not in users):
      _count_bad()
      return []
    return [(rating.user_id,
             (rating.movie_id, rating.rating, rating.timestamp))]


def _bytes_feature(values: Iterable[str]) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(
      value=[v.encode('utf-8') for v in values]))


def _int_feature(values: Iterable[int]) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _float_feature(values: Iterable[float]) -> tf.train.Feature:
  return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def movie_features(movie: raw.Movie) -> Dict[str, tf.train.Feature]:
  out = {
      features.MOVIE_ID: _bytes_feature([movie.movie_id]),
      features.TITLE: _bytes_feature([movie.title]),
  }
  # A movie without genres (ml-25m's '(no genres listed)') or without a
  # year lacks the feature, rather than carrying an empty or made-up value.
  if movie.genres:
    out[features.GENRES] = _bytes_feature(movie.genres)
  if movie.release_year is not None:
    out[features.RELEASE_YEAR] = _int_feature([movie.release_year])
  return out


def movie_example(movie: raw.Movie) -> tf.train.Example:
  return tf.train.Example(features=tf.train.Features(
      feature=movie_features(movie)))


def _column(values: List, value_type: pa.DataType,
            lengths: Optional[List[int]] = None) -> pa.Array:
  """A list column for the Example encoder: one value per row, or
  `lengths[i]` values for row i (`values` then holds them all, flat)."""
  if lengths is None:
    offsets = np.arange(len(values) + 1, dtype=np.int64)
  else:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
  return pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()),
                                       pa.array(values, value_type))


class _EncodeExamples(beam.DoFn):
  """Batches of rating rows -> serialized tf.Examples with every feature.

  Each row (user_id, movie_id, rating, timestamp) is joined with its movie's
  and user's features (side inputs) and written as one tf.Example (see
  modules.features). tfx_bsl's C++ encoder turns a batch held as Arrow
  columns into Examples: building each Example as a Python proto cost about
  110 us per rating, most of ExampleGen's time at scale (see
  benchmarks/README.md). The encoder writes a missing value as a feature
  with no value list rather than leaving the feature out, so a batch is
  encoded in groups of rows with the same features present (movies without
  genres or release year lack those features) and each group gets only its
  present columns. Releases without demographics (ml-20m/25m) have no user
  features at all. Rows keep their order.
  """

  def __init__(self, with_users: bool):
    self._with_users = with_users
    self._encoder = None

  def setup(self):
    self._encoder = example_coder.RecordBatchToExamplesEncoder()

  def process(self, rows: List[Tuple[str, str, float, int]],
              movies: Dict[str, raw.Movie], users: Dict[str, raw.User]):
    groups: Dict[Tuple[bool, bool], List[int]] = {}
    for index, row in enumerate(rows):
      movie = movies[row[1]]
      groups.setdefault((bool(movie.genres), movie.release_year is not None),
                        []).append(index)
    encoded: List[bytes] = [b''] * len(rows)
    for (has_genres, has_year), indices in groups.items():
      batch = self._record_batch([rows[i] for i in indices], movies, users,
                                 has_genres, has_year)
      for index, example in zip(indices, self._encoder.encode(batch)):
        encoded[index] = example
    yield from encoded

  def _record_batch(self, rows, movies, users, has_genres: bool,
                    has_year: bool) -> pa.RecordBatch:
    user_ids, movie_ids, ratings, timestamps = (list(c) for c in zip(*rows))
    movie_rows = [movies[m] for m in movie_ids]
    columns = {
        features.USER_ID: _column(user_ids, pa.large_binary()),
        features.MOVIE_ID: _column(movie_ids, pa.large_binary()),
        features.RATING: _column(ratings, pa.float32()),
        features.TIMESTAMP: _column(timestamps, pa.int64()),
        features.TITLE: _column([m.title for m in movie_rows],
                                pa.large_binary()),
    }
    if has_genres:
      columns[features.GENRES] = _column(
          [g for m in movie_rows for g in m.genres], pa.large_binary(),
          lengths=[len(m.genres) for m in movie_rows])
    if has_year:
      columns[features.RELEASE_YEAR] = _column(
          [m.release_year for m in movie_rows], pa.int64())
    if self._with_users:
      user_rows = [users[u] for u in user_ids]
      columns[features.AGE] = _column([u.age for u in user_rows], pa.int64())
      for name, field in ((features.GENDER, 'gender'),
                          (features.OCCUPATION, 'occupation'),
                          (features.ZIP_CODE, 'zip_code')):
        columns[name] = _column([getattr(u, field) for u in user_rows],
                                pa.large_binary())
    return pa.RecordBatch.from_arrays(list(columns.values()),
                                      list(columns.keys()))


def num_eval_ratings(num_ratings: int, eval_fraction: float) -> int:
  """How many of a user's newest ratings go to eval: floor(n * fraction).

  A user with too few ratings for one eval rating (n * fraction < 1) stays
  wholly in train.
  """
  return int(math.floor(num_ratings * eval_fraction + 1e-9))


def user_share(user_id: str) -> float:
  """A user's fixed place in [0, 1): the eval sample holds users below a
  rate (a hash, so the same users at every run and on every worker)."""
  digest = hashlib.sha256(user_id.encode('utf-8')).digest()
  return int.from_bytes(digest[:8], 'big') / 2.0**64


def eval_user_rate(eval_ratings: int, max_eval_ratings: int) -> float:
  """Share of users held out so that eval has about `max_eval_ratings`
  (all of them when the full split is no bigger, or with no bound: 0)."""
  if not max_eval_ratings or eval_ratings <= max_eval_ratings:
    return 1.0
  return max_eval_ratings / eval_ratings


def newest_ratings(ratings: Iterable[Tuple[str, float, int]]
                  ) -> List[Tuple[str, float, int]]:
  """One user's (movie_id, rating, timestamp) rows, one per movie: a movie
  rated again keeps its newest rating (of equal times, the higher), the
  user's current opinion. The others are counted ('duplicate_ratings').
  """
  newest: Dict[str, Tuple[str, float, int]] = {}
  count = 0
  for row in ratings:
    count += 1
    kept = newest.get(row[0])
    if kept is None or (row[2], row[1]) > (kept[2], kept[1]):
      newest[row[0]] = row
  if count > len(newest):
    beam.metrics.Metrics.counter(METRICS_NAMESPACE, 'duplicate_ratings').inc(
        count - len(newest))
  return list(newest.values())


def _num_eval(user_and_ratings, eval_fraction: float) -> int:
  return num_eval_ratings(
      len({movie_id for movie_id, _, _ in user_and_ratings[1]}),
      eval_fraction)


def split_user_history(
    user_and_ratings: Tuple[str, Iterable[Tuple[str, float, int]]],
    eval_fraction: float,
    user_rate: float = 1.0) -> Iterator[beam.pvalue.TaggedOutput]:
  """Per-user temporal split: each user's newest ratings go to eval.

  Input: a user id and that user's (movie_id, rating, timestamp) rows;
  output: (user_id, movie_id, rating, timestamp) rows tagged TRAIN or EVAL.
  Only users whose `user_share` is below `user_rate` are held out; the
  others' ratings all go to TRAIN (see `eval_user_rate`).

  Why this split: a recommender is asked about a user's *next* movies, never
  about their past ones, so evaluation must not let the model see a user's
  future. A random split leaks it (the model trains on ratings made after
  the ones it is tested on). A single global cut-off time avoids the leak
  but leaves most eval users unseen in training on MovieLens (users rate in
  short bursts), which measures only the cold-start path. Holding out the
  newest `eval_fraction` of every user's ratings keeps every user in
  training, never trains on a user's future, and mirrors how the model is
  used: given a user's history, predict what comes next. Ties in time are
  broken by movie id so the split is deterministic.

  At scale a bounded eval split is held out for a random sample of users
  rather than for all of them: evaluating 5M ratings (ml-25m) would cost
  the trainers' validation passes and the Evaluators far more time than
  it buys in precision (RMSE on 1M ratings has a standard error near
  0.001), while the sampled users are as representative as all of them.
  """
  user_id, ratings = user_and_ratings
  history: List = sorted(newest_ratings(ratings), key=lambda r: (r[2], r[0]))
  cut = len(history)
  if user_rate >= 1.0 or user_share(user_id) < user_rate:
    cut -= num_eval_ratings(len(history), eval_fraction)
  if cut < len(history):
    beam.metrics.Metrics.counter(METRICS_NAMESPACE, 'eval_users').inc()
  counts = {TRAIN: cut, EVAL: len(history) - cut}
  for split, count in counts.items():
    if count:
      beam.metrics.Metrics.counter(METRICS_NAMESPACE,
                                   f'ratings_{split}').inc(count)
  for index, (movie_id, rating, timestamp) in enumerate(history):
    yield beam.pvalue.TaggedOutput(TRAIN if index < cut else EVAL,
                                   (user_id, movie_id, rating, timestamp))


def _write_serialized(pcoll, output_prefix: str, label: str):
  return pcoll | f'Write[{label}]' >> beam.io.WriteToTFRecord(
      output_prefix, file_name_suffix='.gz')


def _count_movie(movie):
  beam.metrics.Metrics.counter(METRICS_NAMESPACE, 'movies').inc()
  return movie


def _count_user(user):
  beam.metrics.Metrics.counter(METRICS_NAMESPACE, 'users').inc()
  return user


def build_ingest_pipeline(pipeline: beam.Pipeline, data_dir: str,
                          data_layout: raw.RawLayout, eval_fraction: float,
                          split_prefixes: Dict[str, str],
                          max_eval_ratings: int = 0) -> None:
  """Adds the whole ingestion to `pipeline`.

  Args:
    pipeline: the Beam pipeline to add to.
    data_dir: folder holding one raw release in `data_layout`.
    data_layout: the release's layout (files, encodings, parsers).
    eval_fraction: share of each user's newest ratings held out for eval.
    split_prefixes: output file prefix per split: TRAIN and EVAL (ratings
      with joined features) and CATALOG (every movie).
    max_eval_ratings: bound on the eval split (about; 0 for none): beyond
      it, only a sample of users is held out (`split_user_history`).
  """
  movies = read_records(pipeline, data_dir, data_layout.movies_file,
                        data_layout.parse_movie, data_layout.header_lines)
  ratings = read_records(pipeline, data_dir, data_layout.ratings_file,
                         data_layout.parse_rating, data_layout.header_lines)

  movies_by_id = (movies
                  | 'CountMovies' >> beam.Map(_count_movie)
                  | 'KeyMovies' >> beam.Map(lambda m: (m.movie_id, m)))
  _ = (movies_by_id
       | 'CountMovieIds' >> beam.combiners.Count.PerKey()
       | 'MovieIdsOnce' >> beam.Map(_count_duplicates))
  if data_layout.users_file:
    users = read_records(pipeline, data_dir, data_layout.users_file,
                         data_layout.parse_user, data_layout.header_lines)
    users_by_id = (users
                   | 'CountUsers' >> beam.Map(_count_user)
                   | 'KeyUsers' >> beam.Map(lambda u: (u.user_id, u)))
    _ = (users_by_id
         | 'CountUserIds' >> beam.combiners.Count.PerKey()
         | 'UserIdsOnce' >> beam.Map(_count_duplicates))
  else:
    users_by_id = pipeline | 'NoUsers' >> beam.Create([])

  checked = ratings | 'CheckIds' >> beam.ParDo(
      _CheckRating(with_users=bool(data_layout.users_file)),
      movies=beam.pvalue.AsDict(movies_by_id),
      users=beam.pvalue.AsDict(users_by_id))

  by_user = checked | 'GroupByUser' >> beam.GroupByKey()
  user_rate = (
      by_user
      | 'CountEval' >> beam.Map(_num_eval, eval_fraction=eval_fraction)
      | 'SumEval' >> beam.CombineGlobally(sum)
      | 'EvalUserRate' >> beam.Map(eval_user_rate,
                                   max_eval_ratings=max_eval_ratings))
  splits = by_user | 'SplitByTime' >> beam.FlatMap(
      split_user_history, eval_fraction=eval_fraction,
      user_rate=beam.pvalue.AsSingleton(user_rate)).with_outputs(TRAIN, EVAL)
  for split in (TRAIN, EVAL):
    examples = (
        splits[split]
        | f'Batch[{split}]' >> beam.BatchElements(
            min_batch_size=_MIN_BATCH, max_batch_size=_MAX_BATCH)
        | f'ToExample[{split}]' >> beam.ParDo(
            _EncodeExamples(with_users=bool(data_layout.users_file)),
            movies=beam.pvalue.AsDict(movies_by_id),
            users=beam.pvalue.AsDict(users_by_id)))
    _write_serialized(examples, split_prefixes[split], split)

  catalog = movies | 'ToExample[catalog]' >> beam.Map(movie_example)
  _write_serialized(
      catalog | 'Serialize[catalog]' >> beam.Map(
          lambda example: example.SerializeToString(deterministic=True)),
      split_prefixes[CATALOG], CATALOG)
