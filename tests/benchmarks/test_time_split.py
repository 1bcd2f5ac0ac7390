"""The global time split: cut-offs, test users and movies, the recent
popularity baselines and the metrics, on hand-built ratings."""

import pytest

from benchmarks import protocols
from benchmarks import time_split
from movielens.layout import Rating

pytestmark = pytest.mark.unit

DAY = 24 * 3600
WEEK = 7 * DAY


def _r(user, movie, when):
  return Rating(user_id=user, movie_id=movie, rating=4.0, timestamp=when)


# Users 'a' and 'b' rate before the cut-off (t = 10 weeks); 'c' only after.
RATINGS = (
    _r('a', 'm1', 1 * WEEK), _r('b', 'm1', 2 * WEEK), _r('a', 'm2', 3 * WEEK),
    _r('b', 'm3', 9 * WEEK + DAY), _r('a', 'm3', 9 * WEEK + 2 * DAY),
    # After the cut-off:
    _r('a', 'm4', 10 * WEEK), _r('b', 'm2', 10 * WEEK + DAY),
    _r('c', 'm1', 10 * WEEK + 2 * DAY), _r('b', 'm4', 11 * WEEK),
)
MOVIES = ('m1', 'm2', 'm3', 'm4', 'm5')


def test_quantile_times_cut_the_ratings_by_share():
  assert time_split.quantile_time(RATINGS, 0.5) == RATINGS[4].timestamp
  assert time_split.quantile_time(RATINGS, 1.0) == 11 * WEEK + 1


def test_test_holds_later_ratings_of_users_with_train_history_only():
  split = time_split.time_split(RATINGS, 10 * WEEK, 11 * WEEK)
  assert split.train == RATINGS[:5]
  # 'c' has no train rating; b's rating at 11 weeks is past the end.
  assert split.test == (RATINGS[5], RATINGS[6])


def test_recent_popularity_counts_the_window_and_breaks_ties_by_all_time():
  train = RATINGS[:5]
  overall = time_split.popularity_scores(train, MOVIES)
  # m1 and m3 twice (tie: catalogue order), m2 once; m4, m5 never.
  assert time_split.rank(overall, MOVIES, ['c'], {}, k=5) == {
      'c': ['m1', 'm3', 'm2', 'm4', 'm5']}
  # Last week before 10 weeks: only m3 (twice); then m1 (2 all-time)
  # before m2 (1).
  recent = time_split.popularity_scores(train, MOVIES, since=9 * WEEK)
  ranked = time_split.rank(recent, MOVIES, ['a', 'b'],
                           protocols.movies_by_user(train), k=3)
  assert ranked == {'a': ['m4', 'm5'], 'b': ['m2', 'm4', 'm5']}
  assert recent[MOVIES.index('m3')] > recent[MOVIES.index('m1')] > (
      recent[MOVIES.index('m2')])


def test_metrics_on_a_hand_computed_case():
  test = (RATINGS[5], RATINGS[6])  # a -> m4, b -> m2
  recs = {'a': ['m5', 'm4'], 'b': ['m2', 'm5']}
  figures = time_split.metrics(test, recs)
  # a: hit at rank 2: nDCG 1/log2(3); b: hit at rank 1: nDCG 1.
  assert figures['ndcg@10'] == pytest.approx((1 / 1.5849625 + 1) / 2,
                                             abs=1e-6)
  assert figures['precision@10'] == pytest.approx(0.1)
  assert figures['recall@10'] == 1.0
  assert 'recall@100' not in figures  # The lists are shorter than 100.


def test_cutoffs_are_parsed_and_bad_ones_named():
  assert time_split.parse_cutoffs('0.7:0.9,0.8:1') == [(0.7, 0.9), (0.8, 1.0)]
  with pytest.raises(Exception, match='expected 0 < START < END <= 1'):
    time_split.parse_cutoffs('0.9:0.8')
  with pytest.raises(Exception, match='expected START:END quantiles'):
    time_split.parse_cutoffs('0.8')


def _runs(monkeypatch, tmp_path, *flags):
  """The pipeline runs `main` asks `run` for."""
  calls = []
  monkeypatch.setattr(time_split, 'run', lambda *args: calls.append(args) or {
      'cutoffs': []})
  time_split.main(['--skip-pipeline', '--no-readme', '--output',
                   str(tmp_path / 'out.json'), *flags])
  return calls[0][-1]


def test_hparams_reach_both_runs_of_the_pipeline(monkeypatch, tmp_path):
  runs = _runs(monkeypatch, tmp_path, '--hparam', 'seed=1',
               '--ranking-hparam', 'dropout=0.1')

  assert runs == {
      'ours': ['--hparam', 'seed=1', '--ranking-hparam', 'dropout=0.1'],
      'ours, trend': ['--hparam', 'seed=1', '--ranking-hparam', 'dropout=0.1',
                      '--hparam', 'trend_windows=7,28',
                      '--ranking-hparam', 'trend_windows=7,28'],
  }


def test_no_trend_runs_the_pipeline_once(monkeypatch, tmp_path):
  assert _runs(monkeypatch, tmp_path, '--no-trend') == {'ours': []}
