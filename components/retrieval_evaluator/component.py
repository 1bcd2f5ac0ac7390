"""RetrievalEvaluator: evaluates a retrieval servable and blesses it."""

from typing import Optional, Sequence

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.utils import json_utils

from components.retrieval_evaluator import blessing, executor, metrics, spec


class RetrievalEvaluator(base_component.BaseComponent):
  """Evaluates top-K retrieval against held-out ratings; blesses or not.

  TFMA evaluates per-example predictions, not top-K retrieval over a
  catalogue, so this component does the job of TFX's Evaluator for the
  retrieval servable. For every user with at least one 'eval' rating it asks
  the servable for the user's top K, and computes recall@k, nDCG@k,
  hit_rate@k and coverage@k (see `metrics`). Every eval rating counts as
  relevant, whatever its value: the retrieval task is to find the movies a
  user watches next, and rating a movie, even badly, means it was watched.

  The same metrics are computed for the most-popular baseline (movies ranked
  by train ratings, ties by id, each user's train movies excluded) and, when
  given, for `baseline_model` (the latest blessed model), on the same users.
  The model is blessed iff it beats popularity by `min_lift_over_popularity`,
  reaches `min_value`, and does not regress more than `max_regression` below
  the baseline model (see `blessing`).

  The blessing is written like the Evaluator's (a BLESSED or NOT_BLESSED
  file, custom properties 'blessed', 'current_model', 'current_model_id',
  'baseline_model', 'baseline_model_id'), so Pusher and
  LatestBlessedModelStrategy use it unchanged:

    # Finds the latest blessed model, to guard against regressions.
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(
            type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id('latest_blessed_model_resolver')
    # Evaluates top-K retrieval against popularity and the last blessed model.
    retrieval_evaluator = RetrievalEvaluator(
        model=retrieval_trainer.outputs['model'],
        examples=example_gen.outputs['ratings'],
        movies=example_gen.outputs['movies'],
        baseline_model=model_resolver.outputs['model'])

  Component `outputs` contains:
    - `evaluation`: Channel of type `ModelEvaluation`; its directory holds
      metrics.json (metrics of the model, of popularity and of the baseline
      model, counts, thresholds, decision and reasons).
    - `blessing`: Channel of type `ModelBlessing`.
  """

  SPEC_CLASS = spec.RetrievalEvaluatorSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(
      self,
      model: types.BaseChannel,
      examples: types.BaseChannel,
      movies: types.BaseChannel,
      baseline_model: Optional[types.BaseChannel] = None,
      metric_names: Optional[Sequence[str]] = None,
      blessing_metric: str = blessing.DEFAULT_BLESSING_METRIC,
      min_lift_over_popularity: float = (
          blessing.DEFAULT_MIN_LIFT_OVER_POPULARITY),
      min_value: float = blessing.DEFAULT_MIN_VALUE,
      max_regression: float = blessing.DEFAULT_MAX_REGRESSION):
    """Constructs a RetrievalEvaluator.

    Args:
      model: channel of `Model`; the retrieval servable is its eval model
        (`Format-TFMA`: the RetrievalIndexer's servable of the early-stopped
        towers) if it has one, else its `Format-Serving` SavedModel:
        signature 'serving_default', input 'user_id' (tf.string [batch]),
        outputs 'movie_ids' (tf.string [batch, K]), 'movie_titles',
        'scores' (tf.float32 [batch, K]), best first, the user's train
        movies excluded. K must be at least the
        deepest metric (100 by default).
      examples: channel of `Examples` with splits 'train' and 'eval' of raw
        ratings (features 'user_id' and 'movie_id'), e.g. the 'ratings'
        output of MovieLensExampleGen.
      movies: channel of `Examples` with split 'catalog', one example per
        movie ('movie_id'): the candidates.
      baseline_model: optional channel of `Model`, the latest blessed model
        (a LatestBlessedModelStrategy Resolver's output). Absent or empty:
        no regression check (the first run).
      metric_names: metrics to compute, each `<kind>_at_<k>` with kind in
        recall, ndcg, hit_rate, coverage. Default: recall_at_10,
        recall_at_50, recall_at_100, ndcg_at_10, hit_rate_at_100,
        coverage_at_10.
      blessing_metric: the metric the blessing is decided on; one of
        `metric_names`. Default 'recall_at_100'.
      min_lift_over_popularity: the model must score strictly more than
        popularity × (1 + this) on the blessing metric. Default 0.0.
      min_value: absolute floor of the blessing metric. Default 0.0.
      max_regression: the blessing metric may be at most this much (absolute)
        below the baseline model's. Default 0.01.

    Raises:
      ValueError: an option is invalid (checked here, so a typo fails when
        the pipeline is built rather than at the end of training).
    """
    names = [s.name for s in metrics.parse_metric_names(
        list(metric_names) if metric_names is not None else
        list(metrics.DEFAULT_METRIC_NAMES))]
    thresholds = blessing.validate_thresholds(
        names, blessing_metric, min_lift_over_popularity, min_value,
        max_regression)
    component_spec = spec.RetrievalEvaluatorSpec(
        model=model,
        examples=examples,
        movies=movies,
        baseline_model=baseline_model,
        metric_names=json_utils.dumps(names),
        blessing_metric=thresholds.blessing_metric,
        min_lift_over_popularity=thresholds.min_lift_over_popularity,
        min_value=thresholds.min_value,
        max_regression=thresholds.max_regression,
        evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
        blessing=types.Channel(type=standard_artifacts.ModelBlessing))
    super().__init__(spec=component_spec)
