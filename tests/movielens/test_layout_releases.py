"""Tests for movielens.layout beyond ml-100k: the ml-1m layout ('::'-separated
.dat files) and the CSV layout of ml-20m/ml-25m, on literal lines."""

import pytest

from movielens import layout
from movielens.layout import Movie, Rating, RawLineError, User

pytestmark = pytest.mark.unit


def _field_of(parse, raw):
  with pytest.raises(RawLineError) as error:
    parse(raw)
  return error.value.field


# --- ml-1m: ratings.dat ------------------------------------------------------


def test_ml1m_rating_good_line():
  assert layout.parse_ml1m_rating(b'1::1193::5::978300760\n') == Rating(
      user_id='1', movie_id='1193', rating=5.0, timestamp=978300760)


@pytest.mark.parametrize(
    'raw, field',
    [
        (b'1::1193::5\n', 'line'),
        (b'1:1193:5:978300760\n', 'line'),  # Single colons.
        (b'1\t1193\t5\t978300760\n', 'line'),
        (b'1::1193::3.5::978300760\n', 'rating'),  # Whole stars only.
        (b'1::1193::0::978300760\n', 'rating'),
        (b'1::1193::6::978300760\n', 'rating'),
        (b'1::1193::five::978300760\n', 'rating'),
        (b'::1193::5::978300760\n', 'user_id'),
        (b'1::::5::978300760\n', 'movie_id'),
        (b'1::1193::5::soon\n', 'timestamp'),
    ])
def test_ml1m_rating_rejects_bad_lines(raw, field):
  assert _field_of(layout.parse_ml1m_rating, raw) == field


def test_ml1m_rating_error_says_whole_stars():
  with pytest.raises(RawLineError) as error:
    layout.parse_ml1m_rating(b'1::1193::3.5::978300760\n')
  assert str(error.value) == ("field 'rating': expected a whole number of "
                              "stars from 1 to 5, got '3.5'")


# --- ml-1m: movies.dat -------------------------------------------------------


def test_ml1m_movie_good_line_year_from_title():
  raw = b"1::Toy Story (1995)::Animation|Children's|Comedy\n"
  assert layout.parse_ml1m_movie(raw) == Movie(
      movie_id='1', title='Toy Story (1995)', release_year=1995,
      genres=('Animation', "Children's", 'Comedy'))


def test_ml1m_movie_latin1_title_and_crlf():
  raw = b'73::Mis\xe9rables, Les (1995)::Drama|Musical\r\n'
  movie = layout.parse_ml1m_movie(raw)
  assert movie.title == 'Misérables, Les (1995)'
  assert movie.release_year == 1995
  assert movie.genres == ('Drama', 'Musical')


def test_ml1m_movie_without_year():
  movie = layout.parse_ml1m_movie(b'9::Untitled::Drama\n')
  assert (movie.title, movie.release_year) == ('Untitled', None)


@pytest.mark.parametrize(
    'raw, field',
    [
        (b'1::Toy Story (1995)\n', 'line'),
        (b'1::Toy Story (1995)::Comedy::extra\n', 'line'),
        (b'1::Toy Story (1995)::\n', 'genres'),  # At least one genre.
        (b'1::Toy Story (1995)::Comedy|Space Opera\n', 'genres'),
        (b'1::Toy Story (1995)::Comedy||Drama\n', 'genres'),
        (b'1::Toy Story (1995)::Children\n', 'genres'),  # ml-25m's spelling.
        (b'1::Toy Story (1995)::unknown\n', 'genres'),  # ml-100k only.
        (b'1:: ::Comedy\n', 'title'),
        (b'::Toy Story (1995)::Comedy\n', 'movie_id'),
        ('73::Misérables (1995)::Drama\n'.encode('utf-8'), 'line'),
    ])
def test_ml1m_movie_rejects_bad_lines(raw, field):
  assert _field_of(layout.parse_ml1m_movie, raw) == field


def test_ml1m_genre_error_lists_the_genres():
  with pytest.raises(RawLineError) as error:
    layout.parse_ml1m_movie(b'1::X (1995)::Space Opera\n')
  assert "genres separated by '|'" in error.value.expected
  assert "Children's" in error.value.expected
  assert error.value.value == 'Space Opera'


# --- ml-1m: users.dat --------------------------------------------------------


def test_ml1m_user_maps_occupation_code_to_name():
  # README of ml-1m: age 1 is "Under 18", occupation 10 is "K-12 student".
  assert layout.parse_ml1m_user(b'1::F::1::10::48067\n') == User(
      user_id='1', age=1, gender='F', occupation='K-12 student',
      zip_code='48067')


