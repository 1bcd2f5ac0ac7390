"""Hyper-parameter sweep of the retrieval model, scored under a protocol.

    python -m benchmarks.retrieval_sweep --protocol msrec \
        --pipeline-output benchmarks/work/msrec/pipeline \
        --trial negatives=in_batch --trial negatives=catalogue,temperature=0.2

Reuses the ExampleGen and Transform outputs of a pipeline run that
`benchmarks.retrieval_quality` made on the protocol's training split (its
`--work-dir`), so a trial costs only training: for each `--trial` (comma-
separated NAME=VALUE overrides of `modules.hparams.RetrievalHParams`) it
trains with `modules.retrieval_trainer.train` (then `refit` on train +
eval, as the pipeline's RetrievalRefit does, unless `--no-refit`),
exports the towers as the Trainer does, builds the servable exactly as the RetrievalIndexer does, and
scores its `serving_default` answers on the protocol's test ratings. The
defaults in `modules/hparams.py` were chosen this way; the JSON it writes
(`--output`) records every trial.

The figures match a full pipeline run of the same configuration up to
training noise (seeded, but not bit-reproducible across thread schedules).
"""

from __future__ import annotations

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import argparse  # noqa: E402
import datetime  # noqa: E402
import glob  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any, Dict, List, Mapping, Optional, Sequence  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks import protocols  # noqa: E402
from benchmarks import report  # noqa: E402
from benchmarks import retrieval_quality  # noqa: E402

DEFAULT_OUTPUT = os.path.join('benchmarks', 'results',
                              'retrieval_sweep.json')


def parse_trial(text: str) -> Dict[str, str]:
  """'a=1,b=x' -> {'a': '1', 'b': 'x'}; '' -> {} (the defaults)."""
  overrides = {}
  for item in filter(None, (part.strip() for part in text.split(','))):
    name, sep, value = item.partition('=')
    if not sep or not name.strip():
      raise ValueError(f'--trial {text!r}: expected NAME=VALUE[,NAME=VALUE]')
    overrides[name.strip()] = value.strip()
  return overrides


def latest_artifact_dir(pipeline_output: str, component: str,
                        output_key: str) -> str:
  """The newest `<root>/<component>/<output_key>/<execution id>/` folder.

  Raises:
    FileNotFoundError: there is none, with what to run first.
  """
  found = common.latest_artifact_dir(pipeline_output, component, output_key)
  if found is None:
    raise FileNotFoundError(
        f'no {component} {output_key!r} output under {pipeline_output}; run '
        'benchmarks.retrieval_quality for this protocol first (its '
        '--work-dir/<protocol>/pipeline)')
  return found


def _examples(uri: str, splits: Sequence[str]):
  from tfx.types import artifact_utils, standard_artifacts  # pylint: disable=g-import-not-at-top
  artifact = standard_artifacts.Examples()
  artifact.uri = uri
  artifact.split_names = artifact_utils.encode_split_names(list(splits))
  return artifact


