"""The end-of-run report: evaluation metrics, blessing, pushed path.

Read from ML Metadata, so it describes what this run produced or reused.
"""

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


def retrieval_report(metadata_path: str) -> str:
  """A few lines on the latest retrieval evaluation and push."""
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  store = metadata_store.MetadataStore(config)
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
  pushed = _latest(store, 'PushedModel', 'RetrievalPusher')
  pushed_to: Optional[str] = None
  if pushed is not None and pushed.custom_properties['pushed'].int_value:
    pushed_to = pushed.custom_properties['pushed_destination'].string_value
  lines.append(f'Retrieval servable pushed to: {pushed_to}' if pushed_to else
               'Retrieval servable: not pushed (not blessed).')
  return '\n'.join(lines)


def _pushed_line(store, pusher: str, label: str) -> str:
  pushed = _latest(store, 'PushedModel', pusher)
  if pushed is not None and pushed.custom_properties['pushed'].int_value:
    return (f'{label} pushed to: '
            f'{pushed.custom_properties["pushed_destination"].string_value}')
  return f'{label}: not pushed (not blessed).'


def ranking_report(metadata_path: str) -> str:
  """The ranking model's TFMA metrics and blessing, the recommender's push."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  store = metadata_store.MetadataStore(config)
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
  lines.append(_pushed_line(store, 'RankingPusher', 'Ranking servable'))
  lines.append(_pushed_line(store, 'RecommenderPusher',
                            'Recommender servable'))
  return '\n'.join(lines)
