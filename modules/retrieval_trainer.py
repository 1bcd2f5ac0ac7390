"""Trainer module of the retrieval model: `run_fn` reads, builds, fits with
early stopping, exports (`modules.retrieval_trainer.run_fn`, the
RetrievalTrainer); `refit_fn` fits fresh models on train + eval for the
best epoch count that `run_fn` found (`modules.retrieval_trainer.refit_fn`,
the RetrievalRefit Trainer, whose towers are served): an ensemble of
`ensemble_size`, exported as one pair of towers whose D is the members'
summed (`retrieval_model.TowerEnsemble`). The reader of Transform's output
and the refit protocol are the ranking trainer's too
(`modules.training_data`, `modules.refit_protocol`); what is here serves
the retrieval model only.

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

import dataclasses  # noqa: E402
from typing import Dict, List, Mapping, Optional, Tuple  # noqa: E402

from absl import logging  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402

from modules import features  # noqa: E402
from modules import keras_tracing  # noqa: E402
from modules import optimizers  # noqa: E402
from modules import refit_protocol  # noqa: E402
from modules import retrieval_model  # noqa: E402
from modules import training_data  # noqa: E402
from modules import training_log  # noqa: E402
from modules import trend  # noqa: E402
from modules import trend_calibration  # noqa: E402
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
                counts: Mapping[bytes, int], history=None,
                trend_table: Optional[trend.TrendTable] = None
               ) -> retrieval_model.RetrievalModel:
  query, candidate = retrieval_model.build_towers(
      training_data.vocab_sizes(tft_output), hparams, history)
  model = retrieval_model.RetrievalModel(
      query, candidate, hparams,
      candidate_probability=sampling_probability_table(counts),
      catalogue=_to_sparse(movie_columns), trend_table=trend_table)
  sizes = training_data.vocab_sizes(tft_output)
  optimizer = optimizers.resolve(
      hparams.optimizer, max(sizes[features.USER_ID],
                             sizes[features.MOVIE_ID]))
  logging.info('retrieval: optimizer %s', optimizer)
  model.compile(optimizer=optimizers.build(optimizer, hparams.learning_rate))
  return model


def read_tables(train_files: List[str], tft_output: tft.TFTransformOutput,
                hparams: RetrievalHParams,
                before: Optional[int] = None) -> tuple:
  """(movie table, ratings per movie, user history or None, trend table or
  None) of the files (with `before`, of their examples earlier than that
  time), in one pass: what `build_model` needs besides the
  hyper-parameters."""
  spec = tft_output.transformed_feature_spec()
  movies, ratings = training_data.MovieRows(spec), RatingColumns(spec)
  trend_reader = trend.TrendReader(spec) if hparams.trend_days else None
  training_data.scan(train_files, [
      r for r in (movies, ratings if hparams.user_history else None,
                  trend_reader) if r], before=before)
  movie_columns, counts = movies.result()
  logging.info('retrieval: %d movies in training data', len(counts))
  sizes = training_data.vocab_sizes(tft_output)
  history = None
  if hparams.user_history:
    history = ratings.history(sizes[features.USER_ID], hparams.history_max)
    logging.info('retrieval: user history of %d ratings (at most %s per '
                 'user)', len(history[0]), hparams.history_max or 'all')
  table = None
  if trend_reader:
    table = trend.build_table(*trend_reader.result(),
                              num_movies=sizes[features.MOVIE_ID])
  return movie_columns, counts, history, table


def build_model_from_files(train_files: List[str],
                           tft_output: tft.TFTransformOutput,
                           hparams: RetrievalHParams
                          ) -> retrieval_model.RetrievalModel:
  """The compiled model as `train` fits it: movie table, sampling
  probabilities and (with `user_history`, `trend_windows`) the history and
  the trend table from the files."""
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
    self.query_tower, self.candidate_tower = model.serving_towers()
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


def validation_batch_size(num_movies: int, trend_windows: int = 0) -> int:
  """Queries per validation batch: each batch is scored against the whole
  catalogue at once (`retrieval_model.TopKAccuracy`), so the batch shrinks
  as the catalogue grows, keeping the score matrix within 2**26 floats
  (256 MiB): 4,096 queries up to 16,384 movies, 1,118 at ml-25m's 60,000.
  The trend term's counts (`trend_windows` + 1 gathered rows per query and
  their logarithms) count as as many more score matrices."""
  cells = max(num_movies, 1) * (1 + (trend_windows + 2 if trend_windows
                                     else 0))
  return max(256, min(4096, 2**26 // cells))


def train(train_files: List[str], eval_files: List[str],
          tft_output: tft.TFTransformOutput, hparams: RetrievalHParams,
          log_dir: Optional[str] = None
         ) -> Tuple[retrieval_model.RetrievalModel, Dict[str, float]]:
  """Fits the model with early stopping on the eval split's top-100;
  TensorBoard logs and `history.json` go to `log_dir` when given.

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
      batch_size=validation_batch_size(len(tables[1]),
                                       len(hparams.trend_days)))
  stop = tf.keras.callbacks.EarlyStopping(
      monitor='val_' + TOP_100_METRIC, mode='max',
      patience=hparams.early_stopping_patience, restore_best_weights=True)
  progress = training_log.TrainingLog('retrieval', hparams.batch_size,
                                      EPOCH_METRICS)
  history = model.fit(
      train_ds, validation_data=eval_ds, epochs=hparams.epochs,
      callbacks=[stop, progress] + training_log.run_callbacks(
          log_dir, 'retrieval', 'early_stopped', 'val_' + TOP_100_METRIC,
          'max'),
      verbose=0)
  scores = history.history['val_' + TOP_100_METRIC]
  best = int(np.argmax(scores))
  metrics = {k: float(v[best]) for k, v in history.history.items()}
  metrics['best_epoch'] = best + 1
  metrics['epochs_run'] = len(scores)
  return model, metrics


