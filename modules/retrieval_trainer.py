"""Trainer module of the retrieval model: `run_fn` reads, builds, fits with
early stopping, exports (`modules.retrieval_trainer.run_fn`, the
RetrievalTrainer); `refit_fn` fits fresh models on train + eval for the
best epoch count that `run_fn` found (`modules.retrieval_trainer.refit_fn`,
the RetrievalRefit Trainer, whose towers are served): an ensemble of
`ensemble_size`, exported as one pair of towers whose D is the members'
summed (`retrieval_model.TowerEnsemble`).

The exported SavedModel is the *trained towers*, with two signatures that
take serialized raw tf.Examples (Transform is applied inside):

  query_embedding(examples: tf.string [None])     -> {'embedding': [None, D]}
      examples carry the user's features (user_id, age, gender, occupation,
      zip_code, timestamp); missing ones take defaults.
  candidate_embedding(examples: tf.string [None]) -> {'embedding': [None, D]}
      examples carry a movie's features (movie_id, title, genres,
      release_year), e.g. the `movies` catalogue.

The RetrievalIndexer component turns it into the servable (index over the
whole catalogue, seen-movie exclusion, the `serving_default` contract).
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import json  # noqa: E402
from typing import Dict, List, Mapping, Optional, Tuple  # noqa: E402

from absl import logging  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
from tfx.utils import io_utils  # noqa: E402

from modules import ensemble  # noqa: E402
from modules import features  # noqa: E402
from modules import keras_tracing  # noqa: E402
from modules import optimizers  # noqa: E402
from modules import retrieval_model  # noqa: E402
from modules import training_data  # noqa: E402
from modules import training_log  # noqa: E402
from modules.hparams import RetrievalHParams  # noqa: E402

_xf = features.transformed_name

QUERY_RAW_FEATURES = (features.USER_ID, features.AGE, features.GENDER,
                      features.OCCUPATION, features.ZIP_CODE,
                      features.TIMESTAMP)
CANDIDATE_RAW_FEATURES = features.MOVIE_FEATURES
TOP_100_METRIC = 'factorized_top_k/top_100_categorical_accuracy'


class RatingColumns:
  """Reader of `training_data.scan`: every rating's user index, movie
  index and time, as int/float arrays (for `retrieval_model.history_csr`).
  Only the retrieval trainer's user history needs them."""

  KEYS = (_xf(features.USER_ID), _xf(features.MOVIE_ID),
          _xf(features.TIMESTAMP))

  def __init__(self, feature_spec):
    self.spec = {k: feature_spec[k] for k in self.KEYS}
    self._columns = {k: [] for k in self.KEYS}

  def add(self, batch: Mapping[str, tf.Tensor]) -> None:
    for key in self.KEYS:
      self._columns[key].append(batch[key].numpy())

  def history(self, num_users: int, max_per_user: int = 0):
    """(values, row_splits) of `retrieval_model.UserHistory`."""
    users, movies, times = (np.concatenate(self._columns[k])
                            for k in self.KEYS)
    return retrieval_model.history_csr(users, movies, num_users,
                                       times=times,
                                       max_per_user=max_per_user)


def _to_sparse(batch: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  return {k: v.to_sparse() if isinstance(v, tf.RaggedTensor) else v
          for k, v in batch.items()}


def sampling_probability_table(counts: Mapping[bytes, int]
                              ) -> tf.lookup.StaticHashTable:
  """Movie id -> share of training examples (in-batch sampling probability)."""
  total = float(sum(counts.values()))
  keys = tf.constant(list(counts), tf.string)
  values = tf.constant([c / total for c in counts.values()], tf.float32)
  return tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(keys, values),
      default_value=1.0 / total)


def build_model(tft_output: tft.TFTransformOutput, hparams: RetrievalHParams,
                movie_columns: Dict[str, tf.Tensor],
                counts: Mapping[bytes, int], history=None
               ) -> retrieval_model.RetrievalModel:
  query, candidate = retrieval_model.build_towers(
      training_data.vocab_sizes(tft_output), hparams, history)
  catalogue = _to_sparse(movie_columns)
  model = retrieval_model.RetrievalModel(
      query, candidate, hparams,
      candidate_probability=sampling_probability_table(counts),
      metrics_candidates=catalogue, catalogue=catalogue)
  sizes = training_data.vocab_sizes(tft_output)
  optimizer = optimizers.resolve(
      hparams.optimizer, max(sizes[features.USER_ID],
                             sizes[features.MOVIE_ID]))
  logging.info('retrieval: optimizer %s', optimizer)
  model.compile(optimizer=optimizers.build(optimizer, hparams.learning_rate))
  return model


