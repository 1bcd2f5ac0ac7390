"""Training throughput of both trainers, with a plain Keras matrix
factorisation over the same data as the anchor.

    python -m benchmarks.training_throughput                   # ML-100K
    python -m benchmarks.training_throughput --pipeline-output outputs

1. Data: the Transform output (transformed train split and transform graph)
   of a pipeline run under `--pipeline-output` (its newest execution, as
   `benchmarks.retrieval_sweep` reads it). When there is none, the pipeline
   is run there first on `--data-dir` (retrieval only, one epoch: only
   ExampleGen and Transform matter here).
2. Each model trains in a fresh Python process of its own, so that no model
   inherits another's warm caches (AutoGraph converts each function once
   per process; see below), for `--epochs` epochs over the train split,
   without validation:
   - `retrieval`: built by `modules.retrieval_trainer`
     (`build_model_from_files`, `make_dataset`) as its `train` builds it,
     default `RetrievalHParams`;
   - `ranking`: `modules.ranking_model.RankingModel` built from the same
     pieces as `modules.ranking_trainer.train` (which has no separate
     build function), default `RankingHParams`;
   - `mf` (anchor): user and movie id embeddings, dot product, mean squared
     error on the rating, Adam; the same transformed files read by the same
     `make_dataset` (every feature parsed, same shuffle), once at each
     trainer's batch size;
   - `input`: the same dataset iterated with no model, at the retrieval
     batch size: the ceiling the input pipeline sets.
3. Per model: seconds of every epoch, the first step's seconds (tracing of
   the train step included), the train step's traces, AutoGraph
   conversions, and examples (ratings) per second over the epochs after the
   first. The first epoch is reported apart: it traces the train step.

Why the first epoch is slow (`--diagnose`, on by default): with
`TF_USE_LEGACY_KERAS=1` Keras 2 is the `tf_keras` package, which
AutoGraph's do-not-convert list does not name (it names `keras` and
`tensorflow`), so tracing a train step converts, source to source, every
`tf_keras` function the step calls (layers, metrics, optimizer, losses,
serialisation helpers): about 3,000 conversions for the ranking model.
The diagnosis reruns the first epoch of both trainers with `tf_keras` on
that list (a private AutoGraph setting, used here only to measure) and
reports the difference. The fix that needs no private API is to trace
`train_step` and `test_step` without AutoGraph in the models
(`@tf.autograph.experimental.do_not_convert` on overrides that call
`super()`); the model code has no tensor-dependent Python control flow.

Results go to `--output` (machine, date, versions, threads, load average
before and after each model: the machine is shared) and to the tables
between `<!-- results:training_throughput -->` and
`<!-- /results:training_throughput -->` in `benchmarks/README.md`.
"""

from __future__ import annotations

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import argparse  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any, Dict, List, Mapping, Optional, Sequence  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks import report  # noqa: E402
from benchmarks.common import REPO_ROOT  # noqa: E402

DEFAULT_OUTPUT = os.path.join('benchmarks', 'results',
                              'training_throughput.json')
DEFAULT_PIPELINE_OUTPUT = os.path.join('benchmarks', 'work', 'throughput',
                                       'pipeline')
DEFAULT_DATA_DIR = os.path.join('data', 'ml-100k')
README_PATHS = (os.path.join(REPO_ROOT, 'benchmarks', 'README.md'),)
RESULTS_BEGIN = '<!-- results:training_throughput -->'
RESULTS_END = '<!-- /results:training_throughput -->'
PACKAGES = ('tensorflow', 'tf-keras', 'tensorflow-recommenders',
            'tensorflow-transform', 'tfx', 'numpy')

RETRIEVAL, RANKING, MF, INPUT = 'retrieval', 'ranking', 'mf', 'input'
MODELS = (RETRIEVAL, RANKING, MF, INPUT)
LABELS = {RETRIEVAL: 'Retrieval (two towers, in-batch softmax)',
          RANKING: 'Ranking (MLP, rating + relevance heads)',
          MF: 'Matrix factorisation (anchor)',
          INPUT: 'Reading the data only (no model)'}
# The anchor: id embeddings of this size, Adam at this rate.
MF_EMBEDDING_DIM = 32
MF_LEARNING_RATE = 0.01


# --- The arithmetic (tested in tests/benchmarks/test_training_throughput.py)


