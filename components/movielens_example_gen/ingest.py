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

Bad lines do not fail the pipeline on the first hit: they go to a
dead-letter output, so one run reports every kind of problem (with a
sample of lines) and the executor can refuse to publish anything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import tensorflow as tf
from tfx_bsl.coders import example_coder

from modules import features
from movielens import layout as raw

ERRORS_TAG = 'errors'
TRAIN = 'train'
EVAL = 'eval'
CATALOG = 'catalog'
METRICS_NAMESPACE = 'movielens_example_gen'
# Rows per Example-encoding batch (Beam sizes batches within these bounds).
_MIN_BATCH = 256
_MAX_BATCH = 8192


@dataclasses.dataclass(frozen=True)
class BadLine:
  """A raw line that cannot be ingested, with the reason."""
  file: str
  line: str  # the raw bytes, decoded as latin-1 (lossless)
  problem: str
  # For a rating that parsed but does not join: (user_id, movie_id,
  # timestamp), to find its line number; `line` is then a rendering.
  rating_key: Optional[Tuple[str, str, int]] = None

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> 'BadLine':
    fields = json.loads(text)
    if fields.get('rating_key') is not None:
      fields['rating_key'] = tuple(fields['rating_key'])
    return cls(**fields)


class _ParseLines(beam.DoFn):
  """Parses raw lines with a layout parser; bad lines go to ERRORS_TAG."""

  def __init__(self, file_name: str, parse):
    self._file_name = file_name
    self._parse = parse

  def process(self, line: bytes):
    if not line.strip():
      return  # Blank lines (e.g. a trailing newline) carry nothing.
    try:
      yield self._parse(line)
    except raw.RawLineError as e:
      beam.metrics.Metrics.counter(METRICS_NAMESPACE, 'bad_lines').inc()
      yield beam.pvalue.TaggedOutput(
          ERRORS_TAG, BadLine(self._file_name, line.decode('latin-1'), str(e)))


def read_records(pipeline: beam.Pipeline, data_dir: str, file_name: str,
                 parse, header_lines: int = 0) -> beam.pvalue.DoOutputsTuple:
  """Reads one raw file into parsed records (main) and BadLines (errors)."""
  return (
      pipeline
      | f'Read[{file_name}]' >> beam.io.ReadFromText(
          os.path.join(data_dir, file_name),
          coder=beam.coders.BytesCoder(),
          skip_header_lines=header_lines)
      | f'Parse[{file_name}]' >> beam.ParDo(
          _ParseLines(file_name, parse)).with_outputs(ERRORS_TAG, main='ok'))


class _CheckRating(beam.DoFn):
  """Checks that a rating's user and movie exist, and keys it by user.

  A rating whose user or movie is missing from the dimension files is a
  bad line of the ratings file. The output is the compact row
  (user_id, (movie_id, rating, timestamp)): only primitives cross the
  shuffle, whose cost and memory grow with the number of ratings, and
  the features are joined after it (`_EncodeExamples`).
  """

  def __init__(self, ratings_file: str, movies_file: str,
               users_file: Optional[str],
               format_rating: Callable[[raw.Rating], str]):
    self._ratings_file = ratings_file
    self._movies_file = movies_file
    self._users_file = users_file
    self._format_rating = format_rating

  def process(self, rating: raw.Rating, movies: Dict[str, raw.Movie],
              users: Dict[str, raw.User]):
    problem = None
    if rating.movie_id not in movies:
      problem = (f'field \'movie_id\': movie {rating.movie_id!r} is not in '
                 f'{self._movies_file}')
    elif self._users_file and rating.user_id not in users:
      problem = (f'field \'user_id\': user {rating.user_id!r} is not in '
                 f'{self._users_file}')
    if problem:
      beam.metrics.Metrics.counter(METRICS_NAMESPACE, 'bad_lines').inc()
      line = self._format_rating(rating).rstrip('\n')
      key = (rating.user_id, rating.movie_id, rating.timestamp)
      yield beam.pvalue.TaggedOutput(
          ERRORS_TAG, BadLine(self._ratings_file, line, problem, key))
      return
    yield rating.user_id, (rating.movie_id, rating.rating, rating.timestamp)


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