@pytest.mark.parametrize('code, name', [(0, 'other'),
                                        (4, 'college/grad student'),
                                        (17, 'technician/engineer'),
                                        (20, 'writer')])
def test_ml1m_occupation_codes(code, name):
  line = f'2::M::56::{code}::70072\n'.encode()
  assert layout.parse_ml1m_user(line).occupation == name


def test_ml1m_user_keeps_zip_plus_four():
  assert layout.parse_ml1m_user(
      b'3::M::25::15::55117-1234\n').zip_code == '55117-1234'


@pytest.mark.parametrize(
    'raw, field',
    [
        (b'1::F::20::10::48067\n', 'age'),  # Not an age group code.
        (b'1::F::old::10::48067\n', 'age'),
        (b'1::F::1::21::48067\n', 'occupation'),
        (b'1::F::1::-1::48067\n', 'occupation'),
        (b'1::F::1::writer::48067\n', 'occupation'),
        (b'1::f::1::10::48067\n', 'gender'),
        (b'1::F::1::10\n', 'line'),
    ])
def test_ml1m_user_rejects_bad_lines(raw, field):
  assert _field_of(layout.parse_ml1m_user, raw) == field


def test_ml1m_age_error_names_the_codes():
  with pytest.raises(RawLineError) as error:
    layout.parse_ml1m_user(b'1::F::20::10::48067\n')
  assert error.value.expected == (
      'an age group code (1, 18, 25, 35, 45, 50, 56)')


# --- ml-1m writers -----------------------------------------------------------


def test_ml1m_writers_exact_lines_and_round_trips():
  rating = Rating(user_id='1', movie_id='1193', rating=5.0,
                  timestamp=978300760)
  movie = Movie(movie_id='73', title='Misérables, Les (1995)',
                release_year=1995, genres=('Drama', 'Musical'))
  user = User(user_id='2', age=56, gender='M', occupation='self-employed',
              zip_code='70072')
  lines = (layout.format_ml1m_rating(rating), layout.format_ml1m_movie(movie),
           layout.format_ml1m_user(user))
  assert lines == ('1::1193::5::978300760\n',
                   '73::Misérables, Les (1995)::Drama|Musical\n',
                   '2::M::56::16::70072\n')
  assert layout.parse_ml1m_rating(lines[0].encode('ascii')) == rating
  assert layout.parse_ml1m_movie(lines[1].encode('latin-1')) == movie
  assert layout.parse_ml1m_user(lines[2].encode('latin-1')) == user


@pytest.mark.parametrize(
    'record, message',
    [
        (User('1', 24, 'M', 'writer', '1'), 'age 24'),
        (User('1', 25, 'M', 'technician', '1'), "'technician'"),
        (Movie('1', 'X (1995)', 1995, ()), 'one or more'),
        (Movie('1', 'X (1995)', 1995, ('unknown',)), 'one or more'),
        (Movie('1', 'A::B (1995)', 1995, ('Drama',)), '"::"'),
    ])
def test_ml1m_writers_refuse_what_the_layout_cannot_hold(record, message):
  writer = (layout.format_ml1m_user if isinstance(record, User) else
            layout.format_ml1m_movie)
  with pytest.raises(ValueError, match=message):
    writer(record)


# --- CSV (ml-20m, ml-25m): ratings.csv ---------------------------------------


@pytest.mark.parametrize('text, stars', [('5.0', 5.0), ('0.5', 0.5),
                                         ('3.5', 3.5), ('4', 4.0)])
def test_ml25m_rating_half_stars(text, stars):
  line = f'1,296,{text},1147880044\n'.encode()
  assert layout.parse_ml25m_rating(line) == Rating(
      user_id='1', movie_id='296', rating=stars, timestamp=1147880044)


@pytest.mark.parametrize(
    'raw, field',
    [
        (b'1,296,0.0,1147880044\n', 'rating'),
        (b'1,296,5.5,1147880044\n', 'rating'),
        (b'1,296,3.25,1147880044\n', 'rating'),  # Not a half star.
        (b'1,296,good,1147880044\n', 'rating'),
        (b'userId,movieId,rating,timestamp\n', 'rating'),  # A header.
        (b'1,296,3.5\n', 'line'),
        (b'1;296;3.5;1147880044\n', 'line'),
        (b',296,3.5,1147880044\n', 'user_id'),
        (b'1,296,3.5,\n', 'timestamp'),
    ])
