"""Cost of reading the training files: the trainers' reader against
`tf.data.experimental.make_batched_features_dataset`.

    python -m benchmarks.reading [--pipeline-output DIR] [--batches 40]

Reads the first `--batches` batches of 8,192 transformed examples of the
latest Transform output under `--pipeline-output` (default: the ml-100k run
of `benchmarks.pipeline_scale`), all features, without and with shuffling,
through both readers, and prints the CPU and wall microseconds per example.
Both give the same batches in the same order
(tests/modules/test_training_data.py); `training_data.make_dataset`
parses each batch with `tf.io.parse_example` in parallel, where the
experimental reader's parsing dataset is several times as costly. The
trainers read the files once to build their tables
(`training_data.scan`) and once per epoch.
"""

import argparse
import glob
import json
import os
import resource
import time
from typing import Dict, Optional, Sequence

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

BATCH_SIZE = 8192
DEFAULT_PIPELINE_OUTPUT = os.path.join('benchmarks', 'work', 'scale', 'runs',
                                       'ml-100k')


def _cpu_seconds() -> float:
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def experimental_reader(files, spec, batch_size: int, shuffle: bool,
                        seed: int):
  """The reader the trainers used before (same arguments as theirs)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.data.experimental.make_batched_features_dataset(
      file_pattern=files, batch_size=batch_size, features=spec,
      reader=lambda names: tf.data.TFRecordDataset(names, 'GZIP'),
      num_epochs=1, shuffle=shuffle, shuffle_seed=seed,
      shuffle_buffer_size=50_000, drop_final_batch=False)


def measure(dataset, batches: int) -> Dict[str, float]:
  """Examples read and CPU / wall microseconds per example over the first
  `batches` batches."""
  from modules import training_data  # pylint: disable=g-import-not-at-top
  start, cpu = time.perf_counter(), _cpu_seconds()
  examples = 0
  for batch in dataset.take(batches):
    examples += training_data.batch_rows(batch)
  wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
  return {'examples': examples,
          'cpu_us_per_example': round(1e6 * cpu / max(examples, 1), 2),
          'wall_us_per_example': round(1e6 * wall / max(examples, 1), 2)}


def compare(files: Sequence[str], spec, batches: int,
            batch_size: int = BATCH_SIZE) -> Dict[str, Dict[str, float]]:
  """{reader / shuffle: measure(...)} for both readers."""
  from modules import training_data  # pylint: disable=g-import-not-at-top
  results = {}
  for shuffle in (False, True):
    for name, reader in (('make_batched_features_dataset',
                          experimental_reader),
                         ('training_data.make_dataset',
                          training_data.make_dataset)):
      key = f'{name}, shuffle={shuffle}'
      results[key] = measure(
          reader(list(files), spec, batch_size, shuffle=shuffle, seed=0),
          batches)
  return results


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--pipeline-output', default=DEFAULT_PIPELINE_OUTPUT,
                      help='a pipeline run\'s output (its latest Transform)')
  parser.add_argument('--batches', type=int, default=40)
  args = parser.parse_args(argv)
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  from benchmarks import retrieval_sweep  # pylint: disable=g-import-not-at-top
  try:
    examples = retrieval_sweep.latest_artifact_dir(
        args.pipeline_output, 'Transform', 'transformed_examples')
    graph = retrieval_sweep.latest_artifact_dir(
        args.pipeline_output, 'Transform', 'transform_graph')
  except FileNotFoundError as e:
    parser.error(f'{e} (run `python -m benchmarks.pipeline_scale` first, or '
                 'pass --pipeline-output)')
  files = sorted(glob.glob(os.path.join(examples, 'Split-train', '*.gz')))
  spec = tft.TFTransformOutput(graph).transformed_feature_spec()
  results = compare(files, spec, args.batches)
  for key, value in results.items():
    print(f'{key:<50} {value["examples"]:>9,} examples: '
          f'{value["cpu_us_per_example"]:6.2f} us CPU, '
          f'{value["wall_us_per_example"]:6.2f} us wall per example',
          flush=True)
  print(json.dumps({'examples_dir': examples, 'batch_size': BATCH_SIZE,
                    'results': results}))
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
