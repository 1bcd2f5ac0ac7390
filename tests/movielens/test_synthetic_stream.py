"""Tests for the streaming generator of movielens.synthetic (any size, ml-25m
or ml-1m layout): determinism, the files' layout, structure, streaming."""

import collections
import itertools
import os
import statistics
import tracemalloc

import numpy as np
import pytest

from movielens import layout
from movielens import synthetic

pytestmark = pytest.mark.integration


def _read(folder, names):
  return {name: (folder / name).read_bytes() for name in names}


def _parse(folder, raw):
  """Every record of a folder, parsed as the ExampleGen parses them."""
  out = {}
  for name, parse in ((raw.ratings_file, raw.parse_rating),
                      (raw.movies_file, raw.parse_movie),
                      (raw.users_file, raw.parse_user)):
    if name is None:
      continue
    lines = (folder / name).read_bytes().splitlines(keepends=True)
    if name in raw.headers:
      assert lines[0].decode().rstrip('\n') == raw.headers[name]
      lines = lines[1:]
    out[name] = [parse(line) for line in lines]
  return out


@pytest.fixture(scope='module')
def ml25m_folder(tmp_path_factory):
  folder = tmp_path_factory.mktemp('ml25m')
  summary = synthetic.generate_stream(str(folder), 'ml-25m', 60_000, seed=3)
  return folder, summary


@pytest.fixture(scope='module')
def ml25m_records(ml25m_folder):
  return _parse(ml25m_folder[0], layout.ML_25M)


# --- Sizes -------------------------------------------------------------------


def test_default_sizes_hit_the_real_releases():
  # The two anchors: ml-1m and ml-25m (users, rated movies).
  assert synthetic.default_sizes(1_000_209) == (6_040, 3_706)
  assert synthetic.default_sizes(25_000_095) == (162_541, 59_047)
  users, movies = synthetic.default_sizes(5_000_000)
  assert 30_000 < users < 32_000 and 14_000 < movies < 16_000


def test_default_sizes_of_tiny_data_stay_feasible():
  # 1,000 ratings: 5 users (not 20 ratings short), 4 x 1000 / 5 movies.
  assert synthetic.default_sizes(1_000) == (5, 800)


def test_sizes_of_25m_without_generating_ratings():
  # Only the catalogue and one count per user are made up front.
  synth = synthetic.StreamingSynthesizer('ml-25m', 25_000_000, seed=0)
  counts = synth.ratings_per_user
  assert (synth.num_users, synth.num_movies) == (162_540, 59_047)
  assert counts.sum() == 25_000_000 and len(counts) == 162_540
  assert counts.min() == 20
  assert counts.max() <= 59_047 // 2  # At most half the catalogue.
  # A heavy tail: the median user is far below the mean, as in ml-25m
  # (median 71, mean 154).
  assert 55 < np.median(counts) < 90 and 150 < counts.mean() < 160
  first = next(synth.users())
  assert first.user_id == '1' and len(first.movie_ids) == counts[0]


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(layout_name='ml-100k'), 'layout must be one of'),
        (dict(num_ratings=100, num_users=10, num_movies=50), 'between 200'),
        (dict(num_ratings=600, num_users=10, num_movies=50), 'and 500'),
        (dict(num_ratings=600, num_users=10, num_movies=19),
         'at least 20 movies'),
        (dict(num_ratings=600, num_users=0, num_movies=50), 'at least 1 user'),
    ])
def test_impossible_arguments_are_rejected(kwargs, message):
  with pytest.raises(ValueError, match=message):
    synthetic.StreamingSynthesizer(**kwargs)


def test_allocate_splits_exactly_within_the_cap():
  weights = np.array([100.0, 1.0, 1.0, 0.0])
  shares = synthetic._allocate(weights, 25, 10)
  # The heavy user is capped at 10; the other 15 go to the rest, the
  # zero-weight user included once the others are capped.
  assert shares.tolist() == [10, 8, 7, 0]
  assert synthetic._allocate(np.ones(4), 40, 10).tolist() == [10] * 4


# --- Files and determinism --------------------------------------------------


