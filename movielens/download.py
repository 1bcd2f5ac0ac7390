"""Downloads a MovieLens release into a folder, in the raw GroupLens layout.

    python -m movielens.download --dest data/ml-100k [--source auto]
    python -m movielens.download --dataset ml-25m    # -> data/ml-25m

ml-100k (the default): the primary source is GroupLens' own zip, checked
against its published MD5. Where GroupLens cannot be reached (machines that
only see package registries), the fallback is the copy of ml-100k that
RecBole ships inside its 1.2.1 wheel on PyPI, checked against a pinned
SHA-256 and rebuilt into the GroupLens layout with the writers of
`movielens.layout`. That copy holds every rating, user and genre, but only
the release year of each film: u.item then carries `01-Jan-<year>` dates
(GroupLens' own convention for unknown days) and no IMDb URLs.

ml-1m, ml-20m, ml-25m (`--dataset`): GroupLens only, streamed to a temporary
file and checked against both GroupLens' published MD5 (the `.md5` file
beside each zip) and a pinned SHA-256 (see `RELEASES` for where each value
was found). There is no offline mirror of these releases: where GroupLens is
unreachable the command says so in one line and writes nothing. Only the
layout's files and the README are extracted (not the tag genome, tags or
links).

The folder appears atomically: files are written to a temporary sibling that
is renamed into place, so `dest` is either complete or absent. A `SOURCE` file
in it records where the data came from. Running again is a no-op.

The network is reached only through three callables, `fetch_url`,
`download_file` and `download_wheel`, which tests replace with fakes.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import glob
import hashlib
import http.client
import io
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from movielens import layout

GROUPLENS_URL = 'https://files.grouplens.org/datasets/movielens/ml-100k.zip'
# Published by GroupLens next to the zip (ml-100k.zip.md5).
GROUPLENS_MD5 = '0e33842e24a9c977be4e0107933c0723'
_GROUPLENS_FOLDER = 'ml-100k/'

RECBOLE_REQUIREMENT = 'recbole==1.2.1'
RECBOLE_URL = 'https://pypi.org/project/recbole/1.2.1/'
# sha256sum of recbole-1.2.1-py3-none-any.whl as served by PyPI.
RECBOLE_WHEEL_SHA256 = (
    '9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407')
_RECBOLE_FOLDER = 'recbole/dataset_example/ml-100k/'



@dataclasses.dataclass(frozen=True)
class Release:
  """A GroupLens release beyond ml-100k, with the checksums of its zip.

  Attributes:
    name: 'ml-1m', 'ml-20m' or 'ml-25m'.
    url: the zip on files.grouplens.org.
    md5: GroupLens' published MD5 (`<zip>.md5` beside the zip).
    sha256: SHA-256 of the same zip, as recorded by independent projects
      that pin it (no SHA-256 is published by GroupLens).
  """
  name: str
  url: str
  md5: str
  sha256: str

  @property
  def folder(self) -> str:
    """The folder inside the zip: 'ml-25m/'."""
    return f'{self.name}/'

  @property
  def layout(self) -> layout.RawLayout:
    return layout.layout_of_release(self.name)


_GROUPLENS_DATASETS = 'https://files.grouplens.org/datasets/movielens'
# Checksums of the GroupLens zips. Never invent one: each value here was found
# in several independent public projects that download the same zip (MD5s
# also quoted from GroupLens' .md5 files: `MD5 (ml-20m.zip) = cd245b...`).
RELEASES: Dict[str, Release] = {
    'ml-1m': Release(
        'ml-1m', f'{_GROUPLENS_DATASETS}/ml-1m.zip',
        md5='c4d9eecfca2ab87c1945afe126590906',
        sha256=('a6898adb50b9ca05aa231689da44c217'
                'cb524e7ebd39d264c56e2832f2c54e20')),
    'ml-20m': Release(
        'ml-20m', f'{_GROUPLENS_DATASETS}/ml-20m.zip',
        md5='cd245b17a1ae2cc31bb14903e1204af3',
        sha256=('96f243c338a8665f6bcc89c53edf6ee3'
                '9162a846940de6b7c8c48aeada765ff3')),
    'ml-25m': Release(
        'ml-25m', f'{_GROUPLENS_DATASETS}/ml-25m.zip',
        md5='6b51fb2759a8657d3bfcbfc42b592ada',
        sha256=('8b21cfb7eb1706b4ec0aac894368d90a'
                'cf26ebdfb6aced3ebd4ad5bd1eb9c6aa')),
}
DATASETS: Tuple[str, ...] = ('ml-100k',) + tuple(RELEASES)

SOURCES = ('auto', 'grouplens', 'recbole')
SOURCE_FILE = 'SOURCE'
TIMEOUT_SECONDS = 30
PIP_TIMEOUT_SECONDS = 600

RECBOLE_CAVEAT = (
    'The RecBole copy has no exact release dates and no IMDb URLs: u.item '
    "carries '01-Jan-<year>' (GroupLens' convention for unknown days) and "
    'empty URL fields. Ratings, users, titles and genres are complete.')


@dataclasses.dataclass(frozen=True)
class Counts:
  """Sizes of an ml-100k release, checked after rebuilding it."""
  ratings: int
  users: int
  movies: int


ML100K_COUNTS = Counts(ratings=100_000, users=943, movies=1682)


class DownloadError(RuntimeError):
  """ml-100k could not be fetched; the message says why and what to do."""


class SourceUnreachableError(DownloadError):
  """A source could not be reached (DNS, connection, timeout, HTTP error)."""


class ChecksumError(DownloadError):
  """Downloaded bytes do not match the pinned checksum."""


@dataclasses.dataclass(frozen=True)
class FetchResult:
  """What `fetch_ml100k` did.

  Attributes:
    dest: the dataset folder.
    source: 'grouplens' or 'recbole'; None if `dest` was already complete.
    url: where the data came from; None if nothing was downloaded.
    checksum: 'md5:<hex>' or 'sha256:<hex>' of the verified download.
    notes: what the user should know, e.g. why GroupLens was skipped and
      what the fallback copy lacks.
  """
  dest: str
  source: Optional[str]
  url: Optional[str] = None
  checksum: Optional[str] = None
  notes: Tuple[str, ...] = ()

  @property
  def downloaded(self) -> bool:
    return self.source is not None


# --- Transport (replaced by fakes in tests) ----------------------------------

# What "cannot reach the server" looks like from urllib: URLError (DNS,
# refused connection, HTTPError) and timeouts are OSErrors; truncated
# responses are HTTPExceptions.
_TRANSPORT_ERRORS = (OSError, http.client.HTTPException)


def fetch_url(url: str, timeout: float = TIMEOUT_SECONDS) -> bytes:
  """Returns the body of `url`; raises OSError/HTTPException on failure."""
  with urllib.request.urlopen(url, timeout=timeout) as response:
    return response.read()


def download_file(url: str, path: str,
                  log: Callable[[str], None] = lambda message: None,
                  timeout: float = TIMEOUT_SECONDS) -> None:
  """Streams `url` into the file `path` (never whole in memory).

  Raises:
    OSError / HTTPException: the server cannot be reached or the transfer
      broke.
  """
  with urllib.request.urlopen(url, timeout=timeout) as response, open(
      path, 'wb') as out:
    total = int(response.headers.get('Content-Length') or 0)
    done, next_report = 0, total / 10
    while True:
      chunk = response.read(1 << 20)
      if not chunk:
        break
      out.write(chunk)
      done += len(chunk)
      if total and done >= next_report:
        log(f'  {done / 1e6:,.0f} of {total / 1e6:,.0f} MB')
        next_report += total / 10
    if total and done != total:
      raise http.client.IncompleteRead(b'', total - done)


def download_wheel(dest_dir: str,
                   requirement: str = RECBOLE_REQUIREMENT) -> str:
  """Downloads the wheel of `requirement` with pip and returns its path.

  Uses the running interpreter's pip, so it honours the user's index and proxy
  configuration (pip.conf, PIP_INDEX_URL).

  Raises:
    SourceUnreachableError: pip failed, e.g. PyPI is unreachable.
  """
  command = [
      sys.executable, '-m', 'pip', 'download', requirement, '--no-deps',
      '--only-binary=:all:', '--disable-pip-version-check', '-d', dest_dir
  ]
  try:
    subprocess.run(command, check=True, capture_output=True, text=True,
                   timeout=PIP_TIMEOUT_SECONDS)
  except subprocess.CalledProcessError as e:
    lines = (e.stderr or e.stdout or '').strip().splitlines()
    raise SourceUnreachableError(
        f'`pip download {requirement}` failed: '
        f'{lines[-1] if lines else f"exit status {e.returncode}"}') from None
  except subprocess.TimeoutExpired:
    raise SourceUnreachableError(
        f'`pip download {requirement}` took over {PIP_TIMEOUT_SECONDS} s'
    ) from None
  name = requirement.split('==')[0]
  wheels = glob.glob(os.path.join(dest_dir, f'{name}-*.whl'))
  if len(wheels) != 1:
    raise DownloadError(f'`pip download {requirement}` left {len(wheels)} '
                        f'wheels in {dest_dir}, expected one')
  return wheels[0]


# --- Public entry point ------------------------------------------------------


def fetch_ml100k(
    dest: str,
    source: str = 'auto',
    fetch_url: Callable[[str], bytes] = fetch_url,
    download_wheel: Callable[[str], str] = download_wheel,
    grouplens_md5: str = GROUPLENS_MD5,
    recbole_sha256: str = RECBOLE_WHEEL_SHA256,
    expected_counts: Optional[Counts] = ML100K_COUNTS,
    log: Callable[[str], None] = lambda message: None,
) -> FetchResult:
  """Makes `dest` hold ml-100k (u.data, u.item, u.user) unless it already does.

  Args:
    dest: folder to create, e.g. 'data/ml-100k'. Its parent must be writable.
    source: 'grouplens' (the official zip), 'recbole' (the copy in RecBole's
      wheel on PyPI) or 'auto' (GroupLens, falling back to RecBole only when
      GroupLens cannot be reached; a checksum mismatch never falls back).
    fetch_url: returns the bytes at a URL; raises OSError when unreachable.
    download_wheel: downloads the RecBole wheel into a folder, returns its path.
    grouplens_md5: expected MD5 of the GroupLens zip.
    recbole_sha256: expected SHA-256 of the RecBole wheel.
    expected_counts: sizes the RecBole rebuild must have; None skips the check
      (for tests on tiny fakes).
    log: receives progress messages (the command line passes `print`).

  Returns:
    What was done; `result.downloaded` is False if `dest` was complete.

  Raises:
    ValueError: `source` is not one of SOURCES.
    DownloadError: nothing usable could be fetched; `dest` is left as it was.
  """
  if source not in SOURCES:
    raise ValueError(f'source must be one of {SOURCES}, got {source!r}')
  if _is_complete(dest):
    return FetchResult(dest=dest, source=None)
  _check_dest_is_free(dest)

  notes: List[str] = []
  files: Optional[Dict[str, bytes]] = None
  if source in ('auto', 'grouplens'):
    log(f'Downloading {GROUPLENS_URL}')
    try:
      files = _fetch_grouplens(fetch_url, grouplens_md5)
      result = FetchResult(dest, 'grouplens', GROUPLENS_URL,
                           f'md5:{grouplens_md5}')
    except SourceUnreachableError as e:
      if source == 'grouplens':
        raise SourceUnreachableError(
            f'GroupLens is unreachable ({e}). Retry later, or use the copy '
            'on PyPI with `--source recbole`.') from None
      notes.append(f'GroupLens is unreachable ({e}); falling back to the '
                   f'copy of ml-100k in the {RECBOLE_REQUIREMENT} wheel on '
                   'PyPI.')
      log(notes[-1])
  if files is None:
    log(f'Downloading {RECBOLE_REQUIREMENT} with pip')
    files = _fetch_recbole(download_wheel, recbole_sha256, expected_counts)
    notes.append(RECBOLE_CAVEAT)
    result = FetchResult(dest, 'recbole', RECBOLE_URL,
                         f'sha256:{recbole_sha256}')

  result = dataclasses.replace(result, notes=tuple(notes))
  files[SOURCE_FILE] = _source_record(result).encode('utf-8')
  _install_atomically(dest, files)
  return result


def fetch_release(
    dest: str,
    release: Release,
    download_file: Callable[..., None] = download_file,
    log: Callable[[str], None] = lambda message: None,
) -> FetchResult:
  """Makes `dest` hold a GroupLens release (ml-1m, ml-20m, ml-25m).

  Downloads the zip into a temporary file beside `dest`, checks its MD5 and
  SHA-256, and extracts the layout's files and the README.

  Args:
    dest: folder to create, e.g. 'data/ml-25m'. Its parent must be writable
      and hold room for the zip and the extracted files (ml-25m: 262 MB +
      about 700 MB).
    release: one of `RELEASES` (tests pass fakes with their own checksums).
    download_file: streams a URL into a file path (`log` as a keyword);
      raises OSError when unreachable.
    log: receives progress messages.

  Returns:
    What was done; `result.downloaded` is False if `dest` was complete.

  Raises:
    SourceUnreachableError: GroupLens cannot be reached (one line: there is
      no other source for these releases).
    ChecksumError: the zip is not the pinned one.
    DownloadError: anything else; `dest` is left as it was.
  """
  data_layout = release.layout
  if _is_complete(dest, data_layout):
    return FetchResult(dest=dest, source=None)
  _check_dest_is_free(dest, data_layout)
  parent = os.path.dirname(os.path.abspath(dest))
  os.makedirs(parent, exist_ok=True)
  with tempfile.TemporaryDirectory(prefix=f'.{release.name}.zip-',
                                   dir=parent) as download_dir:
    zip_path = os.path.join(download_dir, f'{release.name}.zip')
    log(f'Downloading {release.url}')
    try:
      download_file(release.url, zip_path, log=log)
    except _TRANSPORT_ERRORS as e:
      raise SourceUnreachableError(
          f'GroupLens is unreachable ({release.url}: {_describe(e)}); '
          f'{release.name} has no other source here: download it where '
          f'GroupLens can be reached and unzip its {release.folder} into '
          f'{dest}, or use synthetic data (python -m movielens.synthetic '
          '--layout ml-25m).') from None
    md5, sha256 = _hexdigests(zip_path)
    for name, actual, expected in (('md5', md5, release.md5),
                                   ('sha256', sha256, release.sha256)):
      if actual != expected.lower():
        raise ChecksumError(
            f'checksum mismatch for {release.url}: expected {name} '
            f'{expected}, got {actual}. The download is corrupt or the file '
            'has changed; nothing was written.')
    result = FetchResult(dest, 'grouplens', release.url,
                         f'md5:{release.md5} sha256:{release.sha256}')

    def extract(staging: str) -> None:
      try:
        with zipfile.ZipFile(zip_path) as archive:
          members = _release_members(archive, release)
          for base, info in members.items():
            with archive.open(info) as source, open(
                os.path.join(staging, base), 'wb') as target:
              shutil.copyfileobj(source, target, 1 << 20)
      except zipfile.BadZipFile as e:
        raise DownloadError(f'{release.url} is not a zip file: {e}') from None

    log(f'Extracting {", ".join(data_layout.files)} into {dest}')
    _install_atomically(
        dest, {SOURCE_FILE: _source_record(result).encode('utf-8')},
        data_layout, write=extract)
  return result


def _release_members(archive: zipfile.ZipFile,
                     release: Release) -> Dict[str, zipfile.ZipInfo]:
  """The zip entries to extract: the layout's files and README, by name.

  Only plain files directly inside the release's folder: no subfolders,
  no '..'. Raises DownloadError when a layout file is missing.
  """
  wanted = set(release.layout.files)
  members = {}
  for info in archive.infolist():
    name = info.filename
    if info.is_dir() or not name.startswith(release.folder):
      continue
    base = name[len(release.folder):]
    if '/' in base or base in ('', '.', '..'):
      continue
    if base in wanted or base.lower().startswith('readme'):
      members[base] = info
  missing = sorted(wanted - set(members))
  if missing:
    raise DownloadError(f'{release.url} lacks {release.folder}'
                        f'{", ".join(missing)}')
  return members


# --- GroupLens ---------------------------------------------------------------


def _fetch_grouplens(fetch: Callable[[str], bytes],
                     expected_md5: str) -> Dict[str, bytes]:
  """Downloads and verifies the GroupLens zip; returns its ml-100k/ files."""
  try:
    payload = fetch(GROUPLENS_URL)
  except _TRANSPORT_ERRORS as e:
    raise SourceUnreachableError(_describe(e)) from None
  _verify(payload, hashlib.md5, expected_md5, GROUPLENS_URL)
  try:
    archive = zipfile.ZipFile(io.BytesIO(payload))
  except zipfile.BadZipFile as e:
    raise DownloadError(f'{GROUPLENS_URL} is not a zip file: {e}') from None
  files = {}
  with archive:
    for info in archive.infolist():
      name = info.filename
      # Only plain files directly inside ml-100k/: no subfolders, no '..'.
      if info.is_dir() or not name.startswith(_GROUPLENS_FOLDER):
        continue
      base = name[len(_GROUPLENS_FOLDER):]
      if base and '/' not in base and base not in ('.', '..'):
        files[base] = archive.read(info)
  missing = [f for f in layout.ML_100K.files if f not in files]
  if missing:
    raise DownloadError(f'{GROUPLENS_URL} lacks {_GROUPLENS_FOLDER}'
                        f'{", ".join(missing)}')
  return files


# --- RecBole fallback --------------------------------------------------------


def _fetch_recbole(download: Callable[[str], str], expected_sha256: str,
                   expected_counts: Optional[Counts]) -> Dict[str, bytes]:
  """Downloads RecBole's wheel and rebuilds its ml-100k in the raw layout."""
  with tempfile.TemporaryDirectory(prefix='recbole-wheel-') as wheel_dir:
    try:
      wheel_path = download(wheel_dir)
    except _TRANSPORT_ERRORS as e:
      raise SourceUnreachableError(
          f'could not download {RECBOLE_REQUIREMENT}: {_describe(e)}') from None
    with open(wheel_path, 'rb') as f:
      payload = f.read()
  _verify(payload, hashlib.sha256, expected_sha256,
          f'{RECBOLE_URL} ({os.path.basename(wheel_path)})')
  try:
    with zipfile.ZipFile(io.BytesIO(payload)) as wheel:
      tables = {
          kind: _read_recbole_table(wheel, f'{_RECBOLE_FOLDER}ml-100k.{kind}')
          for kind in ('inter', 'item', 'user')
      }
  except zipfile.BadZipFile as e:
    raise DownloadError(f'{wheel_path} is not a wheel: {e}') from None
  return rebuild_from_recbole(tables['inter'], tables['item'], tables['user'],
                              expected_counts)