def summarise_epochs(epoch_seconds: Sequence[float], examples_per_epoch: int,
                     first_step_seconds: Optional[float] = None
                    ) -> Dict[str, Any]:
  """Throughput of one model from its epochs' wall-clock seconds.

  The first epoch traces the train step, so the steady figures come from
  the epochs after it.

  Args:
    epoch_seconds: one per epoch, in order; at least two.
    examples_per_epoch: training examples (ratings) each epoch goes over.
    first_step_seconds: seconds of the first step of the first epoch.

  Returns:
    first_epoch_s, steady_epoch_s (mean of the later epochs), epoch_s_min /
    epoch_s_max (of the later epochs), examples_per_s (steady),
    first_epoch_examples_per_s, first_epoch_extra_s (first epoch minus a
    steady one: what tracing and the first step's set-up cost), and
    first_step_s.
  """
  if len(epoch_seconds) < 2:
    raise ValueError('need at least two epochs: the first one traces')
  if examples_per_epoch < 1:
    raise ValueError(f'examples_per_epoch must be >= 1, got '
                     f'{examples_per_epoch}')
  if min(epoch_seconds) <= 0:
    raise ValueError(f'epoch seconds must be > 0, got {list(epoch_seconds)}')
  first, later = epoch_seconds[0], list(epoch_seconds[1:])
  steady = statistics.fmean(later)
  return {
      'first_epoch_s': round(first, 3),
      'steady_epoch_s': round(steady, 3),
      'epoch_s_min': round(min(later), 3),
      'epoch_s_max': round(max(later), 3),
      'examples_per_s': round(examples_per_epoch / steady, 1),
      'first_epoch_examples_per_s': round(examples_per_epoch / first, 1),
      'first_epoch_extra_s': round(first - steady, 3),
      'first_step_s': (None if first_step_seconds is None
                       else round(first_step_seconds, 3)),
  }


# --- Data --------------------------------------------------------------------


def transform_output(pipeline_output: str) -> Dict[str, Any]:
  """The transform graph and transformed split files of a run.

  Raises:
    FileNotFoundError: the run has no (complete) Transform output.
  """
  graph = common.latest_artifact_dir(pipeline_output, 'Transform',
                                     'transform_graph')
  examples = common.latest_artifact_dir(pipeline_output, 'Transform',
                                        'transformed_examples')
  if graph is None or examples is None:
    raise FileNotFoundError(f'no Transform output under {pipeline_output}')
  files = {split: sorted(glob.glob(os.path.join(examples, f'Split-{split}',
                                                '*.gz')))
           for split in ('train', 'eval')}
  if not files['train']:
    raise FileNotFoundError(f'{examples}: no Split-train files')
  return {'transform_graph': graph, 'transformed_examples': examples,
          'train_files': files['train'], 'eval_files': files['eval']}


def run_pipeline(data_dir: str, pipeline_output: str) -> None:
  """runner_local.py on `data_dir`: retrieval only, one epoch (Transform's
  output is all this benchmark reads)."""
  shutil.rmtree(pipeline_output, ignore_errors=True)
  command = common.runner_command(data_dir, pipeline_output,
                                  ['--epochs', '1', '--no-ranking'])
  _log(f'no Transform output under {pipeline_output}; running: '
       + ' '.join(command))
  common.run_runner(command)


def count_examples(files: Sequence[str]) -> int:
  """Records in gzipped TFRecord files."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return int(tf.data.TFRecordDataset(list(files), 'GZIP').reduce(
      tf.constant(0, tf.int64), lambda n, _: n + 1).numpy())


# --- Models ------------------------------------------------------------------


def build_mf_model(num_users: int, num_movies: int,
                   dim: int = MF_EMBEDDING_DIM,
                   learning_rate: float = MF_LEARNING_RATE):
  """The anchor: plain Keras matrix factorisation, compiled.

  Input: a feature dict with `user_id_xf` and `movie_id_xf` (int64
  [batch]; other features are ignored). Output: the predicted rating
  [batch], the dot product of the two id embeddings. Loss: MSE.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from modules import features  # pylint: disable=g-import-not-at-top

  user_key = features.transformed_name(features.USER_ID)
  movie_key = features.transformed_name(features.MOVIE_ID)

  class MatrixFactorization(tf.keras.Model):

    def __init__(self):
      super().__init__(name='matrix_factorization')
      self.users = tf.keras.layers.Embedding(num_users, dim, name='user_emb')
      self.movies = tf.keras.layers.Embedding(num_movies, dim,
                                              name='movie_emb')

    def call(self, inputs):
      return tf.reduce_sum(
          self.users(inputs[user_key]) * self.movies(inputs[movie_key]),
          axis=1)

  model = MatrixFactorization()
  model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate),
                loss=tf.keras.losses.MeanSquaredError())
  return model


