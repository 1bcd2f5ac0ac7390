"""The tutorial pipeline: factory and command line.

    python -m benchmarks.tutorial.pipeline --data-dir data/ml-100k \\
        --work-dir benchmarks/work/speed/tutorial [--epochs N]

Under --work-dir: data/ratings.csv (the CSV CsvExampleGen reads, written
from the raw files first), pipeline/ (artifacts), metadata.sqlite (ML
Metadata), serving/ (the pushed model) and logs/. The console shows the
same one-line-per-component progress as runner_local.py
(`pipeline.progress`), so both pipelines are timed from the same lines.

TFX is imported only once the console is set up, as in runner_local.py: its
import adds a handler to the root logger that would print every INFO record
of TFX and Beam to the console.
"""

from __future__ import annotations

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from typing import TYPE_CHECKING, List, Optional, Sequence  # noqa: E402

if TYPE_CHECKING:
  from ml_metadata.proto import metadata_store_pb2
  from tfx import v1 as tfx

PIPELINE_NAME = 'tfrs-tutorial'
PREPROCESSING_FN = 'benchmarks.tutorial.preprocessing.preprocessing_fn'
RUN_FN = 'benchmarks.tutorial.trainer.run_fn'
DEFAULT_EPOCHS = 5
# One in-process DirectRunner worker, as runner_local.py's default.
BEAM_PIPELINE_ARGS = ('--direct_running_mode=in_memory',
                      '--direct_num_workers=1')
# Hash buckets of CsvExampleGen's splits: 8/2, train/eval.
TRAIN_BUCKETS = 8
EVAL_BUCKETS = 2


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    data_path: str,
    preprocessing_fn: str,
    run_fn: str,
    serving_dir: str,
    epochs: int,
    beam_pipeline_args: Sequence[str],
    metadata_connection_config: metadata_store_pb2.ConnectionConfig,
    enable_cache: bool = False,
) -> tfx.dsl.Pipeline:
  """The tutorial's seven components, CSV to pushed model.

  Args:
    pipeline_name: the pipeline's name in ML Metadata.
    pipeline_root: where artifacts go.
    data_path: a folder holding only the ratings CSV (`user_id`,
      `movie_title`).
    preprocessing_fn / run_fn: dotted import paths of Transform's and the
      Trainer's functions.
    serving_dir: the Pusher's destination folder.
    epochs: training epochs.
    beam_pipeline_args: options of the Beam runner.
    metadata_connection_config: the ML Metadata store.
    enable_cache: reuse unchanged components' outputs.
  """
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  # Reads the CSV into tf.Examples, hashed 8/2 into train and eval.
  example_gen = tfx.components.CsvExampleGen(
      input_base=data_path,
      output_config=tfx.proto.Output(split_config=tfx.proto.SplitConfig(
          splits=[
              tfx.proto.SplitConfig.Split(name='train',
                                          hash_buckets=TRAIN_BUCKETS),
              tfx.proto.SplitConfig.Split(name='eval',
                                          hash_buckets=EVAL_BUCKETS),
          ])))
  # Statistics of both splits.
  statistics_gen = tfx.components.StatisticsGen(
      examples=example_gen.outputs['examples'])
  # A schema inferred from the statistics.
  schema_gen = tfx.components.SchemaGen(
      statistics=statistics_gen.outputs['statistics'])
  # The statistics checked against the schema.
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'],
      schema=schema_gen.outputs['schema'])
  # Vocabularies of the user ids and movie titles.
  transform = tfx.components.Transform(
      examples=example_gen.outputs['examples'],
      schema=schema_gen.outputs['schema'],
      preprocessing_fn=preprocessing_fn)
  # The two-tower model, exported as a brute-force index.
  trainer = tfx.components.Trainer(
      run_fn=run_fn,
      examples=transform.outputs['transformed_examples'],
      transform_graph=transform.outputs['transform_graph'],
      schema=schema_gen.outputs['schema'],
      custom_config={'epochs': epochs})
  # The model copied to a versioned folder under serving_dir.
  pusher = tfx.components.Pusher(
      model=trainer.outputs['model'],
      push_destination=tfx.proto.PushDestination(
          filesystem=tfx.proto.PushDestination.Filesystem(
              base_directory=serving_dir)))
  return tfx.dsl.Pipeline(
      pipeline_name=pipeline_name,
      pipeline_root=pipeline_root,
      components=[example_gen, statistics_gen, schema_gen, example_validator,
                  transform, trainer, pusher],
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=list(beam_pipeline_args))


def csv_dir(work_dir: str) -> str:
  return os.path.join(work_dir, 'data')


def serving_dir(work_dir: str) -> str:
  return os.path.join(work_dir, 'serving')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      description='Run the TFX/TFRS recommenders tutorial pipeline locally.',
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--data-dir', default=os.path.join('data', 'ml-100k'),
                      help='a raw MovieLens folder')
  parser.add_argument('--work-dir', required=True,
                      help='CSV, artifacts, ML Metadata, pushed model, logs')
  parser.add_argument('--epochs', type=int, default=DEFAULT_EPOCHS)
  parser.add_argument('--verbose', action='store_true',
                      help='show TFX and Beam logs on the console')
  args = parser.parse_args(argv)
  if args.epochs < 1:
    parser.error('--epochs must be at least 1')
  return args


def main(argv: Optional[List[str]] = None) -> int:
  args = parse_args(argv)
  # As in runner_local.py: import-time warnings of Google client libraries.
  warnings.filterwarnings('ignore', category=FutureWarning,
                          module=r'google\.')
  from benchmarks.tutorial import data  # pylint: disable=g-import-not-at-top
  from pipeline import progress  # pylint: disable=g-import-not-at-top
  work_dir = os.path.abspath(args.work_dir)
  os.makedirs(os.path.join(work_dir, 'logs'), exist_ok=True)
  reporter = progress.install(os.path.join(work_dir, 'logs', 'run.log'),
                              verbose=args.verbose)
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  started = time.monotonic()
  rows = data.write_ratings_csv(
      os.path.abspath(args.data_dir),
      os.path.join(csv_dir(work_dir), 'ratings.csv'))
  print(f'Pipeline {PIPELINE_NAME}: {rows:,} ratings written to '
        f'{csv_dir(work_dir)} in {time.monotonic() - started:.1f}s',
        flush=True)
  tfx.orchestration.LocalDagRunner().run(create_pipeline(
      pipeline_name=PIPELINE_NAME,
      pipeline_root=os.path.join(work_dir, 'pipeline'),
      data_path=csv_dir(work_dir),
      preprocessing_fn=PREPROCESSING_FN,
      run_fn=RUN_FN,
      serving_dir=serving_dir(work_dir),
      epochs=args.epochs,
      beam_pipeline_args=BEAM_PIPELINE_ARGS,
      metadata_connection_config=tfx.orchestration.metadata
      .sqlite_metadata_connection_config(
          os.path.join(work_dir, 'metadata.sqlite'))))
  total = sum(seconds for _, seconds, _ in reporter.finished)
  print(f'Pipeline finished: {len(reporter.finished)} components in '
        f'{total:.1f}s (cpu {sum(reporter.cpu.values()):.1f}s). Model pushed '
        f'under {serving_dir(work_dir)}', flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