def read_tables(train_files: List[str], tft_output: tft.TFTransformOutput,
                hparams: RetrievalHParams) -> tuple:
  """(movie table, ratings per movie, user history or None) of the files,
  in one pass: what `build_model` needs besides the hyper-parameters."""
  spec = tft_output.transformed_feature_spec()
  movies, ratings = training_data.MovieRows(spec), RatingColumns(spec)
  training_data.scan(train_files,
                     [movies, ratings] if hparams.user_history else [movies])
  movie_columns, counts = movies.result()
  logging.info('retrieval: %d movies in training data', len(counts))
  history = None
  if hparams.user_history:
    history = ratings.history(
        training_data.vocab_sizes(tft_output)[features.USER_ID],
        hparams.history_max)
    logging.info('retrieval: user history of %d ratings (at most %s per '
                 'user)', len(history[0]), hparams.history_max or 'all')
  return movie_columns, counts, history


def build_model_from_files(train_files: List[str],
                           tft_output: tft.TFTransformOutput,
                           hparams: RetrievalHParams
                          ) -> retrieval_model.RetrievalModel:
  """The compiled model as `train` fits it: movie table, sampling
  probabilities and (with `user_history`) the history from the files."""
  return build_model(tft_output, hparams,
                     *read_tables(train_files, tft_output, hparams))


EPOCH_METRICS = (
    ('loss', 'loss', 2),
    ('val top-10', 'val_factorized_top_k/top_10_categorical_accuracy', 4),
    ('val top-100', 'val_' + TOP_100_METRIC, 4))


def _parse_fn(raw_spec, keys, defaults):
  spec = {}
  for key in keys:
    if key not in raw_spec:
      continue
    feature = raw_spec[key]
    if isinstance(feature, tf.io.FixedLenFeature) and key in defaults:
      feature = tf.io.FixedLenFeature(feature.shape, feature.dtype,
                                      default_value=[defaults[key]])
    spec[key] = feature
  return lambda examples: tf.io.parse_example(examples, spec)


class TowersExport(tf.Module):
  """The trained towers behind raw-Example signatures (Transform inside)."""

  def __init__(self, model: retrieval_model.RetrievalModel,
               tft_output: tft.TFTransformOutput,
               query_defaults: Mapping[str, object]):
    super().__init__()
    self.query_tower = model.query_tower
    self.candidate_tower = model.candidate_tower
    self.tft_layer = tft_output.transform_features_layer()
    raw_spec = tft_output.raw_feature_spec()
    self._parse_query = _parse_fn(raw_spec, QUERY_RAW_FEATURES,
                                  query_defaults)
    self._parse_candidate = _parse_fn(raw_spec, CANDIDATE_RAW_FEATURES, {})

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def query_embedding(self, examples):
    transformed = self.tft_layer(self._parse_query(examples))
    return {'embedding': self.query_tower(transformed)}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def candidate_embedding(self, examples):
    transformed = self.tft_layer(self._parse_candidate(examples))
    return {'embedding': self.candidate_tower(transformed)}


# Values for user features a query Example lacks: empty strings take the
# vocabularies' OOV path; the age is ML-100K's mean (33), so a missing age
# scales to about 0; time 0 only sets the hour/day context to a fixed value.
QUERY_DEFAULTS = {features.USER_ID: '', features.GENDER: '',
                  features.OCCUPATION: '', features.ZIP_CODE: '',
                  features.AGE: 33, features.TIMESTAMP: 0}


