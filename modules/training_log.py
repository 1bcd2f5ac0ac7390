"""Training progress for both trainers: a line per epoch, and lines within
an epoch, on stdout and in the logs; and, in the Trainer's `model_run`
folder, TensorBoard logs and `history.json` (every epoch's metrics, for the
run report).

At 25M ratings one retrieval epoch lasts about half an hour; a line every
`interval_seconds` (batches, examples, examples per second, running loss)
shows that it moves, and how fast.
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import json  # noqa: E402
import time  # noqa: E402
from typing import Dict, List, Optional, Sequence, Tuple  # noqa: E402

from absl import logging  # noqa: E402
import tensorflow as tf  # noqa: E402

DEFAULT_INTERVAL_SECONDS = 60.0


def write(line: str) -> None:
  """A progress line, on stdout (the runner's console) and in the logs."""
  print(line, flush=True)
  logging.info(line)


def utc_day(seconds: int) -> str:
  """'1998-03-07': the UTC day of a time in seconds since the epoch."""
  return time.strftime('%Y-%m-%d', time.gmtime(seconds))


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


HISTORY_FILE = 'history.json'


class EpochHistory(tf.keras.callbacks.Callback):
  """Writes `<directory>/history.json` at each epoch's end:

    {"model": "ranking", "kind": "early_stopped" | "refit",
     "epochs": [{"epoch": 1, "loss": ..., "val_rmse": ..., ...}, ...],
     "best_epoch": 3 or null}

  `best_epoch` follows `monitor` (a Keras log key) in `mode`, as early
  stopping does; None without a monitor (a refit trains a fixed count).
  Written whole each epoch (temp file, then rename), so a run stopped in
  the middle leaves the epochs it finished.
  """

  def __init__(self, directory: str, model_name: str, kind: str,
               monitor: Optional[str] = None, mode: str = 'min'):
    super().__init__()
    self._path = os.path.join(directory, HISTORY_FILE)
    self._header = {'model': model_name, 'kind': kind}
    self._monitor = monitor
    self._sign = 1.0 if mode == 'min' else -1.0
    self._epochs: List[Dict[str, float]] = []

  def on_epoch_end(self, epoch, logs=None):
    row = {'epoch': epoch + 1}
    row.update({k: float(v) for k, v in (logs or {}).items()})
    self._epochs.append(row)
    best = None
    if self._monitor:
      scored = [r for r in self._epochs if self._monitor in r]
      if scored:
        best = min(scored, key=lambda r: self._sign * r[self._monitor])[
            'epoch']
    tf.io.gfile.makedirs(os.path.dirname(self._path))
    temp = self._path + '.tmp'
    with tf.io.gfile.GFile(temp, 'w') as f:
      json.dump(dict(self._header, epochs=self._epochs, best_epoch=best), f,
                indent=1)
    tf.io.gfile.rename(temp, self._path, overwrite=True)


def run_callbacks(log_dir: Optional[str], model_name: str, kind: str,
                  monitor: Optional[str] = None,
                  mode: str = 'min') -> List[tf.keras.callbacks.Callback]:
  """TensorBoard scalars per epoch (and the model's graph) and
  `EpochHistory`, into `log_dir` (the Trainer's `model_run_dir`); none
  without a folder."""
  if not log_dir:
    return []
  return [tf.keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=True,
                                         update_freq='epoch',
                                         profile_batch=0),
          EpochHistory(log_dir, model_name, kind, monitor, mode)]
