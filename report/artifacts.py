"""A run's artifacts, found through ML Metadata rather than by folder names.

The latest pipeline run is the newest `pipeline_run` context; each of its
executions belongs to one `node` context, named `<pipeline>.<component id>`.
A cached execution publishes the artifacts of the execution it reused, so
the outputs read here are the ones this run used either way; `producer`
names the execution that actually wrote them (for its times and exec
properties, e.g. the ExampleGen's data fingerprint).

The store is opened read-only: building a report never changes a run.
"""

import dataclasses
import os
from typing import Dict, List, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline import configs

_STATES = {
    metadata_store_pb2.Execution.COMPLETE: 'complete',
    metadata_store_pb2.Execution.CACHED: 'cached',
    metadata_store_pb2.Execution.FAILED: 'failed',
    metadata_store_pb2.Execution.RUNNING: 'running',
    metadata_store_pb2.Execution.NEW: 'new',
    metadata_store_pb2.Execution.CANCELED: 'canceled',
}


def _value(value: metadata_store_pb2.Value):
  kind = value.WhichOneof('value')
  return getattr(value, kind) if kind else None


@dataclasses.dataclass
class Artifact:
  """One output artifact: where it is and what ML Metadata says of it."""
  id: int
  type_name: str
  uri: str
  properties: Dict[str, object]


@dataclasses.dataclass
class ComponentRun:
  """One component's execution in the run, with its outputs by key."""
  component: str
  execution_id: int
  state: str
  start_ms: int
  end_ms: int
  exec_properties: Dict[str, object]
  outputs: Dict[str, List[Artifact]]
  # The execution that wrote the outputs (itself unless cached).
  producer_id: int
  producer_start_ms: int
  producer_end_ms: int
  producer_properties: Dict[str, object]

  @property
  def seconds(self) -> float:
    """Wall time of this run's execution."""
    return max(0, self.end_ms - self.start_ms) / 1000

  @property
  def producer_seconds(self) -> float:
    """Wall time of the execution that wrote the outputs."""
    return max(0, self.producer_end_ms - self.producer_start_ms) / 1000

  def output(self, key: str) -> Optional[Artifact]:
    """The (first) artifact under an output key, or None."""
    artifacts = self.outputs.get(key) or []
    return artifacts[0] if artifacts else None


@dataclasses.dataclass
class Run:
  """The latest pipeline run of an output folder."""
  output_dir: str
  run_id: str
  components: Dict[str, ComponentRun]

  def output(self, component: str, key: str) -> Optional[Artifact]:
    """An output artifact of a component, or None when it did not run."""
    run = self.components.get(component)
    return run.output(key) if run else None


class NoRunError(Exception):
  """The output folder has no ML Metadata store, or no run in it."""


def load_run(output_dir: str) -> Run:
  """Reads the latest run of `<output_dir>` from its ML Metadata store.

  Raises:
    NoRunError: no store at `configs.metadata_path(output_dir)`, or no run.
  """
  path = configs.metadata_path(output_dir)
  if not os.path.exists(path):
    raise NoRunError(f'no ML Metadata store at {path}: has the pipeline run '
                     f'with --output-dir {output_dir}?')
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = path
  config.sqlite.connection_mode = (
      metadata_store_pb2.SqliteMetadataSourceConfig.READONLY)
  store = metadata_store.MetadataStore(config)
  runs = store.get_contexts_by_type('pipeline_run')
  if not runs:
    raise NoRunError(f'no pipeline run recorded in {path}')
  latest = max(runs, key=lambda c: (c.create_time_since_epoch, c.id))
  executions = store.get_executions_by_context(latest.id)
  node_names = {}
  for context in store.get_contexts_by_type('node'):
    for execution in store.get_executions_by_context(context.id):
      node_names[execution.id] = context.name.split('.', 1)[-1]
  artifact_types = {t.id: t.name for t in store.get_artifact_types()}

  events = store.get_events_by_execution_ids([e.id for e in executions])
  outputs_by_execution: Dict[int, Dict[str, List[int]]] = {}
  for event in events:
    if event.type not in (metadata_store_pb2.Event.OUTPUT,
                          metadata_store_pb2.Event.DECLARED_OUTPUT):
      continue
    key = event.path.steps[0].key if event.path.steps else ''
    outputs_by_execution.setdefault(event.execution_id, {}).setdefault(
        key, []).append(event.artifact_id)
  artifact_ids = sorted({i for keys in outputs_by_execution.values()
                         for ids in keys.values() for i in ids})
  artifacts = {a.id: a for a in store.get_artifacts_by_id(artifact_ids)}
  # The first execution to output an artifact wrote it.
  producers: Dict[int, int] = {}
  for event in store.get_events_by_artifact_ids(artifact_ids):
    if event.type == metadata_store_pb2.Event.OUTPUT:
      producers[event.artifact_id] = min(
          producers.get(event.artifact_id, event.execution_id),
          event.execution_id)
  producer_executions = {e.id: e for e in store.get_executions_by_id(
      sorted(set(producers.values())))}

  components = {}
  for execution in sorted(executions, key=lambda e: e.id):
    name = node_names.get(execution.id)
    if not name:
      continue
    outputs = {}
    producer = execution
    for key, ids in outputs_by_execution.get(execution.id, {}).items():
      outputs[key] = [Artifact(
          id=i, type_name=artifact_types.get(artifacts[i].type_id, ''),
          uri=artifacts[i].uri,
          properties={k: _value(v) for k, v in list(
              artifacts[i].properties.items()) + list(
                  artifacts[i].custom_properties.items())})
                      for i in ids if i in artifacts]
      for i in ids:
        if producers.get(i) in producer_executions:
          producer = producer_executions[producers[i]]
    components[name] = ComponentRun(
        component=name, execution_id=execution.id,
        state=_STATES.get(execution.last_known_state, 'unknown'),
        start_ms=execution.create_time_since_epoch,
        end_ms=execution.last_update_time_since_epoch,
        exec_properties={k: _value(v) for k, v in
                         execution.custom_properties.items()},
        outputs=outputs, producer_id=producer.id,
        producer_start_ms=producer.create_time_since_epoch,
        producer_end_ms=producer.last_update_time_since_epoch,
        producer_properties={k: _value(v) for k, v in
                             producer.custom_properties.items()})
  return Run(output_dir=output_dir, run_id=latest.name, components=components)
