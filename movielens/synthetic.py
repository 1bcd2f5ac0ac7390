"""Synthetic MovieLens data: small in memory, or any size streamed to disk.

Small, in memory, in the raw ml-100k layout (for fast tests):

    python -m movielens.synthetic --dest /tmp/ml-synth \
        --users 100 --movies 200 --ratings 2000 --seed 0

Any size, streamed, in the ml-25m layout (ratings.csv, movies.csv; no users
file, half stars) or the ml-1m layout (ratings.dat, movies.dat, users.dat):

    python -m movielens.synthetic --layout ml-25m --ratings 25000000 \
        --dest /tmp/synth-25m --seed 0

Files are written through the `movielens.layout` writers (the streaming
ratings file by an equivalent fast path, tested against them), so the
pipeline reads them exactly as it reads the real releases. Useful for tests,
benchmarks at any scale, and machines without the real data.

The data has the structure a recommender should find:
  * popularity is skewed: movie weights follow a power law over a random
    order of movies, so a few movies collect a large share of the ratings
    and a few in the tail may have none;
  * users have tastes: each has 1-3 favourite genres, picks movies of those
    genres several times more often than others, and rates them higher;
  * each user rates within a window of the release's span (ml-100k:
    1997-09-20..1998-04-22), most in short bursts.

In memory (`synthesize`, `generate`): Zipf popularity (rank ** -1.2),
at least 5 ratings per user. The only randomness is `random.Random(seed)`, so
the same arguments and seed give byte-identical files whatever numpy's
version.

Streamed (`StreamingSynthesizer`, `generate_stream`): ratings are generated
and written one user at a time, so memory stays flat (the catalogue, one
count per user, and one user's ratings; never all ratings). Users and
movies default to MovieLens proportions of --ratings (1M: ~6K users, 3.7K
movies; 25M: ~162K users, 59K movies; `default_sizes`). Popularity is a
power law with a flattened head, at least 20 ratings per user, a heavy tail
of prolific users, half stars for most users in the ml-25m layout. At 25M
ratings (seed 0): the most rated movie holds 0.2% of the ratings, the top
10% of movies 86%, the median movie 35 ratings; users rate 20 to 29.5K
movies, median 75, mean 154 (ml-25m: 0.3%, median user 71, mean 154).
numpy generates it (PCG64 seeded by --seed): byte-identical files for the
same arguments, seed and numpy version (1.26.4, pinned in requirements.lock).

Speed, measured on the 2-core development machine while shared: 25M ratings
in 132 s (94 s of CPU: ~270K ratings per CPU-second), peak RSS 63 MB; 5M in
29 s (17 s CPU), peak RSS 42 MB.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import math
import os
import random
import sys
import time
from typing import (Any, Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple)

import numpy as np

from movielens import layout

DEFAULT_USERS = 100
DEFAULT_MOVIES = 200
DEFAULT_RATINGS = 2000
MIN_RATINGS_PER_USER = 5  # As in ml-100k.

GENRES: Tuple[str, ...] = tuple(g for g in layout.ML100K_GENRES
                                if g != 'unknown')
# The 21 occupations of ml-100k's u.occupation.
OCCUPATIONS: Tuple[str, ...] = (
    'administrator', 'artist', 'doctor', 'educator', 'engineer',
    'entertainment', 'executive', 'healthcare', 'homemaker', 'lawyer',
    'librarian', 'marketing', 'none', 'other', 'programmer', 'retired',
    'salesman', 'scientist', 'student', 'technician', 'writer')
# Two words are not ASCII, so u.item exercises its latin-1 encoding.
TITLE_WORDS: Tuple[str, ...] = (
    'Midnight', 'River', 'Silent', 'Empire', 'Last', 'Summer', 'Iron',
    'Golden', 'Shadow', 'Storm', 'Little', 'Secret', 'Wild', 'Heart', 'City',
    'Blue', 'Winter', 'Return', 'Night', 'Dragon', 'Lost', 'Garden', 'Star',
    'Journey', 'Broken', 'Ghost', 'Paris', 'Desert', 'Dream', 'Stranger',
    'Café', 'Rêve')
# Relative genre frequencies, from the genre flags of ml-100k's u.item.
_GENRE_COUNTS = {
    'Action': 251, 'Adventure': 135, 'Animation': 42, "Children's": 122,
    'Comedy': 505, 'Crime': 109, 'Documentary': 50, 'Drama': 725,
    'Fantasy': 22, 'Film-Noir': 24, 'Horror': 92, 'Musical': 56,
    'Mystery': 61, 'Romance': 247, 'Sci-Fi': 101, 'Thriller': 251,
    'War': 71, 'Western': 27}
_GENRE_WEIGHTS = tuple(_GENRE_COUNTS[g] for g in GENRES)
FIRST_YEAR, LAST_YEAR = 1930, 1998
AGES = (7, 73)
# The span of ml-100k's timestamps, in seconds since the epoch (UTC).
SPAN_START = int(
    datetime.datetime(1997, 9, 20, tzinfo=datetime.timezone.utc).timestamp())
SPAN_END = int(
    datetime.datetime(1998, 4, 22, 23, 59, 59,
                      tzinfo=datetime.timezone.utc).timestamp())

# How strongly tastes show. A favourite-genre movie is picked TASTE_WEIGHT
# times more often than an equally popular other movie, and rated
# MATCH_BONUS - MISMATCH_PENALTY stars higher on average (before rounding).
TASTE_WEIGHT = 12.0
ZIPF_EXPONENT = 1.2
MATCH_BONUS = 0.7
MISMATCH_PENALTY = 0.7
MEAN_RATING = 3.3
RATING_NOISE = 0.7


@dataclasses.dataclass(frozen=True)
class SyntheticData:
  """Generated records, plus the tastes behind them (not written to disk).

  Attributes:
    ratings: in file order.
    movies: ids '1'..num_movies.
    users: ids '1'..num_users.
    favourite_genres: user id -> that user's 1-3 favourite genres.
  """
  ratings: Tuple[layout.Rating, ...]
  movies: Tuple[layout.Movie, ...]
  users: Tuple[layout.User, ...]
  favourite_genres: Dict[str, Tuple[str, ...]]


def synthesize(num_users: int = DEFAULT_USERS,
               num_movies: int = DEFAULT_MOVIES,
               num_ratings: int = DEFAULT_RATINGS,
               seed: int = 0,
               zipf_exponent: float = ZIPF_EXPONENT,
               taste_weight: float = TASTE_WEIGHT) -> SyntheticData:
  """Generates users, movies and ratings in memory, deterministically.

  Args:
    num_users: number of users, each with at least 5 ratings.
    num_movies: number of movies (at least 5).
    num_ratings: number of ratings, from 5 * num_users up to
      num_users * num_movies (no user rates a movie twice).
    seed: seeds `random.Random`.
    zipf_exponent: steepness of movie popularity (popularity of the movie of
      rank r is r ** -zipf_exponent); smaller is flatter.
    taste_weight: how much more likely a user picks a movie of a favourite
      genre; larger makes personal taste matter more than popularity.

  Returns:
    The records and each user's favourite genres.

  Raises:
    ValueError: the sizes are impossible.
  """
  _check_sizes(num_users, num_movies, num_ratings)
  rng = random.Random(seed)
  movies = _movies(rng, num_movies)
  users = _users(rng, num_users)
  favourites = {u.user_id: _pick_favourites(rng, movies) for u in users}
  # Zipf popularity over a random order of movies, so popularity is not tied
  # to ids; each movie also has a quality that shifts its ratings.
  ranks = list(range(1, num_movies + 1))
  rng.shuffle(ranks)
  popularity = {
      m.movie_id: rank**-zipf_exponent for m, rank in zip(movies, ranks)
  }
  quality = {m.movie_id: rng.gauss(0.0, 0.4) for m in movies}
  per_user = _ratings_per_user(rng, num_users, num_movies, num_ratings)

  ratings: List[layout.Rating] = []
  for user, count in zip(users, per_user):
    liked = set(favourites[user.user_id])
    bias = rng.gauss(0.0, 0.3)
    weights = {
        m.movie_id: popularity[m.movie_id] *
        (taste_weight if liked.intersection(m.genres) else 1.0) for m in movies
    }
    chosen = _weighted_sample(rng, movies, weights, count)
    start, end = _active_window(rng)
    for movie in chosen:
      match = MATCH_BONUS if liked.intersection(
          movie.genres) else -MISMATCH_PENALTY
      score = (MEAN_RATING + bias + quality[movie.movie_id] + match +
               rng.gauss(0.0, RATING_NOISE))
      ratings.append(
          layout.Rating(
              user_id=user.user_id,
              movie_id=movie.movie_id,
              rating=float(min(5, max(1, round(score)))),
              timestamp=rng.randint(start, end)))
  # GroupLens' u.data is in no particular order; don't let readers rely on one.
  rng.shuffle(ratings)
  return SyntheticData(
      ratings=tuple(ratings),
      movies=tuple(movies),
      users=tuple(users),
      favourite_genres=favourites)


def generate(dest_dir: str,
             num_users: int = DEFAULT_USERS,
             num_movies: int = DEFAULT_MOVIES,
             num_ratings: int = DEFAULT_RATINGS,
             seed: int = 0, **shape) -> Dict[str, int]:
  """Writes synthetic u.data, u.item and u.user into `dest_dir`.

  Args:
    dest_dir: folder to write into (created if missing; files overwritten).
    num_users / num_movies / num_ratings / seed: as for `synthesize`.
    **shape: `zipf_exponent` and `taste_weight`, as for `synthesize`.

  Returns:
    Counts: {'users': ..., 'movies': ..., 'ratings': ..., 'seed': ...}.

  Raises:
    ValueError: the sizes are impossible.
  """
  data = synthesize(num_users, num_movies, num_ratings, seed, **shape)
  ml = layout.ML_100K
  os.makedirs(dest_dir, exist_ok=True)
  for file_name, records, formatter in (
      (ml.ratings_file, data.ratings, layout.format_ml100k_rating),
      (ml.movies_file, data.movies, layout.format_ml100k_movie),
      (ml.users_file, data.users, layout.format_ml100k_user)):
    # newline='' keeps '\n' on every platform, so files are byte-identical.
    with open(os.path.join(dest_dir, file_name), 'w',
              encoding=ml.encodings[file_name], newline='') as f:
      f.writelines(formatter(record) for record in records)
  return {
      'users': len(data.users),
      'movies': len(data.movies),
      'ratings': len(data.ratings),
      'seed': seed,
  }


def _check_sizes(num_users: int, num_movies: int, num_ratings: int) -> None:
  if num_users < 1:
    raise ValueError(f'need at least 1 user, got {num_users}')
  if num_movies < MIN_RATINGS_PER_USER:
    raise ValueError(f'need at least {MIN_RATINGS_PER_USER} movies so every '
                     f'user can rate {MIN_RATINGS_PER_USER}, got {num_movies}')
  low, high = MIN_RATINGS_PER_USER * num_users, num_users * num_movies
  if not low <= num_ratings <= high:
    raise ValueError(
        f'{num_users} users and {num_movies} movies need between {low} '
        f'({MIN_RATINGS_PER_USER} per user) and {high} (each user rates each '
        f'movie once) ratings, got {num_ratings}')


def _movies(rng: random.Random, count: int) -> List[layout.Movie]:
  titles = set()
  movies = []
  for number in range(1, count + 1):
    # Skewed to recent years like ml-100k, but reaching back to 1930.
    year = round(rng.triangular(FIRST_YEAR, LAST_YEAR, LAST_YEAR - 3))
    for _ in range(100):  # Distinct titles, as long as the words allow.
      words = rng.sample(TITLE_WORDS, rng.randint(1, 3))
      title = f'{" ".join(words)} ({year})'
      if title not in titles:
        break
    titles.add(title)
    genres = _weighted_distinct(rng, GENRES, _GENRE_WEIGHTS,
                                rng.choice((1, 1, 2, 2, 3)))
    movies.append(
        layout.Movie(
            movie_id=str(number),
            title=title,
            release_year=year,
            genres=tuple(sorted(genres, key=GENRES.index))))
  return movies


def _users(rng: random.Random, count: int) -> List[layout.User]:
  return [
      layout.User(
          user_id=str(number),
          age=round(rng.triangular(AGES[0], AGES[1], 27)),
          gender='M' if rng.random() < 0.7 else 'F',  # ml-100k is ~71% M.
          occupation=rng.choice(OCCUPATIONS),
          zip_code=f'{rng.randrange(100_000):05d}')
      for number in range(1, count + 1)
  ]


def _weighted_distinct(rng: random.Random, items: Sequence[str],
                       weights: Sequence[float], count: int) -> List[str]:
  """`count` distinct items, each draw proportional to its weight."""
  chosen: List[str] = []
  while len(chosen) < min(count, len(items)):
    item = rng.choices(items, weights)[0]
    if item not in chosen:
      chosen.append(item)
  return chosen


def _pick_favourites(rng: random.Random,
                     movies: Sequence[layout.Movie]) -> Tuple[str, ...]:
  """1-3 genres, common ones more likely, so favourites have enough films."""
  frequency = collections.Counter(g for m in movies for g in m.genres)
  genres = sorted(frequency, key=GENRES.index)
  favourites = _weighted_distinct(rng, genres,
                                  [frequency[g] for g in genres],
                                  rng.randint(1, 3))
  return tuple(sorted(favourites, key=GENRES.index))


def _ratings_per_user(rng: random.Random, num_users: int, num_movies: int,
                      num_ratings: int) -> List[int]:
  """Splits ratings across users: at least 5 each, a long tail of heavy raters.

  Activity weights are Pareto distributed, as in ml-100k where a few users
  rate hundreds of movies; no user exceeds `num_movies`.
  """
  counts = [MIN_RATINGS_PER_USER] * num_users
  activity = [rng.paretovariate(1.5) for _ in range(num_users)]
  remaining = num_ratings - sum(counts)
  while remaining:
    open_users = [u for u in range(num_users) if counts[u] < num_movies]
    picks = rng.choices(open_users, [activity[u] for u in open_users],
                        k=remaining)
    for u in picks:
      if counts[u] < num_movies:
        counts[u] += 1
        remaining -= 1
  return counts


def _weighted_sample(rng: random.Random, movies: Sequence[layout.Movie],
                     weights: Dict[str, float],
                     count: int) -> List[layout.Movie]:
  """`count` distinct movies, each drawn with probability ~ its weight.

  Efraimidis-Spirakis: the `count` largest keys u ** (1 / weight).
  """
  keyed = sorted(
      ((rng.random()**(1.0 / weights[m.movie_id]), i)
       for i, m in enumerate(movies)),
      reverse=True)
  return [movies[i] for _, i in keyed[:count]]


def _active_window(rng: random.Random) -> Tuple[int, int]:
  """A user's first and last rating time: most users rate in short bursts."""
  span = SPAN_END - SPAN_START
  length = max(3600, int(span * rng.random()**3))
  start = SPAN_START + rng.randrange(span - length + 1)
  return start, start + length


