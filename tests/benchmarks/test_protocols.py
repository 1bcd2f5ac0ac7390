"""Tests for benchmarks.protocols: splits, train folders and metrics."""

import collections
import math
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import protocols
from components.retrieval_evaluator import metrics as retrieval_metrics
from movielens import layout
from movielens import synthetic
from movielens.layout import Rating

pytestmark = pytest.mark.unit


def _rating(user_id, movie_id, rating=4.0, timestamp=0):
  return Rating(user_id=str(user_id), movie_id=str(movie_id), rating=rating,
                timestamp=timestamp)


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
  """A synthetic raw ml-100k folder: 100 users, 200 movies, 2000 ratings."""
  path = tmp_path_factory.mktemp('ml-synthetic')
  synthetic.generate(str(path), num_users=100, num_movies=200,
                     num_ratings=2000, seed=0)
  return path


@pytest.fixture(scope='module')
def dataset(folder):
  return protocols.load_ml100k(str(folder))


def _pairs(ratings):
  return collections.Counter((r.user_id, r.movie_id) for r in ratings)


# --- Loading -----------------------------------------------------------------


def test_load_reads_every_file(dataset):
  assert len(dataset.ratings) == 2000
  assert len(dataset.movie_ids) == 200
  assert len(dataset.user_ids) == 100
  assert set(dataset.movie_ids) >= {r.movie_id for r in dataset.ratings}


def test_load_names_file_and_line_of_a_bad_line(tmp_path, folder):
  for name in ('u.item', 'u.user'):
    (tmp_path / name).write_bytes((folder / name).read_bytes())
  (tmp_path / 'u.data').write_bytes(b'1\t2\t3\t0\n1\t3\t9\t0\n')
  with pytest.raises(layout.RawDataError, match=r'u\.data:2: .*rating'):
    protocols.load_ml100k(str(tmp_path))


def test_load_missing_folder_says_what_to_pass(tmp_path):
  with pytest.raises(layout.RawDataError, match='--data-dir'):
    protocols.load_ml100k(str(tmp_path / 'nowhere'))


# --- tfrs split --------------------------------------------------------------


@pytest.mark.parametrize('num_ratings, num_train', [
    (2000, 1600),
    (1001, 801),  # round(800.8)
    (100_000, 80_000),
    (5, 4),
])
def test_random_split_sizes_are_exact(num_ratings, num_train):
  ratings = [_rating(i % 7, i) for i in range(num_ratings)]
  split = protocols.random_split(ratings, 0.8, seed=1)
  assert len(split.train) == num_train
  assert len(split.test) == num_ratings - num_train


def test_random_split_partitions_the_ratings(dataset):
  split = protocols.random_split(dataset.ratings)
  assert _pairs(split.train) + _pairs(split.test) == _pairs(dataset.ratings)
  assert not set(split.train) & set(split.test)


def test_random_split_is_deterministic_by_seed(dataset):
  first = protocols.random_split(dataset.ratings, seed=42)
  again = protocols.random_split(dataset.ratings, seed=42)
  other = protocols.random_split(dataset.ratings, seed=43)
  assert first == again
  assert set(first.test) != set(other.test)


def test_random_split_keeps_input_order(dataset):
  split = protocols.random_split(dataset.ratings)
  position = {r: i for i, r in enumerate(dataset.ratings)}
  train_positions = [position[r] for r in split.train]
  assert train_positions == sorted(train_positions)


def test_split_rejects_bad_fraction():
  with pytest.raises(ValueError, match='train_fraction'):
    protocols.random_split([_rating(1, 1)], 1.0)
  with pytest.raises(ValueError, match='train_fraction'):
    protocols.stratified_split([_rating(1, 1)], 0.0)


# --- msrec split -------------------------------------------------------------


def test_stratified_split_puts_75_percent_of_each_user_in_train(dataset):
  split = protocols.stratified_split(dataset.ratings)
  counts = collections.Counter(r.user_id for r in dataset.ratings)
  train = collections.Counter(r.user_id for r in split.train)
  for user_id, count in counts.items():
    # round(0.75 * count) to train: at most half a rating off 75%.
    assert abs(train[user_id] - 0.75 * count) <= 0.5
    assert train[user_id] == int(np.round(0.75 * count))
  assert _pairs(split.train) + _pairs(split.test) == _pairs(dataset.ratings)


