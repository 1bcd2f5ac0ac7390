"""The two-tower retrieval model: plain TensorFlow / TFRS, no TFX.

Both towers mix collaborative signal (id embeddings) with content, so the
model is hybrid: a user or movie with few ratings still gets a sensible
embedding from its features, and an unknown id (the vocabulary's OOV
bucket) falls back to the content part.

  query tower:     user id, gender, occupation, zip prefix, age (bucket and
                   z-score), hour of day, day of week  -> [batch, dim]
  candidate tower: movie id, genres (bag), title words (bag), release year
                   (bucket and z-score)                -> [batch, dim]
  score = dot(query, candidate)   (cosine / temperature when normalised,
                                   plus a learned per-movie bias, and with
                                   `trend_windows` a learned score of the
                                   movie's recent ratings: `TrendQuery`)

Inputs are Transform's outputs (`modules.features.transformed_name` keys):
int64 [batch] indices, float32 [batch] z-scores, and SparseTensors of
indices for the multivalent genres and title words.
"""

import math
import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

from typing import Dict, Mapping, Optional, Sequence  # noqa: E402

import tensorflow as tf  # noqa: E402
import tensorflow_recommenders as tfrs  # noqa: E402

from modules import features  # noqa: E402
from modules import keras_tracing  # noqa: E402,F401  (fast tracing)
from modules import trend  # noqa: E402
from modules.hparams import RetrievalHParams  # noqa: E402
from modules.layers import BagOfEmbeddings  # noqa: E402

_xf = features.transformed_name

# Categorical inputs of each tower: transformed key -> vocabulary key whose
# size (with OOV buckets) sizes the embedding.
QUERY_CATEGORICALS = (features.GENDER, features.OCCUPATION,
                      features.ZIP_PREFIX, features.AGE_BUCKET,
                      features.HOUR_OF_DAY, features.DAY_OF_WEEK)
QUERY_NUMERICS = (features.AGE,)
CANDIDATE_CATEGORICALS = (features.RELEASE_YEAR_BUCKET,)
CANDIDATE_BAGS = (features.GENRES, features.TITLE_TOKENS)
CANDIDATE_NUMERICS = (features.RELEASE_YEAR,)


class UserHistory(tf.keras.layers.Layer):
  """Mean embedding of the movies a user rated in training (FISM-style).

  The query tower's view of "what this user watched": the user's training
  movies (Transform's movie indices), embedded by a table of their own and
  averaged. Unlike the user-id embedding, it is shared across users, so a
  user with few ratings still gets a meaningful vector from them, and it is
  refreshed at every retraining without relearning a per-user vector.

  Leave-one-out: a training example's own movie is always in its user's
  history, which would teach the model to recognise the target instead of
  predicting it; `call` leaves out history entries equal to `exclude` (the
  example's movie). At serving time nothing is excluded.

  The history is held as two non-trainable variables (CSR: `values`, the
  movie indices of all users in user order, and `row_splits`, one row per
  user-vocabulary index), so it is saved with the model's weights, not as a
  graph constant. An index without a row (OOV, new users) has no history:
  the output is zeros.

  Args:
    values: int64 [num_ratings] movie indices.
    row_splits: int64 [num_users + 1].
    num_movies: movie vocabulary size (with OOV buckets).
    dim: embedding size.
  """

  def __init__(self, values, row_splits, num_movies: int, dim: int,
               **kwargs):
    super().__init__(**kwargs)
    self.values = tf.Variable(tf.constant(values, tf.int64), trainable=False,
                              name='history_values')
    self.row_splits = tf.Variable(tf.constant(row_splits, tf.int64),
                                  trainable=False, name='history_row_splits')
    self.embedding = tf.keras.layers.Embedding(num_movies, dim,
                                               name='history_emb')

  def call(self, users: tf.Tensor,
           exclude: Optional[tf.Tensor] = None) -> tf.Tensor:
    """users: int64 [batch] -> [batch, dim]; `exclude`: int64 [batch]."""
    table = tf.RaggedTensor.from_row_splits(self.values, self.row_splits,
                                            validate=False)
    num_rows = tf.shape(self.row_splits, out_type=tf.int64)[0] - 1
    users = tf.cast(users, tf.int64)
    known = tf.logical_and(users >= 0, users < num_rows)
    rows = tf.gather(table, tf.where(known, users, tf.zeros_like(users)))
    keep = tf.ones_like(rows.flat_values, tf.bool)
    if exclude is not None:
      keep = tf.not_equal(
          rows.flat_values,
          tf.gather(tf.cast(exclude, tf.int64), rows.value_rowids()))
    keep = tf.logical_and(keep, tf.gather(known, rows.value_rowids()))
    weights = tf.cast(keep, tf.float32)
    vectors = self.embedding(rows.flat_values) * weights[:, None]
    batch = tf.shape(users, out_type=tf.int64)[0]
    total = tf.math.unsorted_segment_sum(vectors, rows.value_rowids(), batch)
    count = tf.math.unsorted_segment_sum(weights, rows.value_rowids(), batch)
    return total / tf.maximum(count, 1.0)[:, None]