def test_ml25m_rating_rejects_bad_lines(raw, field):
  assert _field_of(layout.parse_ml25m_rating, raw) == field


def test_ml25m_rating_error_says_half_stars():
  with pytest.raises(RawLineError) as error:
    layout.parse_ml25m_rating(b'1,296,3.25,1147880044\n')
  assert str(error.value) == ("field 'rating': expected a number from 0.5 to "
                              "5 in steps of 0.5, got '3.25'")


# --- CSV: movies.csv ---------------------------------------------------------


def test_ml25m_movie_good_line():
  raw = b'1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n'
  assert layout.parse_ml25m_movie(raw) == Movie(
      movie_id='1', title='Toy Story (1995)', release_year=1995,
      genres=('Adventure', 'Animation', 'Children', 'Comedy', 'Fantasy'))


def test_ml25m_movie_quoted_title_with_commas():
  raw = b'11,"American President, The (1995)",Comedy|Drama|Romance\n'
  movie = layout.parse_ml25m_movie(raw)
  assert movie.title == 'American President, The (1995)'
  assert movie.release_year == 1995
  assert movie.genres == ('Comedy', 'Drama', 'Romance')


def test_ml25m_movie_doubled_quotes_inside_quotes():
  raw = b'1,"""Great Performances"" Cats, The (1998)",Musical\n'
  movie = layout.parse_ml25m_movie(raw)
  assert movie.title == '"Great Performances" Cats, The (1998)'
  assert movie.release_year == 1998


def test_ml25m_movie_no_genres_listed_means_none():
  movie = layout.parse_ml25m_movie(
      b'182727,A Christmas Story Live! (2017),(no genres listed)\n')
  assert movie.genres == ()
  assert movie.release_year == 2017


def test_ml25m_movie_without_year_utf8_title_and_trailing_space():
  assert layout.parse_ml25m_movie(
      b'171495,Babylon 5,Sci-Fi\r\n').release_year is None
  movie = layout.parse_ml25m_movie('5,Café Rêve (2002) ,IMAX\n'.encode())
  assert (movie.title, movie.release_year) == ('Café Rêve (2002)', 2002)


@pytest.mark.parametrize(
    'raw, field',
    [
        (b'11,American President, The (1995),Comedy\n', 'line'),  # Unquoted.
        (b'11,"American President, The (1995),Comedy\n', 'line'),  # Open quote.
        (b'11,Toy Story (1995)\n', 'line'),
        (b"11,Toy Story (1995),Children's\n", 'genres'),  # ml-1m's spelling.
        (b'11,Toy Story (1995),Comedy||Drama\n', 'genres'),
        (b'11,Toy Story (1995),\n', 'genres'),
        (b'11,"",Comedy\n', 'title'),
        (b',Toy Story (1995),Comedy\n', 'movie_id'),
        (b'73,Mis\xe9rables (1995),Drama\n', 'line'),  # Latin-1, not UTF-8.
    ])
def test_ml25m_movie_rejects_bad_lines(raw, field):
  assert _field_of(layout.parse_ml25m_movie, raw) == field


def test_ml25m_unquoted_comma_error_names_the_fields():
  with pytest.raises(RawLineError) as error:
    layout.parse_ml25m_movie(b'11,American President, The (1995),Comedy\n')
  assert error.value.expected == (
      '3 comma-separated fields (movieId, title, genres) with RFC 4180 '
      'quoting, found 4')


# --- CSV writers -----------------------------------------------------------


def test_ml25m_writers_exact_lines_and_round_trips():
  rating = Rating(user_id='1', movie_id='296', rating=3.5,
                  timestamp=1147880044)
  assert layout.format_ml25m_rating(rating) == '1,296,3.5,1147880044\n'
  assert layout.format_ml25m_rating(
      Rating('1', '2', 4.0, 5)) == '1,2,4.0,5\n'  # As GroupLens writes it.
  movies = [
      (Movie('11', 'American President, The (1995)', 1995, ('Comedy',)),
       '11,"American President, The (1995)",Comedy\n'),
      (Movie('1', '"Great" Cats (1998)', 1998, ('Musical', 'IMAX')),
       '1,"""Great"" Cats (1998)",Musical|IMAX\n'),
      (Movie('7', 'Café (2001)', 2001, ()),
       '7,Café (2001),(no genres listed)\n'),
  ]
  for movie, line in movies:
    assert layout.format_ml25m_movie(movie) == line
    assert layout.parse_ml25m_movie(line.encode('utf-8')) == movie
  assert layout.parse_ml25m_rating(
      layout.format_ml25m_rating(rating).encode()) == rating


