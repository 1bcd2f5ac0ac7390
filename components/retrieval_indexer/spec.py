"""Keys and ComponentSpec of RetrievalIndexer."""

from tfx import types
from tfx.types import component_spec, standard_artifacts

MODEL_KEY = 'model'  # in: the Trainer's towers (served)
# in, optional: the early-stopped towers, when `model` is their refit on
# train + eval; the servable's eval model (Format-TFMA) is built from them.
EVAL_MODEL_KEY = 'eval_model'
RATINGS_KEY = 'ratings'  # in: raw ratings (train split: users' history)
MOVIES_KEY = 'movies'  # in: the whole catalogue
SERVABLE_KEY = 'servable'  # out: the TF Serving-ready model
TOP_K_KEY = 'top_k'
EXCLUDE_SEEN_KEY = 'exclude_seen'
INDEX_KEY = 'index'  # 'brute_force' or 'scann' (modules/retrieval_index.py)

DEFAULT_TOP_K = 100


class RetrievalIndexerSpec(types.ComponentSpec):
  """Towers + catalogue + history in; a retrieval servable out."""

  PARAMETERS = {
      TOP_K_KEY: component_spec.ExecutionParameter(type=int, optional=True),
      EXCLUDE_SEEN_KEY: component_spec.ExecutionParameter(
          type=int, optional=True),
      INDEX_KEY: component_spec.ExecutionParameter(type=str, optional=True),
  }
  INPUTS = {
      MODEL_KEY: component_spec.ChannelParameter(type=standard_artifacts.Model),
      EVAL_MODEL_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Model, optional=True),
      RATINGS_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Examples),
      MOVIES_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Examples),
  }
  OUTPUTS = {
      SERVABLE_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Model),
  }