def with_rating_label(dataset):
  """(features, rating) pairs for Keras' compiled loss."""
  from modules import features  # pylint: disable=g-import-not-at-top
  label = features.transformed_name(features.LABEL_KEY)
  return dataset.map(lambda batch: (batch, batch[label]))


def _build(model: str, data: Mapping[str, Any], batch_size: Optional[int],
           hparams_overrides: Optional[Mapping[str, Any]] = None):
  """(compiled model, training dataset, batch size, settings) as the
  trainer builds them; the dataset is read as
  `training_data.make_dataset` reads it."""
  import dataclasses  # pylint: disable=g-import-not-at-top

  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  from modules import features, ranking_trainer, retrieval_trainer, training_data  # pylint: disable=g-import-not-at-top
  from modules.hparams import RankingHParams, RetrievalHParams  # pylint: disable=g-import-not-at-top

  tft_output = tft.TFTransformOutput(data['transform_graph'])
  spec = tft_output.transformed_feature_spec()
  files = data['train_files']
  if model == RETRIEVAL:
    hparams = RetrievalHParams.from_config(hparams_overrides)
    tf.keras.utils.set_random_seed(hparams.seed)
    built = retrieval_trainer.build_model_from_files(files, tft_output,
                                                     hparams)
    seed, batch_size = hparams.seed, hparams.batch_size
  elif model == RANKING:
    # As modules.ranking_trainer.train builds it.
    hparams = RankingHParams.from_config(hparams_overrides)
    tf.keras.utils.set_random_seed(hparams.seed)
    built, _, _ = ranking_trainer.build_model(files, tft_output, hparams)
    seed, batch_size = hparams.seed, hparams.batch_size
  elif model == INPUT:
    seed, built, settings = RetrievalHParams().seed, None, {}
    batch_size = batch_size or RetrievalHParams().batch_size
  elif model == MF:
    seed = RetrievalHParams().seed
    tf.keras.utils.set_random_seed(seed)
    sizes = training_data.vocab_sizes(tft_output)
    built = build_mf_model(sizes[features.USER_ID], sizes[features.MOVIE_ID])
    settings = {'embedding_dim': MF_EMBEDDING_DIM,
                'learning_rate': MF_LEARNING_RATE, 'seed': seed}
  else:
    raise ValueError(f'unknown model {model!r}; known: {MODELS}')
  dataset = training_data.make_dataset(files, spec, batch_size,
                                       shuffle=True, seed=seed)
  if model == MF:
    dataset = with_rating_label(dataset)
  elif model != INPUT:
    settings = dataclasses.asdict(hparams)
  return built, dataset, batch_size, settings


class _AutoGraphConversions:
  """Counts AutoGraph's source conversions (a private hook, for the
  diagnosis only; None where the hook is missing)."""

  def __init__(self):
    self.count: Optional[int] = None
    try:
      from tensorflow.python.autograph.impl import api  # pylint: disable=g-import-not-at-top
    except ImportError:
      return
    convert = getattr(api, '_convert_actual', None)
    if convert is None:
      return
    self.count = 0

    def counted(entity, program_ctx):
      self.count += 1
      return convert(entity, program_ctx)

    api._convert_actual = counted  # pylint: disable=protected-access


def exclude_tf_keras_from_autograph() -> None:
  """Puts `tf_keras` on AutoGraph's do-not-convert list, beside `keras`
  (private API: the diagnosis only)."""
  from tensorflow.python.autograph.core import config  # pylint: disable=g-import-not-at-top
  config.CONVERSION_RULES = ((config.DoNotConvert('tf_keras'),) +
                             tuple(config.CONVERSION_RULES))