def refit(train_files: List[str], eval_files: List[str],
          tft_output: tft.TFTransformOutput, hparams: RetrievalHParams,
          epochs: int, log_dir: Optional[str] = None):
  """Fresh models fitted on train + eval for `epochs` epochs, final
  weights: movie table, sampling probabilities and user history include the
  eval split's ratings. Nothing is held out, so no metric.

  With `trend_windows` and `trend_calibration_days`, the trend term is
  calibrated first (`calibrate`) and every member serves that addition.

  Returns:
    (the model (`ensemble_size` 1: same seed as the early-stopped one) or a
    `retrieval_model.RetrievalEnsemble` of `ensemble_size` models with
    seeds `seed`, `seed + 1`, ... (the tables are read once for all); the
    trend calibration, or None).
  """
  files = list(train_files) + list(eval_files)
  tables = read_tables(files, tft_output, hparams)
  calibration = None
  if hparams.trend_days and hparams.trend_calibration_days:
    calibration = calibrate(files, tft_output, hparams, epochs, tables[3])
  members = refit_protocol.fit_members(
      'retrieval', files, tft_output, hparams, epochs,
      lambda: build_model(tft_output, hparams, *tables), EPOCH_METRICS[:1],
      log_dir=log_dir)
  if calibration is not None:
    for member in members:
      member.trend.calibration.assign(calibration)
  if len(members) == 1:
    return members[0], calibration
  return retrieval_model.RetrievalEnsemble(members), calibration