def _read_recbole_table(wheel: zipfile.ZipFile,
                        member: str) -> List[Dict[str, str]]:
  """Reads one RecBole atomic file: UTF-8, TAB-separated, typed header.

  The header names columns as `name:type` (e.g. `item_id:token`); rows are
  returned as dicts keyed by the bare names.
  """
  try:
    text = wheel.read(member).decode('utf-8')
  except KeyError:
    raise DownloadError(f'the RecBole wheel lacks {member}') from None
  except UnicodeDecodeError as e:
    raise DownloadError(f'{member} is not UTF-8: {e}') from None
  lines = text.splitlines()
  if not lines:
    raise DownloadError(f'{member} is empty')
  names = [column.split(':')[0] for column in lines[0].split('\t')]
  rows = []
  for number, line in enumerate(lines[1:], start=2):
    if not line:
      continue
    values = line.split('\t')
    if len(values) != len(names):
      raise DownloadError(f'{member} line {number}: expected {len(names)} '
                          f'TAB-separated fields, found {len(values)}')
    rows.append(dict(zip(names, values)))
  return rows


def rebuild_from_recbole(
    inter: Sequence[Mapping[str, str]],
    item: Sequence[Mapping[str, str]],
    user: Sequence[Mapping[str, str]],
    expected_counts: Optional[Counts] = ML100K_COUNTS,
) -> Dict[str, bytes]:
  """Turns RecBole's ml-100k rows into GroupLens' u.data, u.item and u.user.

  Every line is written with the `movielens.layout` writers, then parsed back
  with its parsers, so the result is exactly what the ExampleGen accepts.

  Args:
    inter: rows with user_id, item_id, rating, timestamp.
    item: rows with item_id, movie_title, release_year, class (space-separated
      genres).
    user: rows with user_id, age, gender, occupation, zip_code.
    expected_counts: sizes to insist on; None skips the check.

  Returns:
    File name -> bytes, each file in its ml-100k encoding.

  Raises:
    DownloadError: a row does not fit the layout, an id is dangling, or the
      sizes differ from `expected_counts`.
  """
  try:
    ratings = [
        layout.Rating(
            user_id=row['user_id'],
            movie_id=row['item_id'],
            rating=float(row['rating']),
            timestamp=_whole_number(row['timestamp'])) for row in inter
    ]
    movies = [_recbole_movie(row) for row in item]
    users = [
        layout.User(
            user_id=row['user_id'],
            age=int(row['age']),
            gender=row['gender'],
            occupation=row['occupation'],
            zip_code=row['zip_code']) for row in user
    ]
  except KeyError as e:
    raise DownloadError(f'RecBole ml-100k lacks the column {e}') from None
  except ValueError as e:
    raise DownloadError(
        f'RecBole ml-100k has an unexpected value: {e}') from None

  ml = layout.ML_100K
  files = {
      ml.ratings_file: _render(ratings, layout.format_ml100k_rating,
                               ml.parse_rating, ml.ratings_file),
      ml.movies_file: _render(movies, layout.format_ml100k_movie,
                              ml.parse_movie, ml.movies_file),
      ml.users_file: _render(users, layout.format_ml100k_user, ml.parse_user,
                             ml.users_file),
  }
  _check_rebuild(ratings, movies, users, expected_counts)
  return files


