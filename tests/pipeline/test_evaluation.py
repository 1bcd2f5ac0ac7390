"""The ranking Evaluator's TFMA config, run by TFMA itself on a few
generated examples: RMSE/MAE overall and per slice, a blessing for a good
model and none for a bad one, and the change threshold against a baseline."""

import math
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma

from modules import features
from pipeline import configs, evaluation

pytestmark = pytest.mark.integration

# Ten ratings: (rating, gender, genres, age).
ROWS = [(5, 'M', ['Drama'], 20), (4, 'F', ['Comedy', 'Drama'], 30),
        (3, 'M', ['Action'], 40), (2, 'F', ['Drama'], 50),
        (1, 'M', ['Comedy'], 60), (4, 'F', ['Action'], 25),
        (3, 'M', ['Drama'], 35), (5, 'F', ['Comedy'], 45),
        (2, 'M', ['Action', 'Comedy'], 55), (1, 'F', ['Drama'], 65)]


def _example(rating, gender, genres, age):
  feature = {
      features.RATING: tf.train.Feature(float_list=tf.train.FloatList(
          value=[rating])),
      features.GENDER: tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[gender.encode()])),
      features.GENRES: tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[g.encode() for g in genres])),
      features.AGE: tf.train.Feature(int64_list=tf.train.Int64List(
          value=[age])),
  }
  return tf.train.Example(features=tf.train.Features(
      feature=feature)).SerializeToString()


class _Model(tf.Module):
  """Predicts rating + offset (clipped to 1-5), as the ranking export's
  `serving_examples` and `transform_features` signatures."""

  def __init__(self, offset):
    super().__init__()
    self._offset = offset

  def _parse(self, examples):
    return tf.io.parse_example(examples, {
        features.RATING: tf.io.FixedLenFeature([], tf.float32),
        features.AGE: tf.io.FixedLenFeature([], tf.int64)})

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def serve(self, examples):
    rating = self._parse(examples)[features.RATING]
    predicted = tf.clip_by_value(rating + self._offset, 1.0, 5.0)
    return {'rating': predicted, 'relevance': tf.zeros_like(rating)}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def transform(self, examples):
    age = self._parse(examples)[features.AGE]
    return {features.transformed_name(features.AGE_BUCKET): age // 20}


def _save(path, offset):
  model = _Model(offset)
  tf.saved_model.save(model, path, signatures={
      evaluation.EXAMPLES_SIGNATURE: model.serve,
      evaluation.TRANSFORM_SIGNATURE: model.transform})
  return path


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('data') / 'ratings.tfrecord')
  with tf.io.TFRecordWriter(path) as writer:
    for row in ROWS:
      writer.write(_example(*row))
  return path


def _evaluate(tmp_path, data, offset, baseline_offset=None, **thresholds):
  config = evaluation.ranking_eval_config(
      thresholds.get('max_rmse', configs.MAX_RMSE),
      thresholds.get('max_rmse_increase', configs.MAX_RMSE_INCREASE))
  has_baseline = baseline_offset is not None
  # As TFX's Evaluator does (tfx/components/evaluator/executor.py): one
  # model per spec, by the spec's name; no change threshold without a
  # baseline (rubber stamp).
  config = tfma.utils.update_eval_config_with_defaults(
      config, has_baseline=has_baseline, rubber_stamp=True)
  offsets = {False: offset, True: baseline_offset}
  models = [tfma.default_eval_shared_model(
      eval_saved_model_path=_save(str(tmp_path / (spec.name or 'model')),
                                  offsets[spec.is_baseline]),
      model_name=spec.name, eval_config=config)
            for spec in config.model_specs]
  output = str(tmp_path / 'out')
  tfma.run_model_analysis(
      eval_shared_model=models,
      eval_config=config, data_location=data, output_path=output)
  return tfma.load_eval_result(output), tfma.load_validation_result(output)


def _metrics(result, slice_key=()):
  """{metric: value} of one slice (the candidate's, without diffs)."""
  for key, metrics in result.slicing_metrics:
    if tuple(key) == slice_key:
      values = next(iter(next(iter(metrics.values())).values()))
      return {k: v.get('doubleValue') for k, v in values.items()}
  raise KeyError(slice_key)


def test_good_model_is_blessed_with_hand_computed_rmse(tmp_path, data):
  # Every prediction off by 0.5 except the ratings of 5, clipped to 5:
  # 8 errors of 0.5 and 2 of 0 -> RMSE sqrt(8 * 0.25 / 10) = 0.4472,
  # MAE 0.4.
  result, validation = _evaluate(tmp_path, data, offset=0.5)

  overall = _metrics(result)
  assert overall['example_count'] == 10
  assert overall['root_mean_squared_error'] == pytest.approx(
      math.sqrt(0.2), abs=1e-4)
  assert overall['mean_absolute_error'] == pytest.approx(0.4, abs=1e-4)
  assert validation.validation_ok


def test_slices_by_gender_age_bucket_and_each_genre(tmp_path, data):
  result, _ = _evaluate(tmp_path, data, offset=0.5)

  keys = {tuple(key) for key, _ in result.slicing_metrics}
  assert (('gender', 'F'),) in keys and (('gender', 'M'),) in keys
  assert {('age_bucket_xf', b) for b in (1, 2, 3)} <= {
      k[0] for k in keys if k}
  # Multivalent genres: an example counts in each of its genres' slices.
  # Comedy: rows 2, 5, 8, 9 -> 4 examples.
  assert _metrics(result, (('genres', 'Comedy'),))['example_count'] == 4
  # Women rated 4, 2, 4, 5, 1: only the 5 is clipped -> 4 errors of 0.5
  # in 5: RMSE sqrt(4 * 0.25 / 5) = 0.4472.
  assert _metrics(result, (('gender', 'F'),))[
      'root_mean_squared_error'] == pytest.approx(math.sqrt(0.2), abs=1e-4)


def test_bad_model_is_not_blessed(tmp_path, data):
  # Off by 3 (clipped): ratings 1..5 predicted as 4, 5, 5, 5, 5 ->
  # errors 3, 3, 2, 1, 0 (each twice) -> RMSE sqrt(2 * 23 / 10) = 2.1448.
  result, validation = _evaluate(tmp_path, data, offset=3.0)

  assert _metrics(result)['root_mean_squared_error'] == pytest.approx(
      math.sqrt(4.6), abs=1e-4)
  assert not validation.validation_ok
  failures = [f for s in validation.metric_validations_per_slice
              for f in s.failures]
  assert [f.metric_key.name for f in failures] == [evaluation.RMSE]
  # Only the overall slice is gated.
  assert all(not s.slice_key.single_slice_keys
             for s in validation.metric_validations_per_slice)


def test_worse_than_the_blessed_baseline_is_not_blessed(tmp_path, data):
  # Candidate RMSE 0.4472 passes the value threshold (1.1) but is 0.4472
  # above the baseline's 0 (a perfect model), beyond the 0.01 allowed.
  _, validation = _evaluate(tmp_path, data, offset=0.5, baseline_offset=0.0)

  assert not validation.validation_ok
  failures = [f for s in validation.metric_validations_per_slice
              for f in s.failures]
  assert [(f.metric_key.name, f.metric_key.is_diff) for f in failures] == [
      (evaluation.RMSE, True)]


def test_as_good_as_the_baseline_is_blessed(tmp_path, data):
  _, validation = _evaluate(tmp_path, data, offset=0.5, baseline_offset=0.5)

  assert validation.validation_ok
