"""The trainers' optimizer: Adam, with lazy (sparse) updates of embedding
tables.

Why. Keras' Adam keeps two moments per weight and, even when a table's
gradient is sparse (`tf.IndexedSlices`: only the rows the batch looked up),
decays both moments and moves *every row* of the table at every step. A
step's cost then grows with the vocabulary instead of the batch: one Adam
step on a 162,000 x 64 table (ml-25m's users) costs about 100 ms on these
2-core machines whatever the batch, against under 1 ms for an update of the
looked-up rows only (`python -m benchmarks.optimizer_steps`). At ml-25m that
alone would be hours per epoch.

`LazyAdam` is Adam where the gradient is dense, and for a sparse gradient
updates the moments and weights of the looked-up rows only (the rows of a
table that a step does not touch keep their moments, instead of decaying
them; the "lazy Adam" of TensorFlow Addons, which is unmaintained and not
built for TensorFlow 2.16). Keras removes duplicate indices before
`update_step`, so each row is updated once per step.

`optimizer` (both models' hyper-parameter):
  'auto'       the default: 'adam' while the largest id vocabulary (users,
               usually) has fewer than `LAZY_FROM_ROWS` rows, 'lazy_adam'
               from there;
  'adam'       Keras' Adam, every row of every table at every step;
  'lazy_adam'  LazyAdam.
Why not always lazy: where the tables are small, exact Adam costs little and
measured better on ML-100K (MS Recommenders nDCG@10 of the retrieval model
0.4262 / 0.429 with Adam against 0.4161 / 0.4225 lazy, seeds 42 / 1; the
ranking model's RMSE 0.9174 against 0.926, its id L2 then taken per rating).
ML-100K, ML-1M and synthetic 1M (6K users) train with Adam; synthetic 5M
(32K users), ml-20m, ml-25m and synthetic 25M (162K users) lazily.
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import tensorflow as tf  # noqa: E402

OPTIMIZERS = ('auto', 'adam', 'lazy_adam')
# Keras' Adam at 20,000 x 64: 8.8 ms per step, 16x LazyAdam's (and growing
# with the rows); below it the exact optimizer is cheap enough.
LAZY_FROM_ROWS = 20_000


class LazyAdam(tf.keras.optimizers.Adam):
  """Adam with row-wise updates for sparse (IndexedSlices) gradients."""

  def update_step(self, gradient, variable):
    if not isinstance(gradient, tf.IndexedSlices) or self.amsgrad:
      return super().update_step(gradient, variable)
    dtype = variable.dtype
    lr = tf.cast(self.learning_rate, dtype)
    step = tf.cast(self.iterations + 1, dtype)
    beta_1 = tf.cast(self.beta_1, dtype)
    beta_2 = tf.cast(self.beta_2, dtype)
    beta_1_power = tf.pow(beta_1, step)
    beta_2_power = tf.pow(beta_2, step)
    key = self._var_key(variable)
    m = self._momentums[self._index_dict[key]]
    v = self._velocities[self._index_dict[key]]
    alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
    epsilon = (self.epsilon * tf.sqrt(1 - beta_2_power)
               if self.adaptive_epsilon else self.epsilon)
    rows, values = gradient.indices, gradient.values
    m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * values
    v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(values)
    m.scatter_update(tf.IndexedSlices(m_rows, rows))
    v.scatter_update(tf.IndexedSlices(v_rows, rows))
    variable.scatter_sub(tf.IndexedSlices(
        alpha * m_rows / (tf.sqrt(v_rows) + epsilon), rows))


def resolve(name: str, largest_table_rows: int) -> str:
  """'adam' or 'lazy_adam' for `name` (one of OPTIMIZERS), 'auto' by the
  rows of the model's largest id table."""
  if name not in OPTIMIZERS:
    raise ValueError(f'optimizer must be one of {OPTIMIZERS}, got {name!r}')
  if name == 'auto':
    return 'lazy_adam' if largest_table_rows >= LAZY_FROM_ROWS else 'adam'
  return name


def build(name: str, learning_rate: float
         ) -> tf.keras.optimizers.Optimizer:
  """The optimizer `name` ('adam' or 'lazy_adam', as `resolve` gives)."""
  if name == 'lazy_adam':
    return LazyAdam(learning_rate)
  if name == 'adam':
    return tf.keras.optimizers.Adam(learning_rate)
  raise ValueError(f"optimizer must be 'adam' or 'lazy_adam' here, got "
                   f'{name!r}')
