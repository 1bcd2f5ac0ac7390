"""preprocessing_fn on a handful of rows, with the pipeline's curated schema:
vocabulary contents, OOV indices, scaling and derived features."""

import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from modules import features, preprocessing
from pipeline import configs

pytestmark = pytest.mark.integration

xf = features.transformed_name


def _row(user, movie, rating, timestamp, age, gender, occupation, zip_code,
         title, genres, year=None):
  row = {
      'user_id': [user], 'movie_id': [movie], 'rating': [rating],
      'timestamp': [timestamp], 'age': [age], 'gender': [gender],
      'occupation': [occupation], 'zip_code': [zip_code], 'title': [title],
      'genres': genres, 'release_year': [] if year is None else [year],
  }
  return {k: [v.encode() if isinstance(v, str) else v for v in vals]
          for k, vals in row.items()}


# 2024-01-01 00:00:00 UTC was a Monday; +13h30 -> hour 13.
MONDAY_1330 = 1704115800
TRAIN = [
    _row('u1', 'm1', 5.0, MONDAY_1330, 20, 'M', 'student', '85711',
         'Toy Story (1995)', ['Animation', 'Comedy'], 1995),
    _row('u1', 'm2', 3.0, MONDAY_1330 + 86400, 20, 'M', 'student', '85711',
         'Heavy Metal (1981)', ['Action'], 1981),
    _row('u2', 'm1', 4.0, MONDAY_1330, 40, 'F', 'writer', '94043',
         'Toy Story (1995)', ['Animation', 'Comedy'], 1995),
    _row('u2', 'm3', 2.0, MONDAY_1330, 40, 'F', 'writer', '9404X',
         'unknown', ['unknown']),
    _row('u1', 'm1', 1.0, MONDAY_1330, 20, 'M', 'student', '85711',
         'Toy Story (1995)', ['Animation', 'Comedy'], 1995),
]
UNSEEN = _row('u9', 'm9', 3.0, MONDAY_1330, 30, 'F', 'doctor', '10001',
              'Heavy Metal (1981)', ['Western'], 1990)


@pytest.fixture(scope='module')
def transformed(tmp_path_factory):
  """Analyze on TRAIN, then transform TRAIN + one unseen row."""
  schema = tfdv.load_schema_text(configs.SCHEMA_PATH)
  metadata = dataset_metadata.DatasetMetadata(schema)
  workdir = str(tmp_path_factory.mktemp('tft'))
  with tft_beam.Context(temp_dir=tempfile.mkdtemp(dir=workdir)):
    (train_out, _), transform_fn = (
        (TRAIN, metadata)
        | tft_beam.AnalyzeAndTransformDataset(preprocessing.preprocessing_fn))
    unseen_out, _ = (([UNSEEN], metadata), transform_fn) | (
        tft_beam.TransformDataset())
    output_dir = os.path.join(workdir, 'transform_output')
    _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
  return train_out, unseen_out[0], tft.TFTransformOutput(output_dir)


def test_raw_feature_spec_from_schema():
  spec = schema_utils.schema_as_feature_spec(
      tfdv.load_schema_text(configs.SCHEMA_PATH)).feature_spec
  assert set(spec) == set(features.RATING_FEATURES)
  assert isinstance(spec['genres'], tf.io.VarLenFeature)
  assert isinstance(spec['release_year'], tf.io.VarLenFeature)
  assert spec['rating'] == tf.io.FixedLenFeature([1], tf.float32)


def test_vocabularies_contents_sorted_by_frequency(transformed):
  _, _, output = transformed
  vocab = lambda key: [v.decode() if isinstance(v, bytes) else v for v in
                       output.vocabulary_by_name(features.vocabulary_name(key))]
  # u1 has 3 train ratings, u2 has 2 -> u1 first.
  assert vocab('user_id') == ['u1', 'u2']
  # m1 x3, then m2 and m3 x1 (ties broken by descending value).
  assert vocab('movie_id') == ['m1', 'm3', 'm2']
  assert vocab('gender') == ['M', 'F']
  assert vocab('occupation') == ['student', 'writer']
  assert vocab('zip_prefix') == ['85', '94']
  # Animation x3, Comedy x3, Action x1, unknown x1.
  assert sorted(vocab('genres')[:2]) == ['Animation', 'Comedy']
  assert sorted(vocab('genres')[2:]) == ['Action', 'unknown']
  # Title words seen in >= 2 training ratings: 'toy', 'story'; the year
  # '(1995)' is stripped before tokenising.
  assert sorted(vocab('title_tokens')) == ['story', 'toy']


def test_ids_map_to_vocabulary_indices(transformed):
  train_out, _, _ = transformed
  assert [int(r[xf('user_id')]) for r in train_out] == [0, 0, 1, 1, 0]
  assert [int(r[xf('movie_id')]) for r in train_out] == [0, 2, 0, 1, 0]
  assert train_out[0]['user_id'] == b'u1'
  assert train_out[0]['movie_id'] == b'm1'


def test_unseen_values_map_to_the_oov_bucket(transformed):
  _, unseen, output = transformed
  # Vocabulary of 2 users + 1 OOV bucket -> OOV index 2.
  assert int(unseen[xf('user_id')]) == 2
  assert int(unseen[xf('movie_id')]) == 3
  assert int(unseen[xf('occupation')]) == 2
  assert int(unseen[xf('zip_prefix')]) == 2
  assert list(unseen[xf('genres')]) == [4]  # 'Western' unseen
  # 'heavy' and 'metal' appear once in training: below the minimum count.
  assert list(unseen[xf('title_tokens')]) == [2, 2]
  assert output.num_buckets_for_transformed_feature(xf('user_id')) == 3


def test_numeric_scaling_and_missing_year(transformed):
  train_out, _, _ = transformed
  ages = np.array([r[xf('age')] for r in train_out])
  # Ages 20,20,40,40,20: mean 28, population std sqrt(96) ~ 9.798.
  np.testing.assert_allclose(ages, (np.array([20, 20, 40, 40, 20]) - 28) /
                             np.sqrt(96), rtol=1e-5)
  years = [r[xf('release_year')] for r in train_out]
  # Present years 1995, 1981, 1995, 1995 (mean 1991.5); the missing one
  # (row 4) sits at the mean, 0.
  assert years[3] == 0.0
  assert years[0] > 0 > years[1]
  buckets = [int(r[xf('release_year_bucket')]) for r in train_out]
  assert buckets[3] == features.RELEASE_YEAR_BUCKETS  # "unknown year"
  assert all(b < features.RELEASE_YEAR_BUCKETS for i, b in enumerate(buckets)
             if i != 3)


def test_time_features_and_label(transformed):
  train_out, _, _ = transformed
  assert int(train_out[0][xf('hour_of_day')]) == 13
  assert int(train_out[0][xf('day_of_week')]) == 0  # Monday
  assert int(train_out[1][xf('day_of_week')]) == 1  # Tuesday
  # The raw time passes through, to the second, for the trend features.
  assert [int(r['timestamp']) for r in train_out[:2]] == [
      MONDAY_1330, MONDAY_1330 + 86400]
  assert [float(r[xf('rating')]) for r in train_out] == [5.0, 3.0, 4.0, 2.0,
                                                          1.0]


def test_title_tokens_strip_year_and_punctuation():
  tokens = preprocessing.title_tokens(
      tf.constant(['Usual Suspects, The (1995)', "Schindler's List (1993)",
                   'Se7en']))
  assert tokens.to_list() == [[b'usual', b'suspects', b'the'],
                              [b"schindler's", b'list'], [b'se7en']]
