"""TFMA configuration of the ranking model's Evaluator.

RMSE and MAE of the predicted rating on the eval split, overall and sliced by
gender, age bucket and genre, and the thresholds that bless the model:

  value threshold   overall RMSE <= `max_rmse` (every run, the first
                    included; slices are reported, not gated);
  change threshold  RMSE at most `max_rmse_increase` above the latest blessed
                    ranking model's, both measured on this run's eval split
                    (skipped on the first run, which has no baseline).

Without thresholds TFMA blesses nothing, so both are always configured.
"""

import tensorflow_model_analysis as tfma

from modules import features

RMSE = 'root_mean_squared_error'
MAE = 'mean_absolute_error'
# Model signatures (modules/ranking_trainer.py).
EXAMPLES_SIGNATURE = 'serving_examples'
TRANSFORM_SIGNATURE = 'transform_features'
PREDICTION_KEY = 'rating'

# Slices: raw features of the examples, and dense transformed ones from the
# model's transform_features signature. A multivalent feature (genres)
# counts an example in the slice of each of its values.
SLICE_KEYS = ((features.GENDER,),
              (features.transformed_name(features.AGE_BUCKET),),
              (features.GENRES,))



def ranking_eval_config(max_rmse: float,
                        max_rmse_increase: float) -> tfma.EvalConfig:
  """The EvalConfig of the ranking Evaluator."""
  rmse_threshold = tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(
          upper_bound={'value': max_rmse}),
      change_threshold=tfma.GenericChangeThreshold(
          direction=tfma.MetricDirection.LOWER_IS_BETTER,
          absolute={'value': max_rmse_increase}))
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(
          signature_name=EXAMPLES_SIGNATURE,
          label_key=features.LABEL_KEY,
          prediction_key=PREDICTION_KEY,
          preprocessing_function_names=[TRANSFORM_SIGNATURE])],
      slicing_specs=[tfma.SlicingSpec()] + [
          tfma.SlicingSpec(feature_keys=list(keys)) for keys in SLICE_KEYS],
      metrics_specs=[tfma.MetricsSpec(
          metrics=[
              tfma.MetricConfig(class_name='ExampleCount'),
              # Thresholds on the overall figure only: small slices are
              # reported, not gated.
              tfma.MetricConfig(
                  class_name='RootMeanSquaredError',
                  per_slice_thresholds=[tfma.PerSliceMetricThreshold(
                      slicing_specs=[tfma.SlicingSpec()],
                      threshold=rmse_threshold)]),
              tfma.MetricConfig(class_name='MeanAbsoluteError'),
          ])])
