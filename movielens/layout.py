"""The raw MovieLens layouts: file names, encodings, line parsers and writers.

This module is the single source of truth for how a raw MovieLens release is
laid out on disk. The ExampleGen (`components/movielens_example_gen`), the
downloader and the synthetic generator all read or write through it, so a file
written by one is always parsable by the others.

A release is described by a `RawLayout`: which files hold ratings, movies and
users, their encodings, headers, rating scale, and a parser and a writer per
file. Three layouts cover every GroupLens release the pipeline reads:

  * `ML_100K` (ml-100k): `u.data` (TAB-separated), `u.item` and `u.user`
    ('|'-separated); users with age in years, gender, occupation name, zip.
  * `ML_1M` (ml-1m): `ratings.dat`, `movies.dat`, `users.dat`
    ('::'-separated); users with an age group code, gender, an occupation
    code (mapped to its name) and zip.
  * `ML_25M` (ml-20m, ml-25m, ml-latest, ml-latest-small): `ratings.csv`
    and `movies.csv`, CSV with a header line; no users file.

Differences the pipeline sees:
  * Ratings: whole stars 1-5 in ml-100k and ml-1m; half stars 0.5-5.0 in the
    CSV releases. Each layout validates its own `RatingScale`;
    `MIN_RATING`/`MAX_RATING` span every release.
  * Users: ml-1m's age is the code of an age group (1 = under 18, 18 = 18-24,
    ..., 56 = 56+, each code the group's lower bound in years, except 1) and
    its occupation is an integer code that GroupLens' README maps to a name
    ('academic/educator', ...); the parser returns the name. The CSV releases
    have no users file: no demographics at all, and the ExampleGen then writes
    no demographic features (absent, never faked).
  * Release year: from u.item's release date in ml-100k, else from the
    title's trailing '(YYYY)' (the only source in ml-1m and the CSV releases);
    None when the title has none.
  * Genres: ml-100k flags 19 genres; ml-1m lists 18 (no 'unknown') separated
    by '|'; the CSV releases list 19 of their own ('Children' for ml-1m's
    "Children's", plus 'IMAX'), or '(no genres listed)', meaning none.
  * Encodings: ml-100k's u.item and ml-1m's movies.dat/users.dat are latin-1;
    the CSV files are UTF-8 with RFC 4180 quoting (titles with commas are
    quoted; titles never contain newlines, so a line is a record).

`detect_layout` picks the layout from the files in a folder (ml-20m and
ml-25m share one). ml-10m (`ratings.dat` without `users.dat`) is not
supported.

Parsers take the raw bytes of one line and either return a record or raise
`RawLineError`, naming the field at fault and what was expected. They never
see file names or line numbers; the caller adds those. Writers
(`format_*`) return one line, newline included, in the layout's format; they
raise ValueError for records the layout cannot express.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import os
import re
import time
from typing import Callable, Mapping, Optional, Sequence, Tuple

# Genre columns of u.item, in file order (README of ml-100k).
ML100K_GENRES: Tuple[str, ...] = (
    'unknown', 'Action', 'Adventure', 'Animation', "Children's", 'Comedy',
    'Crime', 'Documentary', 'Drama', 'Fantasy', 'Film-Noir', 'Horror',
    'Musical', 'Mystery', 'Romance', 'Sci-Fi', 'Thriller', 'War', 'Western')
# Genres of ml-1m's movies.dat (README of ml-1m): ml-100k's without 'unknown'.
ML1M_GENRES: Tuple[str, ...] = ML100K_GENRES[1:]
# Genres of the CSV releases' movies.csv (ml-20m, ml-25m, ml-latest), as the
# files spell them (their READMEs still say "Children's").
ML25M_GENRES: Tuple[str, ...] = (
    'Action', 'Adventure', 'Animation', 'Children', 'Comedy', 'Crime',
    'Documentary', 'Drama', 'Fantasy', 'Film-Noir', 'Horror', 'IMAX',
    'Musical', 'Mystery', 'Romance', 'Sci-Fi', 'Thriller', 'War', 'Western')
# What movies.csv says for a movie without genres.
ML25M_NO_GENRES = '(no genres listed)'

# ml-1m's users.dat age codes and the groups they stand for (README of ml-1m).
ML1M_AGE_GROUPS: Mapping[int, str] = {
    1: 'Under 18', 18: '18-24', 25: '25-34', 35: '35-44', 45: '45-49',
    50: '50-55', 56: '56+'}
# ml-1m's occupation codes 0..20, by code (README of ml-1m; code 0 is
# '"other" or not specified').
ML1M_OCCUPATIONS: Tuple[str, ...] = (
    'other', 'academic/educator', 'artist', 'clerical/admin',
    'college/grad student', 'customer service', 'doctor/health care',
    'executive/managerial', 'farmer', 'homemaker', 'K-12 student', 'lawyer',
    'programmer', 'retired', 'sales/marketing', 'scientist', 'self-employed',
    'technician/engineer', 'tradesman/craftsman', 'unemployed', 'writer')

# The range of ratings over every release (half stars from 0.5 in the CSV
# releases, whole stars from 1 in ml-100k and ml-1m); each layout checks its
# own `RatingScale`.
MIN_RATING = 0.5
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
  age: int  # years in ml-100k; the age group's code in ml-1m
  gender: str
  occupation: str
  zip_code: str


@dataclasses.dataclass(frozen=True)
class RatingScale:
  """The ratings a release allows: `low`..`high`, in steps of `step`.

  Attributes:
    low / high: the smallest and largest rating.
    step: ratings are multiples of it (1.0 whole stars, 0.5 half stars);
      None checks the range alone.
  """
  low: float
  high: float
  step: Optional[float] = None

  def describe(self) -> str:
    if self.step is None:
      return f'a number from {self.low:g} to {self.high:g}'
    if self.step == 1.0:
      return f'a whole number of stars from {self.low:g} to {self.high:g}'
    return (f'a number from {self.low:g} to {self.high:g} in steps of '
            f'{self.step:g}')

  def allows(self, rating: float) -> bool:
    if not self.low <= rating <= self.high:
      return False
    if self.step is None:
      return True
    steps = rating / self.step
    return abs(steps - round(steps)) < 1e-9


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


def _rating(value: str, scale: RatingScale) -> float:
  try:
    rating = float(value.strip())
  except ValueError:
    raise RawLineError('rating', scale.describe(), value) from None
  if not scale.allows(rating):
    raise RawLineError('rating', scale.describe(), value)
  return rating


# Ratings cannot come from the future; a day of slack for clocks.
_LATEST_TIMESTAMP_SLACK = 86_400


def _timestamp(value: str) -> int:
  """Seconds since the epoch, from 0 to now (a day of slack)."""
  latest = int(time.time()) + _LATEST_TIMESTAMP_SLACK
  expected = f'seconds since the epoch, from 0 to {latest} (now)'
  seconds = _int(value, 'timestamp', expected)
  if not 0 <= seconds <= latest:
    raise RawLineError('timestamp', expected, value.strip())
  return seconds


def _check_year(year: Optional[int], field: str, value: str) -> Optional[int]:
  """A release year no later than next year (films are announced ahead)."""
  latest = datetime.date.today().year + 1
  if year is not None and year > latest:
    raise RawLineError(field, f'a release year up to {latest}', value)
  return year


_YEAR_IN_TITLE = re.compile(r'\((\d{4})\)\s*$')


def _year_in_title(title: str) -> Optional[int]:
  """1995 from 'Toy Story (1995)'; None if the title has no '(YYYY)' suffix."""
  match = _YEAR_IN_TITLE.search(title)
  return _check_year(int(match.group(1)), 'title', title) if match else None


def _genre_list(value: str, known: Sequence[str],
                none: Optional[str] = None) -> Tuple[str, ...]:
  """'Animation|Comedy' -> ('Animation', 'Comedy'), each a known genre.

  `none` is the spelling of "no genres" (movies.csv's '(no genres listed)');
  without one, a movie must list at least one genre.
  """
  value = value.strip()
  if none is not None and value == none:
    return ()
  expected = ("genres separated by '|', each one of " + ', '.join(known) +
              (f", or {none!r}" if none else ''))
  genres = value.split('|')
  if not value or any(g not in known for g in genres):
    raise RawLineError('genres', expected, value)
  return tuple(genres)


# --- ml-100k -----------------------------------------------------------------

ML100K_RATING_SCALE = RatingScale(1.0, 5.0)
_U_DATA_FIELDS = ('user_id', 'movie_id', 'rating', 'timestamp')
_U_USER_FIELDS = ('user_id', 'age', 'gender', 'occupation', 'zip_code')
_U_ITEM_FIELDS = ('movie_id', 'title', 'release_date', 'video_release_date',
                  'imdb_url') + tuple(f'genre:{g}' for g in ML100K_GENRES)


def parse_ml100k_rating(raw: bytes) -> Rating:
  """Parses one `u.data` line: user id, movie id, rating, timestamp (TAB)."""
  line = _decode(raw, 'ascii')
  user_id, movie_id, rating, timestamp = _split(line, '\t', _U_DATA_FIELDS)
  return Rating(
      user_id=_id(user_id, 'user_id'),
      movie_id=_id(movie_id, 'movie_id'),
      rating=_rating(rating, ML100K_RATING_SCALE),
      timestamp=_timestamp(timestamp))


def _gender(value: str) -> str:
  if value not in ('M', 'F'):
    raise RawLineError('gender', "'M' or 'F'", value)
  return value


def parse_ml100k_user(raw: bytes) -> User:
  """Parses one `u.user` line: id|age|gender|occupation|zip code."""
  line = _decode(raw, 'latin-1')
  user_id, age, gender, occupation, zip_code = _split(line, '|',
                                                      _U_USER_FIELDS)
  _gender(gender)
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
      year = datetime.datetime.strptime(release_date, '%d-%b-%Y').year
    except ValueError:
      raise RawLineError('release_date', "a date like '01-Jan-1995' or empty",
                         release_date) from None
    return _check_year(year, 'release_date', release_date)
  return _year_in_title(title)


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


# --- ml-1m -------------------------------------------------------------------

# "Ratings are made on a 5-star scale (whole-star ratings only)" (README).
ML1M_RATING_SCALE = RatingScale(1.0, 5.0, step=1.0)
_ML1M_RATING_FIELDS = ('UserID', 'MovieID', 'Rating', 'Timestamp')
_ML1M_MOVIE_FIELDS = ('MovieID', 'Title', 'Genres')
_ML1M_USER_FIELDS = ('UserID', 'Gender', 'Age', 'Occupation', 'Zip-code')
_ML1M_AGE_CODES = ', '.join(str(code) for code in ML1M_AGE_GROUPS)


def parse_ml1m_rating(raw: bytes) -> Rating:
  """Parses one `ratings.dat` line: UserID::MovieID::Rating::Timestamp."""
  line = _decode(raw, 'ascii')
  user_id, movie_id, rating, timestamp = _split(line, '::',
                                                _ML1M_RATING_FIELDS)
  return Rating(
      user_id=_id(user_id, 'user_id'),
      movie_id=_id(movie_id, 'movie_id'),
      rating=_rating(rating, ML1M_RATING_SCALE),
      timestamp=_timestamp(timestamp))


def parse_ml1m_movie(raw: bytes) -> Movie:
  """Parses one `movies.dat` line: MovieID::Title::Genres (latin-1).

  The year comes from the title's '(YYYY)' suffix; genres are '|'-separated,
  at least one.
  """
  line = _decode(raw, 'latin-1')
  movie_id, title, genres = _split(line, '::', _ML1M_MOVIE_FIELDS)
  title = title.strip()
  if not title:
    raise RawLineError('title', 'a non-empty title', title)
  return Movie(
      movie_id=_id(movie_id, 'movie_id'),
      title=title,
      release_year=_year_in_title(title),
      genres=_genre_list(genres, ML1M_GENRES))


def parse_ml1m_user(raw: bytes) -> User:
  """Parses one `users.dat` line: UserID::Gender::Age::Occupation::Zip-code.

  Age stays the age group's code (1, 18, 25, 35, 45, 50, 56: a lower bound in
  years, except 1 for 'Under 18'); the occupation code becomes its name from
  `ML1M_OCCUPATIONS`.
  """
  line = _decode(raw, 'latin-1')
  user_id, gender, age, occupation, zip_code = _split(line, '::',
                                                      _ML1M_USER_FIELDS)
  expected_age = f'an age group code ({_ML1M_AGE_CODES})'
  age_code = _int(age, 'age', expected_age)
  if age_code not in ML1M_AGE_GROUPS:
    raise RawLineError('age', expected_age, age)
  expected_occupation = (f'an occupation code from 0 to '
                         f'{len(ML1M_OCCUPATIONS) - 1}')
  code = _int(occupation, 'occupation', expected_occupation)
  if not 0 <= code < len(ML1M_OCCUPATIONS):
    raise RawLineError('occupation', expected_occupation, occupation)
  return User(
      user_id=_id(user_id, 'user_id'),
      age=age_code,
      gender=_gender(gender),
      occupation=ML1M_OCCUPATIONS[code],
      zip_code=zip_code.strip())


def format_ml1m_rating(rating: Rating) -> str:
  return (f'{rating.user_id}::{rating.movie_id}::{rating.rating:g}::'
          f'{rating.timestamp}\n')


def format_ml1m_movie(movie: Movie) -> str:
  """One `movies.dat` line; the title should end in '(YYYY)' for the year."""
  unknown = set(movie.genres) - set(ML1M_GENRES)
  if unknown or not movie.genres:
    raise ValueError(f'movie {movie.movie_id}: ml-1m needs one or more of '
                     f'the genres {ML1M_GENRES}, got {movie.genres}')
  if '::' in movie.title:
    raise ValueError(f'movie {movie.movie_id}: a movies.dat title cannot '
                     f'contain "::": {movie.title!r}')
  return f'{movie.movie_id}::{movie.title}::{"|".join(movie.genres)}\n'


def format_ml1m_user(user: User) -> str:
  """One `users.dat` line: the occupation name goes back to its code."""
  if user.age not in ML1M_AGE_GROUPS:
    raise ValueError(f'user {user.user_id}: age {user.age} is not an ml-1m '
                     f'age group code ({_ML1M_AGE_CODES})')
  if user.occupation not in ML1M_OCCUPATIONS:
    raise ValueError(f'user {user.user_id}: occupation {user.occupation!r} '
                     f'is not an ml-1m occupation {ML1M_OCCUPATIONS}')
  code = ML1M_OCCUPATIONS.index(user.occupation)
  return (f'{user.user_id}::{user.gender}::{user.age}::{code}::'
          f'{user.zip_code}\n')


# --- ml-20m / ml-25m / ml-latest (CSV) ----------------------------------------

# "Ratings are made on a 5-star scale, with half-star increments (0.5 stars -
# 5.0 stars)" (README of ml-25m).
ML25M_RATING_SCALE = RatingScale(0.5, 5.0, step=0.5)
ML25M_RATINGS_HEADER = 'userId,movieId,rating,timestamp'
ML25M_MOVIES_HEADER = 'movieId,title,genres'
_ML25M_RATING_FIELDS = tuple(ML25M_RATINGS_HEADER.split(','))
_ML25M_MOVIE_FIELDS = tuple(ML25M_MOVIES_HEADER.split(','))


def _csv_fields(line: str, names: Sequence[str]) -> Tuple[str, ...]:
  """Splits one CSV record (RFC 4180: quoted fields, "" for a quote)."""
  line = line.rstrip('\r\n')
  expected = (f'{len(names)} comma-separated fields ({", ".join(names)}) '
              'with RFC 4180 quoting')
  try:
    rows = list(csv.reader([line], strict=True))
  except csv.Error as e:
    raise RawLineError('line', f'{expected} ({e})', line) from None
  fields = rows[0] if rows else []
  if len(fields) != len(names):
    raise RawLineError('line', f'{expected}, found {len(fields)}', line)
  return tuple(fields)


def parse_ml25m_rating(raw: bytes) -> Rating:
  """Parses one `ratings.csv` line: userId,movieId,rating,timestamp.

  Ratings are half stars, 0.5 to 5.0. Numeric fields are never quoted, so a
  plain split suffices (a stray quote fails the number check of its field).
  """
  line = _decode(raw, 'utf-8')
  user_id, movie_id, rating, timestamp = _split(line, ',',
                                                _ML25M_RATING_FIELDS)
  return Rating(
      user_id=_id(user_id, 'user_id'),
      movie_id=_id(movie_id, 'movie_id'),
      rating=_rating(rating, ML25M_RATING_SCALE),
      timestamp=_timestamp(timestamp))


def parse_ml25m_movie(raw: bytes) -> Movie:
  """Parses one `movies.csv` line: movieId,title,genres (UTF-8, RFC 4180).

  Titles with commas or quotes are quoted ('"American President, The
  (1995)"'). The year comes from the title's '(YYYY)' suffix;
  '(no genres listed)' gives no genres.
  """
  line = _decode(raw, 'utf-8')
  movie_id, title, genres = _csv_fields(line, _ML25M_MOVIE_FIELDS)
  title = title.strip()
  if not title:
    raise RawLineError('title', 'a non-empty title', title)
  return Movie(
      movie_id=_id(movie_id, 'movie_id'),
      title=title,
      release_year=_year_in_title(title),
      genres=_genre_list(genres, ML25M_GENRES, none=ML25M_NO_GENRES))


def _csv_field(value: str) -> str:
  """One CSV field, quoted when it holds a comma or a quote (RFC 4180)."""
  if '\n' in value or '\r' in value:
    raise ValueError(f'a MovieLens CSV field cannot hold a newline (lines '
                     f'are records): {value!r}')
  if ',' in value or '"' in value:
    return '"' + value.replace('"', '""') + '"'
  return value


def format_ml25m_rating(rating: Rating) -> str:
  """One `ratings.csv` line; the rating with one decimal, as GroupLens does."""
  return (f'{rating.user_id},{rating.movie_id},{rating.rating:.1f},'
          f'{rating.timestamp}\n')


def format_ml25m_movie(movie: Movie) -> str:
  unknown = set(movie.genres) - set(ML25M_GENRES)
  if unknown:
    raise ValueError(f'movie {movie.movie_id}: genres {sorted(unknown)} are '
                     f'not ml-25m genres {ML25M_GENRES}')
  genres = '|'.join(movie.genres) if movie.genres else ML25M_NO_GENRES
  return f'{_csv_field(movie.movie_id)},{_csv_field(movie.title)},{genres}\n'


# --- Layouts -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RawLayout:
  """How one MovieLens release lays out its files.

  Attributes:
    name: layout name, e.g. 'ml-100k'; also the name of its schema
      (`pipeline/configs.schema_path`).
    ratings_file / movies_file / users_file: file names inside the folder;
      users_file is None for releases without user demographics.
    encodings: encoding of each file, by file name.
    parse_rating / parse_movie / parse_user: line parsers (bytes -> record).
    header_lines: leading lines to skip in every file (CSV headers).
    releases: the GroupLens releases in this layout.
    headers: the header line of each file that has one, by file name.
    rating_scale: the ratings this layout allows.
    format_rating / format_movie / format_user: line writers (record ->
      str, newline included).
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
  releases: Tuple[str, ...] = ()
  headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
  rating_scale: RatingScale = ML100K_RATING_SCALE
  format_rating: Optional[Callable[[Rating], str]] = None
  format_movie: Optional[Callable[[Movie], str]] = None
  format_user: Optional[Callable[[User], str]] = None

  @property
  def files(self) -> Tuple[str, ...]:
    return tuple(f for f in (self.ratings_file, self.movies_file,
                             self.users_file) if f)

  @property
  def has_demographics(self) -> bool:
    """Whether the release has a users file (age, gender, occupation, zip)."""
    return self.users_file is not None

  def header_problem(self, file_name: str, first_line: bytes) -> Optional[str]:
    """What is wrong with a file's first line, if it should be a header.

    Returns None when the file has no header in this layout or the line is
    the expected header; else a sentence naming the expected header.
    """
    expected = self.headers.get(file_name)
    if expected is None:
      return None
    line = first_line.rstrip(b'\r\n')
    if line.startswith(b'\xef\xbb\xbf'):  # A UTF-8 byte order mark.
      line = line[3:]
    found = line.decode('latin-1')
    if found == expected:
      return None
    return f'expected the header {expected!r}, got {found[:80]!r}'


ML_100K = RawLayout(
    name='ml-100k',
    ratings_file='u.data',
    movies_file='u.item',
    users_file='u.user',
    encodings={'u.data': 'ascii', 'u.item': 'latin-1', 'u.user': 'latin-1'},
    parse_rating=parse_ml100k_rating,
    parse_movie=parse_ml100k_movie,
    parse_user=parse_ml100k_user,
    releases=('ml-100k',),
    rating_scale=ML100K_RATING_SCALE,
    format_rating=format_ml100k_rating,
    format_movie=format_ml100k_movie,
    format_user=format_ml100k_user,
)

ML_1M = RawLayout(
    name='ml-1m',
    ratings_file='ratings.dat',
    movies_file='movies.dat',
    users_file='users.dat',
    encodings={'ratings.dat': 'ascii', 'movies.dat': 'latin-1',
               'users.dat': 'latin-1'},
    parse_rating=parse_ml1m_rating,
    parse_movie=parse_ml1m_movie,
    parse_user=parse_ml1m_user,
    releases=('ml-1m',),
    rating_scale=ML1M_RATING_SCALE,
    format_rating=format_ml1m_rating,
    format_movie=format_ml1m_movie,
    format_user=format_ml1m_user,
)

ML_25M = RawLayout(
    name='ml-25m',
    ratings_file='ratings.csv',
    movies_file='movies.csv',
    users_file=None,
    encodings={'ratings.csv': 'utf-8', 'movies.csv': 'utf-8'},
    parse_rating=parse_ml25m_rating,
    parse_movie=parse_ml25m_movie,
    parse_user=None,
    header_lines=1,
    releases=('ml-20m', 'ml-25m', 'ml-latest', 'ml-latest-small'),
    headers={'ratings.csv': ML25M_RATINGS_HEADER,
             'movies.csv': ML25M_MOVIES_HEADER},
    rating_scale=ML25M_RATING_SCALE,
    format_rating=format_ml25m_rating,
    format_movie=format_ml25m_movie,
)

LAYOUTS: Tuple[RawLayout, ...] = (ML_100K, ML_1M, ML_25M)


def layout_of_release(release: str) -> RawLayout:
  """The layout of a GroupLens release name ('ml-20m' -> ML_25M).

  Raises:
    ValueError: no layout holds that release.
  """
  for layout in LAYOUTS:
    if release in layout.releases:
      return layout
  known = ', '.join(r for l in LAYOUTS for r in l.releases)
  raise ValueError(f'unknown MovieLens release {release!r}; known: {known}')


def _describe_layouts() -> str:
  parts = []
  for l in LAYOUTS:
    also = [r for r in l.releases if r != l.name]
    name = f'{l.name} (also {", ".join(also)})' if also else l.name
    parts.append(f'{name}: {", ".join(l.files)}')
  return '; '.join(parts)


def detect_layout(data_dir: str,
                  exists: Callable[[str], bool] = os.path.exists) -> RawLayout:
  """Returns the layout whose ratings file is in `data_dir`.

  Args:
    data_dir: a folder holding one raw MovieLens release.
    exists: path predicate; pass `tfx.dsl.io.fileio.exists` for GCS paths.

  Raises:
    RawDataError: no known layout matches, or several do (a folder mixing
      releases), naming the files looked for.
  """
  found = [l for l in LAYOUTS
           if exists(os.path.join(data_dir, l.ratings_file))]
  if len(found) == 1:
    return found[0]
  if found:
    raise RawDataError(
        f'{data_dir}: holds the ratings files of several MovieLens layouts ('
        + ', '.join(f'{l.ratings_file} of {l.name}' for l in found) +
        '); keep one release per folder.')
  raise RawDataError(
      f'{data_dir}: no MovieLens ratings file found. Expected the raw files '
      f'of a known release ({_describe_layouts()}). Run `make data` to '
      'download ml-100k (`make data DATASET=ml-1m` for another release).')