# --- Any size, streamed to disk (ml-25m or ml-1m layout) ----------------------

STREAM_LAYOUTS: Tuple[str, ...] = ('ml-25m', 'ml-1m')
# ml-1m and ml-25m: "each user has rated at least 20 movies" (READMEs).
STREAM_MIN_RATINGS_PER_USER = 20
# Popularity of the movie of rank r is (r + offset) ** -exponent, with
# offset = POPULARITY_OFFSET * movies: a power-law tail (most movies have
# few ratings) with a flattened head, as in ml-25m where the most rated
# movie holds ~0.3% of the ratings (a pure Zipf law would give it ~10%).
POPULARITY_EXPONENT = 1.8
POPULARITY_OFFSET = 0.006
# Extra ratings per user beyond the minimum follow a Lomax (Pareto II)
# law of this shape: a median user near 60-75 ratings and a long tail of
# heavy raters, as in ml-25m (median 71, mean 154).
ACTIVITY_SHAPE = 2.0
# The sampler draws explicit keys for this many most popular movies per
# user, and the tail's from a Poisson process (`_sample_movies`).
HEAD_MOVIES = 1024
# Share of users who rate in half stars (the others use whole stars, as
# most MovieLens users do); ml-1m allows whole stars only.
HALF_STAR_USERS = 0.6
# ml-25m and ml-1m (users, movies) at 25,000,095 and 1,000,209 ratings;
# `default_sizes` interpolates between them on a log-log scale.
_ANCHOR_SMALL = (1_000_209, 6_040, 3_706)  # ml-1m: ratings, users, movies
_ANCHOR_LARGE = (25_000_095, 162_541, 59_047)  # ml-25m: rated movies
# Approximate genre counts of ml-25m's movies.csv (62K movies).
_ML25M_GENRE_COUNTS = {
    'Action': 7348, 'Adventure': 4145, 'Animation': 2929, 'Children': 2935,
    'Comedy': 16870, 'Crime': 5319, 'Documentary': 5605, 'Drama': 25606,
    'Fantasy': 2731, 'Film-Noir': 353, 'Horror': 5989, 'IMAX': 195,
    'Musical': 1054, 'Mystery': 2925, 'Romance': 7719, 'Sci-Fi': 3595,
    'Thriller': 8654, 'War': 1874, 'Western': 1399}