def validation_batch_size(num_movies: int) -> int:
  """Queries per validation batch: each batch is scored against the whole
  catalogue at once (`retrieval_model.CatalogueTopK`), so the batch shrinks
  as the catalogue grows, keeping the score matrix within 2**26 floats
  (256 MiB): 4,096 queries up to 16,384 movies, 1,118 at ml-25m's 60,000."""
  return max(256, min(4096, 2**26 // max(num_movies, 1)))


def train(train_files: List[str], eval_files: List[str],
          tft_output: tft.TFTransformOutput, hparams: RetrievalHParams
         ) -> Tuple[retrieval_model.RetrievalModel, Dict[str, float]]:
  """Fits the model with early stopping on the eval split's top-100.

  Returns:
    (model with the best epoch's weights, that epoch's eval metrics).
  """
  tf.keras.utils.set_random_seed(hparams.seed)
  spec = tft_output.transformed_feature_spec()
  tables = read_tables(train_files, tft_output, hparams)
  model = build_model(tft_output, hparams, *tables)
  train_ds = training_data.make_dataset(train_files, spec,
                                        hparams.batch_size, shuffle=True,
                                        seed=hparams.seed)
  eval_ds = training_data.validation_dataset(
      eval_files, spec, hparams.validation_examples,
      batch_size=validation_batch_size(len(tables[1])))
  stop = tf.keras.callbacks.EarlyStopping(
      monitor='val_' + TOP_100_METRIC, mode='max',
      patience=hparams.early_stopping_patience, restore_best_weights=True)
  progress = training_log.TrainingLog('retrieval', hparams.batch_size,
                                      EPOCH_METRICS)
  history = model.fit(train_ds, validation_data=eval_ds,
                      epochs=hparams.epochs, callbacks=[stop, progress],
                      verbose=0)
  scores = history.history['val_' + TOP_100_METRIC]
  best = int(np.argmax(scores))
  metrics = {k: float(v[best]) for k, v in history.history.items()}
  metrics['best_epoch'] = best + 1
  metrics['epochs_run'] = len(scores)
  return model, metrics


# Written beside the Trainer's Format-Serving folder (in the Model
# artifact): the early-stopped run's best epoch and its eval metrics, which
# the refit Trainer reads through its `base_model` input.
TRAINING_SUMMARY = 'training_summary.json'


def write_summary(serving_model_dir: str, metrics: Mapping[str, float]
                 ) -> None:
  """Writes `metrics` (with 'best_epoch') as the model's training summary."""
  path = os.path.join(os.path.dirname(serving_model_dir.rstrip('/')),
                      TRAINING_SUMMARY)
  with tf.io.gfile.GFile(path, 'w') as f:
    json.dump(dict(metrics), f, indent=2, sort_keys=True)


def read_best_epoch(base_model_dir: Optional[str]) -> int:
  """The best epoch of the early-stopped model whose serving SavedModel is
  at `base_model_dir` (the refit Trainer's `fn_args.base_model`)."""
  if not base_model_dir:
    raise ValueError('The refit Trainer needs the early-stopped Trainer\'s '
                     'model as its base_model input.')
  path = os.path.join(os.path.dirname(base_model_dir.rstrip('/')),
                      TRAINING_SUMMARY)
  try:
    with tf.io.gfile.GFile(path) as f:
      summary = json.load(f)
  except tf.errors.NotFoundError:
    raise FileNotFoundError(
        f'{path}: no training summary; the base_model must come from a '
        'Trainer running modules.*_trainer.run_fn') from None
  best = summary.get('best_epoch')
  if not isinstance(best, int) or best < 1:
    raise ValueError(f'{path}: best_epoch must be a positive integer, got '
                     f'{best!r}')
  return best


def eval_share(train_files: List[str], eval_files: List[str]) -> float:
  """The eval split's share of the examples, from the files' sizes (same
  encoding in both splits, so bytes are proportional to examples; no file
  is read)."""
  def size(patterns):
    return sum(tf.io.gfile.stat(name).length for pattern in patterns
               for name in tf.io.gfile.glob(pattern))
  train, evaluation = size(train_files), size(eval_files)
  return evaluation / max(train + evaluation, 1)


def skip_refit(fn_args, min_eval_share: float) -> Optional[str]:
  """Why the refit is not worth its cost here (None: refit).

  The refit trains again on train + eval; when eval is a small share of the
  data (ml-25m: about 1M of 25M ratings, `--max-eval-ratings`), that doubles
  the training time for a few percent more data. The refit Trainer then
  serves the early-stopped model unchanged (`copy_base_model`).
  """
  share = eval_share(fn_args.train_files, fn_args.eval_files)
  if share < min_eval_share:
    return (f'the eval split holds {share:.1%} of the examples, under '
            f'refit_min_eval_share {min_eval_share:.0%}')
  return None


def copy_base_model(fn_args, reason: str) -> None:
  """Serves the early-stopped model as it is: its SavedModel is copied to
  the refit Trainer's serving folder (summary: `refit_epochs` 0)."""
  training_log.write(f'{reason}: no refit, the early-stopped model is '
                     'served')
  io_utils.copy_dir(fn_args.base_model, fn_args.serving_model_dir)
  write_summary(fn_args.serving_model_dir,
                {'refit_epochs': 0, 'skipped': reason})


def check_refit(extra_epochs: int, min_eval_share: float,
                ensemble_size: int, min_epochs: int = 0) -> None:
  """Raises ValueError naming a bad refit hyper-parameter."""
  refit_epochs(1, extra_epochs, min_epochs)
  if ensemble_size < 1:
    raise ValueError(f'ensemble_size must be >= 1, got {ensemble_size}')
  if not 0 <= min_eval_share <= 1:
    raise ValueError(f'refit_min_eval_share must be in [0, 1], got '
                     f'{min_eval_share}')


def refit_epochs(best_epoch: int, extra_epochs: int,
                 min_epochs: int = 0) -> int:
  """Epochs of the refit: the early-stopped run's best epoch + extra, and
  at least `min_epochs` (`refit_min_epochs`)."""
  if extra_epochs < 0:
    raise ValueError(f'refit_extra_epochs must be >= 0, got {extra_epochs}')
  if min_epochs < 0:
    raise ValueError(f'refit_min_epochs must be >= 0, got {min_epochs}')
  return max(int(best_epoch) + extra_epochs, min_epochs)


def refit(train_files: List[str], eval_files: List[str],
          tft_output: tft.TFTransformOutput, hparams: RetrievalHParams,
          epochs: int):
  """Fresh models fitted on train + eval for `epochs` epochs, final
  weights: movie table, sampling probabilities and user history include the
  eval split's ratings. Nothing is held out, so no metric.

  Returns the model (`ensemble_size` 1: same seed as the early-stopped one)
  or a `retrieval_model.RetrievalEnsemble` of `ensemble_size` models with
  seeds `seed`, `seed + 1`, ... (the tables are read once for all).
  """
  files = list(train_files) + list(eval_files)
  tables = read_tables(files, tft_output, hparams)
  members = fit_members('retrieval', files, tft_output, hparams, epochs,
                        lambda: build_model(tft_output, hparams, *tables),
                        EPOCH_METRICS[:1])
  if len(members) == 1:
    return members[0]
  return retrieval_model.RetrievalEnsemble(members)


def fit_members(kind: str, files: List[str],
                tft_output: tft.TFTransformOutput, hparams, epochs: int,
                build, epoch_metrics) -> List[tf.keras.Model]:
  """The refit's `ensemble_size` models, trained together.

  Each member is built by `build()` under its own seed (`member_seeds`:
  its initial weights); all are fitted on `files` for `epochs` epochs in
  one Keras loop (`ensemble.MemberStack`: one input pipeline shuffled by
  `seed`, each batch steps every member), progress logged as
  '<kind> refit' with `epoch_metrics` (the loss is the members' sum).
  """
  seeds = member_seeds(hparams)
  members = []
  for seed in seeds:
    tf.keras.utils.set_random_seed(seed)
    members.append(build())
  tf.keras.utils.set_random_seed(hparams.seed)
  model = members[0] if len(members) == 1 else ensemble.MemberStack(members)
  if model is not members[0]:
    # The members' own optimizer settings (each was compiled by `build`
    # and none has stepped yet); Adam's state is per variable.
    model.compile(optimizer=members[0].optimizer)
  dataset = training_data.make_dataset(
      files, tft_output.transformed_feature_spec(), hparams.batch_size,
      shuffle=True, seed=hparams.seed)
  name = refit_name(kind, len(members))
  training_log.write(f'{name} on train + eval for {epochs} epoch(s), '
                     f'seeds {", ".join(str(s) for s in seeds)}')
  model.fit(dataset, epochs=epochs, verbose=0, callbacks=[
      training_log.TrainingLog(name, hparams.batch_size, epoch_metrics)])
  return members


def refit_summary(epochs: int, hparams) -> Dict[str, object]:
  """The refit's training summary: its epochs and its members' seeds."""
  return {'refit_epochs': epochs, 'ensemble_seeds': member_seeds(hparams)}


def member_seeds(hparams) -> List[int]:
  """The refit ensemble's seeds: `seed`, `seed + 1`, ... (`ensemble_size`
  of them); the first member is the early-stopped model's twin."""
  return [hparams.seed + i for i in range(hparams.ensemble_size)]


def refit_name(kind: str, size: int) -> str:
  """'retrieval refit' or, for an ensemble, 'retrieval refit (3 members)'."""
  return f'{kind} refit' if size == 1 else f'{kind} refit ({size} members)'


def save_towers(model, tft_output: tft.TFTransformOutput,
                export_dir: str) -> None:
  """Saves the towers of `model` (a `RetrievalModel` or a
  `RetrievalEnsemble`) with the `query_embedding` and `candidate_embedding`
  signatures."""
  export = TowersExport(model, tft_output, QUERY_DEFAULTS)
  keras_tracing.save(
      export, export_dir,
      signatures={
          'query_embedding': export.query_embedding,
          'candidate_embedding': export.candidate_embedding,
      })


def read_hparams(fn_args, hparams_class):
  """The Trainer's hyper-parameters (`custom_config['hparams']` over the
  defaults of `hparams_class`), the refit's checked now, not after
  training."""
  hparams = hparams_class.from_config(
      (fn_args.custom_config or {}).get('hparams'))
  check_refit(hparams.refit_extra_epochs, hparams.refit_min_eval_share,
              hparams.ensemble_size, hparams.refit_min_epochs)
  logging.info('%s hyper-parameters: %s', hparams_class.KIND, hparams)
  return hparams


def plan_refit(fn_args, hparams) -> Optional[int]:
  """The refit's epoch count (the base model's best epoch + the extra
  ones), or None when the refit is skipped (`skip_refit`): the base model
  has then been copied to the serving folder."""
  epochs = refit_epochs(read_best_epoch(fn_args.base_model),
                        hparams.refit_extra_epochs, hparams.refit_min_epochs)
  reason = skip_refit(fn_args, hparams.refit_min_eval_share)
  if reason:
    copy_base_model(fn_args, reason)
    return None
  return epochs


def run_fn(fn_args) -> None:
  """TFX Trainer entry point: read, build, fit with early stopping on the
  eval split, export; the best epoch and its metrics go to the model's
  training summary, for `refit_fn`."""
  hparams = read_hparams(fn_args, RetrievalHParams)
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  model, metrics = train(fn_args.train_files, fn_args.eval_files, tft_output,
                         hparams)
  training_log.write(
      f'retrieval: best epoch {metrics["best_epoch"]} of '
      f'{metrics["epochs_run"]}, val top-100 accuracy '
      f'{metrics["val_" + TOP_100_METRIC]:.4f}')
  save_towers(model, tft_output, fn_args.serving_model_dir)
  write_summary(fn_args.serving_model_dir, metrics)


def refit_fn(fn_args) -> None:
  """TFX Trainer entry point of the refit (`RetrievalRefit`): fresh models
  (`ensemble_size` of them, exported as one pair of towers) on train + eval
  for the base model's best epoch + `refit_extra_epochs`.

  The early-stopped model (`base_model`, from `run_fn`) is what the
  RetrievalEvaluator measures, on an eval split it has not seen; this one
  is what is indexed and served (`RetrievalHParams.refit_extra_epochs`).
  """
  hparams = read_hparams(fn_args, RetrievalHParams)
  epochs = plan_refit(fn_args, hparams)
  if epochs is None:
    return
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  model = refit(fn_args.train_files, fn_args.eval_files, tft_output, hparams,
                epochs)
  save_towers(model, tft_output, fn_args.serving_model_dir)
  write_summary(fn_args.serving_model_dir, refit_summary(epochs, hparams))