def _whole_number(value: str) -> int:
  """'881250949' or '881250949.0' -> 881250949 (RecBole types it float)."""
  number = float(value)
  if not number.is_integer():
    raise ValueError(f'timestamp {value!r} is not a whole number of seconds')
  return int(number)


def _recbole_movie(row: Mapping[str, str]) -> layout.Movie:
  """One RecBole item row as a GroupLens movie.

  RecBole dropped the '(year)' from titles and keeps the year apart; put it
  back so titles read as in u.item ('Toy Story (1995)'). Two quirks: item 267
  is GroupLens' placeholder 'unknown', spelt 'unkonwn' in both title and year,
  and item 1412 has the year 'V' (its title already ends in '(1995)').
  """
  title = row['movie_title'].strip()
  year = row['release_year'].strip()
  release_year = int(year) if len(year) == 4 and year.isdigit() else None
  if title == 'unkonwn':
    title = 'unknown'
  if release_year is not None:
    title = f'{title} ({release_year})'
  return layout.Movie(
      movie_id=row['item_id'],
      title=title,
      release_year=release_year,
      genres=tuple(g for g in row['class'].split(' ') if g))


def _render(records, formatter, parser, file_name: str) -> bytes:
  """Formats records into one file's bytes, checking each line parses back."""
  encoding = layout.ML_100K.encodings[file_name]
  lines = []
  for record in records:
    try:
      line = formatter(record).encode(encoding)
      parser(line)
    except (ValueError, UnicodeEncodeError) as e:
      raise DownloadError(
          f'cannot write {record} to {file_name}: {e}') from None
    lines.append(line)
  return b''.join(lines)


