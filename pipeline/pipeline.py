"""`create_pipeline`: the one pipeline definition every runner uses."""

import os
from typing import Any, Dict, List, Optional

from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from components.anomaly_gate import AnomalyGate
from components.atomic_pusher import AtomicPusher
from components.movielens_example_gen import MovieLensExampleGen
from components.recommender_builder import RecommenderBuilder
from components.retrieval_evaluator import RetrievalEvaluator
from components.retrieval_indexer import RetrievalIndexer
from pipeline import baseline, code_version, configs, evaluation, trainers


# custom_config key of the module-code fingerprint.
CODE_FINGERPRINT_KEY = 'code_fingerprint'


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    data_path: str,
    schema_path: str,
    preprocessing_fn: str,
    retrieval_run_fn: str,
    serving_dir: str,
    ranking_run_fn: Optional[str] = None,
    retrieval_refit_fn: Optional[str] = None,
    ranking_refit_fn: Optional[str] = None,
    eval_fraction: float = 0.2,
    max_eval_ratings: int = configs.MAX_EVAL_RATINGS,
    retrieval_hparams: Optional[Dict[str, Any]] = None,
    retrieval_top_k: int = 100,
    exclude_seen: bool = True,
    retrieval_index: str = configs.RETRIEVAL_INDEX,
    min_lift_over_popularity: float = 0.0,
    max_regression: float = 0.01,
    ranking_hparams: Optional[Dict[str, Any]] = None,
    max_rmse: float = configs.MAX_RMSE,
    max_rmse_increase: float = configs.MAX_RMSE_INCREASE,
    recommender_top_k: Optional[int] = None,
    recommender_retrieval_weight: Optional[float] = None,
    enable_cache: bool = True,
    beam_pipeline_args: Optional[List[str]] = None,
    metadata_connection_config: Optional[
        metadata_store_pb2.ConnectionConfig] = None,
    vertex_training: Optional[Dict[str, Any]] = None,
    baseline_excludes_candidate: bool = True,
) -> tfx.dsl.Pipeline:
  """Builds the MovieLens recommender pipeline.

  Args:
    pipeline_name: name of the pipeline in ML Metadata and orchestrators.
    pipeline_root: root folder (or bucket path) of all artifacts.
    data_path: folder holding a raw MovieLens release (e.g. ml-100k files).
    schema_path: the curated schema (schema.pbtxt) of the ratings examples.
    preprocessing_fn: import path of Transform's preprocessing_fn.
    retrieval_run_fn: import path of the retrieval Trainer's run_fn.
    serving_dir: where blessed servables are pushed, one folder per model
      (`<serving_dir>/{retrieval,ranking,recommender}/<version>/`).
    ranking_run_fn: import path of the ranking Trainer's run_fn; None
      leaves out the ranking stage and the recommender.
    retrieval_refit_fn / ranking_refit_fn: import paths of the refit
      Trainers' run_fn (`modules.*_trainer.refit_fn`): after early stopping
      on the eval split, a fresh model on train + eval for the best epoch
      count is what gets served, while the Evaluators judge the
      early-stopped model, which has not seen the eval split. None serves
      the early-stopped model itself.
    eval_fraction: share of each user's newest ratings held out for eval.
    max_eval_ratings: about how many ratings eval holds at most (0: no
      bound); beyond it, only a sample of users is held out.
    retrieval_hparams: overrides of `modules.hparams.RetrievalHParams`.
    retrieval_top_k: movies the retrieval servable returns per user.
    exclude_seen: whether the servable leaves out movies the user rated.
    retrieval_index: the servable's index, 'brute_force' (exact) or 'scann'
      (approximate; ScaNN must be installed where the indexer runs and
      wherever the servable is loaded, see modules/retrieval_index.py).
    min_lift_over_popularity: the retrieval model is blessed only if its
      recall@100 beats the most-popular baseline's by this relative margin.
    max_regression: ... and is at most this much (absolute recall@100)
      below the latest blessed model's, measured on the same data.
    ranking_hparams: overrides of `modules.hparams.RankingHParams`.
    max_rmse: the ranking model is blessed only if its eval RMSE is at most
      this ...
    max_rmse_increase: ... and at most this much above the latest blessed
      ranking model's (pipeline/evaluation.py).
    recommender_top_k: movies the two-stage recommender returns (10).
    recommender_retrieval_weight: weight of the retrieval score in the
      recommender's ranking score (modules/recommender_export.py).
    enable_cache: reuse outputs of components whose inputs did not change.
    beam_pipeline_args: Beam options for ExampleGen, StatisticsGen and
      Transform (e.g. DirectRunner workers, or Dataflow settings).
    metadata_connection_config: ML Metadata store; None lets the
      orchestrator decide (Kubeflow/Vertex bring their own).
    vertex_training: None trains in place; otherwise every Trainer runs as
      a Vertex AI Training job with these settings
      (`pipeline.trainers.make_trainer`).
    baseline_excludes_candidate: an evaluator's regression baseline is the
      latest blessed model other than the one it judges, so a rerun with
      nothing changed is reused from the cache (pipeline/baseline.py);
      False: TFX's LatestBlessedModelStrategy, the one KFP v2 compiles.

  Returns:
    The pipeline, ready for any TFX runner.
  """
  # Reads the raw files; emits 'ratings' (train/eval by time) and 'movies'.
  example_gen = MovieLensExampleGen(
      input_base=data_path, eval_fraction=eval_fraction,
      max_eval_ratings=max_eval_ratings)
  ratings = example_gen.outputs['ratings']

  # Computes statistics of both rating splits for validation.
  statistics_gen = tfx.components.StatisticsGen(examples=ratings)

  # Imports the curated schema: the data's expected shape and domains.
  schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_path)

  # Compares the statistics with the schema and records anomalies.
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'],
      schema=schema_gen.outputs['schema'])

  # Stops the run, naming the anomalies, when the validator found any.
  anomaly_gate = AnomalyGate(anomalies=example_validator.outputs['anomalies'])

  # Vocabularies and scaling, analysed on train, applied to train and eval.
  # Edited module code must invalidate the cache (pipeline/code_version.py).
  code = {CODE_FINGERPRINT_KEY: code_version.package_fingerprint('modules')}

  transform = tfx.components.Transform(
      examples=ratings,
      custom_config=code,
      schema=schema_gen.outputs['schema'],
      preprocessing_fn=preprocessing_fn,
      splits_config=tfx.proto.SplitsConfig(
          analyze=['train'], transform=['train', 'eval']),
      # Its own TFDV passes (statistics before and after the transform, and
      # their anomalies) would repeat StatisticsGen's on the raw data, feed
      # no component, and cost Transform time in proportion to the data.
      disable_statistics=True)
  transform.add_upstream_node(anomaly_gate)

  # Trains the two-tower retrieval model with early stopping on eval;
  # exports the towers and (training_summary.json) the best epoch.
  def trainer(component_id, run_fn, hparams, base_model=None):
    """A Trainer on the transformed ratings, with the code fingerprint."""
    return trainers.make_trainer(
        component_id, run_fn,
        examples=transform.outputs['transformed_examples'],
        transform_graph=transform.outputs['transform_graph'],
        schema=schema_gen.outputs['schema'],
        custom_config={'hparams': dict(hparams or {}), **code},
        vertex_training=vertex_training, base_model=base_model)

  retrieval_trainer = trainer('RetrievalTrainer', retrieval_run_fn,
                              retrieval_hparams)

  served_towers, evaluated_towers = retrieval_trainer.outputs['model'], None
  if retrieval_refit_fn:
    # Refits the towers on train + eval for the best epoch count.
    retrieval_refit = trainer('RetrievalRefit', retrieval_refit_fn,
                              retrieval_hparams,
                              base_model=retrieval_trainer.outputs['model'])
    served_towers = retrieval_refit.outputs['model']
    evaluated_towers = retrieval_trainer.outputs['model']

  # Indexes the whole catalogue: the TF Serving-ready retrieval servable
  # (and, from the early-stopped towers, the one the evaluator scores).
  retrieval_indexer = RetrievalIndexer(
      model=served_towers,
      eval_model=evaluated_towers,
      ratings=ratings,
      movies=example_gen.outputs['movies'],
      top_k=retrieval_top_k,
      exclude_seen=exclude_seen,
      index=retrieval_index)

  # Finds the latest blessed retrieval servable, the regression baseline.
  latest_blessed_retrieval = _baseline_resolver(
      'LatestBlessedRetrieval', 'RetrievalIndexer', 'servable',
      'RetrievalEvaluator', retrieval_indexer.outputs['servable'],
      baseline_excludes_candidate)

  # Scores top-K retrieval on eval against popularity and the baseline.
  retrieval_evaluator = RetrievalEvaluator(
      model=retrieval_indexer.outputs['servable'],
      examples=ratings,
      movies=example_gen.outputs['movies'],
      baseline_model=latest_blessed_retrieval.outputs['model'],
      min_lift_over_popularity=min_lift_over_popularity,
      max_regression=max_regression)

  # Pushes the servable, only when blessed, as a complete version folder.
  retrieval_pusher = AtomicPusher(
      model=retrieval_indexer.outputs['servable'],
      model_blessing=retrieval_evaluator.outputs['blessing'],
      push_destination=_push_destination(serving_dir, 'retrieval'),
  ).with_id('RetrievalPusher')

  components = [
      example_gen, statistics_gen, schema_gen, example_validator,
      anomaly_gate, transform, retrieval_trainer, retrieval_indexer,
      latest_blessed_retrieval, retrieval_evaluator, retrieval_pusher,
  ]
  if retrieval_refit_fn:
    components.append(retrieval_refit)
  if ranking_run_fn:
    # Trains the ranking model (rating and relevance heads) with early
    # stopping on eval; its SavedModel is a ranking servable.
    ranking_trainer = trainer('RankingTrainer', ranking_run_fn,
                              ranking_hparams)

    # Finds the latest blessed ranking model, TFMA's change baseline.
    latest_blessed_ranking = _baseline_resolver(
        'LatestBlessedRanking', 'RankingTrainer', 'model',
        'RankingEvaluator', ranking_trainer.outputs['model'],
        baseline_excludes_candidate)

    # TFMA: RMSE/MAE overall and sliced; blesses on the thresholds.
    ranking_evaluator = tfx.components.Evaluator(
        examples=ratings,
        model=ranking_trainer.outputs['model'],
        baseline_model=latest_blessed_ranking.outputs['model'],
        eval_config=evaluation.ranking_eval_config(max_rmse,
                                                   max_rmse_increase),
    ).with_id('RankingEvaluator')

    served_ranking = ranking_trainer.outputs['model']
    if ranking_refit_fn:
      # Refits it on train + eval for the best epoch count: the servable
      # pushed when the early-stopped model is blessed.
      ranking_refit = trainer('RankingRefit', ranking_refit_fn,
                              ranking_hparams,
                              base_model=ranking_trainer.outputs['model'])
      served_ranking = ranking_refit.outputs['model']
      components.append(ranking_refit)

    # Pushes the ranking servable, only when blessed.
    ranking_pusher = AtomicPusher(
        model=served_ranking,
        model_blessing=ranking_evaluator.outputs['blessing'],
        push_destination=_push_destination(serving_dir, 'ranking'),
    ).with_id('RankingPusher')

    # Retrieval + ranking in one servable, built when both are blessed.
    recommender_builder = RecommenderBuilder(
        retrieval=retrieval_indexer.outputs['servable'],
        retrieval_blessing=retrieval_evaluator.outputs['blessing'],
        ranking=served_ranking,
        ranking_blessing=ranking_evaluator.outputs['blessing'],
        top_k=recommender_top_k,
        retrieval_weight=recommender_retrieval_weight)

    # Pushes the recommender, only when both of its models were blessed.
    recommender_pusher = AtomicPusher(
        model=recommender_builder.outputs['recommender'],
        model_blessing=recommender_builder.outputs['blessing'],
        push_destination=_push_destination(serving_dir, 'recommender'),
    ).with_id('RecommenderPusher')
    components += [ranking_trainer, latest_blessed_ranking,
                   ranking_evaluator, ranking_pusher, recommender_builder,
                   recommender_pusher]
  return tfx.dsl.Pipeline(
      pipeline_name=pipeline_name,
      pipeline_root=pipeline_root,
      components=components,
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=beam_pipeline_args or [],
  )


