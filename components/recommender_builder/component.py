"""RecommenderBuilder: the two-stage servable from the two blessed models."""

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts

from components.recommender_builder import executor, spec


class RecommenderBuilder(base_component.BaseComponent):
  """Combines retrieval and ranking into one servable, if both are blessed.

  Output `recommender` follows `modules.recommender_export`'s contract, in
  TFX's model layout (`<uri>/Format-Serving`). Output `blessing` is blessed
  only when both input blessings are; the Pusher of the recommender takes
  it, so the recommender is pushed only when both of its models were
  blessed. When either is not, nothing is built (the `recommender` folder
  stays empty) and the blessing says which model was not blessed.
  """

  SPEC_CLASS = spec.RecommenderBuilderSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, retrieval: types.BaseChannel,
               retrieval_blessing: types.BaseChannel,
               ranking: types.BaseChannel,
               ranking_blessing: types.BaseChannel,
               top_k: Optional[int] = None,
               retrieval_weight: Optional[float] = None):
    """Constructs the component.

    Args:
      retrieval / retrieval_blessing: the retrieval servable and its
        blessing (RetrievalEvaluator).
      ranking / ranking_blessing: the ranking model and its blessing (the
        ranking Evaluator).
      top_k: movies returned per user (default 10).
      retrieval_weight: weight of the retrieval score in the ranking score
        (default `modules.recommender_export.DEFAULT_RETRIEVAL_WEIGHT`).
    """
    if top_k is not None and top_k < 1:
      raise ValueError(f'top_k must be at least 1, got {top_k}')
    super().__init__(spec.RecommenderBuilderSpec(
        retrieval=retrieval, retrieval_blessing=retrieval_blessing,
        ranking=ranking, ranking_blessing=ranking_blessing, top_k=top_k,
        retrieval_weight=retrieval_weight,
        recommender=types.Channel(type=standard_artifacts.Model),
        blessing=types.Channel(type=standard_artifacts.ModelBlessing)))
