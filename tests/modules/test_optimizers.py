"""LazyAdam: Adam on dense gradients, row-wise on sparse ones."""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from modules import optimizers  # noqa: E402

pytestmark = pytest.mark.unit

LR = 0.1


def _sparse(rows, values, num_rows=3):
  return tf.IndexedSlices(tf.constant(values, tf.float32),
                          tf.constant(rows, tf.int64),
                          tf.constant([num_rows, 2], tf.int64))


def _table():
  return tf.Variable(np.arange(6, dtype=np.float32).reshape(3, 2))


def test_first_sparse_step_moves_the_looked_up_row_by_the_learning_rate():
  table = _table()
  optimizer = optimizers.LazyAdam(LR)
  optimizer.apply_gradients([(_sparse([1], [[2.0, -3.0]]), table)])
  # Step 1 of Adam: m / sqrt(v) = sign(g), so the row moves by lr * sign(g).
  np.testing.assert_allclose(table.numpy(),
                             [[0, 1], [2 - LR, 3 + LR], [4, 5]], atol=1e-5)


def test_rows_a_step_does_not_look_up_stay_put_unlike_keras_adam():
  lazy, dense = _table(), _table()
  lazy_adam, adam = optimizers.LazyAdam(LR), tf.keras.optimizers.Adam(LR)
  for optimizer, table in ((lazy_adam, lazy), (adam, dense)):
    optimizer.apply_gradients([(_sparse([1], [[2.0, -3.0]]), table)])
    optimizer.apply_gradients([(_sparse([0], [[1.0, 1.0]]), table)])
  # Row 1 was only in the first step: LazyAdam leaves it there, Adam keeps
  # moving it with its decayed momentum.
  np.testing.assert_allclose(lazy.numpy()[1], [2 - LR, 3 + LR], atol=1e-5)
  assert abs(dense.numpy()[1, 0] - (2 - LR)) > 0.05
  # Row 0's first update is a first step for that row in LazyAdam only:
  # its moments start from zero there, but at step 2 in the bias
  # correction: alpha = lr * sqrt(1 - b2^2) / (1 - b1^2).
  b1, b2 = 0.9, 0.999
  m, v = (1 - b1) * 1.0, (1 - b2) * 1.0
  alpha = LR * np.sqrt(1 - b2 ** 2) / (1 - b1 ** 2)
  expected = alpha * m / (np.sqrt(v) + 1e-7)
  np.testing.assert_allclose(lazy.numpy()[0], [0 - expected, 1 - expected],
                             rtol=1e-4)
  np.testing.assert_allclose(lazy.numpy()[2], [4, 5])


def test_dense_gradients_get_keras_adam_updates():
  lazy, dense = _table(), _table()
  gradient = tf.constant([[1.0, -2.0], [0.5, 0.0], [3.0, 1.0]])
  for optimizer, table in ((optimizers.LazyAdam(LR), lazy),
                           (tf.keras.optimizers.Adam(LR), dense)):
    for _ in range(3):
      optimizer.apply_gradients([(gradient, table)])
  np.testing.assert_allclose(lazy.numpy(), dense.numpy(), rtol=1e-6)


def test_build_names_the_choices():
  assert isinstance(optimizers.build('lazy_adam', LR), optimizers.LazyAdam)
  adam = optimizers.build('adam', LR)
  assert not isinstance(adam, optimizers.LazyAdam)
  with pytest.raises(ValueError, match=r"'adam' or 'lazy_adam'.*'auto'"):
    optimizers.build('auto', LR)


def test_auto_is_exact_adam_for_small_tables_and_lazy_for_large_ones():
  assert optimizers.resolve('auto', 1_683) == 'adam'  # ML-100K's movies.
  assert optimizers.resolve('auto', 19_999) == 'adam'
  assert optimizers.resolve('auto', 20_000) == 'lazy_adam'
  assert optimizers.resolve('auto', 162_542) == 'lazy_adam'  # ml-25m.
  assert optimizers.resolve('adam', 162_542) == 'adam'
  assert optimizers.resolve('lazy_adam', 10) == 'lazy_adam'
  with pytest.raises(ValueError, match=r"optimizer must be one of .*'sgd'"):
    optimizers.resolve('sgd', 10)
