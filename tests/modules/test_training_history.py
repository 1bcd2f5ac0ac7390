"""The trainers' run logs: history.json per epoch with the best epoch, and
TensorBoard scalars, in the Trainer's model_run folder."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from modules import training_log

pytestmark = pytest.mark.unit


def _fit(log_dir, monitor, mode, epochs=3):
  tf.keras.utils.set_random_seed(0)
  model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(2,))])
  model.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss='mse')
  x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)
  y = np.array([[1.0], [2.0], [3.0]], np.float32)
  return model.fit(
      x, y, validation_data=(x, y), epochs=epochs, verbose=0,
      callbacks=training_log.run_callbacks(log_dir, 'ranking',
                                           'early_stopped', monitor, mode))


def test_history_json_holds_every_epoch_and_the_best(tmp_path):
  history = _fit(str(tmp_path), 'val_loss', 'min')
  with open(tmp_path / training_log.HISTORY_FILE) as f:
    written = json.load(f)
  assert written['model'] == 'ranking' and written['kind'] == 'early_stopped'
  assert [e['epoch'] for e in written['epochs']] == [1, 2, 3]
  assert [e['val_loss'] for e in written['epochs']] == pytest.approx(
      history.history['val_loss'])
  best = int(np.argmin(history.history['val_loss'])) + 1
  assert written['best_epoch'] == best


def test_a_maximised_metric_picks_its_highest_epoch(tmp_path):
  callback = training_log.EpochHistory(str(tmp_path), 'retrieval', 'refit',
                                       monitor='val_top', mode='max')
  for epoch, value in enumerate([0.2, 0.5, 0.4]):
    callback.on_epoch_end(epoch, {'loss': 1.0, 'val_top': value})
  with open(tmp_path / training_log.HISTORY_FILE) as f:
    assert json.load(f)['best_epoch'] == 2


def test_a_refit_has_no_best_epoch_and_tensorboard_gets_events(tmp_path):
  _fit(str(tmp_path), None, 'min', epochs=2)
  with open(tmp_path / training_log.HISTORY_FILE) as f:
    written = json.load(f)
  assert written['best_epoch'] is None and len(written['epochs']) == 2
  events = [os.path.join(root, name) for root, _, names in os.walk(tmp_path)
            for name in names if name.startswith('events.out.tfevents')]
  assert events, 'no TensorBoard event file'
  tags = {value.tag
          for path in events
          for event in tf.compat.v1.train.summary_iterator(path)
          for value in event.summary.value}
  assert 'epoch_loss' in tags


def test_no_folder_no_callbacks():
  assert training_log.run_callbacks(None, 'ranking', 'refit') == []


def test_tensorboards_command_line_imports():
  # `tensorboard --logdir ...` (docs/models.md) imports pkg_resources,
  # which setuptools 81 removed: requirements.lock pins one before it.
  from tensorboard import default  # pylint: disable=g-import-not-at-top
  assert default.get_plugins()