def _check_rebuild(ratings: Sequence[layout.Rating],
                   movies: Sequence[layout.Movie],
                   users: Sequence[layout.User],
                   expected: Optional[Counts]) -> None:
  """Raises DownloadError unless ids are unique, resolve, and sizes match."""
  movie_ids = {m.movie_id for m in movies}
  user_ids = {u.user_id for u in users}
  problems = []
  if len(movie_ids) != len(movies):
    problems.append('duplicate movie ids')
  if len(user_ids) != len(users):
    problems.append('duplicate user ids')
  dangling_movies = {r.movie_id for r in ratings} - movie_ids
  dangling_users = {r.user_id for r in ratings} - user_ids
  if dangling_movies:
    problems.append(f'ratings of unknown movies {sorted(dangling_movies)[:5]}')
  if dangling_users:
    problems.append(f'ratings by unknown users {sorted(dangling_users)[:5]}')
  actual = Counts(ratings=len(ratings), users=len(users), movies=len(movies))
  if expected is not None and actual != expected:
    problems.append(f'expected {expected}, found {actual}')
  if problems:
    raise DownloadError('the RecBole copy of ml-100k does not rebuild '
                        'cleanly: ' + '; '.join(problems))


# --- Shared helpers ----------------------------------------------------------


def _describe(error: BaseException) -> str:
  """One line saying why a download failed ('gaierror: Name or service ...')."""
  if isinstance(error, urllib.error.HTTPError):
    return f'HTTP {error.code} {error.reason}'
  if isinstance(error, urllib.error.URLError):
    if not isinstance(error.reason, BaseException):
      return str(error.reason)
    error = error.reason  # The socket error underneath.
  detail = getattr(error, 'strerror', None) or str(error)
  return f'{type(error).__name__}: {detail}' if detail else type(
      error).__name__