def make_epoch_timer(label: str):
  """A Keras callback recording each epoch's seconds, its steps and the
  first step's seconds (`epoch_s`, `steps`, `first_step_s`)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  class EpochTimer(tf.keras.callbacks.Callback):

    def __init__(self):
      super().__init__()
      self.epoch_s: List[float] = []
      self.steps: List[int] = []
      self.first_step_s: Optional[float] = None

    def on_epoch_begin(self, epoch, logs=None):
      self._began = time.perf_counter()
      self._step = 0

    def on_train_batch_end(self, batch, logs=None):
      if self.first_step_s is None:
        self.first_step_s = time.perf_counter() - self._began
      self._step = batch + 1

    def on_epoch_end(self, epoch, logs=None):
      self.epoch_s.append(time.perf_counter() - self._began)
      self.steps.append(self._step)
      loss = (logs or {}).get('loss')
      _log(f'{label} epoch {epoch + 1}: {self.epoch_s[-1]:.1f}s'
           + ('' if loss is None else f' loss {loss:.4f}'))

  return EpochTimer()


def measure_model(model: str, data: Mapping[str, Any], epochs: int,
                  batch_size: Optional[int] = None,
                  examples_per_epoch: Optional[int] = None,
                  no_tf_keras_autograph: bool = False,
                  hparams: Optional[Mapping[str, Any]] = None
                 ) -> Dict[str, Any]:
  """Builds `model` and trains it `epochs` epochs; its timings.

  Run it in a fresh process: AutoGraph's conversions are cached per
  process, so a second model in the same process traces faster.
  """
  conversions = _AutoGraphConversions()
  if no_tf_keras_autograph:
    exclude_tf_keras_from_autograph()
  load_before = common.load_average()
  started = time.perf_counter()
  built, dataset, batch_size, settings = _build(model, data, batch_size,
                                                hparams)
  setup_s = time.perf_counter() - started

  timer = make_epoch_timer(f'{model} (batch {batch_size})')
  if built is None:  # Reading only: the timer driven by hand.
    for epoch in range(epochs):
      timer.on_epoch_begin(epoch)
      for step, _ in enumerate(dataset):
        timer.on_train_batch_end(step)
      timer.on_epoch_end(epoch, {})
    losses, traces = [], None
  else:
    history = built.fit(dataset, epochs=epochs, callbacks=[timer], verbose=0)
    losses = [round(float(v), 4) for v in history.history['loss']]
    traces = built.train_function.experimental_get_tracing_count()
  if examples_per_epoch is None:
    examples_per_epoch = count_examples(data['train_files'])
  result = {
      'model': model,
      'batch_size': batch_size,
      'epochs': epochs,
      'examples_per_epoch': examples_per_epoch,
      'steps_per_epoch': timer.steps[0],
      'epoch_s': [round(s, 3) for s in timer.epoch_s],
      'loss': losses,
      'setup_s': round(setup_s, 3),
      'hparams': settings,
      'train_step_traces': traces,
      'autograph_conversions': conversions.count,
      'tf_keras_autograph': not no_tf_keras_autograph,
      'threads': thread_settings(),
      'load_average_before': load_before,
      'load_average_after': common.load_average(),
  }
  if epochs >= 2:
    result.update(summarise_epochs(timer.epoch_s, examples_per_epoch,
                                   timer.first_step_s))
  else:
    result.update(first_epoch_s=round(timer.epoch_s[0], 3),
                  first_step_s=round(timer.first_step_s, 3))
  return result


# --- Environment -------------------------------------------------------------


def thread_settings() -> Dict[str, Any]:
  """TensorFlow's thread pools (0: TensorFlow's default, one per core) and
  the cores this process may use."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    usable = len(os.sched_getaffinity(0))
  except AttributeError:  # Not Linux.
    usable = os.cpu_count()
  return {
      'intra_op': tf.config.threading.get_intra_op_parallelism_threads(),
      'inter_op': tf.config.threading.get_inter_op_parallelism_threads(),
      'usable_cores': usable,
  }


def _log(message: str) -> None:
  print(f'[throughput] {message}', flush=True)


# --- Runs in child processes -------------------------------------------------


