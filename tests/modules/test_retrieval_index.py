"""modules/retrieval_index.py: index kinds, the ScaNN configuration rule,
recall against brute force, and the ScaNN index itself (exact answers on a
hand case, exclusions, heavy exclusions beyond the re-scored candidates,
saved and reloaded). ScaNN tests are skipped when it is not installed."""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from modules import retrieval_index
from pipeline import configs

pytestmark = pytest.mark.unit

needs_scann = pytest.mark.skipif(
    not retrieval_index.scann_available(),
    reason=f'ScaNN not installed ({retrieval_index.SCANN_INSTALL})')

# Five 2-d candidates. Scores q . c:
#
#   query        c0   c1   c2   c3   c4   ranking
#   [1, 0]        3    0    2    1   -2   c0 c2 c3 c1 c4
#   [0, 1]        0    3    1   -1    2   c1 c4 c2 c0 c3
#   [-1, 0]      -3    0   -2   -1    2   c4 c1 c3 c2 c0
CANDIDATES = np.array([[3., 0.], [0., 3.], [2., 1.], [1., -1.], [-2., 2.]],
                      np.float32)
QUERIES = tf.constant([[1., 0.], [0., 1.], [-1., 0.]])
EXCLUDED = -1e9


# ------------------------------------------------------------------ kinds


def test_check_index_accepts_the_known_kinds():
  assert retrieval_index.check_index('brute_force') == 'brute_force'
  assert retrieval_index.check_index('scann') == 'scann'


def test_check_index_names_the_known_kinds():
  with pytest.raises(ValueError, match=r"Unknown retrieval index 'annoy'; "
                     r'known: brute_force, scann'):
    retrieval_index.check_index('annoy')


def test_the_runner_offers_the_same_kinds():
  assert configs.RETRIEVAL_INDEXES == retrieval_index.INDEXES
  assert configs.RETRIEVAL_INDEX == retrieval_index.BRUTE_FORCE


def test_without_scann_the_error_says_what_to_install(monkeypatch):
  # A None entry makes `import scann` fail, as when it is not installed.
  monkeypatch.setitem(sys.modules, 'scann', None)

  with pytest.raises(ImportError) as raised:
    retrieval_index.scann_ops()
  assert "pip install 'scann==1.3.2'" in str(raised.value)
  assert "build the index with 'brute_force'" in str(raised.value)
  assert not retrieval_index.scann_available()


# --------------------------------------------------------- ScaNN parameters


@pytest.mark.parametrize('candidates, leaves, searched', [
    # sqrt(1682) = 41.01 leaves; 100 x 100 candidates > 1682: search all.
    (1682, 41, 41),
    # sqrt(60000) = 244.9 -> 245; share max(0.2, 10000 / 60000) = 0.2;
    # ceil(245 x 0.2) = 49.
    (60_000, 245, 49),
    # sqrt(1e6) = 1000; share max(0.2, 0.01) = 0.2 -> 200.
    (1_000_000, 1000, 200),
])
def test_scann_params_scale_with_the_catalogue(candidates, leaves, searched):
  params = retrieval_index.scann_params(candidates, 100)

  assert (params.num_leaves, params.num_leaves_to_search) == (leaves,
                                                              searched)
  assert params.num_reordering_candidates == min(candidates, 2000)


def test_scann_params_score_a_tiny_catalogue_exactly():
  params = retrieval_index.scann_params(255, 10)

  assert (params.num_leaves, params.num_leaves_to_search) == (0, 0)
  assert params.num_reordering_candidates == 200


def test_scann_params_refuse_an_empty_catalogue():
  with pytest.raises(ValueError, match='at least one candidate'):
    retrieval_index.scann_params(0, 10)


# ------------------------------------------------------------------ recall


def test_recall_at_k_on_a_hand_case():
  # Query 1 finds 2 of its 4 true rows, query 2 all 4: (0.5 + 1) / 2.
  approximate = [[1, 2, 9, 8], [4, 3, 2, 1]]
  exact = [[1, 2, 3, 4], [1, 2, 3, 4]]

  assert retrieval_index.recall_at_k(approximate, exact) == pytest.approx(
      0.75)


def test_recall_at_k_ignores_order_and_counts_each_row_once():
  assert retrieval_index.recall_at_k([[3, 2, 1, 1]], [[1, 2, 3]]) == 1.0


def test_recall_at_k_refuses_mismatched_answers():
  with pytest.raises(ValueError, match='same number'):
    retrieval_index.recall_at_k([[1]], [[1], [2]])


# ------------------------------------------------------------ ScaNN index


@needs_scann
def test_scann_index_answers_the_exact_top_k_of_a_small_catalogue():
  index = retrieval_index.ScannIndex(CANDIDATES, k=3)

  scores, rows = index.top_k(QUERIES)

  assert rows.numpy().tolist() == [[0, 2, 3], [1, 4, 2], [4, 1, 3]]
  assert scores.numpy().tolist() == [[3., 2., 1.], [3., 2., 1.],
                                     [2., 0., -1.]]


