"""The Data section: splits, users, movies and their distributions, TFDV's
statistics of train against eval, the anomalies and the AnomalyGate's
decision.

Counts come from the ExampleGen's ratings examples (read once, also used by
the Recommendations section for what the sample users rated) and the
StatisticsGen's statistics; genres from the statistics' value counts.
"""

import collections
import dataclasses
import glob
import json
import os
from typing import Dict, List, Optional

import numpy as np
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

from modules import features
from report import artifacts
from report import html
from report import plots

SPLITS = ('train', 'eval')


@dataclasses.dataclass
class Ratings:
  """The ratings examples, column-wise, with their split."""
  user_ids: np.ndarray  # str [n]
  movie_ids: np.ndarray  # str [n]
  ratings: np.ndarray  # float [n]
  timestamps: np.ndarray  # int [n]
  titles: Dict[str, str]  # movie id -> title
  splits: np.ndarray  # str [n]


def read_ratings(uri: str) -> Ratings:
  """Reads the ExampleGen's ratings examples (all splits)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  spec = {key: tf.io.FixedLenFeature([], dtype) for key, dtype in (
      (features.USER_ID, tf.string), (features.MOVIE_ID, tf.string),
      (features.RATING, tf.float32), (features.TIMESTAMP, tf.int64),
      (features.TITLE, tf.string))}
  columns = collections.defaultdict(list)
  split_names = []
  for split in SPLITS:
    files = sorted(glob.glob(os.path.join(uri, f'Split-{split}', '*')))
    if not files:
      continue
    dataset = tf.data.TFRecordDataset(files, compression_type='GZIP').batch(
        8192).map(lambda x: tf.io.parse_example(x, spec))
    for batch in dataset:
      for key, value in batch.items():
        columns[key].append(value.numpy())
      split_names.append(np.full(len(batch[features.USER_ID]), split))
  def column(key):
    return np.concatenate(columns[key]) if columns[key] else np.array([])

  def text(key):
    return np.array([v.decode('utf-8', 'replace') for v in column(key)],
                    dtype=str)
  movie_ids = text(features.MOVIE_ID)
  titles = dict(zip(movie_ids, text(features.TITLE)))
  return Ratings(user_ids=text(features.USER_ID),
                 movie_ids=movie_ids, ratings=column(features.RATING),
                 timestamps=column(features.TIMESTAMP), titles=titles,
                 splits=np.concatenate(split_names) if split_names else
                 np.array([]))


def load_statistics(uri: str):
  """{split: DatasetFeatureStatisticsList} of a statistics artifact."""
  # What tfdv.load_stats_binary does, without importing TFDV (and Beam).
  statistics = {}
  for split in SPLITS:
    path = os.path.join(uri, f'Split-{split}', 'FeatureStats.pb')
    if os.path.exists(path):
      with open(path, 'rb') as f:
        statistics[split] = (
            statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read()))
  return statistics


def _feature_rows(statistics) -> List[List[object]]:
  """Train vs eval, one row per feature: TFDV's numbers, statically."""
  by_split = {split: {'/'.join(f.path.step): f for f in
                      stats.datasets[0].features}
              for split, stats in statistics.items()}
  names = sorted(set().union(*by_split.values()))
  rows = []
  for name in names:
    row = [name]
    for split in SPLITS:
      feature = by_split.get(split, {}).get(name)
      if feature is None:
        row += ['\u2014'] * 3
      elif feature.HasField('num_stats'):
        stats = feature.num_stats
        missing = stats.common_stats.num_missing
        row += [f'mean {stats.mean:.4g}, std {stats.std_dev:.4g}',
                f'{stats.min:g} \u2013 {stats.max:g}', missing]
      else:
        stats = feature.string_stats
        top = ', '.join(v.value for v in stats.top_values[:3])
        row += [f'{stats.unique:,} unique', f'top: {top}',
                stats.common_stats.num_missing]
    rows.append(row)
  return rows


def _genre_counts(statistics, split: str) -> Dict[str, int]:
  stats = statistics.get(split)
  if not stats:
    return {}
  for feature in stats.datasets[0].features:
    if feature.path.step == [features.GENRES]:
      return {b.label: int(b.sample_count)
              for b in feature.string_stats.rank_histogram.buckets} or {
                  v.value: int(v.frequency)
                  for v in feature.string_stats.top_values}
  return {}


def _anomalies(uri: str) -> Dict[str, Dict[str, str]]:
  """{split: {feature: description}} of an ExampleAnomalies artifact."""
  found = {}
  for split in SPLITS:
    path = os.path.join(uri, f'Split-{split}', 'SchemaDiff.pb')
    if os.path.exists(path):
      with open(path, 'rb') as f:
        info = anomalies_pb2.Anomalies.FromString(f.read()).anomaly_info
      found[split] = {name: value.short_description or value.description
                      for name, value in info.items()}
  return found