def test_summary_and_files(ml25m_folder, ml25m_records):
  folder, summary = ml25m_folder
  del summary['seconds']
  users, movies = synthetic.default_sizes(60_000)
  assert summary == {'layout': 'ml-25m', 'users': users, 'movies': movies,
                     'ratings': 60_000, 'seed': 3}
  assert sorted(os.listdir(folder)) == ['movies.csv', 'ratings.csv']
  assert len(ml25m_records['ratings.csv']) == 60_000
  assert [m.movie_id for m in ml25m_records['movies.csv']] == [
      str(i) for i in range(1, movies + 1)]


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
  names = ('ratings.csv', 'movies.csv')
  for name, seed in (('a', 5), ('b', 5), ('c', 6)):
    synthetic.generate_stream(str(tmp_path / name), 'ml-25m', 8_000,
                              seed=seed)
  a, b, c = (_read(tmp_path / n, names) for n in 'abc')
  assert a == b
  assert all(a[name] != c[name] for name in names)


def test_ml1m_layout_same_bytes_and_parses(tmp_path):
  names = ('ratings.dat', 'movies.dat', 'users.dat')
  for name in 'ab':
    synthetic.generate_stream(str(tmp_path / name), 'ml-1m', 8_000, seed=2)
  assert _read(tmp_path / 'a', names) == _read(tmp_path / 'b', names)
  records = _parse(tmp_path / 'a', layout.ML_1M)
  ratings, movies, users = (records[n] for n in names)
  assert len(ratings) == 8_000
  assert {r.rating for r in ratings} <= {1.0, 2.0, 3.0, 4.0, 5.0}
  assert {u.user_id for u in users} == {r.user_id for r in ratings}
  assert {u.age for u in users} <= set(layout.ML1M_AGE_GROUPS)
  assert {u.occupation for u in users} <= set(layout.ML1M_OCCUPATIONS)
  assert all(1 <= len(m.genres) <= 3 and m.release_year for m in movies)
  # movies.dat is latin-1, like GroupLens': 'Café' is b'Caf\xe9'.
  assert b'Caf\xe9' in (tmp_path / 'a' / 'movies.dat').read_bytes()
  # 2000-04-25 .. 2003-02-28, ml-1m's span.
  assert all(956620800 <= r.timestamp <= 1046476799 for r in ratings)


def test_fast_ratings_lines_equal_the_layout_writers():
  for layout_name in synthetic.STREAM_LAYOUTS:
    synth = synthetic.StreamingSynthesizer(layout_name, 3_000, seed=1)
    for history in itertools.islice(synth.users(), 20):
      assert synth.rating_lines(history) == ''.join(
          synth.layout.format_rating(r) for r in history.records())


def test_files_hold_what_the_stream_yields(ml25m_records):
  synth = synthetic.StreamingSynthesizer('ml-25m', 60_000, seed=3)
  streamed = [r for history in synth.users() for r in history.records()]
  assert ml25m_records['ratings.csv'] == streamed


# --- Structure ---------------------------------------------------------------


def test_ratings_per_user_and_no_duplicates(ml25m_records):
  ratings = ml25m_records['ratings.csv']
  per_user = collections.Counter(r.user_id for r in ratings)
  assert min(per_user.values()) >= 20
  pairs = {(r.user_id, r.movie_id) for r in ratings}
  assert len(pairs) == len(ratings)
  # Ordered by user, then movie id, as GroupLens orders ml-25m.
  keys = [(int(r.user_id), int(r.movie_id)) for r in ratings]
  assert keys == sorted(keys)


