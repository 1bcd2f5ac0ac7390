"""Keys and ComponentSpec of RecommenderBuilder."""

from tfx import types
from tfx.types import component_spec, standard_artifacts

RETRIEVAL_KEY = 'retrieval'  # in: the retrieval servable
RETRIEVAL_BLESSING_KEY = 'retrieval_blessing'
RANKING_KEY = 'ranking'  # in: the ranking model
RANKING_BLESSING_KEY = 'ranking_blessing'
RECOMMENDER_KEY = 'recommender'  # out: the two-stage servable
BLESSING_KEY = 'blessing'  # out: blessed iff both inputs are
TOP_K_KEY = 'top_k'
RETRIEVAL_WEIGHT_KEY = 'retrieval_weight'


class RecommenderBuilderSpec(types.ComponentSpec):
  """Two blessed models in; the two-stage servable and its blessing out."""

  PARAMETERS = {
      TOP_K_KEY: component_spec.ExecutionParameter(type=int, optional=True),
      RETRIEVAL_WEIGHT_KEY: component_spec.ExecutionParameter(
          type=float, optional=True),
  }
  INPUTS = {
      RETRIEVAL_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Model),
      RETRIEVAL_BLESSING_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.ModelBlessing),
      RANKING_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Model),
      RANKING_BLESSING_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.ModelBlessing),
  }
  OUTPUTS = {
      RECOMMENDER_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Model),
      BLESSING_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.ModelBlessing),
  }
