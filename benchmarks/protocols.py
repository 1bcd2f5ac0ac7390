"""Two published top-k evaluation protocols on a raw MovieLens 100K folder.

`tfrs`: the TensorFlow Recommenders tutorials ("Recommending movies:
retrieval", https://www.tensorflow.org/recommenders/examples/basic_retrieval).
All ratings are shuffled with a seed and cut 80/20. Each *test rating* is one
query: is its movie among the user's top 100 over the whole catalogue? Movies
the user rated in train are NOT removed from the top 100. The figure is the
mean over test ratings, the tutorial's
`factorized_top_k/top_100_categorical_accuracy`.

`msrec`: the Microsoft Recommenders MovieLens benchmark
(https://github.com/recommenders-team/recommenders, notebook
`examples/06_benchmarks/movielens.ipynb`). A stratified 75/25 split: each
user's ratings are put in a seeded random order and the first
round(0.75 * count) go to train, as `python_stratified_split` does. Movies the
user rated in train are removed from the ranking, the top 10 is compared with
the user's test movies (binary relevance: any rating counts), and nDCG@10,
Precision@10 and Recall@10 are averaged over the users in test, with the
formulas of `recommenders.evaluation.python_evaluation`. nDCG and recall are
computed by the retrieval evaluator's functions
(`components/retrieval_evaluator/metrics.py`, which bless the pipeline's
model), whose definitions are Recommenders' for binary relevance; so the
figures published here and the ones a model is blessed by are computed the
same way.

Note: the benchmark notebook calls `python_stratified_split(...,
filter_by="item")`, i.e. stratifies per *movie*. Our protocol stratifies per
*user* (the library's default, `filter_by="user"`), which guarantees that every
test user has training history. `stratified_split(..., by='item')` gives the
notebook's literal split for comparison.

Everything here is plain Python and numpy; no TensorFlow op runs (importing
the evaluator's metrics imports its package, and with it TFX). Ratings are
the `movielens.layout.Rating` records, ids are strings as in the raw files.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import shutil
from typing import (Callable, Dict, Iterable, List, Mapping, Sequence, Set,
                    Tuple, TypeVar)

import numpy as np

from components.retrieval_evaluator import metrics as retrieval_metrics
from movielens import layout
from movielens.layout import Rating

TFRS = 'tfrs'
MSREC = 'msrec'
PROTOCOLS: Tuple[str, ...] = (TFRS, MSREC)

DEFAULT_SEED = 42  # The TFRS tutorial's shuffle seed and Recommenders' SEED.
TFRS_TRAIN_FRACTION = 0.8
TFRS_K = 100
MSREC_TRAIN_FRACTION = 0.75
MSREC_K = 10

# Metric names as the sources print them.
TFRS_METRIC = f'factorized_top_k/top_{TFRS_K}_categorical_accuracy'
NDCG = f'ndcg@{MSREC_K}'
PRECISION = f'precision@{MSREC_K}'
RECALL = f'recall@{MSREC_K}'

# Per protocol: the cut-off, and whether the user's training movies are
# removed from the ranking.
TOP_K: Mapping[str, int] = {TFRS: TFRS_K, MSREC: MSREC_K}
EXCLUDE_SEEN: Mapping[str, bool] = {TFRS: False, MSREC: True}

_T = TypeVar('_T')


@dataclasses.dataclass(frozen=True)
class Dataset:
  """One raw ml-100k release in memory.

  Attributes:
    ratings: every rating of u.data, in file order.
    movie_ids: the catalogue, every movie of u.item in file order (including
      movies nobody rated).
    user_ids: every user of u.user, in file order.
  """
  ratings: Tuple[Rating, ...]
  movie_ids: Tuple[str, ...]
  user_ids: Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Split:
  """A train/test split of ratings; both keep the input's order."""
  train: Tuple[Rating, ...]
  test: Tuple[Rating, ...]


# --- Loading -----------------------------------------------------------------


