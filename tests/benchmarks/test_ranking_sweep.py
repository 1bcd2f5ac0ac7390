"""benchmarks.ranking_sweep: the re-ordering it scores and its arguments
(training is what the ranking trainer's tests cover)."""

import numpy as np
import pytest

from benchmarks import ranking_sweep as sweep

pytestmark = pytest.mark.unit

MOVIES = np.array([[b'm1', b'm2', b'm3', b'm4'],
                   [b'm2', b'm5', b'', b'']])
RETRIEVAL = np.array([[0.9, 0.8, 0.5, 0.1],
                      [0.7, 0.6, -np.inf, -np.inf]])
RELEVANCE = np.array([[0.0, 1.0, 5.0, 3.0],
                      [1.0, 2.0, -7.0, -7.0]])


def test_reorder_by_relevance_plus_weighted_retrieval():
  # Row 1, weight 10: m1 9, m2 9 (tie: retrieval order), m3 10, m4 4.
  # Row 2: m2 1 + 7 = 8, m5 2 + 6 = 8 (tie), blanks never returned.
  assert sweep.reorder(MOVIES, RETRIEVAL, RELEVANCE, 10.0, 3) == [
      ['m3', 'm1', 'm2'], ['m2', 'm5']]


def test_weight_zero_is_the_relevance_head_alone():
  assert sweep.reorder(MOVIES, RETRIEVAL, RELEVANCE, 0.0, 2) == [
      ['m3', 'm4'], ['m5', 'm2']]


def test_parse_args_reads_trials_and_weights():
  args = sweep.parse_args(['--trial', 'relevance_weight=20,epochs=40',
                           '--retrieval-weights', '0,5'])
  assert args.trials == [{'relevance_weight': '20', 'epochs': '40'}]
  assert args.weights == [0.0, 5.0]
  assert sweep.parse_args([]).trials == [{}]


def test_parse_args_refuses_a_weight_that_is_not_a_number():
  with pytest.raises(SystemExit):
    sweep.parse_args(['--retrieval-weights', '5,heavy'])
