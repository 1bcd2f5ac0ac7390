"""Trainer module of the ranking model: `run_fn` reads, builds, fits with
early stopping, exports (`modules.ranking_trainer.run_fn`, the
RankingTrainer, which TFMA evaluates); `refit_fn` fits fresh models (an
ensemble, outputs averaged) on train + eval for the best epoch count
(`modules.ranking_trainer.refit_fn`, the RankingRefit Trainer, whose model
is pushed). The reader of Transform's output and the refit protocol are the
retrieval trainer's too (`modules.training_data`, `modules.refit_protocol`).

The exported SavedModel is the ranking servable itself (Transform and the
users' and movies' stored features inside):

  serving_default(user_id: tf.string [None], movie_id: tf.string [None])
      -> {'rating': tf.float32 [None]}         the predicted rating, 1-5
  score_pairs(user_id, movie_id)
      -> {'rating': [None], 'relevance': [None]}  both heads (relevance is
         a logit), for the two-stage recommender
  serving_examples(examples: tf.string [None])  serialized raw tf.Examples
      -> {'rating': [None], 'relevance': [None]}  for TFMA and batch scoring
  transform_features(examples: tf.string [None])
      -> the dense transformed features (e.g. `age_bucket_xf`), which TFMA
         slices by

`serving_default` looks up the user's features (and the time of their
latest rating, for the context) and the movie's features from the training
data; an unknown user or movie takes the out-of-vocabulary path with default
features, so it is answered, never an error.
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

from typing import Dict, List, Mapping, Optional, Tuple  # noqa: E402

from absl import logging  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402

from modules import features  # noqa: E402
from modules import keras_tracing  # noqa: E402
from modules import optimizers  # noqa: E402
from modules import ranking_model  # noqa: E402
from modules import refit_protocol  # noqa: E402
from modules import training_data  # noqa: E402
from modules import training_log  # noqa: E402
from modules import trend  # noqa: E402
from modules.hparams import RankingHParams  # noqa: E402

_xf = features.transformed_name

USER_COLUMNS = tuple(
    _xf(k) for k in (features.USER_ID,) + ranking_model.USER_CATEGORICALS +
    ranking_model.USER_NUMERICS + ranking_model.CONTEXT_CATEGORICALS +
    ranking_model.CONTEXT_NUMERICS)
RMSE_METRIC = 'rmse'
# Dense transformed features that TFMA may slice by.
SLICE_FEATURES = (_xf(features.AGE_BUCKET), _xf(features.RELEASE_YEAR_BUCKET))


class UserRows:
  """Reader of `training_data.scan`: one row of transformed user (and
  context) features per user, their latest rating's (of equal times, the
  later in the files). Raw ids under `features.USER_ID`.

  Each batch's latest row per user is found with numpy; Python only
  compares those with the rows kept so far.
  """

  def __init__(self, feature_spec):
    keys = [k for k in USER_COLUMNS if k in feature_spec]
    self.spec = {k: feature_spec[k] for k in keys + [features.USER_ID]}
    self._latest: Dict[bytes, Tuple[float, Dict[str, object]]] = {}

  def add(self, batch: Mapping[str, tf.Tensor]) -> None:
    columns = {k: batch[k].numpy() for k in self.spec}
    ids = columns[features.USER_ID]
    time_key = _xf(features.TIMESTAMP)
    times = (columns[time_key] if time_key in columns
             else np.zeros(len(ids), np.float32))
    _, codes = np.unique(ids, return_inverse=True)
    order = np.lexsort((times, codes))  # By user, then time; stable.
    is_last = np.append(codes[order][1:] != codes[order][:-1], True)
    latest = self._latest
    for i in order[is_last].tolist():
      user_id, when = ids[i], float(times[i])
      if user_id not in latest or when >= latest[user_id][0]:
        latest[user_id] = (when, {k: columns[k][i] for k in columns})

  def result(self) -> Dict[str, tf.Tensor]:
    users = sorted(self._latest)
    return {k: tf.constant([self._latest[u][1][k] for u in users],
                           dtype=spec.dtype)
            for k, spec in self.spec.items()}


def default_row(columns: Mapping[str, tf.Tensor],
                tft_output: tft.TFTransformOutput) -> Dict[str, tf.Tensor]:
  """A row for an unknown user or movie: vocabulary features in their OOV
  bucket (the last), numerics at the mean (0), buckets and time at 0, bags
  empty."""
  oov = {_xf(k): tft_output.num_buckets_for_transformed_feature(_xf(k)) - 1
         for k in features.VOCAB_FEATURES
         if _xf(k) in tft_output.transformed_feature_spec()}
  row = {}
  for key, value in columns.items():
    if isinstance(value, tf.RaggedTensor):
      row[key] = tf.ragged.constant([[]], dtype=value.dtype,
                                    row_splits_dtype=value.row_splits.dtype)
    elif value.dtype == tf.string:
      row[key] = tf.constant([''])
    else:
      row[key] = tf.constant([oov.get(key, 0)], dtype=value.dtype)
  return row


def append_row(columns: Mapping[str, tf.Tensor],
               row: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  return {k: tf.concat([columns[k], row[k]], axis=0) for k in columns}


EPOCH_METRICS = (('loss', 'loss', 4), ('rmse', 'rmse', 4),
                 ('val rmse', 'val_rmse', 4), ('val mae', 'val_mae', 4),
                 ('val relevance auc', 'val_relevance_auc', 4))


def rating_range(tft_output: tft.TFTransformOutput) -> Tuple[float, float]:
  """The rating scale the curated schema declares (the label's
  float_domain: 1-5 in ml-100k/ml-1m, 0.5-5 in ml-20m/25m), or the model's
  default 1-5 where it declares none."""
  for feature in tft_output.raw_metadata.schema.feature:
    if (feature.name == features.LABEL_KEY and
        feature.WhichOneof('domain_info') == 'float_domain' and
        feature.float_domain.HasField('min') and
        feature.float_domain.HasField('max')):
      return feature.float_domain.min, feature.float_domain.max
  return ranking_model.MIN_RATING, ranking_model.MAX_RATING


def read_tables(train_files: List[str], tft_output: tft.TFTransformOutput,
                hparams: RankingHParams
               ) -> Tuple[Dict[str, tf.Tensor], Dict[bytes, int],
                          Dict[str, tf.Tensor], Optional[trend.TrendTable]]:
  """(the movie table, ratings per movie, the user table, and with
  `hparams.trend_windows` the ratings' trend table) of the files, in one
  pass: relevance negatives are drawn from the movie table, and the export
  serves the tables."""
  spec = tft_output.transformed_feature_spec()
  movie_rows, user_rows = training_data.MovieRows(spec), UserRows(spec)
  trend_reader = trend.TrendReader(spec) if hparams.trend_days else None
  training_data.scan(train_files, [r for r in (movie_rows, user_rows,
                                               trend_reader) if r])
  movies, counts = movie_rows.result()
  table = None
  if trend_reader:
    table = trend.build_table(
        *trend_reader.result(),
        num_movies=training_data.vocab_sizes(tft_output)[features.MOVIE_ID])
  return movies, counts, user_rows.result(), table


def compile_model(movies: Mapping[str, tf.Tensor], counts: Mapping[bytes, int],
                  tft_output: tft.TFTransformOutput, hparams: RankingHParams,
                  trend_table: Optional[trend.TrendTable] = None
                 ) -> ranking_model.RankingModel:
  """The compiled model as `train` fits it, on `read_tables`' tables."""
  catalogue = {k: v for k, v in movies.items()
               if k in ranking_model.MOVIE_INPUTS}
  sizes = training_data.vocab_sizes(tft_output)
  optimizer = optimizers.resolve(
      hparams.optimizer, max(sizes[features.USER_ID],
                             sizes[features.MOVIE_ID]))
  logging.info('ranking: optimizer %s', optimizer)
  model = ranking_model.RankingModel(
      sizes, hparams, id_l2_on_rows=optimizer == 'lazy_adam',
      catalogue=catalogue if hparams.relevance_weight > 0 else None,
      catalogue_counts=[counts[m] for m in
                        movies[features.MOVIE_ID].numpy().tolist()],
      rating_range=rating_range(tft_output), trend_table=trend_table)
  model.compile(optimizer=optimizers.build(optimizer, hparams.learning_rate))
  return model


def build_model(train_files: List[str], tft_output: tft.TFTransformOutput,
                hparams: RankingHParams
               ) -> Tuple[ranking_model.RankingModel, Dict[str, tf.Tensor],
                          Dict[str, tf.Tensor]]:
  """(the compiled model as `train` fits it, the movie table and the user
  table of the files)."""
  movies, counts, users, table = read_tables(train_files, tft_output,
                                             hparams)
  return (compile_model(movies, counts, tft_output, hparams, table), movies,
          users)


def train(train_files: List[str], eval_files: List[str],
          tft_output: tft.TFTransformOutput, hparams: RankingHParams,
          log_dir: Optional[str] = None
         ) -> Tuple[ranking_model.RankingModel, Dict[str, float],
                    Dict[str, tf.Tensor], Dict[str, tf.Tensor]]:
  """Fits with early stopping on the eval split's RMSE; TensorBoard logs
  and `history.json` go to `log_dir` when given.

  Returns:
    (model with the best epoch's weights, that epoch's metrics, the movie
    table and the user table of the training data).
  """
  tf.keras.utils.set_random_seed(hparams.seed)
  spec = tft_output.transformed_feature_spec()
  model, movies, users = build_model(train_files, tft_output, hparams)
  train_ds = training_data.make_dataset(
      train_files, spec, hparams.batch_size, shuffle=True, seed=hparams.seed)
  eval_ds = training_data.validation_dataset(
      eval_files, spec, hparams.validation_examples)
  stop = tf.keras.callbacks.EarlyStopping(
      monitor='val_' + RMSE_METRIC, mode='min',
      patience=hparams.early_stopping_patience, restore_best_weights=True)
  progress = training_log.TrainingLog('ranking', hparams.batch_size,
                                      EPOCH_METRICS)
  history = model.fit(
      train_ds, validation_data=eval_ds, epochs=hparams.epochs,
      callbacks=[stop, progress] + training_log.run_callbacks(
          log_dir, 'ranking', 'early_stopped', 'val_' + RMSE_METRIC, 'min'),
      verbose=0)
  scores = history.history['val_' + RMSE_METRIC]
  best = int(np.argmin(scores))
  metrics = {k: float(v[best]) for k, v in history.history.items()}
  metrics['best_epoch'] = best + 1
  metrics['epochs_run'] = len(scores)
  return model, metrics, movies, users


class RankingExport(tf.Module):
  """The trained model with stored user/movie features and Transform."""

  def __init__(self, model: ranking_model.RankingModel,
               tft_output: tft.TFTransformOutput,
               users: Mapping[str, tf.Tensor],
               movies: Mapping[str, tf.Tensor]):
    """Args: the model; Transform's output; `UserRows` and
    `training_data.MovieRows` results (raw ids under USER_ID /
    MOVIE_ID)."""
    super().__init__()
    self.model = model
    self.tft_layer = tft_output.transform_features_layer()
    self._raw_spec = {k: v for k, v in tft_output.raw_feature_spec().items()
                      if k != features.LABEL_KEY}
    self._dense_keys = sorted(
        k for k, v in tft_output.transformed_feature_spec().items()
        if isinstance(v, tf.io.FixedLenFeature) and k.endswith('_xf')
        and k != _xf(features.LABEL_KEY))
    self.user_rows, self.users = self._table(users, features.USER_ID,
                                             tft_output)
    self.movie_rows, self.movies = self._table(movies, features.MOVIE_ID,
                                               tft_output)

  @staticmethod
  def _table(columns, id_key, tft_output):
    """(id -> row lookup with unknown ids on the last row, the columns with
    that default row appended)."""
    ids = columns[id_key]
    rows = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            ids, tf.range(tf.shape(ids, out_type=tf.int64)[0])),
        default_value=tf.shape(ids, out_type=tf.int64)[0])
    inputs = {k: v for k, v in columns.items() if k.endswith('_xf')}
    return rows, append_row(inputs, default_row(inputs, tft_output))

  def _pair_features(self, user_id, movie_id):
    inputs = ranking_model.rows_of(self.users, self.user_rows.lookup(user_id))
    inputs.update(ranking_model.rows_of(self.movies,
                                        self.movie_rows.lookup(movie_id)))
    return inputs

  @tf.function(input_signature=[
      tf.TensorSpec([None], tf.string, name='user_id'),
      tf.TensorSpec([None], tf.string, name='movie_id')])
  def serve_pairs(self, user_id, movie_id):
    outputs = self.model(self._pair_features(user_id, movie_id))
    return {'rating': outputs['rating']}

  @tf.function(input_signature=[
      tf.TensorSpec([None], tf.string, name='user_id'),
      tf.TensorSpec([None], tf.string, name='movie_id')])
  def score_pairs(self, user_id, movie_id):
    outputs = self.model(self._pair_features(user_id, movie_id))
    return {'rating': outputs['rating'], 'relevance': outputs['relevance']}

  def _transform(self, examples):
    return self.tft_layer(tf.io.parse_example(examples, self._raw_spec))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                               name='examples')])
  def serve_examples(self, examples):
    outputs = self.model(self._transform(examples))
    return {'rating': outputs['rating'], 'relevance': outputs['relevance']}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                               name='examples')])
  def transform_features(self, examples):
    transformed = self._transform(examples)
    return {k: transformed[k] for k in self._dense_keys if k in transformed}

  def signatures(self) -> Dict[str, tf.types.experimental.ConcreteFunction]:
    return {
        'serving_default': self.serve_pairs.get_concrete_function(),
        'score_pairs': self.score_pairs.get_concrete_function(),
        'serving_examples': self.serve_examples.get_concrete_function(),
        'transform_features': self.transform_features.get_concrete_function(),
    }