def _verify(payload: bytes, algorithm, expected: str, where: str) -> None:
  actual = algorithm(payload).hexdigest()
  if actual != expected.lower():
    name = algorithm().name
    raise ChecksumError(
        f'checksum mismatch for {where}: expected {name} {expected}, got '
        f'{actual}. The download is corrupt or the file has changed; nothing '
        'was written.')


def _hexdigests(path: str) -> Tuple[str, str]:
  """MD5 and SHA-256 of a file, read in chunks."""
  md5, sha256 = hashlib.md5(), hashlib.sha256()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      md5.update(chunk)
      sha256.update(chunk)
  return md5.hexdigest(), sha256.hexdigest()


def _is_complete(dest: str,
                 data_layout: layout.RawLayout = layout.ML_100K) -> bool:
  return all(
      os.path.isfile(os.path.join(dest, f)) for f in data_layout.files)


def _check_dest_is_free(
    dest: str, data_layout: layout.RawLayout = layout.ML_100K) -> None:
  """`dest` must be absent or an empty folder, so nothing is overwritten."""
  if os.path.exists(dest) and not (os.path.isdir(dest) and
                                   not os.listdir(dest)):
    missing = [
        f for f in data_layout.files
        if not os.path.isfile(os.path.join(dest, f))
    ]
    raise DownloadError(
        f'{dest} exists but lacks {", ".join(missing)}; remove it or choose '
        'another --dest.')