def history_csr(users, movies, num_users: int, times=None,
                max_per_user: int = 0):
  """(values, row_splits) of `UserHistory` from parallel index arrays.

  Args:
    users / movies: int [num_ratings] Transform indices, one pair per
      training rating, in any order (duplicates are kept once).
    num_users: rows of the table (the user vocabulary size with OOV).
    times: [num_ratings] rating times (any monotonic scale), needed with
      `max_per_user`.
    max_per_user: keep only each user's `max_per_user` most recent movies
      (0: all). The cost of a training step grows with the summed history
      length of its examples, and a user's share of the examples grows
      with that user's history too, so without a cap a few heavy raters
      (thousands of ratings in ml-20m/25m) dominate the training time.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  users = np.asarray(users, np.int64)
  movies = np.asarray(movies, np.int64)
  if max_per_user < 0:
    raise ValueError(f'history_csr: max_per_user must be >= 0 (0 for no '
                     f'cap), got {max_per_user}')
  if max_per_user:
    if times is None:
      raise ValueError('history_csr: max_per_user needs the rating times')
    # By user, newest first; a movie rated twice counts at its newest.
    order = np.lexsort((-np.asarray(times, np.float64), users))
    users, movies = users[order], movies[order]
    _, first = np.unique(np.stack([users, movies], axis=1), axis=0,
                         return_index=True)
    first.sort()
    users, movies = users[first], movies[first]
    rank = np.arange(len(users)) - np.searchsorted(users, users)
    users, movies = users[rank < max_per_user], movies[rank < max_per_user]
  pairs = np.unique(np.stack([users, movies], axis=1), axis=0)
  pairs = pairs[(pairs[:, 0] >= 0) & (pairs[:, 0] < num_users)]
  counts = np.bincount(pairs[:, 0], minlength=num_users)
  row_splits = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
  return pairs[:, 1].copy(), row_splits


class Tower(tf.keras.Model):
  """Embeds categoricals, bags of ids and numerics, then a small MLP.

  Args:
    id_key: the transformed id feature (user or movie id).
    vocab_sizes: sizes (incl. OOV buckets) of every categorical and bag.
    categoricals / bags / numerics: raw keys of the tower's other inputs.
    hparams: dimensions and normalisation.
    extra_dimension: None, 'one' (append a constant 1) or 'bias' (append a
      learned scalar per id): with one tower of each, the dot product gains
      a per-candidate bias.
    history: optional `UserHistory` (query tower only); the batch's movie
      index, when present (training, evaluation), is left out of it.
  """

  def __init__(self, id_key: str, vocab_sizes: Mapping[str, int],
               categoricals, bags, numerics, hparams: RetrievalHParams,
               extra_dimension: Optional[str] = None,
               history: Optional[UserHistory] = None, **kwargs):
    super().__init__(**kwargs)
    self._id_key = id_key
    self.history = history
    if history is not None:
      self.history_projection = tf.keras.layers.Dense(
          hparams.embedding_dim, use_bias=False, name='history_projection')
    self._categoricals = tuple(k for k in categoricals if k in vocab_sizes)
    self._bags = tuple(bags)
    self._numerics = tuple(numerics)
    self._normalize = hparams.normalize
    self.id_embedding = tf.keras.layers.Embedding(
        vocab_sizes[id_key], hparams.id_embedding_dim, name=f'{id_key}_emb')
    self.embeddings = {
        key: tf.keras.layers.Embedding(vocab_sizes[key],
                                       hparams.feature_embedding_dim,
                                       name=f'{key}_emb')
        for key in self._categoricals}
    self.bag_embeddings = {
        key: BagOfEmbeddings(vocab_sizes[key], hparams.feature_embedding_dim,
                             name=f'{key}_bag')
        for key in self._bags}
    layers = []
    if hparams.hidden_units:
      layers.append(tf.keras.layers.Dense(hparams.hidden_units,
                                          activation='relu'))
    layers.append(tf.keras.layers.Dense(hparams.embedding_dim))
    self.content = tf.keras.Sequential(layers, name='content_mlp')
    # The id embedding enters the output directly (a residual path), so
    # collaborative signal is not squeezed through the content MLP.
    self.id_projection = tf.keras.layers.Dense(hparams.embedding_dim,
                                               use_bias=False)
    self._extra = extra_dimension
    if extra_dimension == 'bias':
      self.id_bias = tf.keras.layers.Embedding(
          vocab_sizes[id_key], 1, embeddings_initializer='zeros',
          name=f'{id_key}_bias')

  def call(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
    id_vector = self.id_embedding(inputs[_xf(self._id_key)])
    parts = [id_vector]
    parts += [self.embeddings[k](inputs[_xf(k)]) for k in self._categoricals]
    parts += [self.bag_embeddings[k](inputs[_xf(k)]) for k in self._bags]
    parts += [tf.expand_dims(tf.cast(inputs[_xf(k)], tf.float32), -1)
              for k in self._numerics if _xf(k) in inputs]
    history_vector = None
    if self.history is not None:
      history_vector = self.history(inputs[_xf(self._id_key)],
                                    exclude=inputs.get(_xf(features.MOVIE_ID)))
      parts.append(history_vector)
    output = self.content(tf.concat(parts, axis=1)) + self.id_projection(
        id_vector)
    if history_vector is not None:
      output += self.history_projection(history_vector)
    if self._normalize:
      output = tf.math.l2_normalize(output, axis=1)
    if self._extra == 'one':
      output = tf.concat([output, tf.ones_like(output[:, :1])], axis=1)
    elif self._extra == 'bias':
      output = tf.concat(
          [output, self.id_bias(inputs[_xf(self._id_key)])], axis=1)
    return output


class TowerEnsemble(tf.keras.layers.Layer):
  """Towers side by side: the members' embeddings concatenated, each scaled
  by 1/sqrt(n).

  The dot product of a query ensemble and a candidate ensemble is then the
  mean of the members' dot products, so an ensemble of n two-tower models is
  itself a two-tower model: one query embedding, one candidate embedding,
  one top-k index (of n times the dimension) and one score, on the scale of
  a single member's.
  """

  def __init__(self, towers: Sequence[tf.keras.Model], **kwargs):
    super().__init__(**kwargs)
    if not towers:
      raise ValueError('TowerEnsemble needs at least one tower')
    self.towers = list(towers)
    self._scale = 1.0 / math.sqrt(len(self.towers))

  def call(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
    return tf.concat([tower(inputs) for tower in self.towers],
                     axis=1) * self._scale


class RetrievalEnsemble(tf.Module):
  """n trained retrieval models as one pair of towers (`TowerEnsemble`):
  `query_tower` and `candidate_tower`, as a `RetrievalModel` has, of the
  members' `serving_towers`."""

  def __init__(self, models: Sequence['RetrievalModel']):
    super().__init__()
    self.members = list(models)
    towers = [m.serving_towers() for m in self.members]
    self.query_tower = TowerEnsemble([q for q, _ in towers],
                                     name='query_ensemble')
    self.candidate_tower = TowerEnsemble([c for _, c in towers],
                                         name='candidate_ensemble')

  def serving_towers(self) -> tuple:
    """Its towers: the members' served towers side by side."""
    return self.query_tower, self.candidate_tower


