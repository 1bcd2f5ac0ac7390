"""The trainers' reader of Transform's output: batches of transformed
examples for `model.fit`, one pass over the training files that builds the
trainers' tables, the validation split, and the embedding sizes.

Both trainers (`modules.retrieval_trainer`, `modules.ranking_trainer`) read
the same gzipped TFRecords the same way; a table that only one trainer
builds has its reader beside that trainer (`scan` takes any object with
`spec` and `add(batch)`).
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import time  # noqa: E402
from typing import Dict, Mapping, Optional, Tuple  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402

from modules import features  # noqa: E402
from modules import training_log  # noqa: E402

_xf = features.transformed_name

_TIME_SPEC = {features.TIMESTAMP: tf.io.FixedLenFeature([], tf.int64)}
_MOVIE_COLUMNS = (features.MOVIE_ID, _xf(features.MOVIE_ID),
                  _xf(features.GENRES), _xf(features.TITLE_TOKENS),
                  _xf(features.RELEASE_YEAR),
                  _xf(features.RELEASE_YEAR_BUCKET))


def file_names(file_pattern):
  """The sorted files matching a pattern or a list of them.

  Raises:
    FileNotFoundError: none matches (naming the patterns).
  """
  patterns = ([file_pattern] if isinstance(file_pattern, (str, bytes))
              else list(file_pattern))
  names = sorted({name for pattern in patterns
                  for name in tf.io.gfile.glob(pattern)})
  if not names:
    raise FileNotFoundError(f'no files match {patterns}')
  return names


def make_dataset(file_pattern, feature_spec, batch_size: int,
                 shuffle: bool, seed: int, num_epochs=1,
                 before: Optional[int] = None) -> tf.data.Dataset:
  """Batches of transformed examples (gzipped TFRecords) as feature dicts;
  with `before`, only the examples whose timestamp is earlier (seconds).

  The order is that of `tf.data.experimental.make_batched_features_dataset`
  (files sorted, or shuffled by `seed`; then records shuffled in a 50,000
  buffer, repeated, batched), but the batches are parsed by
  `tf.io.parse_example` in parallel: the experimental parsing dataset costs
  28-34 us of CPU per transformed example against 3-7 us here
  (`python -m benchmarks.reading`).

  tf.data's autotuning is off: Keras makes a new iterator every epoch, and
  dropping the old one waits on the autotuner's thread, up to a second per
  epoch; with it off an ML-100K ranking epoch on 2 cores takes 1.6 s
  instead of 2.2 s. `AUTOTUNE` then means one parsing call per core.
  """
  names = file_names(file_pattern)
  dataset = tf.data.Dataset.from_tensor_slices(names)
  if shuffle:
    dataset = dataset.shuffle(len(names), seed=seed)
  dataset = dataset.interleave(
      lambda name: tf.data.TFRecordDataset(name, 'GZIP'), cycle_length=1)
  if before is not None:
    dataset = dataset.filter(lambda record: tf.io.parse_single_example(
        record, _TIME_SPEC)[features.TIMESTAMP] < before)
  if shuffle:
    dataset = dataset.shuffle(50_000, seed=seed)
  dataset = dataset.repeat(num_epochs).batch(batch_size)
  dataset = dataset.map(lambda records: tf.io.parse_example(records,
                                                            feature_spec),
                        num_parallel_calls=tf.data.AUTOTUNE)
  options = tf.data.Options()
  options.autotune.enabled = False
  return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)


def vocab_sizes(tft_output: tft.TFTransformOutput) -> Dict[str, int]:
  """Embedding table sizes: vocabulary + OOV buckets, and fixed sizes.

  Only for features Transform produced: a release without demographics
  (ml-20m/25m) has no age bucket, and the towers then skip it.
  """
  spec = tft_output.transformed_feature_spec()
  sizes = {key: size for key, size in features.FIXED_SIZES.items()
           if _xf(key) in spec}
  for key in features.VOCAB_FEATURES:
    if _xf(key) in spec:
      sizes[key] = tft_output.num_buckets_for_transformed_feature(_xf(key))
  return sizes


class MovieRows:
  """Reader of `scan`: one transformed-feature row per movie, and counts.

  Counting and finding each movie's first row are done per batch with
  numpy; only a batch's first sightings of movies are converted to Python
  values, so the cost is TensorFlow's reading of the records.
  """

  def __init__(self, feature_spec):
    self.spec = {k: feature_spec[k] for k in _MOVIE_COLUMNS}
    self._rows: Dict[bytes, Dict[str, object]] = {}
    self._counts: Dict[bytes, int] = {}

  def add(self, batch: Mapping[str, tf.Tensor]) -> None:
    ids = batch[features.MOVIE_ID].numpy()
    unique, first, count = np.unique(ids, return_index=True,
                                     return_counts=True)
    for movie_id, n in zip(unique.tolist(), count.tolist()):
      self._counts[movie_id] = self._counts.get(movie_id, 0) + n
    new = sorted(i for movie_id, i in zip(unique.tolist(), first.tolist())
                 if movie_id not in self._rows)
    if not new:
      return
    values = {}
    for key in self.spec:
      column = batch[key]
      if isinstance(column, tf.SparseTensor):
        values[key] = tf.gather(tf.RaggedTensor.from_sparse(column),
                                new).to_list()
      else:
        values[key] = column.numpy()[new].tolist()
    for j, i in enumerate(new):
      self._rows[ids[i]] = {key: values[key][j] for key in values}

  def result(self) -> Tuple[Dict[str, tf.Tensor], Dict[bytes, int]]:
    """(columns, counts): columns is a feature dict with one row per
    distinct movie (in order of first occurrence in the files), ready for
    `Dataset.from_tensor_slices` (multivalent features as RaggedTensors);
    counts maps movie id to its number of examples."""
    columns = {}
    for key, spec in self.spec.items():
      column = [row[key] for row in self._rows.values()]
      if isinstance(spec, tf.io.VarLenFeature):
        columns[key] = tf.ragged.constant(column, dtype=spec.dtype,
                                          row_splits_dtype=tf.int64)
      else:
        columns[key] = tf.constant(column, dtype=spec.dtype)
    return columns, dict(self._counts)


def batch_rows(batch: Mapping[str, tf.Tensor]) -> int:
  """Number of examples in a parsed batch."""
  value = next(iter(batch.values()))
  if isinstance(value, tf.SparseTensor):
    return int(value.dense_shape[0])
  return int(tf.shape(value)[0])


def scan(file_pattern, readers, batch_size: int = 8192,
         before: Optional[int] = None) -> None:
  """Reads the files once, in order, handing every batch to each reader
  (objects with `spec`, the features they parse, and `add(batch)`); with
  `before`, only the examples earlier than that time.

  Parsing the records is most of what a table built from the training
  files costs (about 6 us of CPU per rating with the tables' work;
  `benchmarks/README.md`, "Reading the training files"), so the trainers
  build theirs in one pass.
  """
  spec = {}
  for reader in readers:
    spec.update(reader.spec)
  dataset = make_dataset(file_pattern, spec, batch_size, shuffle=False,
                         seed=0, before=before)
  started, examples = time.monotonic(), 0
  for batch in dataset:
    for reader in readers:
      reader.add(batch)
    examples += batch_rows(batch)
  seconds = time.monotonic() - started
  training_log.write(
      f'read {examples:,} training examples for '
      f'{", ".join(type(r).__name__ for r in readers)} in {seconds:.1f}s '
      f'({examples / max(seconds, 1e-9):,.0f} examples/s)')


def validation_dataset(file_pattern, feature_spec, max_examples: int,
                       batch_size: int = 4096) -> tf.data.Dataset:
  """The eval split's first `max_examples` examples (0: all), whole
  batches, read once and kept in memory across epochs.

  Each epoch's top-100 accuracy scores every validation example against
  the whole catalogue: at ml-25m (eval split of up to 1M ratings, 60K
  movies) that is minutes per epoch, while early stopping needs only a
  stable estimate (standard error under 0.002 at 100,000 examples). The
  eval split's files hold users in no particular order, so the first
  examples are a sample of users with their whole eval history."""
  if max_examples < 0:
    raise ValueError(f'validation_examples must be >= 0 (0 for all), got '
                     f'{max_examples}')
  dataset = make_dataset(file_pattern, feature_spec, batch_size,
                         shuffle=False, seed=0)
  if max_examples:
    dataset = dataset.take(-(-max_examples // batch_size)).cache()
  return dataset
