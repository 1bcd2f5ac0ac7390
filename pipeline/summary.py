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