def build_towers(vocab_sizes: Mapping[str, int],
                 hparams: RetrievalHParams, history=None) -> tuple:
  """(query tower, candidate tower) for the given vocabulary sizes.

  `history`: (values, row_splits) from `history_csr`, required when
  `hparams.user_history` is set.
  """
  bias = hparams.candidate_bias
  history_layer = None
  if hparams.user_history:
    if history is None:
      raise ValueError('user_history needs the training history '
                       '(values, row_splits)')
    history_layer = UserHistory(history[0], history[1],
                                vocab_sizes[features.MOVIE_ID],
                                hparams.id_embedding_dim, name='user_history')
  query = Tower(features.USER_ID, vocab_sizes, QUERY_CATEGORICALS, (),
                QUERY_NUMERICS, hparams, extra_dimension='one' if bias else None,
                history=history_layer, name='query_tower')
  candidate = Tower(features.MOVIE_ID, vocab_sizes, CANDIDATE_CATEGORICALS,
                    CANDIDATE_BAGS, CANDIDATE_NUMERICS, hparams,
                    extra_dimension='bias' if bias else None,
                    name='candidate_tower')
  return query, candidate


def candidate_ids(movies: Mapping[str, tf.Tensor]) -> tf.Tensor:
  """The ids by which the task tells movies apart (accidental hits, top-K
  hits): Transform's integer movie index where the features have it, else
  the raw id. The index is one int64 comparison where the raw id is a string
  comparison, and accidental-hit removal compares every pair of a batch
  (batch^2 comparisons per step). Training movies have distinct indices
  (the vocabulary is computed on them); movies outside it share the OOV
  index, which no catalogue row has, so they count as misses either way.
  """
  key = _xf(features.MOVIE_ID)
  return movies[key] if key in movies else movies[features.MOVIE_ID]


