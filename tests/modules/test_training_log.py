"""modules.training_log: the trainers' progress lines."""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import re  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from modules import training_log  # noqa: E402
import pytest

pytestmark = pytest.mark.unit


def _fit(callback, epochs=2):
  tf.keras.utils.set_random_seed(0)
  model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(2,))])
  model.compile(optimizer='sgd', loss='mse', metrics=['mae'])
  x = np.ones((10, 2), np.float32)
  y = np.full((10, 1), 3.0, np.float32)
  model.fit(x, y, batch_size=4, epochs=epochs, callbacks=[callback],
            validation_data=(x, y), verbose=0)


def test_a_line_per_batch_and_per_epoch(capsys):
  _fit(training_log.TrainingLog(
      'toy', 4, [('loss', 'loss', 3), ('val mae', 'val_mae', 2),
                 ('absent', 'no_such_metric', 1)], interval_seconds=0))
  lines = capsys.readouterr().out.strip().splitlines()
  # 10 examples in batches of 4: 3 batches per epoch, then the epoch line.
  assert len(lines) == 8
  assert [line.split(':')[0] for line in lines] == (
      ['toy epoch 1'] * 4 + ['toy epoch 2'] * 4)
  assert re.fullmatch(r'toy epoch 1: 2 batches, 8 examples, [\d,]+ '
                      r'examples/s, loss \d+\.\d{4}', lines[1])
  assert lines[2].startswith('toy epoch 1: 3 batches, 12 examples, ')
  assert re.fullmatch(r'toy epoch 2: \d+\.\ds loss \d+\.\d{3} val mae '
                      r'\d\.\d\d absent nan', lines[7])


def test_no_batch_lines_within_the_interval_or_without_one(capsys):
  _fit(training_log.TrainingLog('toy', 4, [('loss', 'loss', 2)],
                                interval_seconds=3600))
  _fit(training_log.TrainingLog('toy', 4, [('loss', 'loss', 2)],
                                interval_seconds=None), epochs=1)
  lines = capsys.readouterr().out.strip().splitlines()
  assert [line.split(':')[0] for line in lines] == [
      'toy epoch 1', 'toy epoch 2', 'toy epoch 1']
  assert all(re.fullmatch(r'toy epoch \d: \d+\.\ds loss \d+\.\d\d', line)
             for line in lines)
