"""The Evaluation section: retrieval metrics against the baselines, TFMA's
RMSE/MAE by slice with readable labels, and every blessing decision with the
thresholds it checked.

Retrieval numbers are the RetrievalEvaluator's `metrics.json`; ranking
numbers are TFMA's (`tfma.load_eval_result`, `tfma.load_validation_result`)
with the thresholds from the evaluation's own `eval_config.json`; age-bucket
labels come from applying the run's Transform graph to ages 1-99.
"""

import json
import os
from typing import Dict, List, Optional

from modules import features
from report import artifacts
from report import html
from report import labels
from report import plots

_RANKING_METRICS = ('root_mean_squared_error', 'mean_absolute_error',
                    'example_count')


def age_labels(transform_graph_uri: str) -> Dict[int, str]:
  """{age bucket: label}, by running the run's Transform on ages 1-99."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  output = tft.TFTransformOutput(transform_graph_uri)
  ages = list(range(1, 100))
  count = len(ages)
  inputs = {}
  for key, spec in output.raw_feature_spec().items():
    if isinstance(spec, tf.io.FixedLenFeature):
      if key == features.AGE:
        inputs[key] = tf.constant([[a] for a in ages], spec.dtype)
      elif spec.dtype == tf.string:
        inputs[key] = tf.fill([count] + list(spec.shape), '')
      else:
        inputs[key] = tf.zeros([count] + list(spec.shape), spec.dtype)
    else:
      inputs[key] = tf.sparse.SparseTensor(
          tf.zeros([0, 2], tf.int64), tf.zeros([0], spec.dtype), [count, 1])
  buckets = output.transform_raw_features(inputs)[features.transformed_name(
      features.AGE_BUCKET)].numpy().reshape(-1)
  return labels.age_bucket_labels(dict(zip(ages, buckets.tolist())),
                                  features.AGE_BUCKETS)


def _slice_metrics(result) -> List[Dict[str, object]]:
  rows = []
  for key, by_output in result.slicing_metrics:
    metrics = next(iter(next(iter(by_output.values())).values()))
    row = {'slice': [list(k) for k in key]}
    for name in _RANKING_METRICS:
      value = metrics.get(name, {}).get('doubleValue')
      row[name] = None if value is None else float(value)
    rows.append(row)
  return rows


def _retrieval(part: html.Section, run: artifacts.Run) -> None:
  part.add('<h3>Retrieval (RetrievalEvaluator)</h3>')
  evaluation = run.output('RetrievalEvaluator', 'evaluation')
  path = evaluation and os.path.join(evaluation.uri, 'metrics.json')
  if not path or not os.path.exists(path):
    part.note_missing('No retrieval evaluation in this run (metrics.json '
                      'missing): the RetrievalEvaluator did not run.')
    return
  with open(path) as f:
    report = json.load(f)
  names = report['metric_names']
  series = {'model': [report['model']['metrics'][n] for n in names],
            'most popular': [report['popularity']['metrics'][n]
                             for n in names]}
  baseline = report.get('baseline_model')
  if baseline:
    series['previous blessed'] = [baseline['metrics'].get(n, 0)
                                  for n in names]
  part.data['retrieval'] = {name: dict(zip(names, values))
                            for name, values in series.items()}
  part.data['retrieval_counts'] = report.get('counts', {})
  part.add(html.figure(plots.grouped_bars(
      names, series, 'Retrieval on the eval split'),
      f'K = {report["model"].get("k")}; '
      f'{report.get("counts", {}).get("users_evaluated", "?")} users. '
      + ('' if baseline else 'No previous blessed model to compare with.')))
  part.add(html.table(['metric'] + list(series),
                      [[n] + [series[s][i] for s in series]
                       for i, n in enumerate(names)], 'retrieval-metrics'))
  decision = report.get('decision', {})
  _decision(part, 'RetrievalEvaluator', decision.get('blessed'),
            [(c['name'], c.get('value'), c.get('threshold'), c['passed'],
              c.get('reason', '')) for c in decision.get('checks', [])])
  part.data['retrieval_decision'] = decision


def _decision(part: html.Section, component: str, blessed: Optional[bool],
              checks) -> None:
  verdict = {True: ('pass', 'blessed'), False: ('fail', 'not blessed'),
             None: ('', 'no decision recorded')}[blessed]
  part.add((f'<p>{html.escape(component)}: <b class="{verdict[0]}">'
                    f'{verdict[1]}</b></p>'))
  if checks:
    part.add(html.table(
        ['check', 'value', 'threshold', 'result', 'detail'],
        [[name, value, threshold, _verdict(passed, detail), detail]
         for name, value, threshold, passed, detail in checks]))


def _verdict(passed: bool, detail: str) -> str:
  """'skip' for a check that did not apply (its detail says SKIP)."""
  if str(detail).startswith('SKIP'):
    return 'skip'
  return 'pass' if passed else 'FAIL'


def _thresholds(eval_config: dict):
  """(metric, bound, value) of every threshold in an eval_config.json."""
  found = []
  for spec in eval_config.get('metricsSpecs', []):
    for metric in spec.get('metrics', []):
      thresholds = [t.get('threshold', {}) for t in
                    metric.get('perSliceThresholds', [])]
      if 'threshold' in metric:
        thresholds.append(metric['threshold'])
      for threshold in thresholds:
        for kind, bounds in threshold.items():
          for bound, value in bounds.items():
            if isinstance(value, dict):
              value = value.get('value', value)
            found.append((metric['className'], f'{kind}.{bound}', value))
  return found


def _ranking(part: html.Section, run: artifacts.Run) -> None:
  part.add('<h3>Ranking (TFMA)</h3>')
  evaluation = run.output('RankingEvaluator', 'evaluation')
  if evaluation is None or not os.path.isdir(evaluation.uri):
    part.note_missing('No ranking evaluation in this run: the '
                      'RankingEvaluator did not run.')
    return
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  rows = _slice_metrics(tfma.load_eval_result(evaluation.uri))
  graph = run.output('Transform', 'transform_graph')
  ages = age_labels(graph.uri) if graph else {}
  for row in rows:
    row['label'] = labels.slice_label(row['slice'], ages)
  overall = next((r for r in rows if not r['slice']), None)
  part.data['ranking_slices'] = rows
  part.data['age_labels'] = {str(k): v for k, v in ages.items()}
  if overall:
    part.data['ranking_overall'] = overall

  def order(row):
    feature, value = row['slice'][0]
    return (feature, int(value) if feature == 'age_bucket_xf' else 0,
            row['label'])
  ordered = ([overall] if overall else []) + sorted(
      (r for r in rows if r['slice']), key=order)
  counts = [r['example_count'] or 0 for r in ordered]
  part.add(html.figure(plots.bars(
      [r['label'] for r in ordered],
      [r['root_mean_squared_error'] or 0 for r in ordered],
      'RMSE on the eval split, by slice', 'RMSE', horizontal=True,
      annotate=[f'n={int(c):,}' for c in counts],
      height=max(3, 0.2 * len(ordered))),
      'Early-stopped ranking model; n = eval ratings in the slice.'))
  part.add(html.table(
      ['slice', 'RMSE', 'MAE', 'examples'],
      [[r['label'], r['root_mean_squared_error'], r['mean_absolute_error'],
        int(r['example_count'] or 0)] for r in ordered], 'ranking-slices'))

  validation = tfma.load_validation_result(evaluation.uri)
  config_path = os.path.join(evaluation.uri, 'eval_config.json')
  eval_config = {}
  if os.path.exists(config_path):
    with open(config_path) as f:
      eval_config = json.load(f).get('evalConfig', {})
  failures = {}
  for failure in validation.metric_validations_per_slice:
    for metric in failure.failures:
      failures[metric.metric_key.name] = metric.message
  checks = []
  for metric, bound, value in _thresholds(eval_config):
    name = {'RootMeanSquaredError': 'root_mean_squared_error',
            'MeanAbsoluteError': 'mean_absolute_error'}.get(metric, metric)
    measured = overall.get(name) if overall else None
    checks.append((f'{metric} {bound}', measured, value,
                   name not in failures, failures.get(name, '')))
  blessing = run.output('RankingEvaluator', 'blessing')
  blessed = None
  if blessing:
    blessed = os.path.exists(os.path.join(blessing.uri, 'BLESSED'))
  part.data['ranking_decision'] = {
      'blessed': blessed, 'validation_ok': validation.validation_ok,
      'checks': [list(c) for c in checks]}
  _decision(part, 'RankingEvaluator', blessed, checks)


def _recommender(part: html.Section, run: artifacts.Run) -> None:
  blessing = run.output('RecommenderBuilder', 'blessing')
  if blessing is None:
    part.note_missing('No RecommenderBuilder decision in this run.')
    return
  blessed = blessing.properties.get('blessed')
  message = blessing.properties.get('blessing_message', '')
  part.data['recommender_decision'] = {'blessed': blessed,
                                       'message': message}
  _decision(part, 'RecommenderBuilder', None if blessed is None else
            bool(blessed), [('both models blessed', None, None,
                             bool(blessed), message)])


def section(run: artifacts.Run) -> html.Section:
  """Builds the Evaluation section."""
  part = html.Section('evaluation', 'Evaluation')
  _retrieval(part, run)
  _ranking(part, run)
  part.add('<h3>Recommender</h3>')
  _recommender(part, run)
  return part