def _read_records(path: str, parse: Callable[[bytes], _T],
                  header_lines: int = 0) -> List[_T]:
  """Parses every non-blank line of `path` after its header lines; errors
  name the file and line."""
  records = []
  try:
    with open(path, 'rb') as f:
      for number, raw in enumerate(f, start=1):
        if number <= header_lines or not raw.strip():
          continue
        try:
          records.append(parse(raw))
        except layout.RawLineError as e:
          raise layout.RawDataError(f'{path}:{number}: {e}') from None
  except FileNotFoundError:
    raise layout.RawDataError(
        f'{path} does not exist. Pass --data-dir a raw ml-100k folder '
        '(u.data, u.item, u.user); `make data` downloads it.') from None
  return records


def load_dataset(data_dir: str) -> Dataset:
  """Reads a raw MovieLens folder of any known layout (ml-100k, ml-1m,
  ml-20m/25m) with the `movielens.layout` parsers.

  Args:
    data_dir: folder holding one release's raw files.

  Returns:
    The ratings, catalogue and users (for releases without a users file,
    the users who rated), in file order.

  Raises:
    RawDataError: no known layout, a file is missing or a line is invalid
      (file:line named).
  """
  spec = layout.detect_layout(data_dir)
  ratings = _read_records(
      os.path.join(data_dir, spec.ratings_file), spec.parse_rating,
      spec.header_lines)
  movies = _read_records(
      os.path.join(data_dir, spec.movies_file), spec.parse_movie,
      spec.header_lines)
  if spec.users_file:
    user_ids = tuple(u.user_id for u in _read_records(
        os.path.join(data_dir, spec.users_file), spec.parse_user,
        spec.header_lines))
  else:
    user_ids = tuple(dict.fromkeys(r.user_id for r in ratings))
  return Dataset(
      ratings=tuple(ratings),
      movie_ids=tuple(m.movie_id for m in movies),
      user_ids=user_ids)


def load_ml100k(data_dir: str) -> Dataset:
  """`load_dataset` for a folder that must be ml-100k."""
  if not os.path.exists(os.path.join(data_dir, layout.ML_100K.ratings_file)):
    raise layout.RawDataError(
        f'{os.path.join(data_dir, layout.ML_100K.ratings_file)} does not '
        'exist. Pass --data-dir a raw ml-100k folder (u.data, u.item, '
        'u.user); `make data` downloads it.')
  return load_dataset(data_dir)


# --- Splits ------------------------------------------------------------------


def _take(ratings: Sequence[Rating],
          train_mask: np.ndarray) -> Split:
  return Split(
      train=tuple(r for r, keep in zip(ratings, train_mask) if keep),
      test=tuple(r for r, keep in zip(ratings, train_mask) if not keep))


def random_split(ratings: Sequence[Rating],
                 train_fraction: float = TFRS_TRAIN_FRACTION,
                 seed: int = DEFAULT_SEED) -> Split:
  """The `tfrs` split: a seeded shuffle of all ratings, cut in two.

  The tutorial shuffles with `tf.data` (seed 42) and takes the first 80,000 of
  100,000 ratings; numpy's generator cannot replay that exact permutation, so
  the split is the same in distribution, not rating for rating.

  Args:
    ratings: all ratings.
    train_fraction: share of ratings for train; the train size is
      round(train_fraction * len(ratings)), exactly.
    seed: seed of the shuffle; same seed, same split.

  Returns:
    Train and test, each in the input order.
  """
  if not 0.0 < train_fraction < 1.0:
    raise ValueError(f'train_fraction must be in (0, 1), got {train_fraction}')
  num_train = int(round(train_fraction * len(ratings)))
  order = np.random.default_rng(seed).permutation(len(ratings))
  train_mask = np.zeros(len(ratings), dtype=bool)
  train_mask[order[:num_train]] = True
  return _take(ratings, train_mask)


