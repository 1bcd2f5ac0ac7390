"""`create_pipeline`: the one pipeline definition every runner uses."""

from typing import List, Optional

from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from components.anomaly_gate import AnomalyGate
from components.movielens_example_gen import MovieLensExampleGen


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    data_path: str,
    schema_path: str,
    preprocessing_fn: str,
    eval_fraction: float = 0.2,
    enable_cache: bool = True,
    beam_pipeline_args: Optional[List[str]] = None,
    metadata_connection_config: Optional[
        metadata_store_pb2.ConnectionConfig] = None,
) -> tfx.dsl.Pipeline:
  """Builds the MovieLens recommender pipeline.

  Args:
    pipeline_name: name of the pipeline in ML Metadata and orchestrators.
    pipeline_root: root folder (or bucket path) of all artifacts.
    data_path: folder holding a raw MovieLens release (e.g. ml-100k files).
    schema_path: the curated schema (schema.pbtxt) of the ratings examples.
    preprocessing_fn: import path of Transform's preprocessing_fn.
    eval_fraction: share of each user's newest ratings held out for eval.
    enable_cache: reuse outputs of components whose inputs did not change.
    beam_pipeline_args: Beam options for ExampleGen, StatisticsGen and
      Transform (e.g. DirectRunner workers, or Dataflow settings).
    metadata_connection_config: ML Metadata store; None lets the
      orchestrator decide (Kubeflow/Vertex bring their own).

  Returns:
    The pipeline, ready for any TFX runner.
  """
  # Reads the raw files; emits 'ratings' (train/eval by time) and 'movies'.
  example_gen = MovieLensExampleGen(
      input_base=data_path, eval_fraction=eval_fraction)
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
      schema=schema_gen.outputs['schema'],
      preprocessing_fn=preprocessing_fn,
      splits_config=tfx.proto.SplitsConfig(
          analyze=['train'], transform=['train', 'eval']))
  transform.add_upstream_node(anomaly_gate)

  components = [
      example_gen, statistics_gen, schema_gen, example_validator,
      anomaly_gate, transform,
  ]
  return tfx.dsl.Pipeline(
      pipeline_name=pipeline_name,
      pipeline_root=pipeline_root,
      components=components,
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=beam_pipeline_args or [],
  )