# Roughly ml-1m's mix of age groups (users.dat codes) and occupations.
_ML1M_AGE_WEIGHTS = {1: 222, 18: 1103, 25: 2096, 35: 1193, 45: 550, 50: 496,
                     56: 380}
_ML1M_OCCUPATION_WEIGHTS = (711, 528, 267, 173, 759, 112, 236, 679, 17, 92,
                            195, 129, 388, 142, 302, 144, 241, 502, 70, 72,
                            281)


@dataclasses.dataclass(frozen=True)
class _StreamShape:
  """What differs between the layouts the streaming generator writes."""
  layout: layout.RawLayout
  genres: Tuple[str, ...]
  genre_counts: Tuple[int, ...]
  no_genre_share: float  # movies listed without genres
  no_year_share: float  # titles without '(YYYY)'
  years: Tuple[int, int, int]  # first, last, most common release year
  span: Tuple[int, int]  # first and last rating time, seconds (UTC)
  half_stars: bool
  # Ratings text by half-star index (0 = 0.0, 1 = 0.5, ..., 10 = 5.0).
  rating_text: Tuple[str, ...]
  separator: str


def _utc(*args) -> int:
  return int(datetime.datetime(*args, tzinfo=datetime.timezone.utc)
             .timestamp())


_STREAM_SHAPES = {
    'ml-25m': _StreamShape(
        layout=layout.ML_25M,
        genres=layout.ML25M_GENRES,
        genre_counts=tuple(_ML25M_GENRE_COUNTS[g]
                           for g in layout.ML25M_GENRES),
        no_genre_share=0.03,
        no_year_share=0.01,
        years=(1902, 2019, 2014),
        # 1995-01-09 to 2019-11-21, the span of ml-25m's ratings.
        span=(_utc(1995, 1, 9), _utc(2019, 11, 21, 23, 59, 59)),
        half_stars=True,
        rating_text=tuple(f'{i / 2:.1f}' for i in range(11)),
        separator=','),
    'ml-1m': _StreamShape(
        layout=layout.ML_1M,
        genres=layout.ML1M_GENRES,
        genre_counts=tuple(_GENRE_COUNTS[g] for g in layout.ML1M_GENRES),
        no_genre_share=0.0,
        no_year_share=0.0,
        years=(1919, 2000, 1998),
        # 2000-04-25 to 2003-02-28, the span of ml-1m's ratings.
        span=(_utc(2000, 4, 25), _utc(2003, 2, 28, 23, 59, 59)),
        half_stars=False,
        rating_text=tuple(f'{i / 2:g}' for i in range(11)),
        separator='::'),
}


