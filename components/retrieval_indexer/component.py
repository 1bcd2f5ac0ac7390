"""RetrievalIndexer: builds the retrieval servable from the trained towers."""

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts

from components.retrieval_indexer import executor, spec
from modules import retrieval_index


class RetrievalIndexer(base_component.BaseComponent):
  """Indexes the whole catalogue with the trained candidate tower.

  Why a component of its own: the Trainer sees one Examples channel (the
  transformed ratings), but the index must cover every movie of the
  catalogue (the `movies` channel), including movies nobody rated in
  training, whose embeddings come from their content. Indexing apart from
  training also lets the catalogue change without retraining.

  Output `servable` follows the contract of `modules.retrieval_export`
  (signatures `serving_default` and `serving_examples`), in TFX's model
  layout (`<uri>/Format-Serving`), so Evaluators and the Pusher take it
  like any Trainer model. Given `eval_model` (the early-stopped towers,
  `model` being their refit on train + eval), the servable also gets an
  eval model (`<uri>/Format-TFMA`) built from those, which the
  RetrievalEvaluator measures; the served one then takes each user's time
  context from their latest rating in train or eval.
  """

  SPEC_CLASS = spec.RetrievalIndexerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, model: types.BaseChannel, ratings: types.BaseChannel,
               movies: types.BaseChannel, top_k: Optional[int] = None,
               exclude_seen: Optional[bool] = None,
               index: Optional[str] = None,
               eval_model: Optional[types.BaseChannel] = None):
    """Constructs the component.

    Args:
      model: the Trainer's model (towers with raw-Example signatures), the
        one served.
      ratings: raw ratings Examples; the 'train' split gives each user's
        features and the movies to exclude.
      movies: raw catalogue Examples (split 'catalog').
      top_k: movies returned per user (default 100).
      exclude_seen: leave out movies the user rated in training (default
        True).
      index: 'brute_force' (default, exact) or 'scann' (approximate; the
        executor and every process loading the servable need ScaNN, see
        `modules.retrieval_index`). Only the name is checked here: the
        machine compiling a pipeline need not have ScaNN.
      eval_model: optional towers to evaluate, when `model` was refit on
        the eval split (the early-stopped Trainer's model).
    """
    if top_k is not None and top_k < 1:
      raise ValueError(f'top_k must be at least 1, got {top_k}')
    if index is not None:
      retrieval_index.check_index(index)
    super().__init__(spec.RetrievalIndexerSpec(
        model=model, eval_model=eval_model, ratings=ratings, movies=movies,
        top_k=top_k,
        exclude_seen=None if exclude_seen is None else int(exclude_seen),
        index=index,
        servable=types.Channel(type=standard_artifacts.Model)))
