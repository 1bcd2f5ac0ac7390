"""Tests for movielens.synthetic: layout, integrity and learnable structure."""

import collections
import os
import statistics

import pytest

from movielens import layout
from movielens import synthetic

pytestmark = pytest.mark.unit

_FILES = ('u.data', 'u.item', 'u.user')


def _read(folder):
  return {name: (folder / name).read_bytes() for name in _FILES}


def _parse(folder):
  """Parses the three files with the layout parsers, as the ExampleGen does."""
  files = _read(folder)
  return (
      [layout.parse_ml100k_rating(l)
       for l in files['u.data'].splitlines(keepends=True)],
      [layout.parse_ml100k_movie(l)
       for l in files['u.item'].splitlines(keepends=True)],
      [layout.parse_ml100k_user(l)
       for l in files['u.user'].splitlines(keepends=True)],
  )


@pytest.fixture(scope='module')
def default_folder(tmp_path_factory):
  folder = tmp_path_factory.mktemp('synthetic')
  summary = synthetic.generate(str(folder))
  return folder, summary


@pytest.fixture(scope='module')
def data():
  return synthetic.synthesize()


# --- Files -------------------------------------------------------------------


def test_summary_counts_match_the_files(default_folder):
  folder, summary = default_folder
  assert summary == {'users': 100, 'movies': 200, 'ratings': 2000, 'seed': 0}
  files = _read(folder)
  assert files['u.data'].count(b'\n') == 2000
  assert files['u.item'].count(b'\n') == 200
  assert files['u.user'].count(b'\n') == 100


def test_same_seed_gives_identical_bytes(tmp_path):
  synthetic.generate(str(tmp_path / 'a'), 30, 40, 300, seed=7)
  synthetic.generate(str(tmp_path / 'b'), 30, 40, 300, seed=7)
  assert _read(tmp_path / 'a') == _read(tmp_path / 'b')


def test_different_seed_gives_different_files(tmp_path):
  synthetic.generate(str(tmp_path / 'a'), 30, 40, 300, seed=7)
  synthetic.generate(str(tmp_path / 'b'), 30, 40, 300, seed=8)
  a, b = _read(tmp_path / 'a'), _read(tmp_path / 'b')
  assert all(a[name] != b[name] for name in _FILES)


def test_files_are_what_synthesize_returns(default_folder, data):
  ratings, movies, users = _parse(default_folder[0])
  assert tuple(ratings) == data.ratings
  assert tuple(movies) == data.movies
  assert tuple(users) == data.users


def test_u_item_is_latin1(default_folder):
  # 'Café' and 'Rêve' are in the word list; u.item must hold their latin-1
  # bytes, which the layout parser accepts (it rejects UTF-8).
  u_item = (default_folder[0] / 'u.item').read_bytes()
  assert b'Caf\xe9' in u_item or b'R\xeave' in u_item
  assert 'Café'.encode('utf-8') not in u_item


def test_referential_integrity_and_ids(default_folder):
  ratings, movies, users = _parse(default_folder[0])
  assert [m.movie_id for m in movies] == [str(i) for i in range(1, 201)]
  assert [u.user_id for u in users] == [str(i) for i in range(1, 101)]
  assert {r.movie_id for r in ratings} <= {m.movie_id for m in movies}
  assert {r.user_id for r in ratings} == {u.user_id for u in users}


def test_no_duplicate_pairs_and_at_least_five_ratings_each(default_folder):
  ratings, _, _ = _parse(default_folder[0])
  pairs = [(r.user_id, r.movie_id) for r in ratings]
  assert len(set(pairs)) == len(pairs)
  per_user = collections.Counter(r.user_id for r in ratings)
  assert min(per_user.values()) >= 5


def test_rating_values_and_timestamps(default_folder):
  ratings, _, _ = _parse(default_folder[0])
  assert {r.rating for r in ratings} == {1.0, 2.0, 3.0, 4.0, 5.0}
  assert all(synthetic.SPAN_START <= r.timestamp <= synthetic.SPAN_END
             for r in ratings)
  # 1997-09-20T00:00:00Z and 1998-04-22T23:59:59Z.
  assert (synthetic.SPAN_START, synthetic.SPAN_END) == (874713600, 893289599)