def default_sizes(num_ratings: int) -> Tuple[int, int]:
  """Users and movies for `num_ratings`, in MovieLens proportions.

  Interpolates log-log between ml-1m (1M ratings: 6,040 users, 3,706 movies)
  and ml-25m (25M: 162,541 users, 59,047 rated movies), so users grow about
  linearly with ratings and movies more slowly (exponent ~0.86). Small sizes
  keep at least 20 ratings per user and at most a quarter of the catalogue
  per user on average.

  Returns:
    (num_users, num_movies).
  """
  (r0, u0, m0), (r1, u1, m1) = _ANCHOR_SMALL, _ANCHOR_LARGE
  scale = math.log(max(num_ratings, 1) / r0) / math.log(r1 / r0)
  users = round(u0 * (u1 / u0)**scale)
  movies = round(m0 * (m1 / m0)**scale)
  users = max(1, min(users, num_ratings // STREAM_MIN_RATINGS_PER_USER))
  movies = max(movies, STREAM_MIN_RATINGS_PER_USER,
               math.ceil(4 * num_ratings / users))
  return users, movies


@dataclasses.dataclass(frozen=True)
class UserHistory:
  """One synthetic user and their ratings, as the generator streams them.

  Attributes:
    user_id: '1', '2', ...
    favourite_genres: the 1-3 genres the user prefers (not written to disk).
    movie_ids: [n] int64 movie ids, ascending (the file order).
    ratings: [n] float64 ratings, on the layout's scale.
    timestamps: [n] int64 seconds since the epoch (UTC).
    user: demographics, for layouts with a users file (ml-1m); else None.
  """
  user_id: str
  favourite_genres: Tuple[str, ...]
  movie_ids: np.ndarray
  ratings: np.ndarray
  timestamps: np.ndarray
  user: Optional[layout.User]

  def records(self) -> Iterator[layout.Rating]:
    for movie_id, rating, timestamp in zip(self.movie_ids.tolist(),
                                           self.ratings.tolist(),
                                           self.timestamps.tolist()):
      yield layout.Rating(self.user_id, str(movie_id), rating, timestamp)


class StreamingSynthesizer:
  """MovieLens-shaped data of any size, one user at a time.

  Memory is O(movies + users) numbers (catalogue arrays; one rating count per
  user, 8 bytes each) plus one user's ratings: ratings are never held
  together, so 25M ratings take as little memory as 1M.

  Randomness is one `numpy.random.Generator(PCG64(seed))`, consumed in a
  fixed order (catalogue, per-user counts, then user by user), so the same
  arguments and seed give the same data, byte for byte, under the same numpy
  version (pinned: numpy 1.26.4 in requirements.lock; NumPy does not promise
  identical streams across versions).

  Structure:
    * popularity: movie of rank r has weight (r + offset) ** -exponent over a
      random order of movies (`POPULARITY_EXPONENT`, `POPULARITY_OFFSET`);
    * tastes: each user has 1-3 favourite genres (common genres more
      likely); a movie of a favourite genre is picked `taste_weight` times
      more often than an equally popular other movie, and rated higher;
    * activity: every user rates at least 20 movies, the rest split by a
      heavy-tailed (Lomax) weight, capped at the catalogue size;
    * time: each user rates within a window of the release's span, most in
      short bursts.
  """

  def __init__(self, layout_name: str = 'ml-25m',
               num_ratings: int = 1_000_000,
               num_users: Optional[int] = None,
               num_movies: Optional[int] = None, seed: int = 0,
               popularity_exponent: float = POPULARITY_EXPONENT,
               taste_weight: float = TASTE_WEIGHT):
    """Builds the catalogue and each user's number of ratings.

    Args:
      layout_name: 'ml-25m' (CSV, half stars, no users file) or 'ml-1m'
        ('::'-separated, whole stars, users.dat with demographics).
      num_ratings: total ratings, from 20 per user up to users x movies.
      num_users / num_movies: default from `default_sizes(num_ratings)`.
      seed: seeds numpy's PCG64.
      popularity_exponent: steepness of the popularity tail.
      taste_weight: how much more likely a favourite-genre movie is picked.

    Raises:
      ValueError: unknown layout or impossible sizes.
    """
    if layout_name not in _STREAM_SHAPES:
      raise ValueError(f'layout must be one of {STREAM_LAYOUTS}, got '
                       f'{layout_name!r}')
    default_users, default_movies = default_sizes(num_ratings)
    self.num_users = default_users if num_users is None else num_users
    self.num_movies = default_movies if num_movies is None else num_movies
    self.num_ratings = num_ratings
    self.seed = seed
    self.shape = _STREAM_SHAPES[layout_name]
    self.layout = self.shape.layout
    self._check_sizes()
    self._taste_weight = taste_weight
    self._rng = np.random.Generator(np.random.PCG64(seed))
    self._build_catalogue(popularity_exponent)
    self._counts = self._ratings_per_user()
    self._started = False
    self._movie_text: Optional[List[str]] = None
    self._rating_text: Optional[List[str]] = None

  # The catalogue: O(movies) arrays.

  def _check_sizes(self) -> None:
    minimum = STREAM_MIN_RATINGS_PER_USER
    if self.num_users < 1:
      raise ValueError(f'need at least 1 user, got {self.num_users}')
    if self.num_movies < minimum:
      raise ValueError(f'need at least {minimum} movies so every user can '
                       f'rate {minimum}, got {self.num_movies}')
    low, high = minimum * self.num_users, self.num_users * self.num_movies
    if not low <= self.num_ratings <= high:
      raise ValueError(
          f'{self.num_users} users and {self.num_movies} movies need between '
          f'{low} ({minimum} per user) and {high} (each user rates each movie '
          f'once) ratings, got {self.num_ratings}')

  def _build_catalogue(self, exponent: float) -> None:
    rng, shape, count = self._rng, self.shape, self.num_movies
    genre_p = np.asarray(shape.genre_counts, np.float64)
    genre_p /= genre_p.sum()
    # 1-3 distinct genres per movie, each draw ~ genre frequency
    # (Efraimidis-Spirakis: the smallest exponential keys over weights).
    keys = rng.exponential(size=(count, len(shape.genres))) / genre_p
    order = np.argsort(keys, axis=1, kind='stable')
    per_movie = rng.choice(np.array([1, 1, 2, 2, 3]), size=count)
    per_movie[rng.random(count) < shape.no_genre_share] = 0
    bits = np.zeros(count, np.int64)
    for k in range(3):
      has = per_movie > k
      bits[has] |= np.left_shift(1, order[has, k])
    self._genre_bits = bits
    first, last, mode = shape.years
    self._years = np.rint(rng.triangular(first, mode, last, count)).astype(
        np.int64)
    self._has_year = rng.random(count) >= shape.no_year_share
    self._title_words = rng.integers(0, len(TITLE_WORDS), size=(count, 3))
    self._title_lengths = rng.integers(1, 4, size=count)
    # Some titles in GroupLens' 'Shadow, The (1995)' style (quoted in CSV),
    # a few with quotes ('"Blue" Night (1995)').
    self._title_style = rng.choice(3, size=count, p=(0.9, 0.08, 0.02))
    ranks = rng.permutation(count) + 1.0
    popularity = (ranks + POPULARITY_OFFSET * count)**-exponent
    self._popularity = popularity / popularity.sum()
    self._quality = rng.normal(0.0, 0.4, count)
    genre_movies = np.array([
        np.count_nonzero(bits & (1 << g)) for g in range(len(shape.genres))
    ], np.float64)
    # Favourites are drawn ~ how many movies a genre has (common genres
    # more likely, so favourites have enough films; empty genres never).
    self._favourite_p = genre_movies / max(genre_movies.sum(), 1.0)
    self._favourite_scale = np.full(len(shape.genres), np.inf)
    np.divide(1.0, self._favourite_p, out=self._favourite_scale,
              where=self._favourite_p > 0)
    # The sampler's explicit head and Poisson-process tail.
    by_popularity = np.argsort(-self._popularity, kind='stable')
    self._head = by_popularity[:HEAD_MOVIES]
    self._tail = by_popularity[HEAD_MOVIES:]
    self._tail_cumulative = np.cumsum(self._popularity[self._tail])

  def movies(self) -> Iterator[layout.Movie]:
    """The catalogue, ids '1'..num_movies (rated or not)."""
    genres = self.shape.genres
    for index in range(self.num_movies):
      words = dict.fromkeys(
          TITLE_WORDS[w]
          for w in self._title_words[index, :self._title_lengths[index]])
      name = ' '.join(words)
      style = self._title_style[index]
      if style == 1 and len(words) > 1:
        name = f'{name}, The'
      elif style == 2:
        first, *rest = words
        name = ' '.join([f'"{first}"'] + rest)
      year = int(self._years[index]) if self._has_year[index] else None
      bits = int(self._genre_bits[index])
      yield layout.Movie(
          movie_id=str(index + 1),
          title=f'{name} ({year})' if year else name,
          release_year=year,
          genres=tuple(g for i, g in enumerate(genres) if bits >> i & 1))

  # Users: one rating count each, then one history at a time.

  def _ratings_per_user(self) -> np.ndarray:
    """Ratings of each user: 20 each plus a Lomax-weighted share of the rest;
    sums to num_ratings exactly.

    No user rates more than half the catalogue (ml-25m's most prolific user
    rated 55% of it), unless the sizes need more.
    """
    minimum = STREAM_MIN_RATINGS_PER_USER
    cap = min(self.num_movies,
              max(self.num_movies // 2,
                  math.ceil(self.num_ratings / self.num_users)))
    weights = self._rng.pareto(ACTIVITY_SHAPE, self.num_users) + 1e-3
    extra = _allocate(weights, self.num_ratings - minimum * self.num_users,
                      cap - minimum)
    return extra + minimum

  @property
  def ratings_per_user(self) -> np.ndarray:
    """[num_users] int64: how many ratings each user will have."""
    return self._counts.copy()

  def users(self) -> Iterator[UserHistory]:
    """Each user's history in id order; can be iterated once."""
    if self._started:
      raise RuntimeError('users() streams the data once; make a new '
                         'StreamingSynthesizer to generate it again')
    self._started = True
    for index, count in enumerate(self._counts.tolist()):
      yield self._user(str(index + 1), count)

  def _user(self, user_id: str, count: int) -> UserHistory:
    rng, shape = self._rng, self.shape
    genres = shape.genres
    num_favourites = min(int(rng.integers(1, 4)),
                         np.count_nonzero(self._favourite_p))
    # Distinct genres, each draw ~ _favourite_p (Efraimidis-Spirakis).
    keys = rng.exponential(size=len(genres)) * self._favourite_scale
    favourite_ids = sorted(
        np.argsort(keys, kind='stable')[:num_favourites].tolist())
    favourite_bits = sum(1 << g for g in favourite_ids)
    chosen = self._sample_movies(count, favourite_bits)
    match = (self._genre_bits[chosen] & favourite_bits) != 0
    bias = rng.normal(0.0, 0.3)
    score = (MEAN_RATING + bias + self._quality[chosen] +
             np.where(match, MATCH_BONUS, -MISMATCH_PENALTY) +
             rng.normal(0.0, RATING_NOISE, count))
    if shape.half_stars and rng.random() < HALF_STAR_USERS:
      ratings = np.clip(np.rint(score * 2) / 2, 0.5, 5.0)
    else:
      ratings = np.clip(np.rint(score), 1.0, 5.0)
    start, end = shape.span
    span = end - start
    length = max(3600, int(span * rng.random()**3))
    first = start + int(rng.integers(0, span - length + 1))
    timestamps = rng.integers(first, first + length + 1, size=count)
    order = np.argsort(chosen, kind='stable')
    user = self._demographics(user_id) if self.layout.has_demographics else None
    return UserHistory(
        user_id=user_id,
        favourite_genres=tuple(genres[g] for g in favourite_ids),
        movie_ids=chosen[order] + 1,
        ratings=ratings[order],
        timestamps=timestamps[order],
        user=user)

  def _sample_movies(self, count: int, favourite_bits: int) -> np.ndarray:
    """`count` distinct movie indices, drawn without replacement with
    weights w = popularity x (1 if of a favourite genre else
    1 / taste_weight).

    Exact Efraimidis-Spirakis sampling (the `count` smallest keys
    E_i / w_i, E_i ~ Exp(1)), computed cheaply: keys are explicit for the
    HEAD_MOVIES most popular movies; for the long tail, where explicit keys
    would cost O(movies) per user, the key of a movie is the first arrival
    of a Poisson process of rate w_i, so the tail's keys come from one
    process of rate sum(popularity) whose arrivals are labelled by
    popularity and kept with probability 1 or 1 / taste_weight (thinning).
    Arrivals are generated in time order until `count` keys are known to be
    smallest. Heavy users (an eighth of the catalogue or more) get explicit
    keys for every movie.
    """
    rng = self._rng
    keep_other = 1.0 / self._taste_weight
    head, tail = self._head, self._tail
    if count * 8 >= self.num_movies or not len(tail):
      head = np.arange(self.num_movies)
      tail = head[:0]
    liked = (self._genre_bits[head] & favourite_bits) != 0
    head_keys = rng.exponential(size=len(head)) / (
        self._popularity[head] * np.where(liked, 1.0, keep_other))
    if not len(tail):
      return head[np.argpartition(head_keys, count - 1)[:count]]

    tail_total = self._tail_cumulative[-1]
    labels = np.empty(0, np.int64)  # distinct tail positions, by arrival
    times = np.empty(0)  # their keys (first arrival times), increasing
    now = 0.0
    draws = 2 * count + 16
    while True:
      arrivals = now + np.cumsum(rng.exponential(1.0 / tail_total, draws))
      picks = np.minimum(
          np.searchsorted(self._tail_cumulative,
                          rng.random(draws) * tail_total), len(tail) - 1)
      kept = ((self._genre_bits[tail[picks]] & favourite_bits) != 0) | (
          rng.random(draws) < keep_other)
      now = arrivals[-1]
      labels = np.concatenate([labels, picks[kept]])
      times = np.concatenate([times, arrivals[kept]])
      _, first = np.unique(labels, return_index=True)
      first.sort()
      labels, times = labels[first], times[first]
      # Every key below `now` is known: the count smallest are all known
      # once that many are below it.
      if np.count_nonzero(head_keys < now) + len(labels) >= count:
        break
      draws *= 2
    keys = np.concatenate([head_keys, times])
    movies = np.concatenate([head, tail[labels]])
    return movies[np.argpartition(keys, count - 1)[:count]]

  def _demographics(self, user_id: str) -> layout.User:
    rng = self._rng
    ages = list(_ML1M_AGE_WEIGHTS)
    age_p = np.asarray([_ML1M_AGE_WEIGHTS[a] for a in ages], np.float64)
    occupation_p = np.asarray(_ML1M_OCCUPATION_WEIGHTS, np.float64)
    return layout.User(
        user_id=user_id,
        age=ages[int(rng.choice(len(ages), p=age_p / age_p.sum()))],
        gender='M' if rng.random() < 0.72 else 'F',  # ml-1m is ~72% M.
        occupation=layout.ML1M_OCCUPATIONS[int(rng.choice(
            len(occupation_p), p=occupation_p / occupation_p.sum()))],
        zip_code=f'{int(rng.integers(100_000)):05d}')

  def rating_lines(self, history: UserHistory) -> str:
    """A user's ratings as lines of the layout's ratings file.

    The same text as `layout.format_rating` per record, built without
    per-rating objects (this is the generator's hot loop).
    """
    sep = self.shape.separator
    # '<movie id><sep>' and '<rating><sep>', formatted once.
    if self._movie_text is None:
      self._movie_text = [f'{m}{sep}' for m in range(self.num_movies + 1)]
      self._rating_text = [f'{t}{sep}' for t in self.shape.rating_text]
    movie_text, rating_text = self._movie_text, self._rating_text
    prefix = f'{history.user_id}{sep}'
    halves = np.rint(history.ratings * 2).astype(np.int64).tolist()
    return ''.join([
        f'{prefix}{movie_text[movie]}{rating_text[half]}{time}\n'
        for movie, half, time in zip(history.movie_ids.tolist(), halves,
                                     history.timestamps.tolist())
    ])


def _allocate(weights: np.ndarray, total: int, cap: int) -> np.ndarray:
  """Splits `total` into whole shares ~ `weights`, each at most `cap`.

  Requires total <= len(weights) * cap. Deterministic: leftovers of the
  rounding go to the largest fractional shares (ties to lower indices).
  """
  alloc = np.zeros(len(weights), np.int64)
  remaining = total
  while remaining > 0:
    free = alloc < cap
    free_weights = np.where(free, weights, 0.0)
    share = free_weights / free_weights.sum() * remaining
    add = np.minimum(np.floor(share).astype(np.int64), cap - alloc)
    if add.sum() == 0:  # Fewer left than users with a share: one each.
      order = np.argsort(-share, kind='stable')
      order = order[free[order]][:remaining]
      add[order] = 1
    alloc += add
    remaining -= int(add.sum())
  return alloc


def generate_stream(dest_dir: str, layout_name: str = 'ml-25m',
                    num_ratings: int = 1_000_000,
                    num_users: Optional[int] = None,
                    num_movies: Optional[int] = None, seed: int = 0,
                    log: Optional[Callable[[str], None]] = None,
                    **shape) -> Dict[str, Any]:
  """Writes synthetic data of any size in the ml-25m (or ml-1m) layout.

  Ratings are written user by user as they are generated (ordered by user,
  then movie id, as GroupLens orders ml-25m), so memory stays flat whatever
  the size; see `StreamingSynthesizer`. Files are overwritten.

  Args:
    dest_dir: folder to write into (created if missing).
    layout_name: 'ml-25m' (ratings.csv, movies.csv) or 'ml-1m'
      (ratings.dat, movies.dat, users.dat).
    num_ratings / num_users / num_movies / seed: as for
      `StreamingSynthesizer`; users and movies default to MovieLens
      proportions (`default_sizes`).
    log: receives a progress line about every 10% (e.g. `print`).
    **shape: `popularity_exponent`, `taste_weight`.

  Returns:
    {'layout', 'users', 'movies', 'ratings', 'seed', 'seconds'}.

  Raises:
    ValueError: unknown layout or impossible sizes.
  """
  started = time.monotonic()
  synth = StreamingSynthesizer(layout_name, num_ratings, num_users,
                               num_movies, seed, **shape)
  raw = synth.layout
  os.makedirs(dest_dir, exist_ok=True)

  def open_file(file_name):
    # newline='' keeps '\n' on every platform, so files are byte-identical.
    f = open(os.path.join(dest_dir, file_name), 'w',
             encoding=raw.encodings[file_name], newline='',
             buffering=1 << 20)
    if file_name in raw.headers:
      f.write(raw.headers[file_name] + '\n')
    return f

  with open_file(raw.movies_file) as f:
    f.writelines(raw.format_movie(movie) for movie in synth.movies())
  users_file = open_file(raw.users_file) if raw.users_file else None
  written, next_report = 0, num_ratings / 10
  try:
    with open_file(raw.ratings_file) as ratings_file:
      for history in synth.users():
        ratings_file.write(synth.rating_lines(history))
        if users_file:
          users_file.write(raw.format_user(history.user))
        written += len(history.movie_ids)
        if log and written >= next_report:
          seconds = time.monotonic() - started
          log(f'  {written:,} of {num_ratings:,} ratings '
              f'({written / num_ratings:.0%}) in {seconds:.0f}s')
          next_report += num_ratings / 10
  finally:
    if users_file:
      users_file.close()
  return {
      'layout': raw.name,
      'users': synth.num_users,
      'movies': synth.num_movies,
      'ratings': written,
      'seed': seed,
      'seconds': round(time.monotonic() - started, 1),
  }


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      prog='python -m movielens.synthetic',
      description='Write synthetic MovieLens data with skewed popularity, '
      'genre tastes and timestamps: small ml-100k files built in memory '
      '(u.data, u.item, u.user), or any size in the ml-25m layout '
      '(ratings.csv, movies.csv) or the ml-1m layout, streamed to disk.')
  parser.add_argument('--dest', required=True, help='folder to write into')
  parser.add_argument(
      '--layout', choices=('ml-100k',) + STREAM_LAYOUTS, default='ml-100k',
      help='ml-100k: in memory, for small tests; ml-25m / ml-1m: streamed, '
      'any size (default: %(default)s)')
  parser.add_argument(
      '--users', type=int, default=None,
      help=f'number of users (default: {DEFAULT_USERS} for ml-100k; '
      'MovieLens proportions of --ratings otherwise)')
  parser.add_argument(
      '--movies', type=int, default=None,
      help=f'number of movies (default: {DEFAULT_MOVIES} for ml-100k; '
      'MovieLens proportions of --ratings otherwise)')
  parser.add_argument(
      '--ratings', type=int, default=DEFAULT_RATINGS,
      help='number of ratings, e.g. 25000000 (default: %(default)s)')
  parser.add_argument('--seed', type=int, default=0,
                      help='random seed (default: %(default)s)')
  args = parser.parse_args(argv)
  try:
    if args.layout == 'ml-100k':
      summary = generate(
          args.dest, DEFAULT_USERS if args.users is None else args.users,
          DEFAULT_MOVIES if args.movies is None else args.movies,
          args.ratings, args.seed)
    else:
      # Progress on stderr for sizes that take more than seconds.
      log = None
      if args.ratings >= 1_000_000:
        log = lambda line: print(line, file=sys.stderr, flush=True)
      summary = generate_stream(args.dest, args.layout, args.ratings,
                                args.users, args.movies, args.seed, log=log)
  except ValueError as e:
    parser.error(str(e))
  took = f' in {summary["seconds"]}s' if 'seconds' in summary else ''
  print(f'Wrote {summary["ratings"]} ratings by {summary["users"]} users of '
        f'{summary["movies"]} movies to {args.dest} (seed {args.seed})'
        f'{took}.')
  return 0


if __name__ == '__main__':
  sys.exit(main())