def save(export: RankingExport, export_dir: str) -> None:
  """Saves with every signature, after one call (tables traced)."""
  export.serve_pairs(tf.constant(['']), tf.constant(['']))
  keras_tracing.save(export, export_dir, signatures=export.signatures())


def refit(train_files: List[str], eval_files: List[str],
          tft_output: tft.TFTransformOutput, hparams: RankingHParams,
          epochs: int, log_dir: Optional[str] = None
         ) -> Tuple[object, Dict[str, tf.Tensor], Dict[str, tf.Tensor]]:
  """(fresh models fitted on train + eval for `epochs` epochs with their
  final weights; the movie table and the user table of train + eval).
  Nothing is held out, so no validation metric.

  The model is a `RankingModel` (`ensemble_size` 1: same seed as the
  early-stopped one) or a `ranking_model.RankingEnsemble` of
  `ensemble_size` models with seeds `seed`, `seed + 1`, ... (the tables are
  read once for all).
  """
  files = list(train_files) + list(eval_files)
  movies, counts, users, table = read_tables(files, tft_output, hparams)
  members = refit_protocol.fit_members(
      'ranking', files, tft_output, hparams, epochs,
      lambda: compile_model(movies, counts, tft_output, hparams, table),
      EPOCH_METRICS[:2], log_dir=log_dir)
  if len(members) == 1:
    return members[0], movies, users
  return ranking_model.RankingEnsemble(members), movies, users