def _num_eval(user_and_ratings, eval_fraction: float) -> int:
  return num_eval_ratings(sum(1 for _ in user_and_ratings[1]), eval_fraction)


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
  history: List = sorted(ratings, key=lambda r: (r[2], r[0]))
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
                          errors_prefix: str,
                          max_eval_ratings: int = 0) -> None:
  """Adds the whole ingestion to `pipeline`.

  Args:
    pipeline: the Beam pipeline to add to.
    data_dir: folder holding one raw release in `data_layout`.
    data_layout: the release's layout (files, encodings, parsers).
    eval_fraction: share of each user's newest ratings held out for eval.
    split_prefixes: output file prefix per split: TRAIN and EVAL (ratings
      with joined features) and CATALOG (every movie).
    errors_prefix: where a sample of bad lines is written, one JSON
      object per line (a single file, empty when all is well).
    max_eval_ratings: bound on the eval split (about; 0 for none): beyond
      it, only a sample of users is held out (`split_user_history`).
  """
  movies = read_records(pipeline, data_dir, data_layout.movies_file,
                        data_layout.parse_movie, data_layout.header_lines)
  ratings = read_records(pipeline, data_dir, data_layout.ratings_file,
                         data_layout.parse_rating, data_layout.header_lines)
  error_streams = [movies[ERRORS_TAG], ratings[ERRORS_TAG]]

  movies_by_id = (movies.ok
                  | 'CountMovies' >> beam.Map(_count_movie)
                  | 'KeyMovies' >> beam.Map(lambda m: (m.movie_id, m)))
  if data_layout.users_file:
    users = read_records(pipeline, data_dir, data_layout.users_file,
                         data_layout.parse_user, data_layout.header_lines)
    error_streams.append(users[ERRORS_TAG])
    users_by_id = (users.ok
                   | 'CountUsers' >> beam.Map(_count_user)
                   | 'KeyUsers' >> beam.Map(lambda u: (u.user_id, u)))
  else:
    users_by_id = pipeline | 'NoUsers' >> beam.Create([])

  checked = ratings.ok | 'CheckIds' >> beam.ParDo(
      _CheckRating(data_layout.ratings_file, data_layout.movies_file,
                   data_layout.users_file, data_layout.format_rating),
      movies=beam.pvalue.AsDict(movies_by_id),
      users=beam.pvalue.AsDict(users_by_id)).with_outputs(
          ERRORS_TAG, main='ok')
  error_streams.append(checked[ERRORS_TAG])

  by_user = checked.ok | 'GroupByUser' >> beam.GroupByKey()
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

  catalog = movies.ok | 'ToExample[catalog]' >> beam.Map(movie_example)
  _write_serialized(
      catalog | 'Serialize[catalog]' >> beam.Map(
          lambda example: example.SerializeToString(deterministic=True)),
      split_prefixes[CATALOG], CATALOG)

  # A bounded sample of bad lines for the error message; the counter
  # 'bad_lines' has the total.
  _ = (
      error_streams
      | 'AllErrors' >> beam.Flatten()
      | 'SampleErrors' >> beam.combiners.Sample.FixedSizeGlobally(20)
      | 'ErrorsToJson' >> beam.FlatMap(
          lambda sample: [bad.to_json() for bad in sorted(
              sample, key=lambda b: (b.file, b.line))])
      | 'WriteErrors' >> beam.io.WriteToText(errors_prefix,
                                             shard_name_template=''))


def _line_numbers(path: str, bad_lines: List[BadLine],
                  parse_rating) -> Dict[BadLine, int]:
  """Finds the 1-based line number of each bad line in one file.

  Runs only on the error path, streaming the file once.
  """
  wanted = {bad.line.encode('latin-1'): bad for bad in bad_lines
            if bad.rating_key is None}
  by_key = {bad.rating_key: bad for bad in bad_lines if bad.rating_key}
  found: Dict[BadLine, int] = {}
  with tf.io.gfile.GFile(path, 'rb') as f:
    for number, line in enumerate(f, start=1):
      line = line.rstrip(b'\r\n')
      if line in wanted:
        found.setdefault(wanted[line], number)
      elif by_key:
        try:
          rating = parse_rating(line)
        except raw.RawLineError:
          continue
        key = (rating.user_id, rating.movie_id, rating.timestamp)
        if key in by_key:
          found.setdefault(by_key[key], number)
      if len(found) == len(bad_lines):
        break
  return found


def describe_bad_lines(data_dir: str, data_layout: raw.RawLayout,
                       bad_lines: List[BadLine], total: int) -> str:
  """A readable report of bad raw lines: file:line, problem, the line."""
  by_file: Dict[str, List[BadLine]] = {}
  for bad in bad_lines:
    by_file.setdefault(bad.file, []).append(bad)
  report = [f'{data_dir}: {total} raw line(s) cannot be ingested'
            + (f' (first {len(bad_lines)} shown)' if total > len(bad_lines)
               else '') + ':']
  for file_name in sorted(by_file):
    path = os.path.join(data_dir, file_name)
    numbers = _line_numbers(path, by_file[file_name], data_layout.parse_rating)
    for bad in sorted(by_file[file_name],
                      key=lambda b: numbers.get(b, math.inf)):
      where = f'{path}:{numbers[bad]}' if bad in numbers else path
      shown = bad.line if len(bad.line) <= 120 else bad.line[:117] + '...'
      report.append(f'  {where}: {bad.problem}\n      line: {shown!r}')
  return '\n'.join(report)
