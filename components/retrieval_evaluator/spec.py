"""Keys and ComponentSpec of RetrievalEvaluator."""

from tfx import types
from tfx.types import component_spec, standard_artifacts
from tfx.types import standard_component_specs

# Input and output keys; the shared ones are spelled like TFX's Evaluator.
MODEL_KEY = standard_component_specs.MODEL_KEY  # 'model'
BASELINE_MODEL_KEY = standard_component_specs.BASELINE_MODEL_KEY
EXAMPLES_KEY = standard_component_specs.EXAMPLES_KEY  # 'examples'
MOVIES_KEY = 'movies'
EVALUATION_KEY = standard_component_specs.EVALUATION_KEY  # 'evaluation'
BLESSING_KEY = standard_component_specs.BLESSING_KEY  # 'blessing'

# Exec properties. METRIC_NAMES_KEY is a JSON-encoded list of names such as
# 'recall_at_100'; the others are plain values. All are optional: unset
# takes the default documented in `metrics` and `blessing`.
METRIC_NAMES_KEY = 'metric_names'
BLESSING_METRIC_KEY = 'blessing_metric'
MIN_LIFT_OVER_POPULARITY_KEY = 'min_lift_over_popularity'
MIN_VALUE_KEY = 'min_value'
MAX_REGRESSION_KEY = 'max_regression'

# The splits read, as MovieLensExampleGen writes them.
TRAIN_SPLIT = 'train'
EVAL_SPLIT = 'eval'
CATALOG_SPLIT = 'catalog'

# Written into the evaluation artifact's directory.
METRICS_FILE_NAME = 'metrics.json'

# The servable's contract. 'evaluation' (when present) excludes only the
# train split's movies; 'serving_default' may also exclude the eval split's,
# which are exactly what is measured here.
EVALUATION_SIGNATURE = 'evaluation'
SERVING_SIGNATURE = 'serving_default'
USER_ID_INPUT = 'user_id'
MOVIE_IDS_OUTPUT = 'movie_ids'
SCORES_OUTPUT = 'scores'


class RetrievalEvaluatorSpec(types.ComponentSpec):
  """Servable, ratings and catalogue in; evaluation and blessing out."""

  PARAMETERS = {
      METRIC_NAMES_KEY: component_spec.ExecutionParameter(
          type=str, optional=True),
      BLESSING_METRIC_KEY: component_spec.ExecutionParameter(
          type=str, optional=True),
      MIN_LIFT_OVER_POPULARITY_KEY: component_spec.ExecutionParameter(
          type=float, optional=True),
      MIN_VALUE_KEY: component_spec.ExecutionParameter(
          type=float, optional=True),
      MAX_REGRESSION_KEY: component_spec.ExecutionParameter(
          type=float, optional=True),
  }
  INPUTS = {
      MODEL_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Model),
      EXAMPLES_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Examples),
      MOVIES_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Examples),
      BASELINE_MODEL_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Model, optional=True),
  }
  OUTPUTS = {
      EVALUATION_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.ModelEvaluation),
      BLESSING_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.ModelBlessing),
  }
