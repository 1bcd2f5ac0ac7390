"""Tracing and saving Keras 2 (`tf_keras`) models at graph speed.

Two fixed costs of TensorFlow 2.16 with `TF_USE_LEGACY_KERAS=1`, paid by
every model this project builds, trains or exports:

- AutoGraph's do-not-convert list names `keras` but not `tf_keras`, so
  tracing any function that calls a Keras layer (a train step, a
  `tf.data` map over a tower, an export signature) converts each
  `tf_keras` function it reaches, about 3,000 of them. Keras' own code
  needs no conversion (it is plain TensorFlow), so `exclude_tf_keras`
  puts `tf_keras` on the list beside `keras`, as TensorFlow does for
  `keras`. On ML-100K this took the retrieval model's construction from
  14.6 s to 0.5 s and its first epoch from 25 s to 11 s
  (docs/decisions.md, "Speed").
- `tf.saved_model.save` of a module holding Keras layers also traces and
  saves each layer's `call` (Keras' own revival path, `save_traces`).
  The servables are loaded with `tf.saved_model.load` and called through
  their signatures only, never revived as Keras objects, so `save` skips
  those traces: the ranking export went from 14.5 s to 3.4 s.

`exclude_tf_keras` runs when this module is imported; the model modules
import it, so every process that builds a model has it.
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

from typing import Mapping, Optional  # noqa: E402

import tensorflow as tf  # noqa: E402


def exclude_tf_keras() -> None:
  """Puts `tf_keras` on AutoGraph's do-not-convert list (idempotent).

  AutoGraph keeps the list in a private module; where it has moved (a
  TensorFlow other than the pinned one) nothing is changed: tracing is
  then slower, never different.
  """
  try:
    from tensorflow.python.autograph.core import config  # pylint: disable=g-import-not-at-top
  except ImportError:
    return
  rules = tuple(getattr(config, 'CONVERSION_RULES', ()))
  if any(getattr(rule, '_prefix', None) == 'tf_keras' for rule in rules):
    return
  config.CONVERSION_RULES = (config.DoNotConvert('tf_keras'),) + rules


def save(module: tf.Module, export_dir: str,
         signatures: Optional[Mapping[str, object]] = None) -> None:
  """`tf.saved_model.save` without Keras' per-layer traces (see above).

  The SavedModel's signatures and variables are the same; only Keras'
  revival metadata is left out, which `tf.saved_model.load`, TF Serving
  and TFMA do not use.
  """
  try:
    from tf_keras.src.saving.legacy.saved_model import utils  # pylint: disable=g-import-not-at-top
    scope = utils.keras_option_scope(save_traces=False)
  except ImportError:  # Another Keras layout: save with the traces.
    import contextlib  # pylint: disable=g-import-not-at-top
    scope = contextlib.nullcontext()
  with scope:
    tf.saved_model.save(module, export_dir, signatures=signatures)


exclude_tf_keras()