def test_stratified_split_every_test_user_is_in_train(dataset):
  split = protocols.stratified_split(dataset.ratings)
  assert {r.user_id for r in split.test} <= {r.user_id for r in split.train}


def test_stratified_split_rounds_half_to_even():
  # Recommenders rounds round(0.75 * count) with numpy: half to even.
  # 2 ratings: 1.5 -> 2 to train; 6: 4.5 -> 4; 10: 7.5 -> 8; 3: 2.25 -> 2.
  ratings = ([_rating('a', m) for m in range(2)] +
             [_rating('b', m) for m in range(6)] +
             [_rating('c', m) for m in range(10)] +
             [_rating('d', m) for m in range(3)])
  split = protocols.stratified_split(ratings, 0.75, seed=0)
  train = collections.Counter(r.user_id for r in split.train)
  assert train == {'a': 2, 'b': 4, 'c': 8, 'd': 2}


def test_stratified_split_replays_the_recommenders_draws():
  # np.random.RandomState(42).rand(4) = [0.3745, 0.9507, 0.7320, 0.5987]:
  # one draw per rating in input order. One user, 4 ratings: round(3.0) = 3
  # to train, those with the smallest draws (movies 0, 3, 2); movie 1, with
  # the largest draw, is the test rating.
  ratings = [_rating('u', m) for m in range(4)]
  split = protocols.stratified_split(ratings, 0.75, seed=42)
  assert [r.movie_id for r in split.test] == ['1']
  assert [r.movie_id for r in split.train] == ['0', '2', '3']


def test_stratified_split_is_deterministic_by_seed(dataset):
  first = protocols.stratified_split(dataset.ratings, seed=42)
  assert first == protocols.stratified_split(dataset.ratings, seed=42)
  assert first != protocols.stratified_split(dataset.ratings, seed=7)


def test_stratified_split_by_item(dataset):
  split = protocols.stratified_split(dataset.ratings, by='item')
  counts = collections.Counter(r.movie_id for r in dataset.ratings)
  train = collections.Counter(r.movie_id for r in split.train)
  for movie_id, count in counts.items():
    assert train[movie_id] == int(np.round(0.75 * count))


def test_stratified_split_rejects_unknown_grouping():
  with pytest.raises(ValueError, match="'user' or 'item'"):
    protocols.stratified_split([_rating(1, 1)], by='movie')


def test_split_by_protocol_name(dataset):
  assert protocols.split('tfrs', dataset.ratings) == protocols.random_split(
      dataset.ratings, 0.8, 42)
  assert protocols.split('msrec', dataset.ratings) == (
      protocols.stratified_split(dataset.ratings, 0.75, 42))
  with pytest.raises(ValueError, match='unknown protocol'):
    protocols.split('netflix', dataset.ratings)


# --- Train folder ------------------------------------------------------------


def test_train_folder_parses_back_with_the_layout_parsers(tmp_path, folder,
                                                          dataset):
  split = protocols.split('msrec', dataset.ratings)
  dest = tmp_path / 'train'
  assert protocols.write_train_folder(split.train, str(folder),
                                      str(dest)) == str(dest)

  lines = (dest / 'u.data').read_bytes().splitlines(keepends=True)
  assert [layout.parse_ml100k_rating(l) for l in lines] == list(split.train)
  # The catalogue and users are complete, byte for byte.
  for name in ('u.item', 'u.user'):
    assert (dest / name).read_bytes() == (folder / name).read_bytes()
  reloaded = protocols.load_ml100k(str(dest))
  assert reloaded.movie_ids == dataset.movie_ids
  assert reloaded.user_ids == dataset.user_ids


# --- tfrs metric -------------------------------------------------------------


def test_top_k_accuracy_counts_test_ratings():
  test = [_rating('u1', 'a'), _rating('u1', 'b'), _rating('u2', 'c')]
  recommendations = {'u1': ['a', 'x', 'b'], 'u2': ['y', 'z', 'c']}
  # k=2: u1's top 2 is {a, x}: 'a' hits, 'b' (rank 3) misses; u2's {y, z}
  # misses 'c'. 1 hit over 3 test ratings.
  assert protocols.top_k_accuracy(test, recommendations, k=2) == (
      pytest.approx(1 / 3))
  # k=3: a, b and c all hit.
  assert protocols.top_k_accuracy(test, recommendations, k=3) == 1.0