def stratified_split(ratings: Sequence[Rating],
                     train_fraction: float = MSREC_TRAIN_FRACTION,
                     seed: int = DEFAULT_SEED,
                     by: str = 'user') -> Split:
  """The `msrec` split: per user, a seeded random share of ratings to train.

  Replays `recommenders.datasets.python_splitters.python_stratified_split`
  (is_random=True, min_rating=1): one uniform draw per rating from
  `np.random.RandomState(seed)`, in input order; within each group the ratings
  with the smallest draws go to train, round(train_fraction * count) of them
  (numpy rounding, half to even: 22 ratings -> 16 to train). Given the ratings
  in u.data order and the same seed, the split is the library's rating for
  rating.

  Args:
    ratings: all ratings.
    train_fraction: share of each group's ratings for train.
    seed: seed of the draws; same seed, same split.
    by: 'user' (default; every test user then has training ratings) or
      'item' (what the Recommenders benchmark notebook passes).

  Returns:
    Train and test, each in the input order.
  """
  if not 0.0 < train_fraction < 1.0:
    raise ValueError(f'train_fraction must be in (0, 1), got {train_fraction}')
  if by not in ('user', 'item'):
    raise ValueError(f"by must be 'user' or 'item', got {by!r}")
  draws = np.random.RandomState(seed).rand(len(ratings))
  groups: Dict[str, List[int]] = collections.defaultdict(list)
  for index, rating in enumerate(ratings):
    groups[rating.user_id if by == 'user' else rating.movie_id].append(index)
  train_mask = np.zeros(len(ratings), dtype=bool)
  for indices in groups.values():
    num_train = int(np.round(train_fraction * len(indices)))
    by_draw = sorted(indices, key=lambda i: draws[i])
    train_mask[by_draw[:num_train]] = True
  return _take(ratings, train_mask)


def split(protocol: str, ratings: Sequence[Rating],
          seed: int = DEFAULT_SEED) -> Split:
  """The split of `protocol` ('tfrs' or 'msrec') with its default fraction."""
  if protocol == TFRS:
    return random_split(ratings, TFRS_TRAIN_FRACTION, seed)
  if protocol == MSREC:
    return stratified_split(ratings, MSREC_TRAIN_FRACTION, seed)
  raise ValueError(f'unknown protocol {protocol!r}; known: {PROTOCOLS}')


def write_train_folder(train: Iterable[Rating], source_dir: str,
                       dest_dir: str) -> str:
  """Writes a split's train ratings as a raw folder of the source's layout.

  The ratings file holds only `train` (after the layout's header, if any);
  the movies (and users) files are copied byte for byte from `source_dir`,
  so the catalogue and users are complete and the pipeline can recommend
  movies that no training rating mentions.

  Args:
    train: the ratings to write.
    source_dir: the full raw folder the split came from.
    dest_dir: created if needed; its files are overwritten.

  Returns:
    dest_dir.
  """
  spec = layout.detect_layout(source_dir)
  os.makedirs(dest_dir, exist_ok=True)
  with open(os.path.join(dest_dir, spec.ratings_file), 'w',
            encoding=spec.encodings[spec.ratings_file], newline='\n') as f:
    header = spec.headers.get(spec.ratings_file)
    if header is not None:
      f.write(header + '\n')
    for rating in train:
      f.write(spec.format_rating(rating))
  for name in spec.files[1:]:
    shutil.copyfile(os.path.join(source_dir, name),
                    os.path.join(dest_dir, name))
  return dest_dir


# --- Metrics -----------------------------------------------------------------


def movies_by_user(ratings: Iterable[Rating]) -> Dict[str, Set[str]]:
  """user id -> the set of movies the user rated."""
  result: Dict[str, Set[str]] = collections.defaultdict(set)
  for rating in ratings:
    result[rating.user_id].add(rating.movie_id)
  return dict(result)


def _top(recommendations: Mapping[str, Sequence[str]], user_id: str,
         k: int) -> Sequence[str]:
  try:
    top = recommendations[user_id][:k]
  except KeyError:
    raise ValueError(f'no recommendations for test user {user_id!r}; '
                     'recommend for every user in test') from None
  if len(set(top)) != len(top):
    raise ValueError(f'user {user_id!r}: the top {k} repeats movies: '
                     f'{list(top)}')
  return top


