"""Runs the pipeline on this machine: LocalDagRunner, SQLite ML Metadata,
Beam DirectRunner.

  python runner_local.py [--data-dir DIR] [--output-dir DIR] [...]

Outputs under --output-dir: pipeline/ (artifacts), metadata/ (ML Metadata)
and logs/ (full logs of each run). Unchanged components are reused from the
cache on a rerun.
"""

import os

# TFRS and tensorflow-transform need Keras 2; must precede any TF import.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import argparse  # noqa: E402
import datetime  # noqa: E402
import importlib.util  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from typing import List, Optional  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
  """The shared flags (`pipeline.flags`), and this runner's: local paths,
  console and ScaNN's presence."""
  from pipeline import configs, flags  # Light: no TensorFlow.
  parser = argparse.ArgumentParser(
      description='Run the MovieLens TFX pipeline locally.',
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument(
      '--data-dir', default=configs.DEFAULT_DATA_DIR,
      help='folder with a raw MovieLens release: ml-100k (u.data, u.item, '
      'u.user), ml-1m (ratings.dat, movies.dat, users.dat) or ml-20m/ml-25m '
      '(ratings.csv, movies.csv); `make data` downloads ml-100k')
  parser.add_argument(
      '--output-dir', default=configs.DEFAULT_OUTPUT_DIR,
      help='where the pipeline root, ML Metadata and logs go')
  parser.add_argument('--verbose', action='store_true',
                      help='show TFX and Beam logs on the console')
  parser.add_argument('--no-report', action='store_true',
                      help='do not write the HTML run report '
                      '(<output-dir>/report/index.html)')
  flags.add_flags(parser)
  args = flags.parse_args(parser, argv)
  if (args.retrieval_index == 'scann' and
      importlib.util.find_spec('scann') is None):
    parser.error("--retrieval-index scann needs ScaNN, which is not "
                 "installed: .venv/bin/python -m pip install 'scann==1.3.2' "
                 "(the release built for TensorFlow 2.16)")
  return args


def beam_pipeline_args(workers: int) -> List[str]:
  """DirectRunner options: in-process for one worker, else processes."""
  if workers == 1:
    return ['--direct_running_mode=in_memory', '--direct_num_workers=1']
  return ['--direct_running_mode=multi_processing',
          f'--direct_num_workers={workers}']


def main(argv: Optional[List[str]] = None) -> int:
  args = parse_args(argv)
  data_dir = os.path.abspath(args.data_dir)
  output_dir = os.path.abspath(args.output_dir)
  if not os.path.isdir(data_dir):
    print(f'error: data folder {data_dir} does not exist. Download ml-100k '
          'with `make data` (or pass --data-dir).', file=sys.stderr)
    return 2
  from pipeline import fs_errors, run_lock  # pylint: disable=g-import-not-at-top
  try:
    fs_errors.check_output_dir(output_dir)
  except fs_errors.OutputDirError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  try:
    with run_lock.RunLock(output_dir):
      return _run(args, data_dir, output_dir)
  except run_lock.OutputDirBusy as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  except Exception as e:  # pylint: disable=broad-except
    line = fs_errors.describe(e)
    if line is None or args.verbose:
      raise
    print(f'\nPipeline stopped: {line} (--verbose shows the traceback)',
          file=sys.stderr)
    return 1


def _run(args: argparse.Namespace, data_dir: str, output_dir: str) -> int:
  """The run itself, under the output folder's lock."""

  # Google client libraries warn at import about Python 3.10 and older
  # pinned dependencies; TFX 1.16 supports nothing newer, so it is noise.
  warnings.filterwarnings('ignore', category=FutureWarning,
                          module=r'google\.')
  from pipeline import configs, flags, progress  # pylint: disable=g-import-not-at-top
  log_dir = os.path.join(output_dir, 'logs')
  os.makedirs(log_dir, exist_ok=True)
  os.makedirs(os.path.dirname(configs.metadata_path(output_dir)),
              exist_ok=True)
  log_file = os.path.join(
      log_dir, datetime.datetime.now().strftime('run-%Y%m%d-%H%M%S.log'))
  reporter = progress.install(log_file, verbose=args.verbose)
  print(f'Pipeline {configs.PIPELINE_NAME}: data {data_dir}, outputs '
        f'{output_dir}\nFull logs: {log_file}', flush=True)

  # Heavy imports after the console is set up.
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from components.anomaly_gate.gate import DataAnomaliesError  # pylint: disable=g-import-not-at-top
  from movielens.layout import RawDataError  # pylint: disable=g-import-not-at-top
  from pipeline import summary  # pylint: disable=g-import-not-at-top
  from pipeline.pipeline import create_pipeline  # pylint: disable=g-import-not-at-top
  from components.atomic_pusher import staging  # pylint: disable=g-import-not-at-top
  # Under the output folder's lock no push is under way: a staging folder
  # is what a killed push left.
  for path in staging.remove_stale_staging(configs.serving_dir(output_dir)):
    print(f'Removed {path}, left by a push that did not finish', flush=True)
  pipeline = create_pipeline(**flags.create_pipeline_kwargs(
      args,
      pipeline_root=configs.pipeline_root(output_dir),
      data_path=data_dir,
      schema_path=configs.schema_path(data_dir),
      serving_dir=configs.serving_dir(output_dir),
      beam_pipeline_args=beam_pipeline_args(args.beam_workers),
      metadata_connection_config=tfx.orchestration.metadata
      .sqlite_metadata_connection_config(configs.metadata_path(output_dir)),
  ))
  try:
    tfx.orchestration.LocalDagRunner().run(pipeline)
  except (RawDataError, DataAnomaliesError) as e:
    print(f'\nPipeline stopped: {e}', file=sys.stderr)
    _write_report(output_dir, args.no_report)
    return 1
  total = sum(seconds for _, seconds, _ in reporter.finished)
  print(f'Pipeline finished: {len(reporter.finished)} components in '
        f'{total:.1f}s. Artifacts under {configs.pipeline_root(output_dir)}')
  print(summary.retrieval_report(configs.metadata_path(output_dir)))
  if not args.no_ranking:
    print(summary.ranking_report(configs.metadata_path(output_dir)))
  _write_report(output_dir, args.no_report)
  return 0


def _write_report(output_dir: str, skip: bool) -> None:
  """The run report (`report/`), its path printed last. A step after the
  run rather than a component: it reads every component's artifacts, the
  stopped run's too, and a report that cannot be built must not fail the
  run or invalidate its cache."""
  if skip:
    return
  import report  # pylint: disable=g-import-not-at-top
  try:
    path = report.build(output_dir)
  except Exception as e:  # pylint: disable=broad-except
    print(f'Run report not written: {type(e).__name__}: {e}',
          file=sys.stderr)
    return
  print(f'Run report: {path}', flush=True)


if __name__ == '__main__':
  sys.exit(main())