def test_top_k_accuracy_needs_every_test_user():
  with pytest.raises(ValueError, match="test user 'u2'"):
    protocols.top_k_accuracy([_rating('u2', 'a')], {'u1': ['a']}, k=1)


def test_top_k_accuracy_rejects_repeated_movies():
  with pytest.raises(ValueError, match='repeats'):
    protocols.top_k_accuracy([_rating('u1', 'a')], {'u1': ['a', 'a']}, k=2)


# --- msrec metrics -----------------------------------------------------------


def _one_user(recommended, relevant, k):
  """The msrec figures of one user whose test movies are `relevant`."""
  return protocols.ranking_metrics([_rating('u1', m) for m in relevant],
                                   {'u1': recommended}, k=k)


def test_ndcg_hand_computed_is_the_evaluators():
  # Hits at ranks 1 and 3 of [a, b, c, d]; 3 relevant movies {a, c, e}.
  # DCG  = 1/log2(2) + 1/log2(4) = 1 + 0.5 = 1.5
  # IDCG = 1/log2(2) + 1/log2(3) + 1/log2(4) = 1 + 0.63093 + 0.5 = 2.13093
  # nDCG = 1.5 / 2.13093 = 0.703918
  recommended, relevant = ['a', 'b', 'c', 'd'], ['a', 'c', 'e']
  published = _one_user(recommended, relevant, k=10)['ndcg@10']
  assert published == pytest.approx(0.7039180890341347)
  assert published == retrieval_metrics.ndcg_at_k(recommended, relevant, 10)


def test_ndcg_ideal_is_cut_at_k():
  # k=2, one hit at rank 2, 3 relevant: IDCG counts only min(2, 3) = 2 ranks.
  # DCG = 1/log2(3) = 0.63093; IDCG = 1 + 0.63093; nDCG = 0.386853.
  assert _one_user(['x', 'a', 'b'], ['a', 'b', 'c'], k=2)['ndcg@2'] == (
      pytest.approx(0.38685280723454163))


def test_ndcg_log_base_cancels_as_in_recommenders():
  # Recommenders divides by ln(1 + rank); the base cancels in DCG / IDCG,
  # so its nDCG and the evaluator's (log2) agree.
  dcg = 1 / math.log(1 + 1) + 1 / math.log(1 + 3)
  idcg = sum(1 / math.log(1 + r) for r in (1, 2, 3))
  assert _one_user(['a', 'b', 'c', 'd'], ['a', 'c', 'e'],
                   k=10)['ndcg@10'] == pytest.approx(dcg / idcg)


def test_ndcg_perfect_and_empty_lists():
  assert _one_user(['a', 'b'], ['a', 'b'], k=10)['ndcg@10'] == 1.0
  assert _one_user([], ['a'], k=10)['ndcg@10'] == 0.0


def test_precision_divides_by_k_and_recall_by_relevant():
  # 2 hits (a, c) in a 4-movie list; k=10, 3 relevant movies.
  # Precision = 2 / 10 (by k, even for a shorter list); recall = 2 / 3.
  recommended, relevant = ['a', 'b', 'c', 'd'], ['a', 'c', 'e']
  assert protocols.precision_at_k(recommended, set(relevant), 10) == 0.2
  assert _one_user(recommended, relevant, k=10) == {
      'ndcg@10': pytest.approx(0.7039180890341347), 'precision@10': 0.2,
      'recall@10': pytest.approx(2 / 3)}
  # Only the first k count: k=2 sees one hit (a): 1/2 and 1/3.
  assert _one_user(recommended, relevant, k=2)['precision@2'] == 0.5
  assert _one_user(recommended, relevant, k=2)['recall@2'] == (
      pytest.approx(1 / 3))


def test_tfrs_accuracy_is_the_evaluators_hit_rate_with_one_rating_per_user():
  # One test rating per user: u1's 'a' at rank 1, u2's 'c' at rank 3 (out
  # of the top 2), u3's 'f' at rank 2. Per rating and per user: 2 hits of 3.
  test = [_rating('u1', 'a'), _rating('u2', 'c'), _rating('u3', 'f')]
  recommendations = {'u1': ['a', 'b', 'c'], 'u2': ['a', 'b', 'c'],
                     'u3': ['e', 'f', 'g']}
  relevant = protocols.movies_by_user(test)
  by_user = retrieval_metrics.evaluate(
      recommendations, relevant, catalog=(),
      specs=retrieval_metrics.parse_metric_names(
          ['hit_rate_at_2', 'recall_at_2']))
  assert protocols.top_k_accuracy(test, recommendations, k=2) == 2 / 3
  assert by_user == {'hit_rate_at_2': 2 / 3, 'recall_at_2': 2 / 3}