def _source_record(result: FetchResult) -> str:
  date = datetime.datetime.now(datetime.timezone.utc).strftime(
      '%Y-%m-%dT%H:%M:%SZ')
  lines = [
      f'source: {result.source}',
      f'url: {result.url}',
      f'checksum: {result.checksum}',
      f'date: {date}',
  ]
  if result.source == 'recbole':
    lines.append(f'wheel: {RECBOLE_REQUIREMENT}, folder {_RECBOLE_FOLDER}')
    lines.append(f'note: {RECBOLE_CAVEAT}')
  return '\n'.join(lines) + '\n'


def _install_atomically(
    dest: str, files: Mapping[str, bytes],
    data_layout: layout.RawLayout = layout.ML_100K,
    write: Optional[Callable[[str], None]] = None) -> None:
  """Writes `files` into a sibling temp folder, then renames it to `dest`.

  `write`, if given, is called with the temp folder first, to write files
  too large to hold in memory.
  """
  dest = os.path.abspath(dest)
  parent = os.path.dirname(dest)
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=f'.{os.path.basename(dest)}.partial-',
                             dir=parent)
  try:
    # mkdtemp makes a private (0700) folder; give it the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)
    if write is not None:
      write(staging)
    for name, content in files.items():
      with open(os.path.join(staging, name), 'wb') as f:
        f.write(content)
    if os.path.isdir(dest):
      os.rmdir(dest)  # Empty, checked by _check_dest_is_free.
    os.rename(staging, dest)
  except OSError as e:
    if not _is_complete(dest, data_layout):  # Else a concurrent run won.
      raise DownloadError(f'could not write {dest}: {e}') from None
  finally:
    shutil.rmtree(staging, ignore_errors=True)


