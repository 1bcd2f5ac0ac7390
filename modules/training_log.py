"""Training progress for both trainers: a line per epoch, and lines within
an epoch, on stdout and in the logs.

At 25M ratings one retrieval epoch lasts about half an hour; a line every
`interval_seconds` (batches, examples, examples per second, running loss)
shows that it moves, and how fast.
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import time  # noqa: E402
from typing import Optional, Sequence, Tuple  # noqa: E402

from absl import logging  # noqa: E402
import tensorflow as tf  # noqa: E402

DEFAULT_INTERVAL_SECONDS = 60.0


def write(line: str) -> None:
  """A progress line, on stdout (the runner's console) and in the logs."""
  print(line, flush=True)
  logging.info(line)


class TrainingLog(tf.keras.callbacks.Callback):
  """Progress lines of `model.fit`.

    <name> epoch 3: 1,200 batches, 614,400 examples, 10,523 examples/s,
        loss 812.31
    <name> epoch 3: 58.4s <label> <value> ...   (at the epoch's end)

  Args:
    name: the model's name, first word of every line.
    batch_size: examples per batch (the last batch may hold fewer; counts
      are then an upper bound by less than one batch).
    metrics: (label, key in Keras' logs, decimals) for the epoch line.
    interval_seconds: least time between two lines within an epoch; 0 for a
      line per batch, None for none.
  """

  def __init__(self, name: str, batch_size: int,
               metrics: Sequence[Tuple[str, str, int]],
               interval_seconds: Optional[float] = DEFAULT_INTERVAL_SECONDS):
    super().__init__()
    self._name = name
    self._batch_size = batch_size
    self._metrics = tuple(metrics)
    self._interval = interval_seconds
    # Keras then hands the logs over as tensors: no device-to-host copy of
    # the running loss at every step, only when a line is written.
    self._supports_tf_logs = True
    self._epoch = 0
    self._started = self._last_line = 0.0

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch = epoch + 1
    self._started = self._last_line = time.monotonic()

  def on_train_batch_end(self, batch, logs=None):
    if self._interval is None:
      return
    now = time.monotonic()
    if now - self._last_line < self._interval:
      return
    self._last_line = now
    batches = batch + 1
    examples = batches * self._batch_size
    rate = examples / max(now - self._started, 1e-9)
    loss = float((logs or {}).get('loss', float('nan')))
    write(f'{self._name} epoch {self._epoch}: {batches:,} batches, '
                f'{examples:,} examples, {rate:,.0f} examples/s, '
                f'loss {loss:.4f}')

  def on_epoch_end(self, epoch, logs=None):
    logs = logs or {}
    values = ' '.join(
        f'{label} {float(logs.get(key, float("nan"))):.{decimals}f}'
        for label, key, decimals in self._metrics)
    write(f'{self._name} epoch {epoch + 1}: '
                f'{time.monotonic() - self._started:.1f}s {values}')
