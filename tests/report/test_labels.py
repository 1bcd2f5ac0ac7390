"""Readable labels for TFMA's slices."""

import pytest

from report import labels

pytestmark = pytest.mark.unit


def test_age_buckets_read_as_ranges_of_ages():
  buckets = {18: 0, 19: 0, 20: 1, 21: 1, 22: 2, 23: 2}
  assert labels.age_bucket_labels(buckets, missing_bucket=3) == {
      0: 'age <= 19', 1: 'age 20-21', 2: 'age >= 22', 3: 'age unknown'}


def test_a_one_age_bucket_in_the_middle_reads_as_that_age():
  assert labels.age_bucket_labels({10: 0, 11: 1, 12: 2}, 3)[1] == 'age 11'


def test_slice_keys_read_as_features_and_values():
  ages = {3: 'age 28-31'}
  assert labels.slice_label((), ages) == 'overall'
  assert labels.slice_label((('age_bucket_xf', 3),), ages) == 'age 28-31'
  assert labels.slice_label((('age_bucket_xf', 9),), ages) == 'age bucket 9'
  assert labels.slice_label((('gender', 'F'),), ages) == 'gender: women'
  assert labels.slice_label((('genres', b'Film-Noir'),), ages) == (
      'genre: Film-Noir')
  assert labels.slice_label((('gender', 'M'), ('genres', 'Drama')), ages) == (
      'gender: men, genre: Drama')
