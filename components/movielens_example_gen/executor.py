"""Executor of MovieLensExampleGen: checks the inputs, runs the Beam
ingestion (`ingest.py`) and publishes both Examples artifacts, or nothing."""

import os
import time
from typing import Any, Dict, List

from absl import logging
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.components.util import examples_utils

from components.movielens_example_gen import bad_lines, ingest, spec
from movielens import layout as raw


def _split_prefix(artifact: types.Artifact, split: str) -> str:
  return os.path.join(artifact.uri, f'Split-{split}', 'data_tfrecord')


def check_input_files(input_base: str) -> raw.RawLayout:
  """Fails fast, before any Beam work, on raw files that are missing, a
  folder, unreadable or empty, and on CSV files whose first line is not the
  layout's header (Beam skips it unread)."""
  data_layout = raw.detect_layout(input_base, exists=fileio.exists)
  problems = []
  for file_name in data_layout.files:
    path = os.path.join(input_base, file_name)
    if not fileio.exists(path):
      problems.append(f'{path}: missing (the {data_layout.name} layout needs '
                      f'{", ".join(data_layout.files)})')
      continue
    if fileio.isdir(path):
      problems.append(f'{path}: is a folder; expected the {file_name} file '
                      f'of {data_layout.name}')
      continue
    try:
      with fileio.open(path, 'rb') as f:
        first_line = f.readline()
    except (OSError, tf.errors.OpError) as e:
      reason = getattr(e, 'strerror', None) or getattr(e, 'message', str(e))
      problems.append(f'{path}: cannot be read ({reason}); check its '
                      'permissions')
      continue
    if not first_line:
      problems.append(f'{path}: empty file')
    elif file_name in data_layout.headers:
      problem = data_layout.header_problem(file_name, first_line)
      if problem:
        problems.append(f'{path}:1: {problem} (the {data_layout.name} '
                        'layout starts each file with its header)')
  if problems:
    raise raw.RawDataError('Cannot ingest MovieLens data:\n  ' +
                           '\n  '.join(problems))
  return data_layout


class Executor(base_beam_executor.BaseBeamExecutor):
  """Reads raw MovieLens files into 'ratings' and 'movies' Examples."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    del input_dict
    input_base = exec_properties[spec.INPUT_BASE_KEY]
    eval_fraction = exec_properties.get(spec.EVAL_FRACTION_KEY)
    if eval_fraction is None:
      eval_fraction = spec.DEFAULT_EVAL_FRACTION
    if not 0.0 < eval_fraction < 1.0:
      raise ValueError(f'{spec.EVAL_FRACTION_KEY} must be in (0, 1), got '
                       f'{eval_fraction!r}')
    max_eval_ratings = exec_properties.get(spec.MAX_EVAL_RATINGS_KEY)
    if max_eval_ratings is None:
      max_eval_ratings = spec.DEFAULT_MAX_EVAL_RATINGS
    if max_eval_ratings < 0:
      raise ValueError(f'{spec.MAX_EVAL_RATINGS_KEY} must be >= 0, got '
                       f'{max_eval_ratings!r}')
    data_layout = check_input_files(input_base)

    ratings = artifact_utils.get_single_instance(output_dict[spec.RATINGS_KEY])
    movies = artifact_utils.get_single_instance(output_dict[spec.MOVIES_KEY])
    prefixes = {split: _split_prefix(ratings, split)
                for split in spec.RATINGS_SPLITS}
    prefixes[ingest.CATALOG] = _split_prefix(movies, ingest.CATALOG)

    logging.info('MovieLensExampleGen: reading %s (%s layout), eval fraction '
                 '%.2f', input_base, data_layout.name, eval_fraction)
    started = time.time()
    try:
      with self._make_beam_pipeline() as pipeline:
        ingest.build_ingest_pipeline(pipeline, input_base, data_layout,
                                     eval_fraction, prefixes,
                                     max_eval_ratings=max_eval_ratings)
      counters = self._counters(pipeline)
      if counters.get('bad_lines'):
        logging.info('MovieLensExampleGen: %d bad line(s) counted; finding '
                     'them in file order', counters['bad_lines'])
        raise raw.RawDataError(
            bad_lines.find(input_base, data_layout).describe())
      if not counters.get('ratings_train'):
        raise raw.RawDataError(
            f'{os.path.join(input_base, data_layout.ratings_file)}: no '
            'ratings found (only blank lines?)')
    except BaseException:
      # Publish nothing: a failed execution leaves no partial examples.
      for artifact in (ratings, movies):
        if fileio.exists(artifact.uri):
          fileio.rmtree(artifact.uri)
        fileio.makedirs(artifact.uri)
      raise

    if counters.get('duplicate_ratings'):
      line = (f'MovieLensExampleGen: {counters["duplicate_ratings"]} '
              'rating(s) of a movie the same user rated again dropped; each '
              "pair's newest rating kept")
      print(line, flush=True)
      logging.info(line)
    ratings.split_names = artifact_utils.encode_split_names(
        list(spec.RATINGS_SPLITS))
    movies.split_names = artifact_utils.encode_split_names(
        list(spec.MOVIES_SPLITS))
    for artifact in (ratings, movies):
      examples_utils.set_payload_format(
          artifact, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
    logging.info(
        'MovieLensExampleGen: %d ratings (train %d, eval %d), %d movies, '
        '%s users (%s held out for eval) in %.1fs',
        counters.get('ratings_train', 0) + counters.get('ratings_eval', 0),
        counters.get('ratings_train', 0), counters.get('ratings_eval', 0),
        counters.get('movies', 0), counters.get('users', 'no'),
        counters.get('eval_users', 0), time.time() - started)

  @staticmethod
  def _counters(pipeline) -> Dict[str, int]:
    import apache_beam as beam  # Local: only needed after a run.
    result = pipeline.result
    query = result.metrics().query(beam.metrics.MetricsFilter().with_namespace(
        ingest.METRICS_NAMESPACE))
    # One result per step and name: 'bad_lines' counts in several steps
    # (parsing each file, joining), so sum them.
    totals: Dict[str, int] = {}
    for counter in query['counters']:
      name = counter.key.metric.name
      totals[name] = totals.get(name, 0) + counter.committed
    return totals