def test_movies_have_years_titles_and_one_to_three_genres(default_folder):
  _, movies, _ = _parse(default_folder[0])
  for movie in movies:
    assert 1 <= len(movie.genres) <= 3
    assert 'unknown' not in movie.genres
    assert 1930 <= movie.release_year <= 1998
    assert movie.title.endswith(f' ({movie.release_year})')
  years = [m.release_year for m in movies]
  assert max(years) - min(years) > 40  # Spread, not clustered.


def test_users_demographics(default_folder):
  _, _, users = _parse(default_folder[0])
  assert all(7 <= u.age <= 73 for u in users)
  assert {u.gender for u in users} == {'M', 'F'}
  assert {u.occupation for u in users} <= set(synthetic.OCCUPATIONS)
  assert all(len(u.zip_code) == 5 and u.zip_code.isdigit() for u in users)
  assert len(synthetic.OCCUPATIONS) == 21


def test_users_rate_in_a_window_not_the_whole_span(default_folder):
  ratings, _, _ = _parse(default_folder[0])
  times = collections.defaultdict(list)
  for r in ratings:
    times[r.user_id].append(r.timestamp)
  spans = [max(t) - min(t) for t in times.values()]
  whole = synthetic.SPAN_END - synthetic.SPAN_START
  # Window length is span * u**3, so the median user covers ~1/8 of it.
  assert statistics.median(spans) < whole / 3


# --- Learnable structure -----------------------------------------------------


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_popularity_is_skewed(seed):
  data = synthetic.synthesize(seed=seed)
  counts = sorted(
      collections.Counter(r.movie_id for r in data.ratings).values(),
      reverse=True)
  top_tenth = sum(counts[:len(data.movies) // 10])
  # Uniform popularity would give the top 10% of movies little more than
  # 10% of the ratings.
  assert top_tenth / len(data.ratings) > 0.3


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_users_prefer_and_rate_higher_their_favourite_genres(seed):
  data = synthetic.synthesize(seed=seed)
  genres = {m.movie_id: set(m.genres) for m in data.movies}
  matching, other = [], []
  for r in data.ratings:
    liked = set(data.favourite_genres[r.user_id])
    (matching if genres[r.movie_id] & liked else other).append(r.rating)
  # Mostly rates favourite genres...
  assert len(matching) > len(other)
  # ...and rates them higher: the generator adds +0.7 / -0.7 before rounding.
  assert statistics.mean(matching) - statistics.mean(other) > 0.8


def test_favourite_genres_are_one_to_three_real_genres(data):
  assert len(data.favourite_genres) == len(data.users)
  for favourites in data.favourite_genres.values():
    assert 1 <= len(favourites) <= 3
    assert set(favourites) <= set(synthetic.GENRES)


# --- Sizes and command line --------------------------------------------------


@pytest.mark.parametrize(
    'users, movies, ratings, message',
    [
        (0, 10, 10, 'at least 1 user'),
        (2, 4, 10, 'at least 5 movies'),
        (10, 20, 49, 'between 50'),
        (10, 20, 201, 'and 200'),
    ])
def test_impossible_sizes_are_rejected(users, movies, ratings, message):
  with pytest.raises(ValueError, match=message):
    synthetic.synthesize(users, movies, ratings)


def test_every_pair_when_ratings_fill_the_matrix():
  data = synthetic.synthesize(num_users=6, num_movies=5, num_ratings=30)
  assert len({(r.user_id, r.movie_id) for r in data.ratings}) == 30


def test_cli_writes_files(tmp_path, capsys):
  dest = tmp_path / 'synth'
  code = synthetic.main(['--dest', str(dest), '--users', '10', '--movies',
                         '20', '--ratings', '100', '--seed', '3'])
  assert code == 0
  assert capsys.readouterr().out == (
      f'Wrote 100 ratings by 10 users of 20 movies to {dest} (seed 3).\n')
  assert sorted(os.listdir(dest)) == sorted(_FILES)


def test_cli_rejects_impossible_sizes(tmp_path, capsys):
  with pytest.raises(SystemExit) as exit_:
    synthetic.main(['--dest', str(tmp_path), '--users', '10', '--ratings',
                    '10'])
  assert exit_.value.code == 2
  assert 'between 50' in capsys.readouterr().err
