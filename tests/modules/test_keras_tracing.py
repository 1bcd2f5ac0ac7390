"""keras_tracing: tf_keras traced without AutoGraph; saved without Keras'
per-layer traces, with the same signatures."""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.autograph.core import config  # noqa: E402
from tensorflow.python.autograph.impl import conversion  # noqa: E402

from modules import keras_tracing  # noqa: E402
from modules import ranking_model  # noqa: E402,F401

pytestmark = pytest.mark.unit


def _tf_keras_rules():
  return [rule for rule in config.CONVERSION_RULES
          if getattr(rule, '_prefix', None) == 'tf_keras']


def test_keras_layers_are_not_converted_by_autograph_once_a_model_module_is_imported():
  # Keras 2 here is the tf_keras package; AutoGraph must leave it as is.
  assert tf.keras.layers.Dense.__module__.startswith('tf_keras.')
  assert conversion.is_allowlisted(tf.keras.layers.Dense.call)


def test_excluding_tf_keras_twice_adds_one_rule():
  keras_tracing.exclude_tf_keras()
  keras_tracing.exclude_tf_keras()

  assert len(_tf_keras_rules()) == 1


class _Doubler(tf.Module):

  def __init__(self):
    super().__init__()
    self.layer = tf.keras.layers.Dense(2, kernel_initializer='ones',
                                       use_bias=False)

  @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
  def serve(self, x):
    return {'y': self.layer(x)}


def test_save_keeps_the_signatures_and_drops_the_keras_layer_traces(tmp_path):
  module = _Doubler()
  path = str(tmp_path / 'model')

  keras_tracing.save(module, path, signatures={'serving_default': module.serve})
  loaded = tf.saved_model.load(path)

  # Kernel of ones: each output is the row's sum, 1 + 2 + 3 = 6.
  answer = loaded.signatures['serving_default'](tf.constant([[1., 2., 3.]]))
  np.testing.assert_allclose(answer['y'].numpy(), [[6., 6.]])
  # A plain tf.saved_model.save would also have traced the layer's call.
  assert not hasattr(loaded.layer, 'call_and_return_all_conditional_losses')