def section(run: artifacts.Run, ratings: Optional[Ratings]) -> html.Section:
  """Builds the Data section."""
  part = html.Section('data', 'Data')
  examples = run.output('MovieLensExampleGen', 'ratings')
  if ratings is None or not len(ratings.user_ids):
    part.note_missing('No ratings examples: the ExampleGen did not run or '
                      'wrote nothing in this run.')
  else:
    split_counts = {s: int((ratings.splits == s).sum()) for s in SPLITS}
    users = len(set(ratings.user_ids))
    movies = len(set(ratings.movie_ids))
    part.data.update(ratings_per_split=split_counts, users=users,
                     movies=movies, ratings=int(len(ratings.ratings)))
    part.add(html.table(
        ['ratings', 'train', 'eval', 'users', 'movies rated'],
        [[len(ratings.ratings), split_counts['train'], split_counts['eval'],
          users, movies]], 'data-counts'))
    part.add(html.paragraph(f'Examples: {examples.uri}', 'note'))
    values, counts = np.unique(ratings.ratings, return_counts=True)
    per_user = np.array(list(collections.Counter(
        ratings.user_ids).values()))
    per_movie = np.array(list(collections.Counter(
        ratings.movie_ids).values()))
    months, month_counts = np.unique(
        ratings.timestamps.astype('datetime64[s]').astype('datetime64[M]'),
        return_counts=True)
    by_month = [(str(m), int(c)) for m, c in zip(months, month_counts)]
    figures = [
        html.figure(plots.bars([f'{v:g}' for v in values], counts.tolist(),
                               'Rating values', 'rating', 'ratings'),
                    'All splits.'),
        html.figure(plots.histogram(per_user, 'Ratings per user',
                                    'ratings (log)', log=True),
                    f'{users:,} users; median {np.median(per_user):g}.'),
        html.figure(plots.histogram(per_movie, 'Ratings per movie',
                                    'ratings (log)', log=True),
                    f'{movies:,} movies; median {np.median(per_movie):g}.'),
        html.figure(plots.bars([m for m, _ in by_month],
                               [c for _, c in by_month], 'Ratings over time',
                               'month (UTC)', 'ratings'),
                    'By the month of the rating.'),
    ]
    part.data['rating_values'] = {f'{v:g}': int(c)
                                  for v, c in zip(values, counts)}
    part.add('<div class="row">' + ''.join(figures) + '</div>')

  statistics_artifact = run.output('StatisticsGen', 'statistics')
  statistics = load_statistics(statistics_artifact.uri) if (
      statistics_artifact) else {}
  if not statistics:
    part.note_missing('No statistics: the StatisticsGen did not run in '
                      'this run.')
  else:
    genres = _genre_counts(statistics, 'train')
    if genres:
      ordered = sorted(genres.items(), key=lambda kv: -kv[1])
      part.data['genres_train'] = dict(ordered)
      part.add(html.figure(plots.bars(
          [g for g, _ in ordered], [c for _, c in ordered],
          'Genres (train ratings)', '', 'ratings', horizontal=True,
          height=max(2.5, 0.22 * len(ordered))),
          'A rating counts once per genre of its movie (TFDV statistics).'))
    part.data['examples_per_split'] = {
        split: int(stats.datasets[0].num_examples)
        for split, stats in statistics.items()}
    part.add('<h3>Train against eval (TFDV statistics)</h3>')
    part.add(html.table(
        ['feature', 'train', 'train range / top', 'train missing', 'eval',
         'eval range / top', 'eval missing'], _feature_rows(statistics),
        'data-statistics'))
    part.add(html.paragraph(
        'TFDV\'s interactive view of the same statistics (Facets) loads its '
        'scripts from the internet, so this self-contained page shows them '
        'as a table; docs/report.md shows how to open it in a notebook. '
        f'Statistics: {statistics_artifact.uri}', 'note'))

  part.add('<h3>Anomalies and the gate</h3>')
  anomalies_artifact = run.output('ExampleValidator', 'anomalies')
  if anomalies_artifact is None:
    part.note_missing('No anomalies artifact: the ExampleValidator did not '
                      'run in this run.')
  else:
    found = _anomalies(anomalies_artifact.uri)
    part.data['anomalies'] = found
    rows = [[split, name, text] for split, names in found.items()
            for name, text in names.items()]
    part.add(html.table(['split', 'feature', 'anomaly'], rows) if rows else
             html.paragraph('No anomalies in ' + ', '.join(found) + '.'))
  gate = run.output('AnomalyGate', 'result')
  gate_file = gate and os.path.join(gate.uri, 'gate_result.json')
  gate_run = run.components.get('AnomalyGate')
  if gate_file and os.path.exists(gate_file):
    with open(gate_file) as f:
      result = json.load(f)
    part.data['gate'] = result
    passed = bool(result.get('passed'))
    checked = ', '.join(result.get('checked_splits', []))
    tolerated = ', '.join(map(str, result.get('tolerated_anomalies') or []))
    part.add(f'<p>AnomalyGate <b class="{"pass" if passed else "fail"}">'
             f'{"passed" if passed else "stopped the run"}</b> (splits '
             f'checked: {html.escape(checked)}; tolerated anomalies: '
             f'{html.escape(tolerated or "none")}).</p>')
  elif gate_run and gate_run.state == 'failed':
    part.data['gate'] = {'passed': False}
    part.add('<p>AnomalyGate <b class="fail">stopped the run</b>: the data '
             'has anomalies (above); nothing after the gate ran.</p>')
  else:
    part.note_missing('No AnomalyGate result in this run: the gate did not '
                      'run.')
  return part