def run_fn(fn_args) -> None:
  """TFX Trainer entry point: read, build, fit with early stopping on the
  eval RMSE, export; the best epoch and its metrics go to the model's
  training summary, for `refit_fn`."""
  hparams = refit_protocol.read_hparams(fn_args, RankingHParams)
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  model, metrics, movies, users = train(
      fn_args.train_files, fn_args.eval_files, tft_output, hparams,
      log_dir=fn_args.model_run_dir)
  training_log.write(
      f'ranking: best epoch {metrics["best_epoch"]} of '
      f'{metrics["epochs_run"]}, val RMSE {metrics["val_rmse"]:.4f}, '
      f'val MAE {metrics["val_mae"]:.4f}')
  save(RankingExport(model, tft_output, users, movies),
       fn_args.serving_model_dir)
  refit_protocol.write_summary(fn_args.serving_model_dir, metrics)


def refit_fn(fn_args) -> None:
  """TFX Trainer entry point of the refit (`RankingRefit`): fresh models
  (`ensemble_size` of them, their outputs averaged) on train + eval for the
  base model's best epoch + `refit_extra_epochs`, the user and movie tables
  from train + eval too. The early-stopped model
  (`base_model`, from `run_fn`) is what TFMA evaluates and blesses; this one
  is pushed and used by the recommender (`RankingHParams.refit_extra_epochs`).
  """
  hparams = refit_protocol.read_hparams(fn_args, RankingHParams)
  epochs = refit_protocol.plan_refit(fn_args, hparams)
  if epochs is None:
    return
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  model, movies, users = refit(fn_args.train_files, fn_args.eval_files,
                               tft_output, hparams, epochs,
                               log_dir=fn_args.model_run_dir)
  save(RankingExport(model, tft_output, users, movies),
       fn_args.serving_model_dir)
  refit_protocol.write_summary(
      fn_args.serving_model_dir,
      refit_protocol.refit_summary(epochs, hparams))
