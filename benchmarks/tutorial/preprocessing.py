"""Transform of the tutorial pipeline: the two ids as strings, and their
vocabularies, which the Trainer's StringLookup layers read."""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

from typing import Dict  # noqa: E402

import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402

from benchmarks.tutorial import features  # noqa: E402


def _as_string(tensor: tf.Tensor) -> tf.Tensor:
  # CsvExampleGen infers the numeric user ids as int64; the towers look up
  # strings, as in the tutorial.
  return tensor if tensor.dtype == tf.string else tf.strings.as_string(tensor)


def preprocessing_fn(inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  """Passes `user_id` and `movie_title` through as strings ([batch, 1]) and
  computes the vocabulary of each, by frequency, over the train split."""
  outputs = {}
  for key in features.CSV_COLUMNS:
    value = _as_string(inputs[key])
    tft.vocabulary(value, vocab_filename=features.vocabulary_name(key))
    outputs[key] = value
  return outputs
