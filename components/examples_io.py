"""Reading Examples artifacts in the components' executors.

Shared by the RetrievalIndexer and the RetrievalEvaluator, which both read
the raw ratings and catalogue that MovieLensExampleGen writes (gzipped
TFRecords under `<uri>/Split-<name>/`).
"""

import os
from typing import Dict, Iterator, List, Sequence

import tensorflow as tf
from tfx import types
from tfx.dsl.io import fileio
from tfx.types import artifact_utils

_READ_BATCH_SIZE = 8192


def split_files(artifact: types.Artifact, split: str) -> List[str]:
  """The gzipped TFRecord files of one split of an Examples artifact.

  Raises:
    ValueError: the artifact has no such split, or the split's directory
      holds no .gz file.
  """
  splits = artifact_utils.decode_split_names(artifact.split_names)
  if split not in splits:
    raise ValueError(
        f'Examples at {artifact.uri} have splits {splits}, not {split!r}; '
        "expected the 'train'/'eval' ratings and the 'catalog' movies that "
        'MovieLensExampleGen writes.')
  split_dir = artifact_utils.get_split_uri([artifact], split)
  files = sorted(fileio.glob(os.path.join(split_dir, '*.gz')))
  if not files:
    raise ValueError(f'No examples in {split_dir} (no .gz files).')
  return files


def records(artifact: types.Artifact, split: str) -> tf.data.Dataset:
  """The serialized examples of one split."""
  return tf.data.TFRecordDataset(split_files(artifact, split), 'GZIP')


def iter_string_features(
    artifact: types.Artifact, split: str,
    keys: Sequence[str]) -> Iterator[Dict[str, List[str]]]:
  """Single-valued string features of a split, a batch of examples at a time.

  Callers fold the batches into what they keep (counts, per-user sets), so
  no list as long as the split is ever held: memory follows what is kept,
  not the number of ratings read.

  Yields:
    key -> one decoded value per example of the batch, in file order.

  Raises:
    ValueError: an example lacks one of `keys` or has several values.
  """
  feature_spec = {key: tf.io.FixedLenFeature([], tf.string) for key in keys}
  dataset = (
      records(artifact, split)
      .batch(_READ_BATCH_SIZE)
      .map(lambda batch: tf.io.parse_example(batch, feature_spec)))
  try:
    for batch in dataset.as_numpy_iterator():
      yield {key: [value.decode('utf-8') for value in batch[key]]
             for key in keys}
  except tf.errors.InvalidArgumentError as error:
    raise ValueError(
        f'Cannot read features {list(keys)} from split {split!r} of '
        f'{artifact.uri}: every example needs exactly one bytes value of '
        f'each. TensorFlow said: {error.message}') from error


def read_string_features(
    artifact: types.Artifact, split: str,
    keys: Sequence[str]) -> Dict[str, List[str]]:
  """Reads single-valued string features of every example of a split (for
  small splits such as the catalogue; fold `iter_string_features` instead
  for ratings).

  Returns:
    key -> one decoded value per example, in file order.

  Raises:
    ValueError: an example lacks one of `keys` or has several values.
  """
  columns = {key: [] for key in keys}
  for batch in iter_string_features(artifact, split, keys):
    for key in keys:
      columns[key].extend(batch[key])
  return columns
