"""Keys and ComponentSpec of MovieLensExampleGen."""

from tfx import types
from tfx.types import component_spec, standard_artifacts

INPUT_BASE_KEY = 'input_base'
EVAL_FRACTION_KEY = 'eval_fraction'
MAX_EVAL_RATINGS_KEY = 'max_eval_ratings'
RATINGS_KEY = 'ratings'
MOVIES_KEY = 'movies'
# Set by the driver from the raw files' names, sizes and modification times,
# so that changed data invalidates the cache.
INPUT_FINGERPRINT_KEY = 'input_fingerprint'

RATINGS_SPLITS = ('train', 'eval')
MOVIES_SPLITS = ('catalog',)
DEFAULT_EVAL_FRACTION = 0.2
# Eval holds out about this many ratings at most (0: no bound); see
# `ingest.split_user_history`.
DEFAULT_MAX_EVAL_RATINGS = 1_000_000


class MovieLensExampleGenSpec(types.ComponentSpec):
  """Raw MovieLens folder in; ratings (train/eval) and movies out."""

  PARAMETERS = {
      INPUT_BASE_KEY: component_spec.ExecutionParameter(type=str),
      EVAL_FRACTION_KEY: component_spec.ExecutionParameter(
          type=float, optional=True),
      MAX_EVAL_RATINGS_KEY: component_spec.ExecutionParameter(
          type=int, optional=True),
      INPUT_FINGERPRINT_KEY: component_spec.ExecutionParameter(
          type=str, optional=True),
  }
  INPUTS = {}
  OUTPUTS = {
      RATINGS_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Examples),
      MOVIES_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Examples),
  }
