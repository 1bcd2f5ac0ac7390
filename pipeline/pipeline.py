"""`create_pipeline`: the one pipeline definition every runner uses."""

import dataclasses
import functools
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
    eval_fraction: float = configs.EVAL_FRACTION,
    max_eval_ratings: int = configs.MAX_EVAL_RATINGS,
    retrieval_hparams: Optional[Dict[str, Any]] = None,
    retrieval_top_k: int = configs.RETRIEVAL_TOP_K,
    exclude_seen: bool = True,
    retrieval_index: str = configs.RETRIEVAL_INDEX,
    min_lift_over_popularity: float = configs.MIN_LIFT_OVER_POPULARITY,
    max_regression: float = configs.MAX_REGRESSION,
    ranking_hparams: Optional[Dict[str, Any]] = None,
    max_rmse: float = configs.MAX_RMSE,
    max_rmse_increase: float = configs.MAX_RMSE_INCREASE,
    recommender_top_k: int = configs.RECOMMENDER_TOP_K,
    recommender_retrieval_weight: Optional[float] = None,
    enable_cache: bool = True,
    beam_pipeline_args: Optional[List[str]] = None,
    metadata_connection_config: Optional[
        metadata_store_pb2.ConnectionConfig] = None,
    vertex_training: Optional[Dict[str, Any]] = None,
    baseline_excludes_candidate: bool = True,
) -> tfx.dsl.Pipeline:
  """Builds the MovieLens recommender pipeline.

  Four stages, each built by its own function: ingestion, validation and
  Transform (`_ingest_and_validate`); retrieval (`_retrieval`); ranking
  (`_ranking`); the two-stage recommender (`_recommender`). The last two
  only with a `ranking_run_fn`.

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
    recommender_top_k: movies the two-stage recommender returns.
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
  # Edited module code must invalidate the cache (pipeline/code_version.py).
  code = {CODE_FINGERPRINT_KEY: code_version.package_fingerprint('modules')}
  data = _ingest_and_validate(data_path, schema_path, eval_fraction,
                              max_eval_ratings, preprocessing_fn, code)
  trainer = functools.partial(_trainer, data, code, vertex_training)
  retrieval = _retrieval(
      data, trainer, retrieval_run_fn, retrieval_refit_fn, retrieval_hparams,
      top_k=retrieval_top_k, exclude_seen=exclude_seen,
      index=retrieval_index,
      min_lift_over_popularity=min_lift_over_popularity,
      max_regression=max_regression, serving_dir=serving_dir,
      baseline_excludes_candidate=baseline_excludes_candidate)
  components = data.components + retrieval.components
  if ranking_run_fn:
    ranking = _ranking(
        data, trainer, ranking_run_fn, ranking_refit_fn, ranking_hparams,
        max_rmse=max_rmse, max_rmse_increase=max_rmse_increase,
        serving_dir=serving_dir,
        baseline_excludes_candidate=baseline_excludes_candidate)
    components += ranking.components + _recommender(
        retrieval, ranking, recommender_top_k, recommender_retrieval_weight,
        serving_dir)
  return tfx.dsl.Pipeline(
      pipeline_name=pipeline_name,
      pipeline_root=pipeline_root,
      components=components,
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=beam_pipeline_args or [],
  )


@dataclasses.dataclass(frozen=True)
class _Data:
  """What ingestion gives the model stages: channels, and its components."""
  ratings: Any  # Examples: 'train' and 'eval' splits by time.
  movies: Any  # Examples: the catalogue.
  schema: Any
  transform: Any  # tfx.components.Transform
  components: List[Any]


@dataclasses.dataclass(frozen=True)
class _Stage:
  """A model stage: the model it serves, its blessing and its components."""
  served: Any  # Model channel.
  blessing: Any  # ModelBlessing channel.
  components: List[Any]


def _ingest_and_validate(data_path: str, schema_path: str,
                         eval_fraction: float, max_eval_ratings: int,
                         preprocessing_fn: str,
                         code: Dict[str, str]) -> _Data:
  """Ingestion, validation against the curated schema (stopping the run on
  anomalies) and Transform."""
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
  return _Data(
      ratings=ratings, movies=example_gen.outputs['movies'],
      schema=schema_gen.outputs['schema'], transform=transform,
      components=[example_gen, statistics_gen, schema_gen, example_validator,
                  anomaly_gate, transform])


def _trainer(data: _Data, code: Dict[str, str],
             vertex_training: Optional[Dict[str, Any]], component_id: str,
             run_fn: str, hparams: Optional[Dict[str, Any]],
             base_model=None):
  """A Trainer on the transformed ratings, with the code fingerprint."""
  return trainers.make_trainer(
      component_id, run_fn,
      examples=data.transform.outputs['transformed_examples'],
      transform_graph=data.transform.outputs['transform_graph'],
      schema=data.schema,
      custom_config={'hparams': dict(hparams or {}), **code},
      vertex_training=vertex_training, base_model=base_model)


def _retrieval(data: _Data, trainer, run_fn: str, refit_fn: Optional[str],
               hparams: Optional[Dict[str, Any]], *, top_k: int,
               exclude_seen: bool, index: str,
               min_lift_over_popularity: float, max_regression: float,
               serving_dir: str, baseline_excludes_candidate: bool
               ) -> _Stage:
  """Trains, (refits,) indexes, judges and pushes the retrieval model;
  serves the indexed servable."""
  # Trains the two-tower retrieval model with early stopping on eval;
  # exports the towers and (training_summary.json) the best epoch.
  retrieval_trainer = trainer('RetrievalTrainer', run_fn, hparams)
  components = [retrieval_trainer]

  served_towers, evaluated_towers = retrieval_trainer.outputs['model'], None
  if refit_fn:
    # Refits the towers on train + eval for the best epoch count.
    retrieval_refit = trainer('RetrievalRefit', refit_fn, hparams,
                              base_model=retrieval_trainer.outputs['model'])
    served_towers = retrieval_refit.outputs['model']
    evaluated_towers = retrieval_trainer.outputs['model']
    components.append(retrieval_refit)

  # Indexes the whole catalogue: the TF Serving-ready retrieval servable
  # (and, from the early-stopped towers, the one the evaluator scores).
  retrieval_indexer = RetrievalIndexer(
      model=served_towers,
      eval_model=evaluated_towers,
      ratings=data.ratings,
      movies=data.movies,
      top_k=top_k,
      exclude_seen=exclude_seen,
      index=index)
  servable = retrieval_indexer.outputs['servable']

  # Finds the latest blessed retrieval servable, the regression baseline.
  latest_blessed_retrieval = _baseline_resolver(
      'LatestBlessedRetrieval', 'RetrievalIndexer', 'servable',
      'RetrievalEvaluator', servable, baseline_excludes_candidate)

  # Scores top-K retrieval on eval against popularity and the baseline.
  retrieval_evaluator = RetrievalEvaluator(
      model=servable,
      examples=data.ratings,
      movies=data.movies,
      baseline_model=latest_blessed_retrieval.outputs['model'],
      min_lift_over_popularity=min_lift_over_popularity,
      max_regression=max_regression)
  blessing = retrieval_evaluator.outputs['blessing']

  # Pushes the servable, only when blessed, as a complete version folder.
  retrieval_pusher = AtomicPusher(
      model=servable,
      model_blessing=blessing,
      push_destination=_push_destination(serving_dir, 'retrieval'),
  ).with_id('RetrievalPusher')
  components += [retrieval_indexer, latest_blessed_retrieval,
                 retrieval_evaluator, retrieval_pusher]
  return _Stage(served=servable, blessing=blessing, components=components)


def _ranking(data: _Data, trainer, run_fn: str, refit_fn: Optional[str],
             hparams: Optional[Dict[str, Any]], *, max_rmse: float,
             max_rmse_increase: float, serving_dir: str,
             baseline_excludes_candidate: bool) -> _Stage:
  """Trains, judges (TFMA), (refits) and pushes the ranking model."""
  # Trains the ranking model (rating and relevance heads) with early
  # stopping on eval; its SavedModel is a ranking servable.
  ranking_trainer = trainer('RankingTrainer', run_fn, hparams)
  model = ranking_trainer.outputs['model']

  # Finds the latest blessed ranking model, TFMA's change baseline.
  latest_blessed_ranking = _baseline_resolver(
      'LatestBlessedRanking', 'RankingTrainer', 'model', 'RankingEvaluator',
      model, baseline_excludes_candidate)

  # TFMA: RMSE/MAE overall and sliced; blesses on the thresholds.
  ranking_evaluator = tfx.components.Evaluator(
      examples=data.ratings,
      model=model,
      baseline_model=latest_blessed_ranking.outputs['model'],
      eval_config=evaluation.ranking_eval_config(max_rmse, max_rmse_increase),
  ).with_id('RankingEvaluator')
  blessing = ranking_evaluator.outputs['blessing']
  components = [ranking_trainer, latest_blessed_ranking, ranking_evaluator]

  served = model
  if refit_fn:
    # Refits it on train + eval for the best epoch count: the servable
    # pushed when the early-stopped model is blessed.
    ranking_refit = trainer('RankingRefit', refit_fn, hparams,
                            base_model=model)
    served = ranking_refit.outputs['model']
    components.append(ranking_refit)

  # Pushes the ranking servable, only when blessed.
  ranking_pusher = AtomicPusher(
      model=served,
      model_blessing=blessing,
      push_destination=_push_destination(serving_dir, 'ranking'),
  ).with_id('RankingPusher')
  components.append(ranking_pusher)
  return _Stage(served=served, blessing=blessing, components=components)


def _recommender(retrieval: _Stage, ranking: _Stage, top_k: int,
                 retrieval_weight: Optional[float],
                 serving_dir: str) -> List[Any]:
  """Builds and pushes the two-stage recommender."""
  # Retrieval + ranking in one servable, built when both are blessed.
  recommender_builder = RecommenderBuilder(
      retrieval=retrieval.served,
      retrieval_blessing=retrieval.blessing,
      ranking=ranking.served,
      ranking_blessing=ranking.blessing,
      top_k=top_k,
      retrieval_weight=retrieval_weight)

  # Pushes the recommender, only when both of its models were blessed.
  recommender_pusher = AtomicPusher(
      model=recommender_builder.outputs['recommender'],
      model_blessing=recommender_builder.outputs['blessing'],
      push_destination=_push_destination(serving_dir, 'recommender'),
  ).with_id('RecommenderPusher')
  return [recommender_builder, recommender_pusher]


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
