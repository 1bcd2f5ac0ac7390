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
and ~60K movies in ml-25m) joined as side inputs. The per-user split groups
one user's ratings at a time (tens of thousands at most).

Bad lines do not fail the pipeline on the first hit: they go to a
dead-letter output, so one run reports every kind of problem (with a
sample of lines) and the executor can refuse to publish anything.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import apache_beam as beam
import tensorflow as tf

from modules import features
from movielens import layout as raw

ERRORS_TAG = 'errors'
TRAIN = 'train'
EVAL = 'eval'
CATALOG = 'catalog'
METRICS_NAMESPACE = 'movielens_example_gen'


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


class _JoinRating(beam.DoFn):
  """Joins user and movie features onto a rating, by id.

  A rating whose user or movie is missing from the dimension files is a
  bad line of the ratings file.
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
    movie = movies.get(rating.movie_id)
    user = users.get(rating.user_id) if self._users_file else None
    problem = None
    if movie is None:
      problem = (f'field \'movie_id\': movie {rating.movie_id!r} is not in '
                 f'{self._movies_file}')
    elif self._users_file and user is None:
      problem = (f'field \'user_id\': user {rating.user_id!r} is not in '
                 f'{self._users_file}')
    if problem:
      beam.metrics.Metrics.counter(METRICS_NAMESPACE, 'bad_lines').inc()
      line = self._format_rating(rating).rstrip('\n')
      key = (rating.user_id, rating.movie_id, rating.timestamp)
      yield beam.pvalue.TaggedOutput(
          ERRORS_TAG, BadLine(self._ratings_file, line, problem, key))
      return
    yield rating.user_id, (rating, movie, user)


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


def rating_example(rating: raw.Rating, movie: raw.Movie,
                   user: Optional[raw.User]) -> tf.train.Example:
  """One rating with its user's and movie's features (see modules.features).

  `user` is None in releases without demographics (ml-20m/25m): the example
  then has no age, gender, occupation or zip code features at all.
  """
  feature = movie_features(movie)
  feature[features.USER_ID] = _bytes_feature([rating.user_id])
  feature[features.RATING] = _float_feature([rating.rating])
  feature[features.TIMESTAMP] = _int_feature([rating.timestamp])
  if user is not None:
    feature[features.AGE] = _int_feature([user.age])
    feature[features.GENDER] = _bytes_feature([user.gender])
    feature[features.OCCUPATION] = _bytes_feature([user.occupation])
    feature[features.ZIP_CODE] = _bytes_feature([user.zip_code])
  return tf.train.Example(features=tf.train.Features(feature=feature))


def num_eval_ratings(num_ratings: int, eval_fraction: float) -> int:
  """How many of a user's newest ratings go to eval: floor(n * fraction).

  A user with too few ratings for one eval rating (n * fraction < 1) stays
  wholly in train.
  """
  return int(math.floor(num_ratings * eval_fraction + 1e-9))


def split_user_history(
    user_and_ratings: Tuple[str, Iterable[Tuple[raw.Rating, raw.Movie,
                                                Optional[raw.User]]]],
    eval_fraction: float) -> Iterator[beam.pvalue.TaggedOutput]:
  """Per-user temporal split: each user's newest ratings go to eval.

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
  """
  _, ratings = user_and_ratings
  history: List = sorted(ratings,
                         key=lambda r: (r[0].timestamp, r[0].movie_id))
  cut = len(history) - num_eval_ratings(len(history), eval_fraction)
  for index, record in enumerate(history):
    split = TRAIN if index < cut else EVAL
    beam.metrics.Metrics.counter(METRICS_NAMESPACE, f'ratings_{split}').inc()
    yield beam.pvalue.TaggedOutput(split, record)


def _write_examples(pcoll, output_prefix: str, label: str):
  return (
      pcoll
      | f'Serialize[{label}]' >> beam.Map(
          lambda example: example.SerializeToString(deterministic=True))
      | f'Write[{label}]' >> beam.io.WriteToTFRecord(
          output_prefix, file_name_suffix='.gz'))


def _count_movie(movie):
  beam.metrics.Metrics.counter(METRICS_NAMESPACE, 'movies').inc()
  return movie


def _count_user(user):
  beam.metrics.Metrics.counter(METRICS_NAMESPACE, 'users').inc()
  return user


def build_ingest_pipeline(pipeline: beam.Pipeline, data_dir: str,
                          data_layout: raw.RawLayout, eval_fraction: float,
                          split_prefixes: Dict[str, str],
                          errors_prefix: str) -> None:
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

  joined = ratings.ok | 'Join' >> beam.ParDo(
      _JoinRating(data_layout.ratings_file, data_layout.movies_file,
                  data_layout.users_file, data_layout.format_rating),
      movies=beam.pvalue.AsDict(movies_by_id),
      users=beam.pvalue.AsDict(users_by_id)).with_outputs(
          ERRORS_TAG, main='ok')
  error_streams.append(joined[ERRORS_TAG])

  splits = (
      joined.ok
      | 'GroupByUser' >> beam.GroupByKey()
      | 'SplitByTime' >> beam.FlatMap(
          split_user_history, eval_fraction=eval_fraction).with_outputs(
              TRAIN, EVAL))
  for split in (TRAIN, EVAL):
    examples = splits[split] | f'ToExample[{split}]' >> beam.MapTuple(
        rating_example)
    _write_examples(examples, split_prefixes[split], split)

  catalog = movies.ok | 'ToExample[catalog]' >> beam.Map(movie_example)
  _write_examples(catalog, split_prefixes[CATALOG], CATALOG)

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
