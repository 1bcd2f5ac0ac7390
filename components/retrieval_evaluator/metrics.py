"""Top-K retrieval metrics and the most-popular baseline, in plain Python.

No TensorFlow and no TFX: the functions take ranked lists of movie ids and
sets of relevant ids, so they can be checked against hand calculations.

Definitions, for one user with a ranked list `ranked` (best first) and a
non-empty set `relevant` of held-out movies; each is averaged over users:
  - recall@k = |ranked[:k] ∩ relevant| / |relevant|.
  - nDCG@k: binary relevance with a log2 discount,
      DCG@k  = sum over positions i = 1..k of [ranked[i] in relevant] /
               log2(i + 1),
      IDCG@k = sum over i = 1..min(|relevant|, k) of 1 / log2(i + 1)
    (the DCG of a list with every reachable hit on top), nDCG@k = DCG / IDCG.
  - hit_rate@k = 1 if ranked[:k] holds at least one relevant movie, else 0
    (so its average is the share of users with a hit).
Not per user:
  - coverage@k = |distinct catalogue movies in any user's ranked[:k]| /
    |catalogue|: how much of the catalogue the recommender ever shows.

A movie id repeated in a ranked list counts once, at its first position.
Lists may be shorter than k (e.g. the popularity baseline for a user who has
seen almost everything); the missing positions count as misses.

Metric names spell the kind and depth, e.g. 'recall_at_100', 'ndcg_at_10',
'hit_rate_at_100', 'coverage_at_10'; `parse_metric_names` turns them into
`MetricSpec`s.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import re
from typing import (Collection, Dict, Hashable, Iterable, List, Mapping,
                    Optional, Sequence, Tuple)

MovieId = Hashable
UserId = Hashable

RECALL = 'recall'
NDCG = 'ndcg'
HIT_RATE = 'hit_rate'
COVERAGE = 'coverage'
METRIC_KINDS: Tuple[str, ...] = (RECALL, NDCG, HIT_RATE, COVERAGE)

DEFAULT_METRIC_NAMES: Tuple[str, ...] = (
    'recall_at_10', 'recall_at_50', 'recall_at_100', 'ndcg_at_10',
    'hit_rate_at_100', 'coverage_at_10')

_METRIC_NAME = re.compile(r'(recall|ndcg|hit_rate|coverage)_at_([1-9][0-9]*)')


@dataclasses.dataclass(frozen=True)
class MetricSpec:
  """One metric: its kind (one of METRIC_KINDS) and its depth k."""

  kind: str
  k: int

  @property
  def name(self) -> str:
    return f'{self.kind}_at_{self.k}'


def parse_metric_names(names: Sequence[str]) -> List[MetricSpec]:
  """Checks metric names such as 'recall_at_10' and parses them.

  Args:
    names: metric names, `<kind>_at_<k>` with kind in METRIC_KINDS and k a
      positive integer.

  Returns:
    One MetricSpec per name, in the given order.

  Raises:
    ValueError: `names` is not a non-empty list of distinct, well-formed
      names.
  """
  if isinstance(names, (str, bytes)) or not isinstance(names, Sequence):
    raise ValueError(
        f'metric_names must be a list such as {list(DEFAULT_METRIC_NAMES)}, '
        f'got {names!r}.')
  if not names:
    raise ValueError('metric_names is empty, so there would be nothing to '
                     'evaluate.')
  specs = []
  for name in names:
    match = _METRIC_NAME.fullmatch(name) if isinstance(name, str) else None
    if not match:
      raise ValueError(
          f'metric_names: {name!r} is not a metric name. Use '
          f'<kind>_at_<k> with kind one of {list(METRIC_KINDS)} and k a '
          "positive integer, e.g. 'recall_at_100'.")
    specs.append(MetricSpec(kind=match.group(1), k=int(match.group(2))))
  duplicates = sorted(
      name for name, count in collections.Counter(names).items() if count > 1)
  if duplicates:
    raise ValueError(f'metric_names lists {duplicates} more than once.')
  return specs


def max_depth(specs: Iterable[MetricSpec]) -> int:
  """The longest top-K list the metrics need."""
  return max(spec.k for spec in specs)


def _first_k(ranked: Sequence[MovieId], k: int) -> List[MovieId]:
  """ranked[:k] without repeats (a repeated id keeps its first position)."""
  return list(dict.fromkeys(ranked[:k]))


def _check_user(relevant: Collection[MovieId], k: int) -> None:
  if k < 1:
    raise ValueError(f'k must be a positive integer, got {k!r}.')
  if not relevant:
    raise ValueError('relevant is empty; users without held-out movies '
                     'cannot be evaluated.')


def recall_at_k(ranked: Sequence[MovieId], relevant: Collection[MovieId],
                k: int) -> float:
  """|ranked[:k] ∩ relevant| / |relevant| for one user."""
  _check_user(relevant, k)
  relevant = set(relevant)
  hits = sum(1 for movie in _first_k(ranked, k) if movie in relevant)
  return hits / len(relevant)


def ndcg_at_k(ranked: Sequence[MovieId], relevant: Collection[MovieId],
              k: int) -> float:
  """Binary-relevance nDCG@k for one user (see the module docstring)."""
  _check_user(relevant, k)
  relevant = set(relevant)
  dcg = sum(1.0 / math.log2(position + 1)
            for position, movie in enumerate(_first_k(ranked, k), start=1)
            if movie in relevant)
  idcg = sum(1.0 / math.log2(position + 1)
             for position in range(1, min(len(relevant), k) + 1))
  return dcg / idcg


def hit_at_k(ranked: Sequence[MovieId], relevant: Collection[MovieId],
             k: int) -> float:
  """1.0 if ranked[:k] holds any relevant movie, else 0.0, for one user."""
  _check_user(relevant, k)
  relevant = set(relevant)
  return float(any(movie in relevant for movie in ranked[:k]))


def coverage_at_k(rankings: Iterable[Sequence[MovieId]],
                  catalog: Collection[MovieId], k: int) -> float:
  """Share of the catalogue that appears in at least one user's top k.

  Ids outside `catalog` do not count, so the value stays within [0, 1].
  """
  if k < 1:
    raise ValueError(f'k must be a positive integer, got {k!r}.')
  catalog = set(catalog)
  if not catalog:
    raise ValueError('The catalogue is empty; coverage is undefined.')
  shown = set()
  for ranked in rankings:
    shown.update(ranked[:k])
  return len(shown & catalog) / len(catalog)


_PER_USER = {RECALL: recall_at_k, NDCG: ndcg_at_k, HIT_RATE: hit_at_k}


def evaluate(rankings: Mapping[UserId, Sequence[MovieId]],
             relevant: Mapping[UserId, Collection[MovieId]],
             catalog: Collection[MovieId],
             specs: Sequence[MetricSpec]) -> Dict[str, float]:
  """Every metric in `specs`, averaged over the users of `relevant`.

  Args:
    rankings: user -> ranked movie ids, best first; must cover every user of
      `relevant` (other users are ignored).
    relevant: user -> that user's held-out movies; each set non-empty.
    catalog: every movie that could be recommended (for coverage).
    specs: the metrics to compute.

  Returns:
    Metric name -> value, in the order of `specs`.

  Raises:
    ValueError: no users, a user with no relevant movies, or a user missing
      from `rankings`.
  """
  if not relevant:
    raise ValueError('No users to evaluate: relevant is empty.')
  missing = [user for user in relevant if user not in rankings]
  if missing:
    raise ValueError(
        f'{len(missing)} evaluated users have no ranking, e.g. '
        f'{sorted(map(str, missing))[:5]}.')
  results = {}
  for spec in specs:
    if spec.kind == COVERAGE:
      results[spec.name] = coverage_at_k(
          (rankings[user] for user in relevant), catalog, spec.k)
    else:
      metric = _PER_USER[spec.kind]
      total = math.fsum(metric(rankings[user], movies, spec.k)
                        for user, movies in relevant.items())
      results[spec.name] = total / len(relevant)
  return results


def popularity_order(train_counts: Mapping[MovieId, int],
                     catalog: Iterable[MovieId]) -> List[MovieId]:
  """Every catalogue movie, most rated in train first.

  Ties (including every movie never rated in train, with count 0) are broken
  by movie id in ascending order (string order for string ids: '10' comes
  before '9'), so the baseline is deterministic.

  Args:
    train_counts: movie id -> number of train ratings, e.g. a
      `collections.Counter` over the train ratings' movie ids.
    catalog: every candidate movie.

  Returns:
    The catalogue movies, each once, in popularity order. Movies rated in
    train but missing from the catalogue are not candidates.
  """
  return sorted(set(catalog),
                key=lambda movie: (-train_counts.get(movie, 0), movie))


def most_popular(order: Sequence[MovieId],
                 seen: Mapping[UserId, Collection[MovieId]],
                 users: Iterable[UserId],
                 k: int) -> Dict[UserId, List[MovieId]]:
  """The most-popular baseline: per user, the top k of `order` not yet seen.

  Args:
    order: candidates in popularity order (see `popularity_order`).
    seen: user -> movies rated in train, excluded from that user's list;
      a user missing here (cold start) excludes nothing.
    users: the users to rank for.
    k: list length; shorter when a user has seen almost every movie.

  Returns:
    user -> up to k movie ids.
  """
  if k < 1:
    raise ValueError(f'k must be a positive integer, got {k!r}.')
  rankings = {}
  for user in users:
    exclude = set(seen.get(user, ()))
    ranked = []
    # Walks the shared order, so the cost is O(k + |seen|) per user.
    for movie in order:
      if movie not in exclude:
        ranked.append(movie)
        if len(ranked) == k:
          break
    rankings[user] = ranked
  return rankings


def relative_lift(value: float, reference: float) -> Optional[float]:
  """value / reference - 1 (0.25 means 25% better); None if reference is 0."""
  if reference == 0:
    return None
  return value / reference - 1.0