def run_trial(overrides: Mapping[str, str], pipeline_output: str,
              user_ids: Sequence[str], k: int, exclude_seen: bool,
              refit: bool = True) -> Dict[str, Any]:
  """Trains one configuration (refit on train + eval after early stopping,
  as the pipeline serves it, unless `refit` is False); returns its served
  top k per user, with training figures."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  from components.retrieval_indexer import executor as indexer  # pylint: disable=g-import-not-at-top
  from modules import refit_protocol, retrieval_export, retrieval_trainer  # pylint: disable=g-import-not-at-top
  from modules.hparams import RetrievalHParams  # pylint: disable=g-import-not-at-top

  hparams = RetrievalHParams.from_config(overrides)
  transformed = latest_artifact_dir(pipeline_output, 'Transform',
                                    'transformed_examples')
  graph = latest_artifact_dir(pipeline_output, 'Transform', 'transform_graph')
  ratings = _examples(latest_artifact_dir(
      pipeline_output, 'MovieLensExampleGen', 'ratings'), ['train', 'eval'])
  movies = _examples(latest_artifact_dir(
      pipeline_output, 'MovieLensExampleGen', 'movies'), ['catalog'])
  tft_output = tft.TFTransformOutput(graph)

  train_files = sorted(glob.glob(os.path.join(transformed, 'Split-train',
                                              '*.gz')))
  eval_files = sorted(glob.glob(os.path.join(transformed, 'Split-eval',
                                             '*.gz')))
  start = time.monotonic()
  model, metrics = retrieval_trainer.train(train_files, eval_files,
                                           tft_output, hparams)
  refit_epochs = 0
  if refit:  # As the pipeline serves it (RetrievalRefit).
    refit_epochs = refit_protocol.refit_epochs(
        metrics['best_epoch'], hparams.refit_extra_epochs)
    model, _ = retrieval_trainer.refit(train_files, eval_files, tft_output,
                                       hparams, refit_epochs)
  train_seconds = time.monotonic() - start
  with tempfile.TemporaryDirectory() as towers_dir:
    retrieval_trainer.save_towers(model, tft_output, towers_dir)
    towers = tf.saved_model.load(towers_dir)
    movie_examples, movie_ids, titles = indexer.read_catalogue(movies)
    rows = {m: i for i, m in enumerate(movie_ids)}
    users, examples, train_seen, eval_seen = indexer.read_history(
        ratings, rows, ('train', 'eval') if refit else ('train',))
    servable = retrieval_export.RetrievalServable(
        towers, movie_ids, titles,
        retrieval_export.embed_catalogue(towers, movie_examples), users,
        examples, train_seen, eval_seen, top_k=max(k, 1),
        exclude_seen=exclude_seen)
    recs = {}
    for i in range(0, len(user_ids), retrieval_quality.SERVING_BATCH):
      batch = list(user_ids[i:i + retrieval_quality.SERVING_BATCH])
      answer = servable.serve_user_ids(tf.constant(batch))['movie_ids']
      for user_id, row in zip(batch, answer.numpy()):
        recs[user_id] = [m.decode('utf-8') for m in row[:k] if m]
  return {'recs': recs, 'train_seconds': round(train_seconds, 1),
          'best_epoch': metrics['best_epoch'],
          'epochs_run': metrics['epochs_run'],
          'refit_epochs': refit_epochs,
          'val_top_100': round(metrics['val_' + retrieval_trainer.TOP_100_METRIC],
                               6)}


def sweep_parser(description: str, default_output: str
                ) -> argparse.ArgumentParser:
  """The arguments every sweep takes (also benchmarks.ranking_sweep's)."""
  parser = argparse.ArgumentParser(
      description=description,
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--data-dir', default='data/ml-100k',
                      help='the raw ml-100k folder the protocol splits')
  parser.add_argument('--protocol', default=protocols.MSREC,
                      choices=protocols.PROTOCOLS)
  parser.add_argument('--seed', type=int, default=protocols.DEFAULT_SEED,
                      help='seed of the split (as in retrieval_quality)')
  parser.add_argument(
      '--pipeline-output',
      default=os.path.join(retrieval_quality.DEFAULT_WORK_DIR, '{protocol}',
                           'pipeline'),
      help='output dir of a pipeline run on the protocol\'s train split')
  parser.add_argument('--trial', action='append', default=[],
                      metavar='NAME=VALUE[,NAME=VALUE]',
                      help="one configuration (repeatable); '' = defaults")
  parser.add_argument('--no-refit', action='store_true',
                      help='serve the early-stopped model, not its refit on '
                      'train + eval (as runner_local.py --no-refit)')
  parser.add_argument('--output', default=default_output)
  return parser


def parse_sweep_args(parser: argparse.ArgumentParser,
                     argv: Optional[Sequence[str]]) -> argparse.Namespace:
  """Parses; fills in the protocol's pipeline output and `args.trials`
  (one trial of the defaults when none is given)."""
  args = parser.parse_args(argv)
  args.pipeline_output = args.pipeline_output.format(protocol=args.protocol)
  try:
    args.trials = [parse_trial(t) for t in args.trial or ['']]
  except ValueError as e:
    parser.error(str(e))
  return args


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  return parse_sweep_args(
      sweep_parser(__doc__.split('\n\n')[0], DEFAULT_OUTPUT), argv)


def write_report(benchmark: str, args: argparse.Namespace,
                 trials: List[Dict[str, Any]]) -> None:
  """Writes a sweep's trials to `args.output` with machine, versions and
  commit (shared with benchmarks.ranking_sweep)."""
  common.write_json(args.output, {
      'benchmark': benchmark,
      'date': datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec='seconds'),
      'machine': report.machine_info(),
      'packages': report.package_versions(retrieval_quality.PACKAGES),
      'git': common.git_revision(),
      'protocol': args.protocol, 'seed': args.seed,
      'pipeline_output': os.path.abspath(args.pipeline_output),
      'trials': trials,
  })


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  dataset = protocols.load_ml100k(args.data_dir)
  split = protocols.split(args.protocol, dataset.ratings, args.seed)
  users = sorted({r.user_id for r in split.test}, key=lambda u: (len(u), u))
  k = protocols.TOP_K[args.protocol]
  results: List[Dict[str, Any]] = []
  for overrides in args.trials:
    trial = run_trial(overrides, args.pipeline_output, users, k,
                      protocols.EXCLUDE_SEEN[args.protocol],
                      refit=not args.no_refit)
    metrics = protocols.evaluate(args.protocol, split.test, trial.pop('recs'))
    trial.update(overrides=overrides,
                 metrics={m: round(v, 6) for m, v in metrics.items()})
    results.append(trial)
    print(f'[sweep] {overrides or "defaults"}: '
          + retrieval_quality._format_metrics(metrics)  # pylint: disable=protected-access
          + f' | best epoch {trial["best_epoch"]}/{trial["epochs_run"]}, '
          f'{trial["train_seconds"]}s', flush=True)
  write_report('retrieval_sweep', args, results)
  print(f'Results: {args.output}', flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
