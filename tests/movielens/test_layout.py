"""Tests for movielens.layout: ml-100k parsers and writers on literal lines
(ml-1m and the CSV layout: test_layout_releases.py)."""

import pytest

from movielens import layout
from movielens.layout import Movie, Rating, RawLineError, User

pytestmark = pytest.mark.unit

# A u.item line has 19 genre flags, in ML100K_GENRES order.
_NO_GENRES = '|'.join(['0'] * 19)


def _flags(*genres):
  return '|'.join('1' if g in genres else '0' for g in layout.ML100K_GENRES)


# --- u.data ------------------------------------------------------------------


def test_parse_rating_good_line():
  assert layout.parse_ml100k_rating(b'196\t242\t3\t881250949\n') == Rating(
      user_id='196', movie_id='242', rating=3.0, timestamp=881250949)


def test_parse_rating_accepts_crlf():
  assert layout.parse_ml100k_rating(b'1\t2\t5\t0\r\n') == Rating(
      user_id='1', movie_id='2', rating=5.0, timestamp=0)


@pytest.mark.parametrize(
    'raw, field',
    [
        (b'196\t242\t3\n', 'line'),  # 3 fields, not 4.
        (b'196\t242\t3\t881250949\textra\n', 'line'),
        (b'196 242 3 881250949\n', 'line'),  # Spaces, not TABs.
        (b'196\t242\tgood\t881250949\n', 'rating'),
        (b'196\t242\t0\t881250949\n', 'rating'),
        (b'196\t242\t6\t881250949\n', 'rating'),
        (b'196\t242\t\t881250949\n', 'rating'),
        (b'\t242\t3\t881250949\n', 'user_id'),
        (b'196\t \t3\t881250949\n', 'movie_id'),
        (b'196\t242\t3\tyesterday\n', 'timestamp'),
        (b'196\t242\t3\t88125\xe99\n', 'line'),  # Not ASCII.
    ])
def test_parse_rating_rejects_bad_lines(raw, field):
  with pytest.raises(RawLineError) as error:
    layout.parse_ml100k_rating(raw)
  assert error.value.field == field


def test_raw_line_error_message_names_field_and_value():
  with pytest.raises(RawLineError) as error:
    layout.parse_ml100k_rating(b'196\t242\t6\t881250949\n')
  assert str(error.value) == (
      "field 'rating': expected a number from 1 to 5, got '6'")
  assert error.value.value == '6'


# --- u.item ------------------------------------------------------------------


def test_parse_movie_genres_and_year_from_release_date():
  raw = (b'1|Toy Story (1995)|01-Jan-1995||'
         b'http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|' +
         _flags('Animation', "Children's", 'Comedy').encode() + b'\n')
  assert layout.parse_ml100k_movie(raw) == Movie(
      movie_id='1',
      title='Toy Story (1995)',
      release_year=1995,
      genres=('Animation', "Children's", 'Comedy'))


def test_parse_movie_release_date_wins_over_title_year():
  raw = f'2|Old Film (1939)|01-Jan-1994|||{_flags("Drama")}\n'.encode()
  assert layout.parse_ml100k_movie(raw).release_year == 1994


def test_parse_movie_year_from_title_when_date_empty():
  raw = f'1412|Land Before Time III (1995)||||{_flags("Animation")}\n'
  movie = layout.parse_ml100k_movie(raw.encode())
  assert movie.release_year == 1995
  assert movie.genres == ('Animation',)


def test_parse_movie_no_year_when_neither_date_nor_title_has_one():
  raw = f'267|unknown||||{_flags("unknown")}\n'.encode()
  assert layout.parse_ml100k_movie(raw) == Movie(
      movie_id='267', title='unknown', release_year=None, genres=('unknown',))


def test_parse_movie_decodes_latin1_title():
  raw = (b'543|Mis\xe9rables, Les (1995)|01-Jan-1995|||' +
         _flags('Drama', 'Musical').encode() + b'\n')
  movie = layout.parse_ml100k_movie(raw)
  assert movie.title == 'Misérables, Les (1995)'
  assert movie.genres == ('Drama', 'Musical')


def test_parse_movie_rejects_utf8_line():
  raw = f'543|Misérables, Les (1995)|01-Jan-1995|||{_NO_GENRES}\n'.encode(
      'utf-8')
  with pytest.raises(RawLineError) as error:
    layout.parse_ml100k_movie(raw)
  assert error.value.field == 'line'
  assert 'UTF-8' in str(error.value)
  assert 'Misérables' in error.value.value  # Shown decoded, as users see it.


def test_parse_movie_rejects_nul_bytes():
  raw = 'a|b\n'.encode('utf-16-le')
  with pytest.raises(RawLineError) as error:
    layout.parse_ml100k_movie(raw)
  assert error.value.field == 'line'
  assert 'NUL' in str(error.value)