@needs_scann
def test_scann_index_leaves_out_the_excluded_rows():
  index = retrieval_index.ScannIndex(CANDIDATES, k=3)
  # Query 1 excludes c0, c2; query 2 nothing; query 3 all but c4.
  excluded = tf.ragged.constant([[0, 2], [], [0, 1, 2, 3]], dtype=tf.int64)

  scores, rows = index.top_k(QUERIES, excluded, EXCLUDED)

  # Query 3 has one movie left: then two places scored EXCLUDED.
  assert rows.numpy().tolist()[:2] == [[3, 1, 4], [1, 4, 2]]
  assert rows.numpy().tolist()[2][0] == 4
  assert scores.numpy().tolist() == [[1., 0., -2.], [3., 2., 1.],
                                     [2., EXCLUDED, EXCLUDED]]


def _clustered(rows, dim, seed):
  rng = np.random.default_rng(seed)
  centers = rng.normal(size=(8, dim))
  points = centers[rng.integers(8, size=rows)] + rng.normal(size=(rows, dim))
  return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(
      np.float32)


@needs_scann
def test_partitioned_scann_index_finds_most_of_the_exact_top_k():
  candidates = _clustered(3000, 16, seed=0)
  queries = _clustered(100, 16, seed=1)
  index = retrieval_index.ScannIndex(candidates, k=10)
  assert index.params.num_leaves == 55  # round(sqrt(3000))

  _, rows = index.top_k(tf.constant(queries))

  exact = np.argsort(-queries @ candidates.T, axis=1)[:, :10]
  assert retrieval_index.recall_at_k(rows.numpy(), exact) >= 0.9


@needs_scann
def test_heavy_exclusions_beyond_the_rescored_candidates_still_fill_k():
  candidates = _clustered(3000, 16, seed=0)
  query = _clustered(1, 16, seed=2)
  index = retrieval_index.ScannIndex(candidates, k=10)
  # Exclude the exact top 300: more than the 200 candidates re-scored.
  ranking = np.argsort(-(query @ candidates.T)[0])
  excluded = tf.RaggedTensor.from_row_lengths(
      tf.constant(np.sort(ranking[:300]), tf.int64), [300])

  scores, rows = index.top_k(tf.constant(query), excluded, EXCLUDED)

  assert not set(rows.numpy()[0].tolist()) & set(ranking[:300].tolist())
  assert (scores.numpy() > EXCLUDED / 2).all()
  assert retrieval_index.recall_at_k(rows.numpy(), [ranking[300:310]]) >= 0.9


@needs_scann
def test_scann_index_saves_and_reloads_and_is_detected(tmp_path):
  index = retrieval_index.ScannIndex(CANDIDATES, k=2)
  module = tf.Module()
  module.index = index
  module.search = tf.function(
      lambda q: index.top_k(q)[1],
      input_signature=[tf.TensorSpec([None, 2], tf.float32)])
  tf.saved_model.save(module, str(tmp_path / 'scann'),
                      signatures=module.search.get_concrete_function())
  plain = tf.Module()
  plain.search = tf.function(
      lambda q: tf.math.top_k(tf.matmul(q, CANDIDATES, transpose_b=True),
                              2).indices,
      input_signature=[tf.TensorSpec([None, 2], tf.float32)])
  tf.saved_model.save(plain, str(tmp_path / 'plain'),
                      signatures=plain.search.get_concrete_function())

  loaded = tf.saved_model.load(str(tmp_path / 'scann'))

  assert loaded.signatures['serving_default'](
      QUERIES)['output_0'].numpy().tolist() == [[0, 2], [1, 4], [4, 1]]
  assert retrieval_index.uses_scann_ops(str(tmp_path / 'scann'))
  assert not retrieval_index.uses_scann_ops(str(tmp_path / 'plain'))


@needs_scann
def test_load_custom_ops_says_what_to_install_only_when_needed(
    tmp_path, monkeypatch):
  module = tf.Module()
  module.index = retrieval_index.ScannIndex(CANDIDATES, k=2)
  module.search = tf.function(
      lambda q: module.index.top_k(q)[1],
      input_signature=[tf.TensorSpec([None, 2], tf.float32)])
  tf.saved_model.save(module, str(tmp_path / 'scann'),
                      signatures=module.search.get_concrete_function())
  plain = tf.Module()
  plain.search = tf.function(lambda q: q * 2, input_signature=[
      tf.TensorSpec([None, 2], tf.float32)])
  tf.saved_model.save(plain, str(tmp_path / 'plain'),
                      signatures=plain.search.get_concrete_function())
  retrieval_index.load_custom_ops(str(tmp_path / 'scann'))  # Installed.
  monkeypatch.setitem(sys.modules, 'scann', None)  # Not installed.

  retrieval_index.load_custom_ops(str(tmp_path / 'plain'))
  with pytest.raises(ImportError, match=r"pip install 'scann==1\.3\.2'"):
    retrieval_index.load_custom_ops(str(tmp_path / 'scann'))


def test_setup_py_extra_pins_the_same_scann():
  setup_py = os.path.join(os.path.dirname(os.path.dirname(
      os.path.dirname(os.path.abspath(__file__)))), 'setup.py')
  with open(setup_py, encoding='utf-8') as f:
    assert f"'scann': ['{retrieval_index.SCANN_REQUIREMENT}']" in f.read()