# --- Command line ------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      prog='python -m movielens.download',
      description='Download a MovieLens release into a folder, unless it is '
      'already there: ml-100k (u.data, u.item, u.user), ml-1m (ratings.dat, '
      'movies.dat, users.dat), ml-20m or ml-25m (ratings.csv, movies.csv).')
  parser.add_argument(
      '--dataset', choices=DATASETS, default='ml-100k',
      help='the release (default: %(default)s); all but ml-100k come from '
      'GroupLens only, checked against MD5 and SHA-256')
  parser.add_argument(
      '--dest', default=None,
      help='folder to create (default: data/<dataset>)')
  parser.add_argument(
      '--source', choices=SOURCES, default='auto',
      help='ml-100k only. grouplens: the official zip; recbole: the copy in '
      f'the {RECBOLE_REQUIREMENT} wheel on PyPI (no exact release dates or '
      'IMDb URLs); auto: GroupLens, else RecBole (default: %(default)s)')
  args = parser.parse_args(argv)
  dest = args.dest or os.path.join('data', args.dataset)
  if args.dataset != 'ml-100k' and args.source == 'recbole':
    parser.error(f'--source recbole holds ml-100k only; {args.dataset} comes '
                 'from GroupLens')
  data_layout = layout.layout_of_release(args.dataset)
  try:
    # Module globals, looked up at call time so tests can replace them.
    if args.dataset == 'ml-100k':
      result = fetch_ml100k(dest, source=args.source, fetch_url=fetch_url,
                            download_wheel=download_wheel, log=print)
    else:
      result = fetch_release(dest, RELEASES[args.dataset],
                             download_file=download_file, log=print)
  except DownloadError as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  if not result.downloaded:
    print(f'{dest} already holds {", ".join(data_layout.files)}; '
          'nothing to do.')
    return 0
  if result.source == 'recbole':
    print(RECBOLE_CAVEAT)
  print(f'Wrote {args.dataset} to {dest} from {result.source} ({result.url}, '
        f'{result.checksum}); see {os.path.join(dest, SOURCE_FILE)}.')
  return 0


if __name__ == '__main__':
  sys.exit(main())
