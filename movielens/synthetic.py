"""Small synthetic MovieLens data in the raw ml-100k layout.

    python -m movielens.synthetic --dest /tmp/ml-synth \
        --users 100 --movies 200 --ratings 2000 --seed 0

Writes u.data, u.item and u.user through the `movielens.layout` writers, so
the pipeline reads them exactly as it reads the real ml-100k. Useful for fast
tests and for machines without the real data.

The data has the structure a recommender should find:
  * popularity is skewed: movie weights follow Zipf's law (rank ** -1.2), so
    a few movies collect a large share of the ratings and a few in the tail
    may have none;
  * users have tastes: each has 1-3 favourite genres, picks movies of those
    genres several times more often than others, and rates them higher;
  * each user rates within a window of the 1997-09-20..1998-04-22 span of
    ml-100k, most in short bursts.

Same arguments, same seed: byte-identical files. The only randomness is
`random.Random(seed)`, so the output does not depend on numpy's version.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import os
import random
import sys
from typing import Dict, List, Optional, Sequence, Tuple

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


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      prog='python -m movielens.synthetic',
      description='Write synthetic u.data, u.item and u.user (ml-100k layout) '
      'with skewed popularity and genre tastes.')
  parser.add_argument('--dest', required=True, help='folder to write into')
  parser.add_argument('--users', type=int, default=DEFAULT_USERS,
                      help='number of users (default: %(default)s)')
  parser.add_argument('--movies', type=int, default=DEFAULT_MOVIES,
                      help='number of movies (default: %(default)s)')
  parser.add_argument('--ratings', type=int, default=DEFAULT_RATINGS,
                      help='number of ratings (default: %(default)s)')
  parser.add_argument('--seed', type=int, default=0,
                      help='random seed (default: %(default)s)')
  args = parser.parse_args(argv)
  try:
    summary = generate(args.dest, args.users, args.movies, args.ratings,
                       args.seed)
  except ValueError as e:
    parser.error(str(e))
  print(f'Wrote {summary["ratings"]} ratings by {summary["users"]} users of '
        f'{summary["movies"]} movies to {args.dest} (seed {args.seed}).')
  return 0


if __name__ == '__main__':
  sys.exit(main())
