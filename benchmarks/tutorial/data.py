"""The tutorial pipeline's input: one CSV of (user_id, movie_title) rows.

The tutorial reads MovieLens through TensorFlow Datasets, which joins each
rating with its movie's title. Here the raw files are joined the same way
and written as a CSV for CsvExampleGen: plain Python, no TFX, so it is
tested directly.
"""

import csv
import os

from benchmarks.tutorial import features
from movielens import layout


def write_ratings_csv(data_dir: str, csv_path: str) -> int:
  """Writes one row per rating of `data_dir`: user id, title of the movie.

  Args:
    data_dir: a raw MovieLens folder in any layout `movielens.layout` knows.
    csv_path: the CSV to write (UTF-8, header `user_id,movie_title`, titles
      quoted when they hold commas); its folder is created.

  Returns:
    The number of rows written, one per rating.

  Raises:
    layout.RawDataError: `data_dir` holds no known release.
    ValueError: a rating names a movie the movies file does not list.
  """
  data_layout = layout.detect_layout(data_dir)
  titles = {movie.movie_id: movie.title
            for movie in _records(data_dir, data_layout.movies_file,
                                  data_layout.parse_movie,
                                  data_layout.header_lines)}
  os.makedirs(os.path.dirname(os.path.abspath(csv_path)), exist_ok=True)
  rows = 0
  with open(csv_path, 'w', encoding='utf-8', newline='') as f:
    writer = csv.writer(f, lineterminator='\n')
    writer.writerow(features.CSV_COLUMNS)
    for rating in _records(data_dir, data_layout.ratings_file,
                           data_layout.parse_rating, data_layout.header_lines):
      try:
        title = titles[rating.movie_id]
      except KeyError:
        raise ValueError(
            f'{os.path.join(data_dir, data_layout.ratings_file)}: movie '
            f'{rating.movie_id} is not in {data_layout.movies_file}') from None
      writer.writerow((rating.user_id, title))
      rows += 1
  return rows


def _records(data_dir, file_name, parse, header_lines):
  with open(os.path.join(data_dir, file_name), 'rb') as f:
    for number, line in enumerate(f):
      if number >= header_lines and line.strip():
        yield parse(line)