class TopKAccuracy(tf.keras.layers.Layer):
  """Top-K accuracy over the whole catalogue: the share of examples whose
  positive scores among the K best of every catalogue movie.

  Fed with the [batch, catalogue] logits the model computes anyway (the
  catalogue softmax's, or in evaluation the query batch against the
  catalogue embedded once), plus any per-pair term such as the trend's,
  which TFRS' `FactorizedTopK` (query embedding times candidate
  embedding) cannot hold. Examples whose movie is not in the catalogue are
  misses. The metrics keep TFRS' names,
  `factorized_top_k/top_{k}_categorical_accuracy`.
  """

  def __init__(self, ks: Sequence[int] = (10, 100), **kwargs):
    super().__init__(**kwargs)
    self._ks = tuple(ks)
    self.accuracy = [tf.keras.metrics.Mean(
        name=f'factorized_top_k/top_{k}_categorical_accuracy') for k in ks]

  def call(self, logits: tf.Tensor, rows: tf.Tensor) -> tf.Tensor:
    """Updates the metrics; returns a tensor to chain on (`rows`)."""
    known = rows >= 0
    positive = tf.gather(logits, tf.maximum(rows, 0), axis=1, batch_dims=1)
    better = tf.reduce_sum(
        tf.cast(logits > positive[:, None], tf.int32), axis=1)
    updates = [metric.update_state(tf.cast(
        tf.logical_and(known, better < k), tf.float32))
               for k, metric in zip(self._ks, self.accuracy)]
    with tf.control_dependencies(updates):
      return tf.identity(rows)


