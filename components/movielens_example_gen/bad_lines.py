"""The report of a raw folder's bad lines: the first ones in file order,
all of them counted, each traced to its root cause.

The Beam ingestion only counts bad lines (per step, in parallel, in no
order). When it counted any, `find` reads the files once more, one after
the other in plain Python, and applies the same checks in file order:
the movies file, the users file, then the ratings. That costs a pass over
the data only on the error path, and gives what a person needs to fix the
files: real line numbers, the first lines rather than a sample, and, where
one bad line of a side file makes many ratings bad (a `u.user` line that
does not parse leaves its user unknown to every rating of that user), the
side file's line named once with the number of ratings it takes down.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import tensorflow as tf

from movielens import layout as raw

SHOWN = 20
_LEADING_ID = re.compile(rb'\s*"?([^|:,\t"]+)')


@dataclasses.dataclass
class BadLine:
  """One line that cannot be ingested."""
  path: str
  number: int  # 1-based, headers counted
  problem: str
  text: str  # the raw line, decoded as latin-1 (lossless)
  # Ratings refused only because this line left their movie or user
  # undefined: (how many, the id they refer to).
  dependents: int = 0
  defines: Optional[str] = None

  def render(self) -> str:
    shown = self.text if len(self.text) <= 120 else self.text[:117] + '...'
    lines = [f'  {self.path}:{self.number}: {self.problem}',
             f'      line: {shown!r}']
    if self.dependents:
      lines.append(f'      root cause of {self.dependents} refused '
                   f'rating(s) of {self.defines}')
    return '\n'.join(lines)


@dataclasses.dataclass
class Report:
  """Every bad line found, in file order (files in reading order)."""
  data_dir: str
  bad_lines: List[BadLine]

  @property
  def total(self) -> int:
    """Bad lines in all, dependent ratings included."""
    return sum(1 + bad.dependents for bad in self.bad_lines)

  def describe(self, shown: int = SHOWN) -> str:
    head = self.bad_lines[:shown]
    count = self.total
    header = f'{self.data_dir}: {count} raw line(s) cannot be ingested'
    if len(head) < len(self.bad_lines):
      header += f' (the first {len(head)} in file order shown)'
    return '\n'.join([header + ':'] + [bad.render() for bad in head])


def _lines(path: str, header_lines: int) -> Iterator[Tuple[int, bytes]]:
  """(1-based number, line without its end) of a file, headers skipped."""
  with tf.io.gfile.GFile(path, 'rb') as f:
    for number, line in enumerate(f, start=1):
      if number <= header_lines:
        continue
      line = line.rstrip(b'\r\n')
      if line.strip():
        yield number, line


def _leading_id(line: bytes) -> Optional[str]:
  """The first field of a dimension-file line (its id), for lines that do
  not parse: the ratings that refer to it are its dependents."""
  match = _LEADING_ID.match(line)
  return match.group(1).decode('latin-1').strip() if match else None


class _Dimension:
  """The ids a movies or users file defines, and its bad lines by id."""

  def __init__(self, file_name: str, kind: str):
    self.file_name = file_name
    self.kind = kind
    self.ids: Dict[str, int] = {}  # id -> line number
    self.bad_by_id: Dict[str, BadLine] = {}

  def read(self, path: str, header_lines: int,
           parse: Callable[[bytes], object], id_of: Callable[[object], str],
           found: List[BadLine]) -> None:
    for number, line in _lines(path, header_lines):
      text = line.decode('latin-1')
      try:
        record_id = id_of(parse(line))
      except raw.RawLineError as e:
        bad = BadLine(path, number, str(e), text)
        leading = _leading_id(line)
        if leading is not None and leading not in self.ids:
          bad.defines = f'{self.kind} {leading!r}'
          self.bad_by_id.setdefault(leading, bad)
        found.append(bad)
        continue
      if record_id in self.ids:
        found.append(BadLine(
            path, number,
            f'field \'{self.kind}_id\': {self.kind} {record_id!r} is already '
            f'defined at {self.file_name}:{self.ids[record_id]}; expected '
            f'each {self.kind} once', text))
        continue
      self.ids[record_id] = number

  def check(self, record_id: str) -> Optional[str]:
    """Why a rating's reference is bad: None when the id is defined; ''
    when a bad line of this file is the root cause (it then counts the
    rating); else the problem."""
    if record_id in self.ids:
      return None
    bad = self.bad_by_id.get(record_id)
    if bad is not None:
      bad.dependents += 1
      return ''
    return (f'field \'{self.kind}_id\': {self.kind} {record_id!r} is not in '
            f'{self.file_name}')


def find(data_dir: str, data_layout: raw.RawLayout) -> Report:
  """Every bad line of the raw folder, in file order.

  Applies the ingestion's checks: each line parses in its layout; each
  movie and user id is defined once; each rating's movie and user are
  defined.
  """
  found: List[BadLine] = []
  movies = _Dimension(data_layout.movies_file, 'movie')
  movies.read(os.path.join(data_dir, data_layout.movies_file),
              data_layout.header_lines, data_layout.parse_movie,
              lambda m: m.movie_id, found)
  dimensions = [(movies, lambda r: r.movie_id)]
  if data_layout.users_file:
    users = _Dimension(data_layout.users_file, 'user')
    users.read(os.path.join(data_dir, data_layout.users_file),
               data_layout.header_lines, data_layout.parse_user,
               lambda u: u.user_id, found)
    dimensions.append((users, lambda r: r.user_id))
  ratings_path = os.path.join(data_dir, data_layout.ratings_file)
  for number, line in _lines(ratings_path, data_layout.header_lines):
    text = line.decode('latin-1')
    try:
      rating = data_layout.parse_rating(line)
    except raw.RawLineError as e:
      found.append(BadLine(ratings_path, number, str(e), text))
      continue
    # As the ingestion checks: the movie first, then the user; a rating is
    # bad once.
    problem = None
    for dimension, id_of in dimensions:
      problem = dimension.check(id_of(rating))
      if problem is not None:
        break
    if problem:
      found.append(BadLine(ratings_path, number, problem, text))
  return Report(data_dir, found)