def _baseline_resolver(resolver_id: str, model_producer: str,
                       model_key: str, evaluator_id: str, candidate,
                       exclude_candidate: bool) -> tfx.dsl.Resolver:
  """The regression baseline of `evaluator_id`: its latest blessed model,
  other than the `candidate` it judges when `exclude_candidate`
  (pipeline/baseline.py), else TFX's LatestBlessedModelStrategy."""
  blessings = _channel(tfx.types.standard_artifacts.ModelBlessing,
                       evaluator_id, 'blessing')
  if not exclude_candidate:
    return tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=_channel(tfx.types.standard_artifacts.Model, model_producer,
                       model_key),
        model_blessing=blessings).with_id(resolver_id)
  # The pipeline's models, not only `model_producer`'s: TFX keys a
  # resolver's inputs by producer and output, so a channel restricted to the
  # candidate's producer would merge with the candidate's (this run's model
  # alone). The blessings are this evaluator's, and only the models they
  # name can be chosen.
  return tfx.dsl.Resolver(
      strategy_class=baseline.PreviousBlessedModelStrategy,
      model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
      model_blessing=blessings,
      **{baseline.CANDIDATE_KEY: candidate}).with_id(resolver_id)


def _channel(artifact_type, producer_component_id: str, output_key: str):
  """A resolver input restricted to one component's output: with several
  Model producers in the pipeline, an unrestricted channel would let the
  latest blessed *ranking* model become the retrieval baseline."""
  return tfx.dsl.Channel(type=artifact_type,
                         producer_component_id=producer_component_id,
                         output_key=output_key)


def _push_destination(serving_dir: str, model_name: str):
  return tfx.proto.PushDestination(
      filesystem=tfx.proto.PushDestination.Filesystem(
          base_directory=os.path.join(serving_dir, model_name)))
