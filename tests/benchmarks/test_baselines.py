"""Tests for benchmarks.baselines: most-popular and EASE on tiny data."""

import numpy as np
import pytest

from benchmarks import baselines
from movielens.layout import Rating

pytestmark = pytest.mark.unit

CATALOGUE = ('m1', 'm2', 'm3', 'm4')


def _ratings(pairs):
  return [Rating(user_id=u, movie_id=m, rating=3.0, timestamp=0)
          for u, m in pairs]


# Training counts: m2 3 users, m1 2, m3 2, m4 none.
TRAIN = _ratings([('u1', 'm1'), ('u1', 'm2'), ('u2', 'm2'), ('u2', 'm3'),
                  ('u3', 'm1'), ('u3', 'm2'), ('u3', 'm3')])


# --- Most popular ------------------------------------------------------------


def test_most_popular_orders_by_count_ties_in_catalogue_order():
  model = baselines.MostPopular(TRAIN, CATALOGUE)
  # m2 (3) first; m1 and m3 tie at 2, catalogue order; m4 (0) last.
  assert model.recommend(['u1'], k=4, exclude_seen=False) == [
      ['m2', 'm1', 'm3', 'm4']]
  np.testing.assert_array_equal(model.popularity, [2, 3, 2, 0])


def test_most_popular_excludes_seen_movies():
  model = baselines.MostPopular(TRAIN, CATALOGUE)
  # u1 rated m1 and m2; u2 rated m2 and m3.
  assert model.recommend(['u1', 'u2'], k=2, exclude_seen=True) == [
      ['m3', 'm4'], ['m1', 'm4']]


def test_most_popular_cuts_at_k_and_serves_unknown_users():
  model = baselines.MostPopular(TRAIN, CATALOGUE)
  assert model.recommend(['stranger'], k=2, exclude_seen=True) == [
      ['m2', 'm1']]


def test_fewer_than_k_when_seen_movies_fill_the_catalogue():
  model = baselines.MostPopular(TRAIN, CATALOGUE)
  # u3 rated m1, m2, m3: only m4 is left.
  assert model.recommend(['u3'], k=4, exclude_seen=True) == [['m4']]


def test_repeated_ratings_count_once():
  model = baselines.MostPopular(
      _ratings([('u1', 'm1'), ('u1', 'm1'), ('u2', 'm2'), ('u3', 'm2')]),
      CATALOGUE)
  np.testing.assert_array_equal(model.popularity, [1, 2, 0, 0])


def test_rating_outside_the_catalogue_is_an_error():
  with pytest.raises(ValueError, match="'m9'"):
    baselines.MostPopular(_ratings([('u1', 'm9')]), CATALOGUE)


def test_k_must_be_positive():
  with pytest.raises(ValueError, match='k must be'):
    baselines.MostPopular(TRAIN, CATALOGUE).recommend(['u1'], 0, False)


# --- EASE --------------------------------------------------------------------


def _binary_matrix():
  # X: [users u1, u2, u3] x [movies m1..m4], the 1s of TRAIN.
  return np.array([[1, 1, 0, 0],
                   [0, 1, 1, 0],
                   [1, 1, 1, 0]], dtype=float)


def test_ease_weights_match_the_closed_form():
  l2 = 0.5
  x = _binary_matrix()
  # Steck (2019): P = (XᵀX + λI)⁻¹, B = I - P · diag(1 / diag(P)).
  p = np.linalg.inv(x.T @ x + l2 * np.eye(4))
  expected = np.eye(4) - p @ np.diag(1 / np.diag(p))
  model = baselines.Ease(TRAIN, CATALOGUE, l2=l2)
  np.testing.assert_allclose(model.weights, expected, atol=1e-12)
  np.testing.assert_allclose(np.diag(model.weights), 0.0, atol=1e-12)


def test_ease_recommends_by_history_times_weights():
  l2 = 0.5
  x = _binary_matrix()
  p = np.linalg.inv(x.T @ x + l2 * np.eye(4))
  scores = x @ (np.eye(4) - p @ np.diag(1 / np.diag(p)))  # [3 users, 4]
  model = baselines.Ease(TRAIN, CATALOGUE, l2=l2)
  recommended = model.recommend(['u1', 'u2', 'u3'], k=4, exclude_seen=False)
  for row, movies in zip(scores, recommended):
    ranked = [CATALOGUE[j] for j in np.argsort(-row, kind='stable')]
    assert movies == ranked
  # With exclusion, u1 (rated m1, m2) gets the other two, best first.
  unseen = [CATALOGUE[j] for j in np.argsort(-scores[0], kind='stable')
            if CATALOGUE[j] not in ('m1', 'm2')]
  assert model.recommend(['u1'], k=4, exclude_seen=True) == [unseen]


def test_ease_unrated_movie_scores_zero():
  # m4 has no training rating: its column of X, hence of B, is zero.
  model = baselines.Ease(TRAIN, CATALOGUE, l2=0.5)
  np.testing.assert_array_equal(model.weights[:, 3], 0.0)


def test_ease_unknown_user_falls_back_to_popularity():
  # Empty history: every score is 0; ties go by popularity.
  model = baselines.Ease(TRAIN, CATALOGUE, l2=0.5)
  assert model.recommend(['stranger'], k=4, exclude_seen=True) == [
      ['m2', 'm1', 'm3', 'm4']]


def test_ease_rejects_non_positive_l2():
  with pytest.raises(ValueError, match='l2 must be positive'):
    baselines.Ease(TRAIN, CATALOGUE, l2=0.0)
