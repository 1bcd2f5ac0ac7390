"""The raw MovieLens layouts: file names, encodings, and line parsers.

This module is the single source of truth for how a raw MovieLens release is
laid out on disk. The ExampleGen (`components/movielens_example_gen`), the
downloader and the synthetic generator all read or write through it, so a file
written by one is always parsable by the others.

Only the GroupLens ml-100k layout exists today. A release is described by a
`RawLayout`: which files hold ratings, movies and users, their encodings and a
parser per file. ml-1m (`::`-separated `.dat` files) and ml-20m/25m (CSV with
headers, no user demographics) are further `RawLayout` instances; the
ExampleGen only talks to this interface, so adding them needs no rewrite.

Parsers take the raw bytes of one line and either return a record or raise
`RawLineError`, naming the field at fault and what was expected. They never
see file names or line numbers; the caller adds those.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
from typing import Callable, Mapping, Optional, Sequence, Tuple

# Genre columns of u.item, in file order (README of ml-100k).
ML100K_GENRES: Tuple[str, ...] = (
    'unknown', 'Action', 'Adventure', 'Animation', "Children's", 'Comedy',
    'Crime', 'Documentary', 'Drama', 'Fantasy', 'Film-Noir', 'Horror',
    'Musical', 'Mystery', 'Romance', 'Sci-Fi', 'Thriller', 'War', 'Western')

MIN_RATING = 1.0
MAX_RATING = 5.0


class RawLineError(ValueError):
  """One raw line does not follow its layout.

  Attributes:
    field: the column at fault (e.g. 'rating'), or 'line' for the whole line.
    expected: what the layout expects there, in words.
    value: what was found.
  """

  def __init__(self, field: str, expected: str, value: str):
    self.field = field
    self.expected = expected
    self.value = value
    super().__init__(f'field {field!r}: expected {expected}, got {value!r}')


class RawDataError(ValueError):
  """A raw dataset folder is missing files or holds invalid lines.

  The message names the files, line numbers and fields at fault.
  """


@dataclasses.dataclass(frozen=True)
class Rating:
  user_id: str
  movie_id: str
  rating: float
  timestamp: int  # seconds since the epoch, UTC


@dataclasses.dataclass(frozen=True)
class Movie:
  movie_id: str
  title: str
  release_year: Optional[int]  # None where the release lacks a date
  genres: Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class User:
  user_id: str
  age: int
  gender: str
  occupation: str
  zip_code: str


def _decode(raw: bytes, encoding: str) -> str:
  """Decodes one line strictly, catching files in the wrong encoding.

  Latin-1 maps every byte to a character, so decoding alone never fails; a
  UTF-8 file read as Latin-1 would silently turn 'Misérables' into
  'MisÃ©rables'. Two checks make that mistake loud: NUL bytes (UTF-16 files)
  and non-ASCII lines that are valid UTF-8 (the chance that genuine Latin-1
  text with accented letters is also valid UTF-8 is negligible).
  """
  if b'\x00' in raw:
    raise RawLineError(
        'line', f'{encoding} text (found NUL bytes: is the file UTF-16?)',
        raw[:60].decode('latin-1'))
  if encoding == 'latin-1' and not raw.isascii():
    try:
      as_utf8 = raw.decode('utf-8')
    except UnicodeDecodeError:
      pass
    else:
      raise RawLineError(
          'line', 'latin-1 (ISO-8859-1) text as GroupLens ships it; this line '
          'is UTF-8 encoded (convert with `iconv -f utf-8 -t latin1`)',
          as_utf8)
  try:
    return raw.decode(encoding)
  except UnicodeDecodeError as e:
    raise RawLineError('line', f'{encoding} text ({e.reason} at byte '
                       f'{e.start})', raw[:60].decode('latin-1')) from None


def _split(line: str, sep: str, names: Sequence[str]) -> Tuple[str, ...]:
  fields = line.rstrip('\r\n').split(sep)
  if len(fields) != len(names):
    shown = 'TAB' if sep == '\t' else repr(sep)
    raise RawLineError(
        'line', f'{len(names)} {shown}-separated fields '
        f'({", ".join(names)}), found {len(fields)}', line.rstrip('\r\n'))
  return tuple(fields)


def _id(value: str, field: str) -> str:
  value = value.strip()
  if not value:
    raise RawLineError(field, 'a non-empty id', value)
  return value


def _int(value: str, field: str, expected: str = 'an integer') -> int:
  try:
    return int(value.strip())
  except ValueError:
    raise RawLineError(field, expected, value) from None


def _rating(value: str) -> float:
  expected = f'a number from {MIN_RATING:g} to {MAX_RATING:g}'
  try:
    rating = float(value.strip())
  except ValueError:
    raise RawLineError('rating', expected, value) from None
  if not MIN_RATING <= rating <= MAX_RATING:
    raise RawLineError('rating', expected, value)
  return rating


# --- ml-100k -----------------------------------------------------------------

_U_DATA_FIELDS = ('user_id', 'movie_id', 'rating', 'timestamp')
_U_USER_FIELDS = ('user_id', 'age', 'gender', 'occupation', 'zip_code')
_U_ITEM_FIELDS = ('movie_id', 'title', 'release_date', 'video_release_date',
                  'imdb_url') + tuple(f'genre:{g}' for g in ML100K_GENRES)
_YEAR_IN_TITLE = re.compile(r'\((\d{4})\)\s*$')


def parse_ml100k_rating(raw: bytes) -> Rating:
  """Parses one `u.data` line: user id, movie id, rating, timestamp (TAB)."""
  line = _decode(raw, 'ascii')
  user_id, movie_id, rating, timestamp = _split(line, '\t', _U_DATA_FIELDS)
  return Rating(
      user_id=_id(user_id, 'user_id'),
      movie_id=_id(movie_id, 'movie_id'),
      rating=_rating(rating),
      timestamp=_int(timestamp, 'timestamp', 'seconds since the epoch'))


def parse_ml100k_user(raw: bytes) -> User:
  """Parses one `u.user` line: id|age|gender|occupation|zip code."""
  line = _decode(raw, 'latin-1')
  user_id, age, gender, occupation, zip_code = _split(line, '|',
                                                      _U_USER_FIELDS)
  if gender not in ('M', 'F'):
    raise RawLineError('gender', "'M' or 'F'", gender)
  age_years = _int(age, 'age', 'an age in years')
  if not 0 < age_years < 130:
    raise RawLineError('age', 'an age in years from 1 to 129', age)
  return User(
      user_id=_id(user_id, 'user_id'),
      age=age_years,
      gender=gender,
      occupation=occupation.strip(),
      zip_code=zip_code.strip())


def _release_year(release_date: str, title: str) -> Optional[int]:
  """Year from the `dd-Mon-yyyy` date, else from a trailing '(yyyy)'."""
  release_date = release_date.strip()
  if release_date:
    try:
      return datetime.datetime.strptime(release_date, '%d-%b-%Y').year
    except ValueError:
      raise RawLineError('release_date', "a date like '01-Jan-1995' or empty",
                         release_date) from None
  match = _YEAR_IN_TITLE.search(title)
  return int(match.group(1)) if match else None


def parse_ml100k_movie(raw: bytes) -> Movie:
  """Parses one `u.item` line: id|title|dates|url|19 genre flags (latin-1)."""
  line = _decode(raw, 'latin-1')
  fields = _split(line, '|', _U_ITEM_FIELDS)
  movie_id, title, release_date = fields[0], fields[1], fields[2]
  flags = fields[5:]
  genres = []
  for genre, flag in zip(ML100K_GENRES, flags):
    if flag not in ('0', '1'):
      raise RawLineError(f'genre:{genre}', "a genre flag '0' or '1'", flag)
    if flag == '1':
      genres.append(genre)
  return Movie(
      movie_id=_id(movie_id, 'movie_id'),
      title=title.strip(),
      release_year=_release_year(release_date, title),
      genres=tuple(genres))


def format_ml100k_rating(rating: Rating) -> str:
  return (f'{rating.user_id}\t{rating.movie_id}\t{rating.rating:g}\t'
          f'{rating.timestamp}\n')


def format_ml100k_user(user: User) -> str:
  return (f'{user.user_id}|{user.age}|{user.gender}|{user.occupation}|'
          f'{user.zip_code}\n')


def format_ml100k_movie(movie: Movie) -> str:
  """One `u.item` line. A known year becomes the date `01-Jan-<year>`,
  GroupLens' own convention for films whose exact date is unknown."""
  unknown = set(movie.genres) - set(ML100K_GENRES)
  if unknown:
    raise ValueError(f'movie {movie.movie_id}: genres {sorted(unknown)} are '
                     f'not ml-100k genres {ML100K_GENRES}')
  date = f'01-Jan-{movie.release_year}' if movie.release_year else ''
  flags = '|'.join('1' if g in movie.genres else '0' for g in ML100K_GENRES)
  # Fields: id|title|release date|video release date|IMDb URL|flags.
  return f'{movie.movie_id}|{movie.title}|{date}|||{flags}\n'