def test_popularity_is_skewed(ml25m_records):
  ratings, movies = ml25m_records['ratings.csv'], ml25m_records['movies.csv']
  counts = sorted(collections.Counter(r.movie_id for r in ratings).values(),
                  reverse=True)
  top_tenth = sum(counts[:len(movies) // 10])
  # Uniform popularity would give the top 10% of movies ~10%. (At this
  # size each user rates a quarter of the catalogue, which caps the head:
  # 30% here; 59% at 1M ratings, 77% at 5M.)
  assert top_tenth / len(ratings) > 0.25
  assert counts[0] > 4 * statistics.median(counts)


def test_half_stars_and_timestamps(ml25m_records):
  ratings = ml25m_records['ratings.csv']
  values = collections.Counter(r.rating for r in ratings)
  assert set(values) == {x / 2 for x in range(1, 11)}
  # Most ratings are whole stars (40% of users use no half stars).
  whole = sum(n for v, n in values.items() if v == int(v))
  assert 0.55 < whole / len(ratings) < 0.85
  # 1995-01-09 .. 2019-11-21, ml-25m's span.
  assert all(789609600 <= r.timestamp <= 1574380799 for r in ratings)


def test_catalogue_titles_years_and_genres(ml25m_records):
  movies = ml25m_records['movies.csv']
  assert sum(1 for m in movies if ', The (' in m.title) > 0  # Quoted in CSV.
  assert sum(1 for m in movies if '"' in m.title) > 0
  no_genres = sum(1 for m in movies if not m.genres)
  no_year = sum(1 for m in movies if m.release_year is None)
  assert 0 < no_genres < 0.1 * len(movies)  # '(no genres listed)', ~3%.
  assert 0 < no_year < 0.05 * len(movies)
  years = [m.release_year for m in movies if m.release_year]
  assert 1902 <= min(years) and max(years) <= 2019
  assert statistics.median(years) > 1970  # Skewed to recent films.


def test_users_prefer_and_rate_higher_their_favourite_genres():
  synth = synthetic.StreamingSynthesizer('ml-25m', 60_000, seed=3)
  genres = {m.movie_id: set(m.genres) for m in synth.movies()}
  matching, other = [], []
  for history in synth.users():
    liked = set(history.favourite_genres)
    assert 1 <= len(liked) <= 3 and liked <= set(layout.ML25M_GENRES)
    for r in history.records():
      (matching if genres[r.movie_id] & liked else other).append(r.rating)
  assert len(matching) > len(other)
  # The generator adds +0.7 / -0.7 stars before rounding.
  assert statistics.mean(matching) - statistics.mean(other) > 0.8


def test_sampler_tail_path_draws_the_same_law_as_explicit_keys(monkeypatch):
  """The head + Poisson-tail sampler against Efraimidis-Spirakis over the
  whole catalogue: the same inclusion frequencies, movie by movie."""
  monkeypatch.setattr(synthetic, 'HEAD_MOVIES', 8)
  synth = synthetic.StreamingSynthesizer('ml-25m', 4_000, num_users=100,
                                         num_movies=200, seed=0)
  favourites = 0b101  # Two genres.
  trials, count = 3_000, 10  # 10 x 8 < 200: the tail path.
  fast = np.zeros(200)
  for _ in range(trials):
    fast[synth._sample_movies(count, favourites)] += 1
  monkeypatch.setattr(synth, '_tail', synth._tail[:0])  # Explicit keys only.
  exact = np.zeros(200)
  for _ in range(trials):
    exact[synth._sample_movies(count, favourites)] += 1
  assert fast.sum() == exact.sum() == trials * count
  # Binomial noise on 3,000 trials: a few percent on popular movies.
  top = np.argsort(-exact)[:20]
  assert np.abs(fast[top] - exact[top]).max() < 0.1 * exact[top].max()
  assert np.corrcoef(fast, exact)[0, 1] > 0.97


# --- Streaming --------------------------------------------------------------


def test_users_stream_once():
  synth = synthetic.StreamingSynthesizer('ml-25m', 2_000, seed=0)
  users = synth.users()
  assert next(users).user_id == '1'  # A generator: nothing materialised.
  with pytest.raises(RuntimeError, match='once'):
    next(synth.users())


def _peak_bytes(dest, num_ratings, num_users):
  tracemalloc.start()
  try:
    synthetic.generate_stream(dest, 'ml-25m', num_ratings,
                              num_users=num_users, num_movies=2_000, seed=0)
    return tracemalloc.get_traced_memory()[1]
  finally:
    tracemalloc.stop()


def test_memory_stays_flat_as_ratings_grow(tmp_path):
  # Same catalogue, 4x the users and ratings: the peak (catalogue, one
  # user's ratings, file buffers) barely moves, and stays far below the
  # ratings themselves (~25 bytes a line on disk, more as objects).
  small = _peak_bytes(str(tmp_path / 'small'), 40_000, 250)
  large = _peak_bytes(str(tmp_path / 'large'), 160_000, 1_000)
  ratings_bytes = os.path.getsize(tmp_path / 'large' / 'ratings.csv')
  assert large < 1.3 * small
  assert large < ratings_bytes / 2


def test_cli_streams_the_ml25m_layout(tmp_path, capsys):
  dest = tmp_path / 'synth'
  code = synthetic.main(['--layout', 'ml-25m', '--ratings', '3000', '--dest',
                         str(dest), '--seed', '4'])
  assert code == 0
  users, movies = synthetic.default_sizes(3000)
  out = capsys.readouterr().out
  assert out.startswith(f'Wrote 3000 ratings by {users} users of {movies} '
                        f'movies to {dest} (seed 4) in ')
  assert sorted(os.listdir(dest)) == ['movies.csv', 'ratings.csv']
  assert layout.detect_layout(str(dest)) is layout.ML_25M