@pytest.mark.parametrize(
    'line, field',
    [
        (f'1|Toy Story (1995)|01-Jan-1995|||{"|".join(["0"] * 18)}\n',
         'line'),  # 18 flags.
        (f'1|Toy Story (1995)|1995-01-01|||{_NO_GENRES}\n', 'release_date'),
        ('1|Toy Story (1995)|01-Jan-1995|||' + '|'.join(['0'] * 18) + '|y\n',
         'genre:Western'),
        (f'|Toy Story (1995)|01-Jan-1995|||{_NO_GENRES}\n', 'movie_id'),
    ])
def test_parse_movie_rejects_bad_lines(line, field):
  with pytest.raises(RawLineError) as error:
    layout.parse_ml100k_movie(line.encode('latin-1'))
  assert error.value.field == field


# --- u.user ------------------------------------------------------------------


def test_parse_user_good_line():
  assert layout.parse_ml100k_user(b'1|24|M|technician|85711\n') == User(
      user_id='1', age=24, gender='M', occupation='technician',
      zip_code='85711')


def test_parse_user_keeps_non_numeric_zip():
  # ml-100k has Canadian postal codes such as 'T8H1N'.
  assert layout.parse_ml100k_user(
      b'33|23|M|student|T8H1N\n').zip_code == 'T8H1N'


@pytest.mark.parametrize(
    'raw, field',
    [
        (b'1|24|X|technician|85711\n', 'gender'),
        (b'1|24|m|technician|85711\n', 'gender'),
        (b'1|old|M|technician|85711\n', 'age'),
        (b'1|0|M|technician|85711\n', 'age'),
        (b'1|130|M|technician|85711\n', 'age'),
        (b'1|24|M|technician\n', 'line'),
    ])
def test_parse_user_rejects_bad_lines(raw, field):
  with pytest.raises(RawLineError) as error:
    layout.parse_ml100k_user(raw)
  assert error.value.field == field


# --- Writers: format -> parse round trips ------------------------------------


def test_format_rating_exact_line_and_round_trip():
  rating = Rating(user_id='196', movie_id='242', rating=3.0,
                  timestamp=881250949)
  line = layout.format_ml100k_rating(rating)
  assert line == '196\t242\t3\t881250949\n'
  assert layout.parse_ml100k_rating(line.encode('ascii')) == rating


def test_format_half_star_rating_round_trip():
  rating = Rating(user_id='1', movie_id='2', rating=3.5, timestamp=1)
  assert layout.format_ml100k_rating(rating) == '1\t2\t3.5\t1\n'
  assert layout.parse_ml100k_rating(
      layout.format_ml100k_rating(rating).encode()) == rating


def test_format_user_exact_line_and_round_trip():
  user = User(user_id='2', age=53, gender='F', occupation='other',
              zip_code='94043')
  line = layout.format_ml100k_user(user)
  assert line == '2|53|F|other|94043\n'
  assert layout.parse_ml100k_user(line.encode('latin-1')) == user


def test_format_movie_exact_line_and_round_trip():
  movie = Movie(movie_id='543', title='Misérables, Les (1995)',
                release_year=1995, genres=('Drama', 'Musical'))
  line = layout.format_ml100k_movie(movie)
  assert line == ('543|Misérables, Les (1995)|01-Jan-1995|||' +
                  _flags('Drama', 'Musical') + '\n')
  assert layout.parse_ml100k_movie(line.encode('latin-1')) == movie


def test_format_movie_without_year_round_trip():
  movie = Movie(movie_id='267', title='unknown', release_year=None,
                genres=('unknown',))
  line = layout.format_ml100k_movie(movie)
  assert line == f'267|unknown||||{_flags("unknown")}\n'
  assert layout.parse_ml100k_movie(line.encode('latin-1')) == movie


def test_format_movie_rejects_unknown_genre():
  with pytest.raises(ValueError, match='Space Opera'):
    layout.format_ml100k_movie(
        Movie(movie_id='1', title='X (1995)', release_year=1995,
              genres=('Space Opera',)))


# --- detect_layout -----------------------------------------------------------


def test_detect_layout_finds_ml100k(tmp_path):
  (tmp_path / 'u.data').write_bytes(b'1\t2\t3\t4\n')
  assert layout.detect_layout(str(tmp_path)) is layout.ML_100K


def test_detect_layout_uses_the_given_exists_predicate():
  seen = []

  def exists(path):
    seen.append(path)
    return path == 'gs://bucket/ml/u.data'

  assert layout.detect_layout('gs://bucket/ml', exists=exists) is (
      layout.ML_100K)
  assert seen == ['gs://bucket/ml/u.data', 'gs://bucket/ml/ratings.dat',
                  'gs://bucket/ml/ratings.csv']


def test_detect_layout_on_empty_folder_names_the_files(tmp_path):
  with pytest.raises(layout.RawDataError) as error:
    layout.detect_layout(str(tmp_path))
  message = str(error.value)
  assert str(tmp_path) in message
  assert 'ml-100k: u.data, u.item, u.user' in message
  assert 'make data' in message


def test_ml100k_layout_files_and_encodings():
  assert layout.ML_100K.files == ('u.data', 'u.item', 'u.user')
  assert layout.ML_100K.encodings['u.item'] == 'latin-1'
  assert len(layout.ML100K_GENRES) == 19