@dataclasses.dataclass(frozen=True)
class RawLayout:
  """How one MovieLens release lays out its files.

  Attributes:
    name: release name, e.g. 'ml-100k'.
    ratings_file / movies_file / users_file: file names inside the folder;
      users_file is None for releases without user demographics.
    encodings: encoding of each file, by file name.
    parse_rating / parse_movie / parse_user: line parsers (bytes -> record).
    header_lines: leading lines to skip in every file (CSV headers).
  """
  name: str
  ratings_file: str
  movies_file: str
  users_file: Optional[str]
  encodings: Mapping[str, str]
  parse_rating: Callable[[bytes], Rating]
  parse_movie: Callable[[bytes], Movie]
  parse_user: Optional[Callable[[bytes], User]]
  header_lines: int = 0

  @property
  def files(self) -> Tuple[str, ...]:
    return tuple(f for f in (self.ratings_file, self.movies_file,
                             self.users_file) if f)


ML_100K = RawLayout(
    name='ml-100k',
    ratings_file='u.data',
    movies_file='u.item',
    users_file='u.user',
    encodings={'u.data': 'ascii', 'u.item': 'latin-1', 'u.user': 'latin-1'},
    parse_rating=parse_ml100k_rating,
    parse_movie=parse_ml100k_movie,
    parse_user=parse_ml100k_user,
)

LAYOUTS: Tuple[RawLayout, ...] = (ML_100K,)


def detect_layout(data_dir: str,
                  exists: Callable[[str], bool] = os.path.exists) -> RawLayout:
  """Returns the layout whose ratings file is in `data_dir`.

  Args:
    data_dir: a folder holding one raw MovieLens release.
    exists: path predicate; pass `tfx.dsl.io.fileio.exists` for GCS paths.

  Raises:
    RawDataError: no known layout matches, naming the files looked for.
  """
  for layout in LAYOUTS:
    if exists(os.path.join(data_dir, layout.ratings_file)):
      return layout
  wanted = '; '.join(f'{l.name}: {", ".join(l.files)}' for l in LAYOUTS)
  raise RawDataError(
      f'{data_dir}: no MovieLens ratings file found. Expected the raw files '
      f'of a known release ({wanted}). Run `make data` to download ml-100k.')
