"""The end-of-run report: evaluation metrics, blessing, what was pushed.

Read from ML Metadata, so it describes what this run produced or reused.
"""

import dataclasses
import json
import os
from typing import Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

_METRICS = ('recall_at_10', 'recall_at_50', 'recall_at_100', 'ndcg_at_10',
            'hit_rate_at_100', 'coverage_at_10')


def _latest(store, type_name: str, component: str):
  artifacts = [a for a in store.get_artifacts_by_type(type_name)
               if f'/{component}/' in a.uri]
  return max(artifacts, key=lambda a: a.id) if artifacts else None


def _store(metadata_path: str) -> metadata_store.MetadataStore:
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  return metadata_store.MetadataStore(config)


@dataclasses.dataclass(frozen=True)
class Push:
  """What a pusher's latest run left served.

  Attributes:
    destination: the version folder serving the model, None when the model
      was not pushed (not blessed, or the pusher never ran).
    new: whether that run pushed it, or found it already serving: a rerun
      with the model unchanged is reused from the cache (a CACHED execution
      whose PushedModel is the earlier run's), or runs and finds the same
      SavedModel in the newest version folder (components/atomic_pusher),
      which it records as pushed to that existing folder.
  """
  destination: Optional[str]
  new: bool = False

  @property
  def version(self) -> str:
    return os.path.basename(os.path.normpath(self.destination))


_DONE = (metadata_store_pb2.Execution.COMPLETE,
         metadata_store_pb2.Execution.CACHED)


def latest_push(store: metadata_store.MetadataStore, pusher: str) -> Push:
  """The latest finished execution of the component `pusher` (its node
  context is '<pipeline>.<pusher>'), and what its PushedModel says."""
  executions = sorted(
      (execution for context in store.get_contexts_by_type('node')
       if context.name.endswith(f'.{pusher}')
       for execution in store.get_executions_by_context(context.id)
       if execution.last_known_state in _DONE),
      key=lambda execution: execution.id)
  pushes = [(execution, _pushed_model(store, execution.id))
            for execution in executions]
  pushes = [(execution, artifact) for execution, artifact in pushes
            if artifact is not None]
  if not pushes:
    return Push(None)
  execution, artifact = pushes[-1]
  if not artifact.custom_properties['pushed'].int_value:
    return Push(None)
  destination = _destination(artifact)
  if execution.last_known_state == metadata_store_pb2.Execution.CACHED:
    return Push(destination, new=False)
  already = any(
      earlier.id != artifact.id and earlier.custom_properties[
          'pushed'].int_value and _destination(earlier) == destination
      for _, earlier in pushes[:-1])
  return Push(destination, new=not already)


def _pushed_model(store, execution_id: int):
  """The PushedModel an execution output, or None."""
  ids = [event.artifact_id
         for event in store.get_events_by_execution_ids([execution_id])
         if event.type == metadata_store_pb2.Event.OUTPUT]
  artifacts = [artifact for artifact in store.get_artifacts_by_id(ids)
               if artifact.type == 'PushedModel']
  return artifacts[0] if artifacts else None


def _destination(artifact) -> str:
  return artifact.custom_properties['pushed_destination'].string_value


def push_line(push: Push, label: str) -> str:
  """E.g. 'Retrieval servable pushed to: <folder>', '... unchanged, already
  serving version 1796496331' or '...: not pushed (not blessed).'."""
  if push.destination is None:
    return f'{label}: not pushed (not blessed).'
  if push.new:
    return f'{label} pushed to: {push.destination}'
  return f'{label} unchanged, already serving version {push.version}'


def retrieval_report(metadata_path: str) -> str:
  """A few lines on the latest retrieval evaluation and push."""
  store = _store(metadata_path)
  lines = []
  evaluation = _latest(store, 'ModelEvaluation', 'RetrievalEvaluator')
  if evaluation is not None:
    path = os.path.join(evaluation.uri, 'metrics.json')
    if os.path.exists(path):
      with open(path) as f:
        report = json.load(f)
      model = report['model']['metrics']
      popularity = report['popularity']['metrics']
      lines.append('Retrieval evaluation (eval split, whole catalogue, '
                   f'{report["counts"]["users_evaluated"]} users):')
      lines.append(f'  {"metric":<16}{"model":>9}{"popularity":>12}')
      for name in _METRICS:
        if name in model:
          lines.append(f'  {name:<16}{model[name]:9.4f}'
                       f'{popularity.get(name, float("nan")):12.4f}')
      decision = report['decision']
      lines.append('  blessed: ' + ('yes' if decision['blessed'] else 'NO'))
      lines.extend(f'    {reason}' for reason in decision['reasons'])
  lines.append(push_line(latest_push(store, 'RetrievalPusher'),
                         'Retrieval servable'))
  return '\n'.join(lines)


def ranking_report(metadata_path: str) -> str:
  """The ranking model's TFMA metrics and blessing, the recommender's push."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  store = _store(metadata_path)
  lines = []
  evaluation = _latest(store, 'ModelEvaluation', 'RankingEvaluator')
  if evaluation is not None:
    result = tfma.load_eval_result(evaluation.uri)
    lines.append('Ranking evaluation (TFMA, eval split):')
    lines.append(f'  {"slice":<28}{"examples":>9}{"RMSE":>8}{"MAE":>8}')
    rows = []
    for slice_key, metrics in result.slicing_metrics:
      values = next(iter(next(iter(metrics.values())).values()))
      rows.append((
          ', '.join(f'{k}={v}' for k, v in slice_key) if slice_key
          else 'overall',
          *(values.get(name, {}).get('doubleValue', float('nan'))
            for name in ('example_count', 'root_mean_squared_error',
                         'mean_absolute_error'))))
    # Overall first, then the slices by name.
    rows.sort(key=lambda row: (row[0] != 'overall', row[0]))
    for name, count, rmse, mae in rows:
      lines.append(f'  {name[:27]:<28}{count:9.0f}{rmse:8.4f}{mae:8.4f}')
    validation = tfma.load_validation_result(evaluation.uri)
    lines.append('  blessed: ' + ('yes' if validation.validation_ok
                                  else 'NO'))
    for per_slice in validation.metric_validations_per_slice:
      for failure in per_slice.failures:
        lines.append(f'    FAIL {failure.metric_key.name}'
                     f'{" (vs baseline)" if failure.metric_key.is_diff else ""}'
                     f' = {failure.metric_value.double_value.value:.4f}: '
                     f'{failure.metric_threshold}'.replace('\n', ' '))
  lines.append(push_line(latest_push(store, 'RankingPusher'),
                         'Ranking servable'))
  lines.append(push_line(latest_push(store, 'RecommenderPusher'),
                         'Recommender servable'))
  return '\n'.join(lines)