def _run_child(job: Mapping[str, Any], threads: Mapping[str, int]
              ) -> Dict[str, Any]:
  """`measure_model` in a fresh interpreter; its result."""
  with tempfile.TemporaryDirectory() as tmp:
    job_path, result_path = (os.path.join(tmp, 'job.json'),
                             os.path.join(tmp, 'result.json'))
    with open(job_path, 'w', encoding='utf-8') as f:
      json.dump(dict(job, threads=dict(threads)), f)
    env = common.child_env()
    env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    completed = subprocess.run(
        [sys.executable, '-m', 'benchmarks.training_throughput', '--job',
         job_path, '--job-result', result_path], cwd=REPO_ROOT, env=env,
        check=False)
    if completed.returncode != 0:
      raise RuntimeError(f'measuring {job["model"]} failed (exit '
                         f'{completed.returncode})')
    with open(result_path, encoding='utf-8') as f:
      return json.load(f)


def _child_main(job_path: str, result_path: str) -> int:
  with open(job_path, encoding='utf-8') as f:
    job = json.load(f)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.threading.set_intra_op_parallelism_threads(
      job['threads']['intra_op'])
  tf.config.threading.set_inter_op_parallelism_threads(
      job['threads']['inter_op'])
  result = measure_model(job['model'], job['data'], job['epochs'],
                         batch_size=job.get('batch_size'),
                         examples_per_epoch=job.get('examples_per_epoch'),
                         no_tf_keras_autograph=job.get(
                             'no_tf_keras_autograph', False),
                         hparams=job.get('hparams'))
  with open(result_path, 'w', encoding='utf-8') as f:
    json.dump(result, f)
  return 0


def measure(args: argparse.Namespace) -> Dict[str, Any]:
  """Every model, each in its own process; the report."""
  try:
    data = transform_output(args.pipeline_output)
  except FileNotFoundError:
    if not args.run_pipeline:
      raise
    run_pipeline(os.path.abspath(args.data_dir),
                 os.path.abspath(args.pipeline_output))
    data = transform_output(args.pipeline_output)
  examples = {split: count_examples(data[f'{split}_files'])
              for split in ('train', 'eval') if data[f'{split}_files']}
  _log(f'data: {data["transformed_examples"]} ({examples["train"]} train '
       f'examples)')
  from modules.hparams import RankingHParams, RetrievalHParams  # pylint: disable=g-import-not-at-top
  trainer_batches = {
      RETRIEVAL: RetrievalHParams.from_config(
          args.hparams.get(RETRIEVAL)).batch_size,
      RANKING: RankingHParams.from_config(args.hparams.get(RANKING)).batch_size}
  threads = {'intra_op': args.intra_op_threads,
             'inter_op': args.inter_op_threads}
  jobs = []
  for model in args.models:
    if model == INPUT:
      jobs.append({'model': INPUT,
                   'batch_size': trainer_batches[RETRIEVAL]})
    elif model == MF:
      batches = sorted({trainer_batches[m] for m in args.models
                        if m in trainer_batches}
                       or set(trainer_batches.values()))
      jobs += [{'model': MF, 'batch_size': b} for b in batches]
    else:
      jobs.append({'model': model, 'hparams': args.hparams.get(model, {})})
  runs = []
  for job in jobs:
    job.update(data=data, epochs=args.epochs,
               examples_per_epoch=examples['train'])
    _log(f'measuring {job["model"]}'
         + (f' at batch {job["batch_size"]}' if 'batch_size' in job else ''))
    runs.append(_run_child(job, threads))
  diagnosis = []
  if args.diagnose:
    # Each model's first run again, one epoch, tf_keras left unconverted.
    first_jobs: Dict[str, Dict[str, Any]] = {}
    for job in jobs:
      if job['model'] != INPUT:  # No Keras, nothing traced.
        first_jobs.setdefault(job['model'], job)
    for job in first_jobs.values():
      _log(f'diagnosis: {job["model"]}, first epoch with tf_keras excluded '
           'from AutoGraph')
      diagnosis.append(_run_child(dict(job, epochs=1,
                                       no_tf_keras_autograph=True), threads))
  return {
      'benchmark': 'training_throughput',
      'date': report.now_utc(),
      'machine': report.machine_info(),
      'packages': report.package_versions(PACKAGES),
      'git_commit': common.git_revision()['commit'],
      'data': {'pipeline_output': os.path.abspath(args.pipeline_output),
               'transformed_examples': data['transformed_examples'],
               'transform_graph': data['transform_graph'],
               'examples': examples},
      'config': {'epochs': args.epochs, 'models': list(args.models),
                 'threads_requested': threads, 'output': args.output,
                 'mf_embedding_dim': MF_EMBEDDING_DIM,
                 'mf_learning_rate': MF_LEARNING_RATE},
      'runs': runs,
      'first_epoch_diagnosis': diagnosis,
  }


