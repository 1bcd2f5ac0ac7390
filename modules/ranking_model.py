"""The ranking model: plain TensorFlow / TFRS, no TFX.

Scores one (user, movie) pair in its context from the same Transform outputs
as the retrieval model, with two heads on one shared network:

  rating     the user's predicted rating, 1-5 (mean squared error on the
             ratings);
  relevance  a logit: how likely the user is to rate (watch) the movie at
             all (binary cross-entropy: each rating is a positive, catalogue
             movies drawn uniformly at random are negatives).

Why two heads. The two-stage recommender re-orders the retrieval model's
candidates. Ordering them by predicted rating alone answers "which of these
would the user like most *if* they watched it", and favours rarely watched,
highly rated films; the top-10 a user actually goes on to watch is better
predicted by relevance. The rating head keeps its own meaning (RMSE, TFMA's
evaluation, the ranking servable's `rating`), and the shared network learns
from both signals (multi-task). Negatives are uniform over the catalogue,
not in-batch, so the relevance logit is not debiased against popular movies,
which a top-10 of likely watches should keep.

The rating is 3 + the network's rating output + a user bias + a movie bias
+ the dot product of the user-id and movie-id embeddings, clipped to 1-5
(`rating_biases`, `rating_dot`; the ids' embeddings and biases under an L2
penalty, `id_l2`): biased matrix factorisation with a network learning the
rest from the other features. The relevance head reads the network alone.

Network (`architecture`):
  dcn  embeddings -> cross layers (DCN-v2, Wang et al. 2021: explicit
       feature crosses x0 * (W x + b) + x) -> deep layers -> heads
  mlp  embeddings -> deep layers -> heads
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

from typing import Dict, Mapping, Optional, Sequence, Tuple  # noqa: E402

import tensorflow as tf  # noqa: E402
import tensorflow_recommenders as tfrs  # noqa: E402

from modules import features  # noqa: E402
from modules import keras_tracing  # noqa: E402,F401  (fast tracing)
from modules.hparams import RankingHParams  # noqa: E402
from modules import trend  # noqa: E402
from modules.layers import BagOfEmbeddings  # noqa: E402

_xf = features.transformed_name

USER_CATEGORICALS = (features.GENDER, features.OCCUPATION,
                     features.ZIP_PREFIX, features.AGE_BUCKET)
USER_NUMERICS = (features.AGE,)
MOVIE_CATEGORICALS = (features.RELEASE_YEAR_BUCKET,)
MOVIE_BAGS = (features.GENRES, features.TITLE_TOKENS)
MOVIE_NUMERICS = (features.RELEASE_YEAR,)
CONTEXT_CATEGORICALS = (features.HOUR_OF_DAY, features.DAY_OF_WEEK)
CONTEXT_NUMERICS = (features.TIMESTAMP,)

# The transformed inputs that describe the movie (swapped in for negatives).
MOVIE_INPUTS = tuple(_xf(k) for k in (features.MOVIE_ID,) + MOVIE_CATEGORICALS
                     + MOVIE_BAGS + MOVIE_NUMERICS)

# The rating scale when none is given (ml-100k, ml-1m); the trainer passes
# the schema's (ml-20m/25m: half stars from 0.5).
MIN_RATING, MAX_RATING = 1.0, 5.0
# The rating head's output is centred on the middle of the scale.
RATING_OFFSET = 3.0


def _l2(weight: float) -> Optional[tf.keras.regularizers.Regularizer]:
  """An L2 penalty of `weight` (sum of squares), None for 0."""
  return tf.keras.regularizers.L2(weight) if weight > 0 else None


class FeatureEmbedding(tf.keras.layers.Layer):
  """Embeds the user, movie and (with `context_features`) context inputs
  into one vector per row.

  Inputs a feature's vocabulary does not size (absent from `vocab_sizes`,
  e.g. demographics of a release without them) are skipped. With a
  `trend_table` (and `hparams.trend_days`), the movie's part ends with its
  recent popularity at the row's raw `timestamp`, or now where the inputs
  have none (`modules.trend`).
  """

  def __init__(self, vocab_sizes: Mapping[str, int], hparams: RankingHParams,
               id_regularizer=None,
               trend_table: Optional[trend.TrendTable] = None, **kwargs):
    super().__init__(**kwargs)
    self.trend = None
    if hparams.trend_days:
      self.trend = trend.RecentPopularity(trend.required(trend_table),
                                          hparams.trend_days,
                                          name='recent_popularity')
    categoricals = USER_CATEGORICALS + MOVIE_CATEGORICALS
    numerics = USER_NUMERICS + MOVIE_NUMERICS
    if hparams.context_features:
      categoricals += CONTEXT_CATEGORICALS
      numerics += CONTEXT_NUMERICS
    self._categoricals = tuple(k for k in categoricals if k in vocab_sizes)
    self._bags = tuple(k for k in MOVIE_BAGS if k in vocab_sizes)
    self._numerics = numerics
    self.ids = {
        key: tf.keras.layers.Embedding(
            vocab_sizes[key], hparams.id_embedding_dim, name=f'{key}_emb',
            embeddings_regularizer=id_regularizer)
        for key in (features.USER_ID, features.MOVIE_ID)}
    self.embeddings = {
        key: tf.keras.layers.Embedding(vocab_sizes[key],
                                       hparams.feature_embedding_dim,
                                       name=f'{key}_emb')
        for key in self._categoricals}
    self.bags = {
        key: BagOfEmbeddings(vocab_sizes[key], hparams.feature_embedding_dim,
                             name=f'{key}_bag')
        for key in self._bags}

  def id_embeddings(self, inputs: Dict[str, tf.Tensor]
                   ) -> Tuple[tf.Tensor, tf.Tensor]:
    """(user-id embeddings, movie-id embeddings), [batch, id_dim] each."""
    return (self.ids[features.USER_ID](inputs[_xf(features.USER_ID)]),
            self.ids[features.MOVIE_ID](inputs[_xf(features.MOVIE_ID)]))

  def user_side(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
    """[batch, user_dim]: the user's (and the rating context's) part."""
    parts = [self.ids[features.USER_ID](inputs[_xf(features.USER_ID)])]
    parts += [self.embeddings[k](inputs[_xf(k)]) for k in self._categoricals
              if k not in MOVIE_CATEGORICALS]
    parts += [_numeric(inputs[_xf(k)]) for k in self._numerics
              if k not in MOVIE_NUMERICS and _xf(k) in inputs]
    return tf.concat(parts, axis=1)

  def movie_side(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
    """[batch, movie_dim]: the movie's part (`MOVIE_INPUTS` only)."""
    parts = [self.ids[features.MOVIE_ID](inputs[_xf(features.MOVIE_ID)])]
    parts += [self.embeddings[k](inputs[_xf(k)]) for k in self._categoricals
              if k in MOVIE_CATEGORICALS]
    parts += [self.bags[k](inputs[_xf(k)]) for k in self._bags]
    parts += [_numeric(inputs[_xf(k)]) for k in self._numerics
              if k in MOVIE_NUMERICS and _xf(k) in inputs]
    if self.trend is not None:
      parts.append(self.trend(inputs[_xf(features.MOVIE_ID)],
                              inputs.get(features.TIMESTAMP)))
    return tf.concat(parts, axis=1)

  def call(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
    """[batch, user_dim + movie_dim]: the user's part, then the movie's."""
    return tf.concat([self.user_side(inputs), self.movie_side(inputs)],
                     axis=1)


def _numeric(value: tf.Tensor) -> tf.Tensor:
  return tf.expand_dims(tf.cast(value, tf.float32), -1)


class PairDense(tf.keras.layers.Layer):
  """A dense layer over [user part, movie part] that computes the user's
  share once for all the movies paired with it.

  Equal to `Dense(units)` on the concatenation: one kernel [user_dim +
  movie_dim, units] (Glorot-uniform over the whole fan-in), applied as
  user @ kernel[:user_dim] + movie @ kernel[user_dim:] + bias. The
  relevance task pairs each rating's user with `relevance_negatives`
  catalogue movies; their user share is the rating's, tiled, so a negative
  costs only its movie's share (on ML-100K's defaults 57 of the 122 input
  rows of the first layer, the largest matrix of the network).
  """

  def __init__(self, units: int, activation=None, **kwargs):
    super().__init__(**kwargs)
    self.units = units
    self.activation = tf.keras.activations.get(activation)

  def build(self, input_shape):
    user_shape, movie_shape = input_shape
    self._user_dim = int(user_shape[-1])
    self.kernel = self.add_weight(
        name='kernel', shape=(self._user_dim + int(movie_shape[-1]),
                              self.units),
        initializer='glorot_uniform')
    self.bias = self.add_weight(name='bias', shape=(self.units,),
                                initializer='zeros')
    super().build(input_shape)

  def call(self, inputs, repeats: int = 1) -> tf.Tensor:
    """inputs: (user [batch, user_dim], movie [repeats * batch, movie_dim]);
    movie row i is paired with user row i mod batch."""
    user, movie = inputs
    user_share = tf.matmul(user, self.kernel[:self._user_dim])
    if repeats > 1:
      user_share = tf.tile(user_share, [repeats, 1])
    return self.activation(
        user_share + tf.matmul(movie, self.kernel[self._user_dim:]) +
        self.bias)


class RankingModel(tfrs.Model):
  """Shared network with a rating head and a relevance head."""

  def __init__(self, vocab_sizes: Mapping[str, int], hparams: RankingHParams,
               catalogue: Mapping[str, tf.Tensor] = None,
               catalogue_counts: Sequence[int] = None,
               rating_range: Tuple[float, float] = (MIN_RATING, MAX_RATING),
               id_l2_on_rows: bool = False,
               trend_table: Optional[trend.TrendTable] = None):
    """Builds the model.

    Args:
      vocab_sizes: embedding table sizes (vocabulary + OOV buckets).
      hparams: architecture, heads and training settings.
      catalogue: movie inputs (`MOVIE_INPUTS`, one row per movie,
        multivalent ones as RaggedTensors) to draw relevance negatives
        from; needed when `hparams.relevance_weight > 0`.
      catalogue_counts: ratings per catalogue row, for
        `relevance_negatives_by='popularity'`.
      rating_range: (lowest, highest) rating; predictions are clipped to it.
      id_l2_on_rows: take `hparams.id_l2_per_rating` on the rows each
        rating looks up (`id_penalty`, in the training loss) instead of
        `hparams.id_l2` on the whole id
        tables (Keras regularizers, whose gradient touches every row at
        every step). For lazy optimizers, whose step must stay sparse.
      trend_table: the training ratings' `trend.TrendTable`, for
        `hparams.trend_windows`.
    """
    super().__init__()
    if not rating_range[0] < rating_range[1]:
      raise ValueError(f'rating_range must be (low, high) with low < high, '
                       f'got {rating_range!r}')
    self._rating_range = (float(rating_range[0]), float(rating_range[1]))
    if hparams.architecture not in ('dcn', 'mlp'):
      raise ValueError(f"architecture must be 'dcn' or 'mlp', got "
                       f'{hparams.architecture!r}')
    if hparams.relevance_weight > 0 and catalogue is None:
      raise ValueError('the relevance task needs the catalogue to draw '
                       'negatives from')
    self._hparams = hparams
    self._id_l2_on_rows = id_l2_on_rows
    table_l2 = None if id_l2_on_rows else _l2(hparams.id_l2)
    self.embedding = FeatureEmbedding(vocab_sizes, hparams,
                                      id_regularizer=table_l2,
                                      trend_table=trend_table)
    self.cross = [
        tfrs.layers.dcn.Cross(
            projection_dim=hparams.cross_projection_dim or None,
            kernel_initializer='glorot_uniform', name=f'cross_{i}')
        for i in range(hparams.cross_layers if hparams.architecture == 'dcn'
                       else 0)]
    units = hparams.deep_units
    # The MLP's first layer reads [user part, movie part] directly, so the
    # relevance negatives share their rating's user part (`PairDense`);
    # DCN's first deep layer reads the crosses, which mix both parts.
    self.pair = None
    deep = []
    if hparams.architecture == 'mlp' and units:
      self.pair = PairDense(units[0], activation='relu', name='pair_dense')
      units = units[1:]
      if hparams.dropout:
        deep.append(tf.keras.layers.Dropout(hparams.dropout))
    for width in units:
      deep.append(tf.keras.layers.Dense(width, activation='relu'))
      if hparams.dropout:
        deep.append(tf.keras.layers.Dropout(hparams.dropout))
    self.deep = tf.keras.Sequential(deep, name='deep')
    self.rating_head = tf.keras.layers.Dense(1, name='rating')
    # Biased matrix factorisation beside the network, rating head only.
    self.rating_biases = {
        key: tf.keras.layers.Embedding(
            vocab_sizes[key], 1, embeddings_initializer='zeros',
            embeddings_regularizer=table_l2, name=f'{key}_bias')
        for key in ((features.USER_ID, features.MOVIE_ID)
                    if hparams.rating_biases else ())}
    self.relevance_head = tf.keras.layers.Dense(1, name='relevance')
    self.rating_task = tfrs.tasks.Ranking(
        loss=tf.keras.losses.MeanSquaredError(),
        metrics=[tf.keras.metrics.RootMeanSquaredError(name='rmse'),
                 tf.keras.metrics.MeanAbsoluteError(name='mae')])
    self.relevance_task = tfrs.tasks.Ranking(
        loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[tf.keras.metrics.AUC(from_logits=True,
                                      name='relevance_auc')])
    if hparams.relevance_negatives_by not in ('uniform', 'popularity'):
      raise ValueError("relevance_negatives_by must be 'uniform' or "
                       f"'popularity', got {hparams.relevance_negatives_by!r}")
    logits = None
    if hparams.relevance_negatives_by == 'popularity' and catalogue:
      if catalogue_counts is None:
        raise ValueError('popularity negatives need the catalogue counts')
      logits = tf.math.log(tf.constant([list(catalogue_counts)], tf.float32))
    # Constants, not weights: kept out of Keras' attribute tracking.
    self.__dict__['_catalogue'] = dict(catalogue) if catalogue else None
    self.__dict__['_negative_logits'] = logits

  def _network(self, user: tf.Tensor, movie: tf.Tensor, training: bool,
               repeats: int = 1) -> tf.Tensor:
    """The shared network's output for each movie row paired with user row
    (i mod batch): user [batch, user_dim], movie [repeats * batch,
    movie_dim] -> [repeats * batch, width]."""
    if self.pair is not None:
      x = self.pair((user, movie), repeats=repeats)
    else:
      if repeats > 1:
        user = tf.tile(user, [repeats, 1])
      x0 = tf.concat([user, movie], axis=1)
      x = x0
      for layer in self.cross:
        x = layer(x0, x)
    return self.deep(x, training=training)

  def _outputs(self, inputs: Dict[str, tf.Tensor], x: tf.Tensor
              ) -> Dict[str, tf.Tensor]:
    rating = tf.squeeze(self.rating_head(x), axis=1) + RATING_OFFSET
    for key, bias in self.rating_biases.items():
      rating += tf.squeeze(bias(inputs[_xf(key)]), axis=1)
    if self._hparams.rating_dot:
      users, movies = self.embedding.id_embeddings(inputs)
      rating += tf.reduce_sum(users * movies, axis=1)
    rating = tf.clip_by_value(rating, *self._rating_range)
    return {'rating': rating,
            'relevance': tf.squeeze(self.relevance_head(x), axis=1)}

  def call(self, inputs: Dict[str, tf.Tensor],
           training: bool = False) -> Dict[str, tf.Tensor]:
    """{'rating': [batch] in [1, 5], 'relevance': [batch] logits}."""
    x = self._network(self.embedding.user_side(inputs),
                      self.embedding.movie_side(inputs), training)
    return self._outputs(inputs, x)

  def negative_relevance(self, inputs: Dict[str, tf.Tensor],
                         user: tf.Tensor, training: bool = False
                        ) -> tf.Tensor:
    """[relevance_negatives * batch] relevance logits of the batch's users
    paired with catalogue movies drawn by `_negatives`, from the users'
    parts already embedded (`user`, [batch, user_dim]); equal to the
    relevance of `self(self._negatives(inputs))`."""
    movies = self.embedding.movie_side(
        self._negatives(inputs, with_users=False))
    x = self._network(user, movies, training,
                      repeats=self._hparams.relevance_negatives)
    return tf.squeeze(self.relevance_head(x), axis=1)

  def _negatives(self, inputs: Dict[str, tf.Tensor],
                 with_users: bool = True) -> Dict[str, tf.Tensor]:
    """The batch with each movie replaced by a uniformly drawn catalogue
    movie, `relevance_negatives` times over (rows repeated; only the movie
    inputs without `with_users`)."""
    n = self._hparams.relevance_negatives
    batch = tf.shape(inputs[_xf(features.MOVIE_ID)])[0]
    size = tf.shape(self._catalogue[_xf(features.MOVIE_ID)])[0]
    if self._negative_logits is None:
      rows = tf.random.uniform([batch * n], 0, size, dtype=tf.int32)
    else:
      rows = tf.cast(tf.random.categorical(self._negative_logits, batch * n)[0],
                     tf.int32)
    repeated = {k: _repeat(v, n) for k, v in inputs.items()
                if with_users and k not in MOVIE_INPUTS and k.endswith('_xf')}
    if features.TIMESTAMP in inputs:
      # A negative's recent popularity is taken at its rating's time.
      repeated[features.TIMESTAMP] = _repeat(inputs[features.TIMESTAMP], n)
    for key in MOVIE_INPUTS:
      if key in self._catalogue:
        value = tf.gather(self._catalogue[key], rows)
        repeated[key] = (value.to_sparse()
                         if isinstance(value, tf.RaggedTensor) else value)
    return repeated

  def id_penalty(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
    """[batch] squared norms of each row's user-id and movie-id embeddings
    and rating biases: with `id_l2_on_rows`, the L2 term of biased matrix
    factorisation as SGD takes it, on the rows each rating looks up (a step
    costs per rating, not per vocabulary entry; frequent ids are
    regularised more often)."""
    users, movies = self.embedding.id_embeddings(inputs)
    penalty = (tf.reduce_sum(tf.square(users), axis=1) +
               tf.reduce_sum(tf.square(movies), axis=1))
    for key, bias in self.rating_biases.items():
      penalty += tf.square(tf.squeeze(bias(inputs[_xf(key)]), axis=1))
    return penalty

  def compute_loss(self, inputs: Dict[str, tf.Tensor],
                   training: bool = False) -> tf.Tensor:
    user = self.embedding.user_side(inputs)
    outputs = self._outputs(inputs, self._network(
        user, self.embedding.movie_side(inputs), training))
    labels = inputs[_xf(features.LABEL_KEY)]
    loss = self.rating_task(labels=labels, predictions=outputs['rating'])
    if self._id_l2_on_rows and self._hparams.id_l2_per_rating > 0:
      loss += self._hparams.id_l2_per_rating * tf.reduce_mean(
          self.id_penalty(inputs))
    if self._hparams.relevance_weight > 0:
      negatives = self.negative_relevance(inputs, user, training=training)
      logits = tf.concat([outputs['relevance'], negatives], 0)
      relevant = tf.concat([tf.ones_like(outputs['relevance']),
                            tf.zeros_like(negatives)], 0)
      loss += self._hparams.relevance_weight * self.relevance_task(
          labels=relevant, predictions=logits)
    return loss


def _repeat(value: tf.Tensor, n: int) -> tf.Tensor:
  """Each row n times, as [row0 ... rowB, row0 ... rowB, ...]."""
  if isinstance(value, tf.SparseTensor):
    return tf.sparse.concat(0, [value] * n, expand_nonconcat_dims=True)
  return tf.concat([value] * n, axis=0)


def rows_of(columns: Mapping[str, tf.Tensor], rows: tf.Tensor
           ) -> Dict[str, tf.Tensor]:
  """The given rows of feature columns, multivalent ones as SparseTensors."""
  result = {}
  for key, value in columns.items():
    value = tf.gather(value, rows)
    result[key] = (value.to_sparse() if isinstance(value, tf.RaggedTensor)
                   else value)
  return result


class RankingEnsemble(tf.keras.layers.Layer):
  """n trained ranking models as one: each output (rating, relevance logit)
  is the mean of the members'. Called as a `RankingModel` is."""

  def __init__(self, models: Sequence[RankingModel], **kwargs):
    super().__init__(**kwargs)
    if not models:
      raise ValueError('RankingEnsemble needs at least one model')
    self.members = list(models)

  def call(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    outputs = [member(inputs) for member in self.members]
    return {key: tf.add_n([o[key] for o in outputs]) / len(outputs)
            for key in outputs[0]}