class TrendQuery(tf.keras.layers.Layer):
  """A query tower as served with the trend term (`trend.TrendLogit`): its
  embedding, then the term's served weights times the temperature. Against
  `TrendCandidate` the dot product is temperature x the training logit,
  the trend term included (plus its calibration, when set)."""

  def __init__(self, tower, trend_logit, temperature: float, **kwargs):
    super().__init__(**kwargs)
    self.tower = tower
    self.trend = trend_logit
    self._temperature = temperature

  def call(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
    query = self.tower(inputs)
    coefficients = self.trend.served_coefficients
    weights = tf.broadcast_to(coefficients * self._temperature,
                              [tf.shape(query)[0], tf.size(coefficients)])
    return tf.concat([query, weights], axis=1)


class TrendCandidate(tf.keras.layers.Layer):
  """A candidate tower as served with the trend term: its embedding, then
  the movie's recent-popularity features at the table's now. A static
  index holds the candidates at one time, so served retrieval answers now
  (the day after the last rating), the moment a deployed model serves."""

  def __init__(self, tower, trend_logit, **kwargs):
    super().__init__(**kwargs)
    self.tower = tower
    self.trend = trend_logit

  def call(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
    return tf.concat([self.tower(inputs), self.trend.popularity(
        inputs[_xf(features.MOVIE_ID)])], axis=1)


class RetrievalModel(tfrs.Model):
  """Two towers and a retrieval loss: softmax over the catalogue or the
  batch.

  `negatives='catalogue'`: each example's softmax runs over every movie of
  the training data, embedded by the candidate tower with the current
  weights at each step. This is the exact objective (rank the positive
  above the whole catalogue), with no sampling bias to correct; it costs
  one candidate-tower pass over the catalogue per step, which is cheap up
  to tens of thousands of movies.

  `negatives='in_batch'`: the softmax runs over the batch's candidates
  (every other movie in the batch is a negative). In-batch negatives are
  drawn in proportion to popularity, which over-penalises popular movies;
  with `logq_correction` each candidate's logit is corrected by -log(its
  sampling probability) (Yi et al., 2019). Accidental hits (the same movie
  twice in a batch) are removed from the negatives. It scales to any
  catalogue.

  With `hparams.trend_windows`, every (query, candidate) logit gains
  `trend.TrendLogit`: the candidate's recent popularity at the query's
  time, so a negative is judged at the moment the positive was rated
  (`serving_towers` serves it at now).

  In evaluation (not training) the model also updates the top-K accuracy
  metrics over the catalogue (`TopKAccuracy`).
  """

  def __init__(self, query_tower: tf.keras.Model,
               candidate_tower: tf.keras.Model, hparams: RetrievalHParams,
               candidate_probability: Optional[tf.lookup.StaticHashTable] =
               None,
               catalogue: Optional[Mapping[str, tf.Tensor]] = None,
               trend_table: Optional[trend.TrendTable] = None):
    """Builds the model.

    Args:
      query_tower / candidate_tower: from `build_towers`.
      hparams: temperature, negatives, correction and trend settings.
      candidate_probability: movie id (raw string) -> sampling probability,
        for the logQ correction of in-batch negatives; None disables it.
      catalogue: candidate-feature dict with one row per movie (multivalent
        features as SparseTensors, raw ids under `features.MOVIE_ID`,
        Transform's index under its transformed name): the negatives when
        `hparams.negatives == 'catalogue'`, and what the top-K accuracy
        ranks in evaluation (no metrics without it).
      trend_table: the training ratings' `trend.TrendTable`, needed with
        `hparams.trend_windows`.
    """
    super().__init__()
    self.query_tower = query_tower
    self.candidate_tower = candidate_tower
    self._temperature = hparams.temperature
    self._probability = (candidate_probability
                         if hparams.logq_correction else None)
    if hparams.negatives not in ('catalogue', 'in_batch'):
      raise ValueError(f"negatives must be 'catalogue' or 'in_batch', got "
                       f'{hparams.negatives!r}')
    self._catalogue_negatives = hparams.negatives == 'catalogue'
    if self._catalogue_negatives and catalogue is None:
      raise ValueError("negatives='catalogue' needs the catalogue")
    self.trend = None
    if hparams.trend_days:
      self.trend = trend.TrendLogit(trend.required(trend_table),
                                    hparams.trend_days, name='trend')
    self._catalogue = None
    self.top_k = None
    if catalogue is not None:
      ids = catalogue[features.MOVIE_ID]
      rows = tf.range(tf.shape(ids, out_type=tf.int64)[0])
      # Kept out of Keras' attribute tracking: constants, not weights.
      self.__dict__['_catalogue'] = dict(catalogue)
      self.__dict__['_catalogue_row'] = tf.lookup.StaticHashTable(
          tf.lookup.KeyValueTensorInitializer(ids, rows), default_value=-1)
      self.top_k = TopKAccuracy(name='top_k')

  def serving_towers(self) -> tuple:
    """(query, candidate) towers whose dot product scores as the model
    ranks: the towers themselves, or with the trend term (`TrendQuery`,
    `TrendCandidate`)."""
    if self.trend is None:
      return self.query_tower, self.candidate_tower
    return (TrendQuery(self.query_tower, self.trend, self._temperature,
                       name='query_with_trend'),
            TrendCandidate(self.candidate_tower, self.trend,
                           name='candidate_with_trend'))

  def _trend_logits(self, inputs: Mapping[str, tf.Tensor],
                    movie_rows: tf.Tensor) -> Optional[tf.Tensor]:
    """[batch, N] trend term of `movie_rows` at the examples' times."""
    if self.trend is None:
      return None
    return self.trend(inputs[features.TIMESTAMP], movie_rows)

  def catalogue_logits(self, query: tf.Tensor,
                       inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """[batch, catalogue] logits of the examples against every movie."""
    logits = tf.matmul(query, self.candidate_tower(self._catalogue),
                       transpose_b=True) / self._temperature
    trend_logits = self._trend_logits(
        inputs, self._catalogue[_xf(features.MOVIE_ID)])
    return logits if trend_logits is None else logits + trend_logits

  def in_batch_losses(self, query: tf.Tensor,
                      inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """[batch] softmax cross-entropy of each example's positive against the
    batch's other movies (TFRS' `Retrieval` task, plus the trend term)."""
    candidate = self.candidate_tower(inputs)
    logits = tf.matmul(query, candidate, transpose_b=True) / self._temperature
    trend_logits = self._trend_logits(inputs, inputs[_xf(features.MOVIE_ID)])
    if trend_logits is not None:
      logits += trend_logits
    if self._probability is not None:
      logits = tfrs.layers.loss.SamplingProbablityCorrection()(
          logits, self._probability.lookup(inputs[features.MOVIE_ID]))
    labels = tf.eye(tf.shape(logits)[0], tf.shape(logits)[1])
    logits = tfrs.layers.loss.RemoveAccidentalHits()(
        labels, logits, candidate_ids(inputs))
    return tf.nn.softmax_cross_entropy_with_logits(labels=labels,
                                                   logits=logits)

  def compute_loss(self, inputs: Dict[str, tf.Tensor],
                   training: bool = False) -> tf.Tensor:
    query = self.query_tower(inputs)
    metrics = not training and self.top_k is not None
    logits = rows = None
    if self._catalogue_negatives or metrics:
      logits = self.catalogue_logits(query, inputs)
      rows = self._catalogue_row.lookup(inputs[features.MOVIE_ID])
    if self._catalogue_negatives:
      # Examples whose movie is not in the catalogue (possible in
      # evaluation) do not count.
      known = rows >= 0
      losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
          labels=tf.where(known, rows, tf.zeros_like(rows)), logits=logits)
      losses = tf.where(known, losses, tf.zeros_like(losses))
    else:
      losses = self.in_batch_losses(query, inputs)
    loss = tf.reduce_sum(losses)
    if metrics:
      with tf.control_dependencies([self.top_k(logits, rows)]):
        loss = tf.identity(loss)
    return loss