def test_tfrs_accuracy_weighs_users_by_their_test_ratings():
  # Why the tfrs figure keeps its own definition: u1 has 3 test ratings, all
  # in its top 3; u2 has one, a miss. Per rating: 3 hits of 4 = 3/4. The
  # evaluator's recall@3, per user: (3/3 + 0/1) / 2 = 1/2.
  test = [_rating('u1', 'a'), _rating('u1', 'b'), _rating('u1', 'c'),
          _rating('u2', 'z')]
  recommendations = {'u1': ['a', 'b', 'c'], 'u2': ['a', 'b', 'c']}
  by_user = retrieval_metrics.evaluate(
      recommendations, protocols.movies_by_user(test), catalog=(),
      specs=retrieval_metrics.parse_metric_names(['recall_at_3']))
  assert protocols.top_k_accuracy(test, recommendations, k=3) == 3 / 4
  assert by_user == {'recall_at_3': 1 / 2}


def test_ranking_metrics_average_over_test_users():
  test = [_rating('u1', 'a'), _rating('u2', 'e'), _rating('u2', 'f')]
  recommendations = {'u1': ['a', 'b'], 'u2': ['c', 'd'], 'u3': ['a', 'e']}
  # u1: hit at rank 1 of 1 relevant: nDCG 1, precision 1/2, recall 1.
  # u2: no hit: 0, 0, 0. u3 has no test ratings: not counted.
  # Means over 2 users: nDCG 0.5, precision 0.25, recall 0.5.
  assert protocols.ranking_metrics(test, recommendations, k=2) == {
      'ndcg@2': 0.5, 'precision@2': 0.25, 'recall@2': 0.5}


def test_ranking_metrics_needs_every_test_user():
  with pytest.raises(ValueError, match="test user 'u2'"):
    protocols.ranking_metrics([_rating('u2', 'a')], {'u1': ['a']}, k=10)


def test_evaluate_names_the_protocol_figures():
  test = [_rating('u1', 'a')]
  assert protocols.evaluate('tfrs', test, {'u1': ['a']}) == {
      'factorized_top_k/top_100_categorical_accuracy': 1.0}
  assert set(protocols.evaluate('msrec', test, {'u1': ['a']})) == {
      'ndcg@10', 'precision@10', 'recall@10'}


def test_seen_share_counts_slots_holding_training_movies():
  train = [_rating('u1', 'a'), _rating('u2', 'z')]
  recommendations = {'u1': ['a', 'b'], 'u2': ['c', 'd']}
  # One slot of four (u1's 'a') holds a training movie.
  assert protocols.seen_share(recommendations, train, k=2) == 0.25
  # k=1 looks at 'a' and 'c': 1 of 2.
  assert protocols.seen_share(recommendations, train, k=1) == 0.5


@pytest.mark.parametrize('release, ratings_file, header', [
    ('ml-25m', 'ratings.csv', 'userId,movieId,rating,timestamp\n'),
    ('ml-1m', 'ratings.dat', None)])
def test_other_layouts_load_and_write_back_their_own_layout(
    tmp_path, release, ratings_file, header):
  # A small synthetic release in the layout: the split's train folder keeps
  # the layout (header included), and reloads to the same ratings.
  source = tmp_path / release
  subprocess.run(
      [sys.executable, '-m', 'movielens.synthetic', '--layout', release,
       '--users', '30', '--movies', '40', '--ratings', '600', '--seed', '3',
       '--dest', str(source)], check=True, capture_output=True)
  dataset = protocols.load_dataset(str(source))
  assert len(dataset.ratings) == 600
  assert len(set(r.user_id for r in dataset.ratings)) == 30
  assert len(dataset.movie_ids) == 40
  split = protocols.split('msrec', dataset.ratings)
  dest = tmp_path / 'train'
  protocols.write_train_folder(split.train, str(source), str(dest))
  text = (dest / ratings_file).read_text(encoding='utf-8')
  if header:
    assert text.startswith(header)
  reloaded = protocols.load_dataset(str(dest))
  assert reloaded.ratings == split.train
  assert reloaded.movie_ids == dataset.movie_ids