def calibrate(files: List[str], tft_output: tft.TFTransformOutput,
              hparams: RetrievalHParams, epochs: int,
              table: trend.TrendTable) -> Optional[np.ndarray]:
  """The addition to the trend term's weights that the last
  `trend_calibration_days` days of `files` want (`modules/
  trend_calibration.py`), or None when there is nothing to measure it on.

  One model with the refit's settings (one member, seed `seed`) is fitted
  for `epochs` epochs on the examples before the cut-off (`table`'s now
  minus those days); it ranks the catalogue of those examples for the users
  who rated on both sides of the cut-off.
  """
  cutoff = table.now - hparams.trend_calibration_days * trend.DAY_SECONDS
  if cutoff <= table.start:
    training_log.write(
        f'retrieval calibration: the ratings span less than '
        f'{hparams.trend_calibration_days} days; the trend term is served '
        'as trained')
    return None
  single = dataclasses.replace(hparams, ensemble_size=1)
  tables = read_tables(files, tft_output, single, before=cutoff)
  [model] = refit_protocol.fit_members(
      'retrieval calibration', files, tft_output, single, epochs,
      lambda: build_model(tft_output, single, *tables), EPOCH_METRICS[:1],
      before=cutoff)
  catalogue = _to_sparse(tables[0])
  ids = catalogue[features.MOVIE_ID].numpy().tolist()
  period = trend_calibration.read_period(
      files, tft_output.transformed_feature_spec(), cutoff,
      {movie: row for row, movie in enumerate(ids)})
  day = training_log.utc_day(cutoff)
  if not period.user_ids:
    training_log.write(f'retrieval calibration: no user rated both before '
                       f'and from {day}; the trend term is served as '
                       'trained')
    return None
  query_tower, candidate_tower = model.serving_towers()
  offset, results = trend_calibration.choose(
      query_tower(period.queries).numpy(),
      candidate_tower(catalogue).numpy(),
      model.trend.popularity(catalogue[_xf(features.MOVIE_ID)]).numpy(),
      hparams.temperature, period)
  training_log.write(
      f'retrieval calibration: {len(period.user_ids)} users rated from '
      f'{day}; nDCG@{trend_calibration.K} ' + ', '.join(
          f'{name} {value:.4f}' for name, value in results.items()))
  training_log.write(
      f'retrieval calibration: windows {hparams.trend_windows} days, '
      f'weights learned {np.round(model.trend.coefficients.numpy(), 3)}, '
      f'served with + {offset}')
  return offset


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


def run_fn(fn_args) -> None:
  """TFX Trainer entry point: read, build, fit with early stopping on the
  eval split, export; the best epoch and its metrics go to the model's
  training summary, for `refit_fn`."""
  hparams = refit_protocol.read_hparams(fn_args, RetrievalHParams)
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  model, metrics = train(fn_args.train_files, fn_args.eval_files, tft_output,
                         hparams, log_dir=fn_args.model_run_dir)
  training_log.write(
      f'retrieval: best epoch {metrics["best_epoch"]} of '
      f'{metrics["epochs_run"]}, val top-100 accuracy '
      f'{metrics["val_" + TOP_100_METRIC]:.4f}')
  save_towers(model, tft_output, fn_args.serving_model_dir)
  refit_protocol.write_summary(fn_args.serving_model_dir, metrics)


def refit_fn(fn_args) -> None:
  """TFX Trainer entry point of the refit (`RetrievalRefit`): fresh models
  (`ensemble_size` of them, exported as one pair of towers) on train + eval
  for the base model's best epoch + `refit_extra_epochs`.

  The early-stopped model (`base_model`, from `run_fn`) is what the
  RetrievalEvaluator measures, on an eval split it has not seen; this one
  is what is indexed and served (`RetrievalHParams.refit_extra_epochs`).
  """
  hparams = refit_protocol.read_hparams(fn_args, RetrievalHParams)
  epochs = refit_protocol.plan_refit(fn_args, hparams)
  if epochs is None:
    return
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  model, calibration = refit(fn_args.train_files, fn_args.eval_files,
                             tft_output, hparams, epochs,
                             log_dir=fn_args.model_run_dir)
  save_towers(model, tft_output, fn_args.serving_model_dir)
  summary = refit_protocol.refit_summary(epochs, hparams)
  if calibration is not None:
    summary['trend_calibration'] = [float(v) for v in calibration]
  refit_protocol.write_summary(fn_args.serving_model_dir, summary)
