"""retrieval_trainer's own reader of the transformed examples: the user
history, on the small hand-written file of test_training_data."""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import pytest  # noqa: E402

from modules import retrieval_trainer  # noqa: E402
from tests.modules.test_training_data import (  # noqa: E402
    SPEC, scanned, write_ratings)

pytestmark = pytest.mark.unit


def test_training_history_keeps_each_users_newest_movies(tmp_path):
  path = write_ratings(tmp_path)
  # User 0 rated b (t=3, and t=1) and a (t=2); user 1 a (t=1), b (t=2);
  # user 2 c. With a cap of 1: user 0 -> b, user 1 -> b, user 2 -> c.
  ratings = scanned(path, retrieval_trainer.RatingColumns(SPEC))
  values, row_splits = ratings.history(4, 1)
  assert values.tolist() == [2, 2, 3]
  assert row_splits.tolist() == [0, 1, 2, 3, 3]
  values, row_splits = ratings.history(4)
  assert values.tolist() == [1, 2, 1, 2, 3]
  assert row_splits.tolist() == [0, 2, 4, 5, 5]


@pytest.mark.parametrize('movies, windows, batch', [
    (1_682, 0, 4096),     # ML-100K: the cap.
    (60_000, 0, 1118),    # ml-25m: 2**26 / 60,000 scores.
    (20_000, 2, 671),     # With two trend windows: 5 matrices' worth.
    (60_000, 2, 256),     # ... and the floor.
    (1_000_000, 0, 256),  # The floor.
])
def test_validation_batch_keeps_the_score_matrix_bounded(movies, windows,
                                                         batch):
  assert retrieval_trainer.validation_batch_size(movies, windows) == batch