def top_k_accuracy(test: Sequence[Rating],
                   recommendations: Mapping[str, Sequence[str]],
                   k: int = TFRS_K) -> float:
  """The `tfrs` figure: share of test ratings whose movie is in the top k.

  Every test rating counts once, so heavy users weigh more, as in the
  tutorial's `FactorizedTopK` evaluated over the test dataset.

  This is the TFRS tutorial's own definition, kept beside the evaluator's
  metrics because none of them averages over ratings: the evaluator's
  hit_rate@k and recall@k average over users. They give the same figure
  when every test user has exactly one test rating
  (tests/benchmarks/test_protocols.py).

  Args:
    test: the test ratings (the queries).
    recommendations: user id -> ranked movie ids (at least the top k).
    k: cut-off.

  Returns:
    Mean over test ratings of [movie in user's top k], in [0, 1].
  """
  if not test:
    raise ValueError('no test ratings')
  tops = {u: set(_top(recommendations, u, k))
          for u in {r.user_id for r in test}}
  hits = sum(r.movie_id in tops[r.user_id] for r in test)
  return hits / len(test)


def precision_at_k(recommended: Sequence[str], relevant: Set[str],
                   k: int) -> float:
  """Hits in the top k over k (not over the list length, as Recommenders).

  The evaluator has no precision (no blessing depends on it), so this is
  its only definition.
  """
  return sum(m in relevant for m in recommended[:k]) / k


def ranking_metrics(test: Sequence[Rating],
                    recommendations: Mapping[str, Sequence[str]],
                    k: int = MSREC_K) -> Dict[str, float]:
  """The `msrec` figures: nDCG, Precision and Recall at k, mean over users.

  Every user with a test rating counts once, with 0 when the top k has no hit
  (Recommenders divides by the number of users common to test and
  predictions; here every test user must have predictions). nDCG and recall
  are the evaluator's (`retrieval_metrics`): Recommenders discounts by
  ln(1 + rank) where the evaluator uses log2, but the base cancels in
  DCG / IDCG, so the figure is the same.

  Args:
    test: the test ratings; any rating makes its movie relevant.
    recommendations: user id -> ranked movie ids, seen movies already removed.
    k: cut-off.

  Returns:
    {'ndcg@k': .., 'precision@k': .., 'recall@k': ..}.
  """
  relevant = movies_by_user(test)
  if not relevant:
    raise ValueError('no test ratings')
  totals = {'ndcg': 0.0, 'precision': 0.0, 'recall': 0.0}
  for user_id, movies in relevant.items():
    top = _top(recommendations, user_id, k)
    totals['ndcg'] += retrieval_metrics.ndcg_at_k(top, movies, k)
    totals['precision'] += precision_at_k(top, movies, k)
    totals['recall'] += retrieval_metrics.recall_at_k(top, movies, k)
  return {f'{name}@{k}': total / len(relevant)
          for name, total in totals.items()}


def seen_share(recommendations: Mapping[str, Sequence[str]],
               train: Iterable[Rating], k: int) -> float:
  """Share of top-k slots holding a movie the user rated in train.

  A diagnostic, not a protocol figure: it must be 0 when seen movies are
  removed (msrec), and shows how much of the top k a recommender spends on
  seen movies when they are not (tfrs).
  """
  seen = movies_by_user(train)
  slots = hits = 0
  for user_id, movies in recommendations.items():
    top = movies[:k]
    slots += len(top)
    hits += sum(m in seen.get(user_id, ()) for m in top)
  return hits / slots if slots else 0.0


def evaluate(protocol: str, test: Sequence[Rating],
             recommendations: Mapping[str, Sequence[str]]) -> Dict[str, float]:
  """The figures of `protocol` for ranked recommendations of every test user."""
  if protocol == TFRS:
    return {TFRS_METRIC: top_k_accuracy(test, recommendations, TFRS_K)}
  if protocol == MSREC:
    return ranking_metrics(test, recommendations, MSREC_K)
  raise ValueError(f'unknown protocol {protocol!r}; known: {PROTOCOLS}')