@pytest.mark.parametrize(
    'movie, message',
    [
        (Movie('1', 'A\nB (1995)', 1995, ('Drama',)), 'newline'),
        (Movie('1', 'X (1995)', 1995, ("Children's",)), "Children's"),
    ])
def test_ml25m_movie_writer_refuses(movie, message):
  with pytest.raises(ValueError, match=message):
    layout.format_ml25m_movie(movie)


# --- Layouts, headers and detection ------------------------------------------


def test_layouts_describe_their_releases():
  assert layout.ML_1M.files == ('ratings.dat', 'movies.dat', 'users.dat')
  assert layout.ML_25M.files == ('ratings.csv', 'movies.csv')
  assert layout.ML_1M.has_demographics and not layout.ML_25M.has_demographics
  assert layout.ML_25M.header_lines == 1 and layout.ML_1M.header_lines == 0
  assert layout.ML_1M.encodings['movies.dat'] == 'latin-1'
  assert layout.ML_25M.encodings['movies.csv'] == 'utf-8'
  assert len(layout.ML1M_GENRES) == 18 and len(layout.ML25M_GENRES) == 19
  assert len(layout.ML1M_OCCUPATIONS) == 21
  assert (layout.MIN_RATING, layout.MAX_RATING) == (0.5, 5.0)


@pytest.mark.parametrize('release, expected', [
    ('ml-100k', layout.ML_100K), ('ml-1m', layout.ML_1M),
    ('ml-20m', layout.ML_25M), ('ml-25m', layout.ML_25M),
    ('ml-latest-small', layout.ML_25M)])
def test_layout_of_release(release, expected):
  assert layout.layout_of_release(release) is expected


def test_layout_of_unknown_release():
  with pytest.raises(ValueError, match="'ml-10m'.*ml-1m, ml-20m"):
    layout.layout_of_release('ml-10m')


def test_rating_scales():
  assert layout.ML_100K.rating_scale.describe() == 'a number from 1 to 5'
  half = layout.ML_25M.rating_scale
  assert [half.allows(r) for r in (0.0, 0.5, 2.5, 2.75, 5.0, 5.5)] == [
      False, True, True, False, True, False]
  assert not layout.ML_1M.rating_scale.allows(2.5)


@pytest.mark.parametrize(
    'first_line, problem',
    [
        (b'userId,movieId,rating,timestamp\n', None),
        (b'userId,movieId,rating,timestamp\r\n', None),
        (b'\xef\xbb\xbfuserId,movieId,rating,timestamp\n', None),  # BOM.
        (b'1,296,5.0,1147880044\n',
         "expected the header 'userId,movieId,rating,timestamp', got "
         "'1,296,5.0,1147880044'"),
    ])
def test_header_problem(first_line, problem):
  assert layout.ML_25M.header_problem('ratings.csv', first_line) == problem


def test_files_without_header_have_no_header_problem():
  assert layout.ML_1M.header_problem('ratings.dat', b'1::2::3::4\n') is None


@pytest.mark.parametrize('files, expected', [
    (('ratings.dat', 'movies.dat', 'users.dat'), layout.ML_1M),
    (('ratings.csv', 'movies.csv', 'tags.csv', 'links.csv'), layout.ML_25M),
    (('u.data', 'u.item', 'u.user', 'README'), layout.ML_100K),
])
def test_detect_layout_by_files(tmp_path, files, expected):
  for name in files:
    (tmp_path / name).write_bytes(b'')
  assert layout.detect_layout(str(tmp_path)) is expected


def test_detect_layout_refuses_a_folder_of_two_releases(tmp_path):
  (tmp_path / 'u.data').write_bytes(b'')
  (tmp_path / 'ratings.csv').write_bytes(b'')
  with pytest.raises(layout.RawDataError) as error:
    layout.detect_layout(str(tmp_path))
  assert 'u.data of ml-100k, ratings.csv of ml-25m' in str(error.value)


def test_detect_layout_error_lists_every_layout(tmp_path):
  with pytest.raises(layout.RawDataError) as error:
    layout.detect_layout(str(tmp_path))
  message = str(error.value)
  assert 'ml-1m: ratings.dat, movies.dat, users.dat' in message
  assert ('ml-25m (also ml-20m, ml-latest, ml-latest-small): ratings.csv, '
          'movies.csv') in message
  assert 'make data DATASET=ml-1m' in message
