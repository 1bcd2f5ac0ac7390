"""Transform's `preprocessing_fn`: vocabularies and numeric scaling.

Referenced by import path (`modules.preprocessing.preprocessing_fn`), so the
same code runs under LocalDagRunner, Kubeflow and Vertex from the installed
package.

Every categorical feature gets a vocabulary computed on the train split,
with OOV buckets: an id never seen in training (a new user or movie) maps to
an OOV index instead of failing, and the models give those indices their
own embeddings. Numeric features are z-scored (the towers' dense inputs) and
bucketized (for embedding-style crosses). Missing values (a movie without a
release year; a release without demographics) map to the feature's mean
after scaling and to a dedicated bucket, never to a made-up value.
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

from typing import Dict  # noqa: E402

import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402

from modules import features  # noqa: E402

_xf = features.transformed_name


def _dense(x, default_value) -> tf.Tensor:
  """A [batch] dense tensor from a [batch, 1] dense or sparse feature."""
  if isinstance(x, tf.SparseTensor):
    x = tf.sparse.to_dense(
        tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]),
        default_value)
  return tf.squeeze(x, axis=1)


def _vocab(x, key: str, **kwargs):
  return tft.compute_and_apply_vocabulary(
      x, num_oov_buckets=features.NUM_OOV_BUCKETS,
      vocab_filename=features.vocabulary_name(key), **kwargs)


def _scaled_with_missing(x) -> tf.Tensor:
  """Z-score over the present values; a missing value becomes 0 (the mean)."""
  values = tf.cast(x.values if isinstance(x, tf.SparseTensor) else x,
                   tf.float32)
  if isinstance(x, tf.SparseTensor):
    scaled = tft.scale_to_z_score(
        tf.SparseTensor(x.indices, values, x.dense_shape))
    return _dense(scaled, 0.0)
  return _dense(tft.scale_to_z_score(values), 0.0)


def _bucket_with_missing(x, num_buckets: int) -> tf.Tensor:
  """Quantile bucket 0..num_buckets-1; a missing value gets num_buckets."""
  if isinstance(x, tf.SparseTensor):
    values = tf.SparseTensor(x.indices, tf.cast(x.values, tf.float32),
                             x.dense_shape)
    buckets = tft.bucketize(values, num_buckets)
    return _dense(buckets, tf.constant(num_buckets, tf.int64))
  return _dense(tft.bucketize(tf.cast(x, tf.float32), num_buckets), 0)


def title_tokens(titles: tf.Tensor) -> tf.RaggedTensor:
  """Lower-cased word tokens of titles, without the trailing '(1995)' year.

  Args:
    titles: [batch] tf.string.

  Returns:
    [batch, None] ragged tf.string tokens.
  """
  text = tf.strings.lower(titles)
  text = tf.strings.regex_replace(text, r'\(\d{4}\)\s*$', '')
  text = tf.strings.regex_replace(text, r"[^\w']+", ' ')
  return tf.strings.split(tf.strings.strip(text))


def zip_prefix(zip_codes: tf.Tensor) -> tf.Tensor:
  """The first digits of a zip code (its region), upper-cased."""
  return tf.strings.upper(
      tf.strings.substr(zip_codes, 0, features.ZIP_PREFIX_LENGTH))


def preprocessing_fn(inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  """Maps raw rating features (see `modules.features`) to model inputs.

  Inputs are batches of raw features as parsed with the pipeline's schema:
  [batch, 1] dense tensors, and SparseTensors for optional or multivalent
  features (release_year, genres).

  Returns (batch first; `_xf` names from `features.transformed_name`):
    user_id_xf, movie_id_xf, gender_xf, occupation_xf, zip_prefix_xf: int64
      [batch] vocabulary indices (OOV indices after the vocabulary).
    genres_xf, title_tokens_xf: int64 SparseTensor [batch, None] indices.
    age_xf, release_year_xf, timestamp_xf: float32 [batch] z-scores.
    age_bucket_xf, release_year_bucket_xf: int64 [batch] quantile buckets.
    hour_of_day_xf (0-23), day_of_week_xf (0 = Monday): int64 [batch].
    rating_xf: float32 [batch], the label, unchanged.
    user_id, movie_id: tf.string [batch], the raw ids, passed through for
      evaluation and serving (candidate ids, seen-movie exclusion).
    timestamp: int64 [batch], the raw time, passed through for the
      trend features (`modules.trend`: whole days, which a z-score in
      float32 cannot resolve).
  """
  outputs = {}
  user_id = _dense(inputs[features.USER_ID], '')
  movie_id = _dense(inputs[features.MOVIE_ID], '')
  outputs[features.USER_ID] = user_id
  outputs[features.MOVIE_ID] = movie_id
  outputs[_xf(features.USER_ID)] = _vocab(user_id, features.USER_ID)
  outputs[_xf(features.MOVIE_ID)] = _vocab(movie_id, features.MOVIE_ID)

  # Demographics (absent in releases without them: ml-20m/25m).
  if features.GENDER in inputs:
    outputs[_xf(features.GENDER)] = _vocab(
        _dense(inputs[features.GENDER], ''), features.GENDER)
    outputs[_xf(features.OCCUPATION)] = _vocab(
        _dense(inputs[features.OCCUPATION], ''), features.OCCUPATION)
    outputs[_xf(features.ZIP_PREFIX)] = _vocab(
        zip_prefix(_dense(inputs[features.ZIP_CODE], '')), features.ZIP_PREFIX)
    age = inputs[features.AGE]
    outputs[_xf(features.AGE)] = _scaled_with_missing(age)
    outputs[_xf(features.AGE_BUCKET)] = _bucket_with_missing(
        age, features.AGE_BUCKETS)

  # Movie content.
  genres = inputs[features.GENRES]
  outputs[_xf(features.GENRES)] = _vocab(genres, features.GENRES)
  tokens = title_tokens(_dense(inputs[features.TITLE], ''))
  outputs[_xf(features.TITLE_TOKENS)] = _vocab(
      tokens.to_sparse(), features.TITLE_TOKENS,
      frequency_threshold=features.TITLE_TOKEN_MIN_COUNT)
  year = inputs[features.RELEASE_YEAR]
  outputs[_xf(features.RELEASE_YEAR)] = _scaled_with_missing(year)
  outputs[_xf(features.RELEASE_YEAR_BUCKET)] = _bucket_with_missing(
      year, features.RELEASE_YEAR_BUCKETS)

  # Time context of the rating.
  timestamp = _dense(inputs[features.TIMESTAMP], 0)
  outputs[features.TIMESTAMP] = timestamp
  outputs[_xf(features.TIMESTAMP)] = tft.scale_to_z_score(
      tf.cast(timestamp, tf.float32))
  outputs[_xf(features.HOUR_OF_DAY)] = (timestamp // 3600) % 24
  # 1970-01-01 was a Thursday (3 when Monday is 0).
  outputs[_xf(features.DAY_OF_WEEK)] = (timestamp // 86400 + 3) % 7

  outputs[_xf(features.LABEL_KEY)] = tf.cast(
      _dense(inputs[features.LABEL_KEY], 0.0), tf.float32)
  return outputs