# --- Report ------------------------------------------------------------------


def _threads_text(threads: Mapping[str, Any]) -> str:
  def pool(n):
    return 'default (one per core)' if n == 0 else str(n)
  return (f'TensorFlow intra-op threads {pool(threads["intra_op"])}, '
          f'inter-op {pool(threads["inter_op"])}, '
          f'{threads["usable_cores"]} usable cores')


def render_markdown(result: Mapping[str, Any]) -> str:
  """The README section: one row per model run, the anchor's ratio, and the
  first-epoch diagnosis."""
  machine, runs = result['machine'], result['runs']
  loads = [r[k] for r in runs for k in ('load_average_before',
                                        'load_average_after') if r.get(k)]
  load_text = (f'load average (1 min) {min(l[0] for l in loads):g}–'
               f'{max(l[0] for l in loads):g} during the runs' if loads
               else 'load average unknown')
  lines = [
      f'Run of {result["date"]} on {machine["cpu_model"]} '
      f'({machine["cpu_cores"]} cores), tensorflow '
      f'{result["packages"]["tensorflow"]}, tf-keras '
      f'{result["packages"]["tf-keras"]}, tensorflow-recommenders '
      f'{result["packages"]["tensorflow-recommenders"]}; '
      f'{_threads_text(runs[0]["threads"])}; {load_text}. '
      f'{result["data"]["examples"]["train"]} training ratings per epoch, '
      f'{result["config"]["epochs"]} epochs per model, each model in a '
      'fresh process, no validation pass. Examples/s over the epochs after '
      f'the first. Full results: `{result["config"]["output"]}`.',
      '',
      '| Model | Batch | Steps/epoch | Epoch 1 s | First step s | Later '
      'epochs s (mean, min–max) | Examples/s | × MF anchor at its batch |',
      '|---|---|---|---|---|---|---|---|',
  ]
  anchors = {r['batch_size']: r['examples_per_s'] for r in runs
             if r['model'] == MF and 'examples_per_s' in r}
  for r in runs:
    label = LABELS[r['model']]
    anchor = anchors.get(r['batch_size'])
    ratio = ('1' if r['model'] == MF else
             f'{r["examples_per_s"] / anchor:.2f}'
             if anchor and r['model'] != INPUT else '–')
    lines.append(
        f'| {label} | {r["batch_size"]} | {r["steps_per_epoch"]} '
        f'| {r["first_epoch_s"]:.1f} | {r["first_step_s"]:.1f} '
        f'| {r["steady_epoch_s"]:.2f} ({r["epoch_s_min"]:.2f}–'
        f'{r["epoch_s_max"]:.2f}) | {r["examples_per_s"]:,.0f} | {ratio} |')
  diagnosis = result.get('first_epoch_diagnosis') or []
  if diagnosis:
    measured = {}
    for r in runs:  # Each model's first run (MF: its first batch size).
      measured.setdefault(r['model'], r)
    lines += ['', '| First epoch | AutoGraph converts tf_keras | Epoch 1 s '
              '| First step s | AutoGraph conversions |',
              '|---|---|---|---|---|']
    for d in diagnosis:
      base = measured.get(d['model'])
      for r, converts in ((base, 'yes (as the trainers run)'), (d, 'no')):
        if r is None:
          continue
        conversions = ('–' if r.get('autograph_conversions') is None
                       else f'{r["autograph_conversions"]:,}')
        lines.append(f'| {LABELS[r["model"]]} | {converts} '
                     f'| {r["first_epoch_s"]:.1f} | {r["first_step_s"]:.1f} '
                     f'| {conversions} |')
  return '\n'.join(lines)


def update_readmes(paths: Sequence[str], table: str) -> None:
  for path in paths:
    report.replace_section(path, RESULTS_BEGIN, RESULTS_END, table)


# --- Entry point -------------------------------------------------------------


def parse_models(text: str) -> List[str]:
  """'retrieval,mf' -> ['retrieval', 'mf']; unknown names refused."""
  models = [m.strip() for m in text.split(',') if m.strip()]
  unknown = sorted(set(models) - set(MODELS))
  if not models or unknown:
    raise ValueError(f'--models: comma-separated names from {MODELS}, got '
                     f'{text!r}')
  return list(dict.fromkeys(models))


