"""Reference recommenders for the benchmarks: most-popular and EASE.

Both learn from implicit feedback: a training rating, whatever its stars, is
a 1 in the binary user x movie matrix X ([num_users, num_movies]). Both rank
the whole catalogue (every movie of u.item, rated or not) and share one
interface, `recommend(user_ids, k, exclude_seen)`.

Ties (equal scores) are broken by training popularity, then by catalogue
order, so rankings are deterministic. A user without training ratings gets an
empty history: most-popular serves the global ranking, EASE scores every
movie 0 and so falls back to popularity as well.

numpy and scipy only; no TensorFlow.
"""

from __future__ import annotations

from typing import Iterable, List, Protocol, Sequence

import numpy as np
from scipy import sparse

from movielens.layout import Rating

# Users scored per matrix product; bounds memory to batch x num_movies floats.
_BATCH_USERS = 1024
# Steck (2019) reports lambda in the hundreds for MovieLens; the benchmark
# script picks one by validation on the training data.
DEFAULT_EASE_L2 = 500.0


class Recommender(Protocol):
  """Anything that ranks the catalogue for users."""

  def recommend(self, user_ids: Sequence[str], k: int,
                exclude_seen: bool) -> List[List[str]]:
    """Top k movie ids per user, best first.

    Args:
      user_ids: the users to recommend for.
      k: list length; shorter only when fewer movies are left.
      exclude_seen: remove the movies each user rated in training.

    Returns:
      One list of movie ids per user, in `user_ids` order.
    """


class _MatrixRecommender:
  """Indexes and the binary training matrix; ranks scores from `_scores`."""

  def __init__(self, train: Iterable[Rating], movie_ids: Sequence[str]):
    self.movie_ids = tuple(movie_ids)
    movie_index = {m: i for i, m in enumerate(self.movie_ids)}
    if len(movie_index) != len(self.movie_ids):
      raise ValueError('movie_ids repeats ids')
    self._user_index = {}
    rows, cols = [], []
    for rating in train:
      if rating.movie_id not in movie_index:
        raise ValueError(f'training rating of movie {rating.movie_id!r}, '
                         'which is not in the catalogue')
      rows.append(self._user_index.setdefault(rating.user_id,
                                              len(self._user_index)))
      cols.append(movie_index[rating.movie_id])
    matrix = sparse.csr_matrix(
        (np.ones(len(rows)), (rows, cols)),
        shape=(len(self._user_index), len(self.movie_ids)))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0  # Binary: a repeated (user, movie) is still a 1.
    self._matrix = matrix
    # popularity: [num_movies], number of training users per movie.
    self.popularity = np.asarray(matrix.sum(axis=0)).ravel()
    # Catalogue indices by popularity, ties in catalogue order: the
    # tie-break of every ranking.
    self._tie_order = np.argsort(-self.popularity, kind='stable')

  def _history(self, user_ids: Sequence[str]) -> np.ndarray:
    """[len(user_ids), num_movies] binary training rows; zeros if unknown."""
    history = np.zeros((len(user_ids), len(self.movie_ids)))
    known = [(i, self._user_index[u]) for i, u in enumerate(user_ids)
             if u in self._user_index]
    if known:
      positions, rows = zip(*known)
      history[list(positions)] = self._matrix[list(rows)].toarray()
    return history

  def _scores(self, history: np.ndarray) -> np.ndarray:
    """[batch, num_movies] scores from [batch, num_movies] histories."""
    raise NotImplementedError

  def recommend(self, user_ids: Sequence[str], k: int,
                exclude_seen: bool) -> List[List[str]]:
    """See `Recommender.recommend`."""
    if k < 1:
      raise ValueError(f'k must be at least 1, got {k}')
    user_ids = list(user_ids)
    result = []
    for start in range(0, len(user_ids), _BATCH_USERS):
      history = self._history(user_ids[start:start + _BATCH_USERS])
      scores = self._scores(history)
      if exclude_seen:
        scores = np.where(history > 0, -np.inf, scores)
      # Stable sort of the popularity-ordered columns: equal scores keep the
      # tie-break order.
      by_tie = scores[:, self._tie_order]
      ranked = self._tie_order[np.argsort(-by_tie, axis=1, kind='stable')]
      for row, order in zip(scores, ranked[:, :k]):
        result.append([self.movie_ids[j] for j in order
                       if row[j] != -np.inf])
    return result


class MostPopular(_MatrixRecommender):
  """Ranks movies by their number of training ratings, the same for all."""

  def _scores(self, history: np.ndarray) -> np.ndarray:
    return np.broadcast_to(self.popularity, history.shape).astype(float)


class Ease(_MatrixRecommender):
  """EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data",
  WWW 2019): a closed-form item-item model.

  With G = XᵀX + λI and P = G⁻¹, the weights are B = I - P·diag(1/diag(P)),
  i.e. B[i, j] = -P[i, j] / P[j, j] off the diagonal and B[j, j] = 0: the
  least-squares fit of X by XB under the constraint diag(B) = 0, with L2
  penalty λ. A user's scores are their history row times B.

  A movie without training ratings has a zero column in X, so its column of
  B is 0 and it scores 0 for everyone.
  """

  def __init__(self, train: Iterable[Rating], movie_ids: Sequence[str],
               l2: float = DEFAULT_EASE_L2):
    """Fits B.

    Args:
      train: training ratings (binarised).
      movie_ids: the catalogue.
      l2: λ, the L2 penalty; larger values shrink B towards popularity.
    """
    if l2 <= 0:
      raise ValueError(f'l2 must be positive, got {l2}')
    super().__init__(train, movie_ids)
    self.l2 = l2
    gram = (self._matrix.T @ self._matrix).toarray()  # [movies, movies]
    gram[np.diag_indices_from(gram)] += l2
    precision = np.linalg.inv(gram)
    # weights: [num_movies, num_movies]; column j predicts movie j.
    self.weights = -precision / np.diag(precision)[np.newaxis, :]
    self.weights[np.diag_indices_from(self.weights)] = 0.0

  def _scores(self, history: np.ndarray) -> np.ndarray:
    return history @ self.weights
