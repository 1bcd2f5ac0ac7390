"""benchmarks.ranking_quality: the RMSE on a hand case, picking the newest
pushed version, and the README section it writes."""

import math

import pytest

from benchmarks import ranking_quality as rk
from movielens.layout import Rating

pytestmark = pytest.mark.unit


def _rating(user, movie, rating):
  return Rating(user_id=user, movie_id=movie, rating=rating, timestamp=0)


def test_rmse_of_hand_computed_errors():
  pairs = [_rating('1', 'a', 4.0), _rating('1', 'b', 2.0),
           _rating('2', 'a', 5.0)]
  # Errors 1, 0, 2 -> sqrt((1 + 0 + 4) / 3) = 1.290994
  assert rk.rmse(pairs, [3.0, 2.0, 3.0]) == pytest.approx(math.sqrt(5 / 3))


def test_rmse_of_nothing_is_an_error():
  with pytest.raises(ValueError, match='no ratings'):
    rk.rmse([], [])


def test_latest_version_compares_as_integers(tmp_path):
  for version in ('9', '10', '.staging'):
    (tmp_path / 'serving' / 'ranking' / version).mkdir(parents=True)
  assert rk.latest_version(str(tmp_path), 'ranking').endswith('ranking/10')
  with pytest.raises(RuntimeError, match='no pushed recommender'):
    rk.latest_version(str(tmp_path), 'recommender')


def test_update_readme_adds_then_replaces_its_section(tmp_path):
  readme = tmp_path / 'README.md'
  readme.write_text('# Benchmarks\n')

  rk.update_readme(str(readme), 'first')
  rk.update_readme(str(readme), 'second')

  text = readme.read_text()
  assert text.count(rk.RESULTS_BEGIN) == 1
  assert 'second' in text and 'first' not in text
  assert text.startswith('# Benchmarks\n')