def parse_hparams(parser: argparse.ArgumentParser, items: Sequence[str]
                 ) -> Dict[str, Dict[str, Any]]:
  """['retrieval.batch_size=2048', ...] -> {'retrieval': {'batch_size':
  '2048'}}, each model's checked as the runners check theirs
  (`pipeline.flags.hparam_overrides`); a bad one stops with argparse's
  error."""
  from modules.hparams import RankingHParams, RetrievalHParams  # pylint: disable=g-import-not-at-top
  from pipeline import flags  # pylint: disable=g-import-not-at-top
  classes = {RETRIEVAL: RetrievalHParams, RANKING: RankingHParams}
  by_model: Dict[str, List[str]] = {}
  for item in items:
    model, dot, rest = item.partition('.')
    if not dot or model not in classes:
      parser.error(f'--hparam {item!r}: expected MODEL.NAME=VALUE with '
                   f'MODEL one of {sorted(classes)}')
    by_model.setdefault(model, []).append(rest)
  return {model: flags.hparam_overrides(parser, '--hparam', rest, None,
                                        classes[model])
          for model, rest in by_model.items()}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog='python -m benchmarks.training_throughput',
      description='Training throughput (examples/s) of the retrieval and '
      'ranking trainers, with a plain Keras matrix factorisation as anchor.',
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--pipeline-output', default=DEFAULT_PIPELINE_OUTPUT,
                      help='output dir of a pipeline run whose Transform '
                      'output is read (e.g. outputs, or '
                      'benchmarks/work/msrec/pipeline)')
  parser.add_argument('--data-dir', default=DEFAULT_DATA_DIR,
                      help='raw data the pipeline is run on when '
                      '--pipeline-output has no Transform output')
  parser.add_argument('--no-run-pipeline', dest='run_pipeline',
                      action='store_false',
                      help='fail instead of running the pipeline')
  parser.add_argument('--models', default=','.join(MODELS),
                      help='comma-separated subset of ' + ', '.join(MODELS))
  parser.add_argument('--epochs', type=int, default=4,
                      help='epochs per model (the first is reported apart)')
  parser.add_argument('--intra-op-threads', type=int, default=0,
                      help="TensorFlow's intra-op pool (0: one per core)")
  parser.add_argument('--inter-op-threads', type=int, default=0,
                      help="TensorFlow's inter-op pool (0: one per core)")
  parser.add_argument('--no-diagnose', dest='diagnose', action='store_false',
                      help='skip the first-epoch rerun without AutoGraph '
                      'conversion of tf_keras')
  parser.add_argument('--hparam', action='append', default=[],
                      metavar='MODEL.NAME=VALUE',
                      help='a trainer hyper-parameter override, e.g. '
                      'retrieval.batch_size=2048 (repeatable; see '
                      'modules/hparams.py)')
  parser.add_argument('--output', default=DEFAULT_OUTPUT)
  parser.add_argument('--no-readme', dest='readme', action='store_false',
                      help='leave the README tables alone')
  parser.add_argument('--job', help=argparse.SUPPRESS)
  parser.add_argument('--job-result', help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  try:
    args.models = parse_models(args.models)
  except ValueError as e:
    parser.error(str(e))
  args.hparams = parse_hparams(parser, args.hparam)
  if args.epochs < 2:
    parser.error('--epochs must be at least 2 (the first one traces)')
  if min(args.intra_op_threads, args.inter_op_threads) < 0:
    parser.error('thread counts must be >= 0')
  return args


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  if args.job:
    return _child_main(args.job, args.job_result)
  result = measure(args)
  common.write_json(args.output, result)
  _log(f'results: {args.output}')
  for run in result['runs']:
    _log(f'{run["model"]} batch {run["batch_size"]}: '
         f'{run["examples_per_s"]:,.0f} examples/s, epoch 1 '
         f'{run["first_epoch_s"]:.1f}s, later epochs '
         f'{run["steady_epoch_s"]:.2f}s')
  if args.readme:
    update_readmes(README_PATHS, render_markdown(result))
    _log('tables: ' + ', '.join(README_PATHS))
  return 0


if __name__ == '__main__':
  sys.exit(main())
