"""The two-tower retrieval model from literal Transform-output tensors: tower
shapes and normalisation, the catalogue softmax loss and the in-batch
softmax loss with and without the logQ correction on hand-computed batches,
accidental-hit removal, the top-K metrics, and short fits with either kind
of negatives."""

import math

import numpy as np
import pytest
import tensorflow as tf

from modules import features, retrieval_model, retrieval_trainer, trend
from modules.hparams import RetrievalHParams

pytestmark = pytest.mark.unit

xf = features.transformed_name

def _hparams(**kwargs) -> RetrievalHParams:
  """Hyper-parameters without the user history (tested on its own below)."""
  return RetrievalHParams(user_history=False, **kwargs)


# Tiny vocabularies (OOV bucket included) plus the fixed-size features.
VOCAB_SIZES = dict(features.FIXED_SIZES, **{
    features.USER_ID: 5, features.MOVIE_ID: 6, features.GENDER: 3,
    features.OCCUPATION: 4, features.ZIP_PREFIX: 4, features.GENRES: 5,
    features.TITLE_TOKENS: 7})
HPARAMS = _hparams(embedding_dim=4, id_embedding_dim=3,
                   feature_embedding_dim=2, hidden_units=5,
                   candidate_bias=False)


def _sparse(rows):
  """int64 SparseTensor [len(rows), longest row] from lists of ids."""
  return tf.RaggedTensor.from_row_lengths(
      tf.constant([i for row in rows for i in row], tf.int64),
      [len(row) for row in rows]).to_sparse()


def _batch(users, movies, genders=None, genres=None):
  """Transform outputs of a batch where row i is users[i] rating movies[i].

  The other features are fixed functions of the ids; the last row's title
  has no known word (an empty bag).
  """
  genres = genres or [[m % 5, (m + 1) % 5] for m in movies]
  titles = [[m, (m + 2) % 7] for m in movies[:-1]] + [[]]
  return {
      xf(features.USER_ID): tf.constant(users, tf.int64),
      xf(features.GENDER): tf.constant(genders or [u % 3 for u in users],
                                       tf.int64),
      xf(features.OCCUPATION): tf.constant([u % 4 for u in users], tf.int64),
      xf(features.ZIP_PREFIX): tf.constant([(u + 1) % 4 for u in users],
                                           tf.int64),
      xf(features.AGE_BUCKET): tf.constant([u % 7 for u in users], tf.int64),
      xf(features.HOUR_OF_DAY): tf.constant([(5 * u) % 24 for u in users],
                                            tf.int64),
      xf(features.DAY_OF_WEEK): tf.constant([u % 7 for u in users], tf.int64),
      xf(features.AGE): tf.constant([0.5 * u - 1.0 for u in users],
                                    tf.float32),
      xf(features.MOVIE_ID): tf.constant(movies, tf.int64),
      xf(features.RELEASE_YEAR_BUCKET): tf.constant([m % 11 for m in movies],
                                                    tf.int64),
      xf(features.GENRES): _sparse(genres),
      xf(features.TITLE_TOKENS): _sparse(titles),
      xf(features.RELEASE_YEAR): tf.constant([0.3 * m for m in movies],
                                             tf.float32),
      features.MOVIE_ID: tf.constant([f'm{m}' for m in movies]),
  }


def _norms(embeddings):
  return np.linalg.norm(embeddings.numpy(), axis=1)


# ------------------------------------------------------------------- towers


def test_towers_embed_a_batch_into_unit_vectors():
  tf.keras.utils.set_random_seed(0)
  query, candidate = retrieval_model.build_towers(VOCAB_SIZES, HPARAMS)
  batch = _batch(users=[0, 1, 4], movies=[2, 5, 0])

  queries = query(batch)
  candidates = candidate(batch)

  assert queries.shape == (3, 4)  # [batch, embedding_dim]
  assert candidates.shape == (3, 4)
  assert queries.dtype == tf.float32
  assert _norms(queries) == pytest.approx([1.0, 1.0, 1.0], abs=1e-6)
  assert _norms(candidates) == pytest.approx([1.0, 1.0, 1.0], abs=1e-6)
  assert np.all(np.isfinite(candidates.numpy()))


def test_towers_without_normalisation_are_not_unit_vectors():
  tf.keras.utils.set_random_seed(0)
  hparams = _hparams(embedding_dim=4, id_embedding_dim=3,
                     feature_embedding_dim=2, hidden_units=0,
                     normalize=False, candidate_bias=False)
  query, candidate = retrieval_model.build_towers(VOCAB_SIZES, hparams)
  batch = _batch(users=[0, 1, 4], movies=[2, 5, 0])

  queries, candidates = query(batch), candidate(batch)

  assert queries.shape == (3, 4) and candidates.shape == (3, 4)
  # Small initial weights: every norm is well below 1.
  assert np.all(_norms(queries) < 0.9)
  assert np.all(_norms(candidates) < 0.9)
  # No hidden layer: only the output Dense in the content MLP.
  assert len(query.content.layers) == 1


def test_candidate_bias_adds_a_learned_per_movie_term_to_the_score():
  tf.keras.utils.set_random_seed(0)
  hparams = _hparams(embedding_dim=4, id_embedding_dim=3,
                     feature_embedding_dim=2, hidden_units=5,
                     candidate_bias=True)
  query, candidate = retrieval_model.build_towers(VOCAB_SIZES, hparams)
  batch = _batch(users=[0, 1, 4], movies=[2, 5, 0])

  queries, candidates = query(batch).numpy(), candidate(batch).numpy()

  # One extra dimension: a constant 1 in the query, the movie's bias
  # (zeros at first) in the candidate; the first 4 stay unit vectors.
  assert queries.shape == (3, 5) and candidates.shape == (3, 5)
  np.testing.assert_array_equal(queries[:, 4], [1, 1, 1])
  np.testing.assert_array_equal(candidates[:, 4], [0, 0, 0])
  np.testing.assert_allclose(np.linalg.norm(queries[:, :4], axis=1), 1,
                             atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(candidates[:, :4], axis=1), 1,
                             atol=1e-6)
  # Biases of movies 0..5; the batch has movies 2, 5, 0 -> 2, 3, 0.5.
  candidate.id_bias.set_weights([np.array([[0.5], [-1], [2], [0], [0], [3]])])
  biased = candidate(batch).numpy()
  np.testing.assert_allclose(biased[:, 4], [2, 3, 0.5])
  # So q . c = cosine + bias.
  np.testing.assert_allclose(
      np.sum(queries * biased, axis=1),
      np.sum(queries[:, :4] * candidates[:, :4], axis=1) + [2, 3, 0.5],
      rtol=1e-6)


def test_tower_ensemble_scores_are_the_mean_of_the_members_scores():
  batch = _batch(users=[0, 1, 4], movies=[2, 5, 0])
  members = []
  for seed in (0, 1, 2):
    tf.keras.utils.set_random_seed(seed)
    members.append(retrieval_model.build_towers(VOCAB_SIZES, HPARAMS))
  query = retrieval_model.TowerEnsemble([q for q, _ in members])
  candidate = retrieval_model.TowerEnsemble([c for _, c in members])

  queries, candidates = query(batch).numpy(), candidate(batch).numpy()

  # Three 4-d members side by side, each scaled by 1/sqrt(3).
  assert queries.shape == (3, 12) and candidates.shape == (3, 12)
  np.testing.assert_allclose(queries[:, 4:8],
                             members[1][0](batch).numpy() / math.sqrt(3),
                             rtol=1e-6)
  scores = queries @ candidates.T
  member_scores = [q(batch).numpy() @ c(batch).numpy().T for q, c in members]
  np.testing.assert_allclose(scores, np.mean(member_scores, axis=0),
                             rtol=1e-5, atol=1e-6)
  # A member's scores differ from the mean: the ensemble is not one member.
  assert np.abs(member_scores[0] - scores).max() > 1e-3


def test_tower_ensemble_needs_a_tower():
  with pytest.raises(ValueError, match='at least one tower'):
    retrieval_model.TowerEnsemble([])


def test_each_tower_reads_its_own_features():
  tf.keras.utils.set_random_seed(0)
  query, candidate = retrieval_model.build_towers(VOCAB_SIZES, HPARAMS)
  batch = _batch(users=[1, 2], movies=[3, 4], genders=[0, 1])
  other_gender = _batch(users=[1, 2], movies=[3, 4], genders=[2, 2])
  other_genres = _batch(users=[1, 2], movies=[3, 4], genders=[0, 1],
                        genres=[[0], [0]])

  # Gender moves the query, not the candidate; genres the other way round.
  assert not np.allclose(query(batch), query(other_gender))
  np.testing.assert_allclose(candidate(batch), candidate(other_gender))
  assert not np.allclose(candidate(batch), candidate(other_genres))
  np.testing.assert_allclose(query(batch), query(other_genres))
  # One id embedding, six categoricals (all sized), no bags in the query
  # tower; the candidate tower has both bags.
  assert set(query.embeddings) == set(retrieval_model.QUERY_CATEGORICALS)
  assert query.bag_embeddings == {}
  assert set(candidate.bag_embeddings) == {features.GENRES,
                                           features.TITLE_TOKENS}


# --------------------------------------------------------------------- loss


class _FixedTower(tf.keras.Model):
  """Looks its output up from a fixed table by one id feature."""

  def __init__(self, key, vectors):
    super().__init__()
    self._key = key
    self._vectors = tf.constant(vectors, tf.float32)

  def call(self, inputs):
    return tf.gather(self._vectors, inputs[self._key])


# Queries and candidates are the unit vectors e0, e1: scores q . c = I.
FIXED_QUERY = _FixedTower(xf(features.USER_ID), [[1., 0.], [0., 1.]])
FIXED_CANDIDATE = _FixedTower(xf(features.MOVIE_ID), [[1., 0.], [0., 1.]])


def _pair_batch(movie_ids=(b'ma', b'mb')):
  # Transform's index of each movie: ma 0, mb 1.
  indices = [{b'ma': 0, b'mb': 1}[movie_id] for movie_id in movie_ids]
  return {xf(features.USER_ID): tf.constant([0, 1], tf.int64),
          xf(features.MOVIE_ID): tf.constant(indices, tf.int64),
          features.MOVIE_ID: tf.constant(list(movie_ids))}


def _fixed_model(temperature, probability=None, logq_correction=True):
  hparams = _hparams(temperature=temperature, negatives='in_batch',
                     logq_correction=logq_correction)
  return retrieval_model.RetrievalModel(
      FIXED_QUERY, FIXED_CANDIDATE, hparams,
      candidate_probability=probability)


def _probability_table():
  # ma in 2 of 4 training examples, mb in 1, mc in 1:
  # p(ma) = 1/2, p(mb) = 1/4; an unknown movie gets 1 / 4.
  return retrieval_trainer.sampling_probability_table(
      {b'ma': 2, b'mb': 1, b'mc': 1})


def test_sampling_probability_table_holds_each_movies_share():
  table = _probability_table()

  values = table.lookup(tf.constant([b'ma', b'mb', b'mc', b'unknown']))

  np.testing.assert_allclose(values.numpy(), [0.5, 0.25, 0.25, 0.25])


def test_in_batch_softmax_loss_of_a_2x2_batch():
  # scores = I / 1; each row: -log(e^1 / (e^1 + e^0)) = log(1 + e^-1)
  # loss (summed over the batch) = 2 log(1 + e^-1) = 0.626523
  loss = _fixed_model(temperature=1.0).compute_loss(_pair_batch())

  assert float(loss) == pytest.approx(2 * math.log(1 + math.exp(-1)))
  assert float(loss) == pytest.approx(0.626523, abs=1e-6)


def test_logq_correction_subtracts_log_probability_after_the_temperature():
  # scores = I / 0.5 = 2 I; columns corrected by -log p: ma +ln 2, mb +ln 4.
  #   row 0 (positive ma): [2 + ln 2, ln 4] -> log(1 + 4 / (2 e^2))
  #                                          = log(1 + 2 e^-2)   = 0.239545
  #   row 1 (positive mb): [ln 2, 2 + ln 4] -> log(1 + 2 / (4 e^2))
  #                                          = log(1 + e^-2 / 2) = 0.065476
  #   loss = 0.305021
  # Without correction: 2 log(1 + e^-2) = 0.253856.
  corrected = _fixed_model(0.5, _probability_table()).compute_loss(
      _pair_batch())
  plain = _fixed_model(0.5).compute_loss(_pair_batch())

  expected = (math.log(1 + 2 * math.exp(-2)) +
              math.log(1 + 0.5 * math.exp(-2)))
  assert float(corrected) == pytest.approx(expected, rel=1e-5)
  assert float(corrected) == pytest.approx(0.305021, abs=1e-5)
  assert float(plain) == pytest.approx(2 * math.log(1 + math.exp(-2)),
                                       rel=1e-5)


def test_logq_correction_is_off_when_the_hparam_says_so():
  model = _fixed_model(0.5, _probability_table(), logq_correction=False)

  # Same as the uncorrected loss above: 2 log(1 + e^-2).
  assert float(model.compute_loss(_pair_batch())) == pytest.approx(
      2 * math.log(1 + math.exp(-2)), rel=1e-5)


def test_the_same_movie_twice_in_a_batch_is_not_a_negative():
  # Both rows rated ma: the other column is the same movie, so it is removed
  # and each row's softmax has only its positive: loss 0 (instead of
  # 2 log(1 + e^-1) with distinct ids).
  loss = _fixed_model(1.0).compute_loss(_pair_batch((b'ma', b'ma')))

  assert float(loss) == pytest.approx(0.0, abs=1e-6)


def test_top_k_accuracy_ranks_the_whole_catalogue():
  # 12 candidates m0..m11 with embeddings [i, 1]; every query is [1, 0], so
  # a query scores candidate i as i and the top 10 are m2..m11.
  # Two queries: the first rated m0 (rank 12: miss at 10, hit at 100), the
  # second m11 (rank 1: hit). top-10 accuracy 1/2, top-100 accuracy 1.
  candidate = _FixedTower(xf(features.MOVIE_ID), [[i, 1.] for i in range(12)])
  query = _FixedTower(xf(features.USER_ID), [[1., 0.], [1., 0.]])
  catalogue = {
      features.MOVIE_ID: tf.constant([f'm{i}' for i in range(12)]),
      xf(features.MOVIE_ID): tf.range(12, dtype=tf.int64)}
  model = retrieval_model.RetrievalModel(
      query, candidate,
      _hparams(temperature=1.0, negatives='in_batch'),
      catalogue=catalogue)
  batch = {xf(features.USER_ID): tf.constant([0, 1], tf.int64),
           xf(features.MOVIE_ID): tf.constant([0, 11], tf.int64),
           features.MOVIE_ID: tf.constant([b'm0', b'm11'])}

  # As in Keras' test_step (eagerly, to skip the slow tracing).
  model.compute_loss(batch, training=False)

  results = {metric.name: float(metric.result()) for metric in model.metrics}
  assert results == {
      'factorized_top_k/top_10_categorical_accuracy': pytest.approx(0.5),
      'factorized_top_k/top_100_categorical_accuracy': pytest.approx(1.0),
  }


def test_training_steps_skip_the_top_k_metrics():
  candidate = _FixedTower(xf(features.MOVIE_ID), [[1., 0.], [0., 1.]])
  catalogue = {
      features.MOVIE_ID: tf.constant([b'ma', b'mb']),
      xf(features.MOVIE_ID): tf.constant([0, 1], tf.int64)}
  model = retrieval_model.RetrievalModel(
      FIXED_QUERY, candidate,
      _hparams(temperature=1.0, negatives='in_batch'),
      catalogue=catalogue)

  model.compute_loss(_pair_batch(), training=True)

  # No update: the accuracy of zero queries is 0.
  assert [float(metric.result()) for metric in model.metrics] == [0.0, 0.0]


# ---------------------------------------------------------------- training


def test_loss_is_finite_and_falls_when_each_user_always_rates_one_movie():
  tf.keras.utils.set_random_seed(0)
  hparams = _hparams(embedding_dim=4, id_embedding_dim=3,
                     feature_embedding_dim=2, hidden_units=5,
                     temperature=0.1, negatives='in_batch')
  query, candidate = retrieval_model.build_towers(VOCAB_SIZES, hparams)
  # Users 0..3 each rate movie (user + 1); the movies are equally popular.
  probability = retrieval_trainer.sampling_probability_table(
      {b'm1': 1, b'm2': 1, b'm3': 1, b'm4': 1})
  model = retrieval_model.RetrievalModel(query, candidate, hparams,
                                         candidate_probability=probability)
  # Eagerly: tracing the train step would cost more than the 30 steps.
  model.compile(optimizer=tf.keras.optimizers.Adam(0.05), run_eagerly=True)
  batch = _batch(users=[0, 1, 2, 3], movies=[1, 2, 3, 4])

  history = model.fit(tf.data.Dataset.from_tensors(batch), epochs=30,
                      verbose=0)

  losses = history.history['loss']
  assert len(losses) == 30
  assert np.all(np.isfinite(losses))
  # Chance level, all 4 in-batch scores equal, is 4 ln 4 = 5.545 (summed over
  # the batch; the uniform -log p = ln 4 shifts every logit alike and cancels
  # in the softmax). Random towers start near it, training ends far below.
  assert losses[0] > 0.5 * 4 * math.log(4)
  assert losses[-1] < 0.1 * 4 * math.log(4)
  assert losses[-1] < 0.25 * losses[0]


# ------------------------------------------------------- catalogue softmax


# Three catalogue movies with embeddings e0, e1 and e0 + e1 (not unit: the
# fixed towers are not normalised); queries e0 and e1.
CATALOGUE = {xf(features.MOVIE_ID): tf.constant([0, 1, 2], tf.int64),
             features.MOVIE_ID: tf.constant([b'ma', b'mb', b'mc'])}
CATALOGUE_CANDIDATE = _FixedTower(xf(features.MOVIE_ID),
                                  [[1., 0.], [0., 1.], [1., 1.]])


def _catalogue_model(temperature=1.0, **kwargs):
  return retrieval_model.RetrievalModel(
      FIXED_QUERY, CATALOGUE_CANDIDATE,
      _hparams(temperature=temperature, negatives='catalogue'),
      catalogue=CATALOGUE, **kwargs)


def test_catalogue_softmax_ranks_the_positive_against_every_movie():
  # Query e0 rated ma: scores over (ma, mb, mc) = (1, 0, 1)
  #   -log(e / (e + 1 + e)) = log(2 + e^-1)        = 0.861995
  # Query e1 rated mc: scores (0, 1, 1)
  #   -log(e / (1 + e + e)) = log(2 + e^-1)        = 0.861995
  # Summed over the batch: 2 log(2 + e^-1)          = 1.723990
  # (In-batch, only the batch's 2 candidates would compete.)
  batch = {xf(features.USER_ID): tf.constant([0, 1], tf.int64),
           features.MOVIE_ID: tf.constant([b'ma', b'mc'])}

  loss = _catalogue_model().compute_loss(batch, training=True)

  assert float(loss) == pytest.approx(2 * math.log(2 + math.exp(-1)))
  assert float(loss) == pytest.approx(1.723990, abs=1e-6)


def test_catalogue_softmax_divides_scores_by_the_temperature():
  # Temperature 0.5 doubles the scores: query e0, positive ma:
  # (2, 0, 2) -> -log(e^2 / (2 e^2 + 1)) = log(2 + e^-2) = 0.758958
  batch = {xf(features.USER_ID): tf.constant([0], tf.int64),
           features.MOVIE_ID: tf.constant([b'ma'])}

  loss = _catalogue_model(temperature=0.5).compute_loss(batch)

  assert float(loss) == pytest.approx(math.log(2 + math.exp(-2)))


def test_catalogue_softmax_skips_movies_outside_the_catalogue():
  # An eval example may rate a movie the training data never had: it adds
  # nothing (rather than an error or a wrong label); the other example's
  # loss is that of the first test, log(2 + e^-1).
  batch = {xf(features.USER_ID): tf.constant([0, 1], tf.int64),
           features.MOVIE_ID: tf.constant([b'ma', b'unseen'])}

  loss = _catalogue_model().compute_loss(batch)

  assert float(loss) == pytest.approx(math.log(2 + math.exp(-1)))


def test_catalogue_model_updates_the_top_k_metrics_in_evaluation_only():
  model = _catalogue_model()
  # Query e1 rated ma, whose score 0 ranks it third of three (top 100 hit).
  batch = {xf(features.USER_ID): tf.constant([1], tf.int64),
           xf(features.MOVIE_ID): tf.constant([0], tf.int64),
           features.MOVIE_ID: tf.constant([b'ma'])}

  model.compute_loss(batch, training=True)
  before = [float(metric.result()) for metric in model.metrics]
  model.compute_loss(batch, training=False)
  after = {metric.name: float(metric.result()) for metric in model.metrics}

  assert before == [0.0, 0.0]
  assert after == {
      'factorized_top_k/top_10_categorical_accuracy': pytest.approx(1.0),
      'factorized_top_k/top_100_categorical_accuracy': pytest.approx(1.0),
  }


def test_catalogue_negatives_need_the_catalogue():
  with pytest.raises(ValueError, match='needs the catalogue'):
    retrieval_model.RetrievalModel(
        FIXED_QUERY, CATALOGUE_CANDIDATE,
        _hparams(negatives='catalogue'))


def test_unknown_kind_of_negatives_is_refused():
  with pytest.raises(ValueError, match="'catalogue' or 'in_batch'"):
    retrieval_model.RetrievalModel(
        FIXED_QUERY, CATALOGUE_CANDIDATE, _hparams(negatives='all'))


def test_catalogue_loss_falls_when_each_user_always_rates_one_movie():
  tf.keras.utils.set_random_seed(0)
  hparams = _hparams(embedding_dim=4, id_embedding_dim=3,
                     feature_embedding_dim=2, hidden_units=5,
                     temperature=0.1, negatives='catalogue')
  query, candidate = retrieval_model.build_towers(VOCAB_SIZES, hparams)
  catalogue_batch = _batch(users=[0, 0, 0, 0, 0], movies=[1, 2, 3, 4, 5])
  catalogue = {k: v for k, v in catalogue_batch.items()
               if k == features.MOVIE_ID or k in (
                   xf(features.MOVIE_ID), xf(features.RELEASE_YEAR_BUCKET),
                   xf(features.GENRES), xf(features.TITLE_TOKENS),
                   xf(features.RELEASE_YEAR))}
  model = retrieval_model.RetrievalModel(query, candidate, hparams,
                                         catalogue=catalogue)
  model.compile(optimizer=tf.keras.optimizers.Adam(0.05), run_eagerly=True)
  batch = _batch(users=[0, 1, 2, 3], movies=[1, 2, 3, 4])

  history = model.fit(tf.data.Dataset.from_tensors(batch), epochs=30,
                      verbose=0)

  losses = history.history['loss']
  assert np.all(np.isfinite(losses))
  # Chance over the 5-movie catalogue is 4 ln 5 = 6.438 (summed over the
  # batch); training ends far below.
  assert losses[0] > 0.5 * 4 * math.log(5)
  assert losses[-1] < 0.1 * 4 * math.log(5)


# ------------------------------------------------------------- user history


def test_history_csr_dedups_and_orders_by_user():
  # Pairs (user, movie): (0,3) (0,1) (2,1) (2,4) (2,4) (0,3); user 5 is out
  # of the 4-row table. Unique, sorted: user 0 -> [1, 3], user 1 -> [],
  # user 2 -> [1, 4], user 3 -> [].
  values, row_splits = retrieval_model.history_csr(
      [0, 0, 2, 2, 2, 0, 5], [3, 1, 1, 4, 4, 3, 2], num_users=4)
  assert values.tolist() == [1, 3, 1, 4]
  assert row_splits.tolist() == [0, 2, 2, 4, 4]


def test_history_csr_keeps_each_users_newest_movies():
  # User 0 rated movies 5, 1, 3, 2 at times 40, 10, 30, 20 and movie 5
  # again at 5 (it counts at its newest, 40); user 1 rated movie 4 at 7.
  # A cap of 2 keeps user 0's two newest movies, 5 and 3; user 1 keeps 4.
  users = [0, 0, 0, 0, 0, 1]
  movies = [5, 1, 3, 2, 5, 4]
  times = [40, 10, 30, 20, 5, 7]
  values, row_splits = retrieval_model.history_csr(
      users, movies, num_users=3, times=times, max_per_user=2)
  assert values.tolist() == [3, 5, 4]
  assert row_splits.tolist() == [0, 2, 3, 3]
  # Had movie 5 counted at its older time (5), movies 3 and 2 would be kept.
  values, _ = retrieval_model.history_csr(users, movies, num_users=3,
                                          times=times, max_per_user=3)
  assert values.tolist() == [2, 3, 5, 4]
  # No cap: every distinct movie; a cap needs the times.
  assert retrieval_model.history_csr(users, movies, 3)[0].tolist() == [
      1, 2, 3, 5, 4]
  with pytest.raises(ValueError, match='times'):
    retrieval_model.history_csr(users, movies, 3, max_per_user=2)


def test_user_history_mean_leaves_the_target_out():
  # History: user 0 rated movies 1 and 3, user 2 rated 1 and 4, user 1
  # nothing; user 7 has no row (OOV).
  layer = retrieval_model.UserHistory([1, 3, 1, 4], [0, 2, 2, 4, 4],
                                      num_movies=5, dim=2)
  users = tf.constant([0, 1, 2, 7, 0], tf.int64)
  # Serving (nothing excluded): user 0 -> mean(E1, E3); user 2 ->
  # mean(E1, E4); users 1 and 7 -> zeros.
  served = layer(users).numpy()
  table = layer.embedding.embeddings.numpy()
  np.testing.assert_allclose(served[0], (table[1] + table[3]) / 2, rtol=1e-6)
  np.testing.assert_allclose(served[2], (table[1] + table[4]) / 2, rtol=1e-6)
  np.testing.assert_array_equal(served[[1, 3]], np.zeros((2, 2)))
  # Training on (0, 1), (1, 0), (2, 4), (7, 0), (0, 2): the example's own
  # movie leaves its user's history; a movie not in it changes nothing.
  trained = layer(users, exclude=tf.constant([1, 0, 4, 0, 2],
                                             tf.int64)).numpy()
  np.testing.assert_allclose(trained[0], table[3], rtol=1e-6)
  np.testing.assert_allclose(trained[2], table[1], rtol=1e-6)
  np.testing.assert_allclose(trained[4], served[0], rtol=1e-6)
  np.testing.assert_array_equal(trained[[1, 3]], np.zeros((2, 2)))


def test_user_history_enters_the_query_tower_and_trains():
  tf.keras.utils.set_random_seed(0)
  hparams = RetrievalHParams(embedding_dim=4, id_embedding_dim=3,
                             feature_embedding_dim=2, hidden_units=5,
                             candidate_bias=False, user_history=True)
  with pytest.raises(ValueError, match='history'):
    retrieval_model.build_towers(VOCAB_SIZES, hparams)
  history = retrieval_model.history_csr([0, 0, 1, 2, 3], [1, 2, 2, 3, 4],
                                        VOCAB_SIZES[features.USER_ID])
  query, _ = retrieval_model.build_towers(VOCAB_SIZES, hparams, history)
  batch = _batch([0, 1, 2, 3], [1, 2, 3, 4])
  served = dict(batch)
  del served[xf(features.MOVIE_ID)]
  # With the movie in the inputs (training), user 1's only history movie is
  # left out; without it (serving), it counts: the embeddings differ.
  assert query(batch).shape == (4, 4)
  assert not np.allclose(query(batch).numpy()[1], query(served).numpy()[1])
  names = [w.name for w in query.trainable_weights]
  assert any('history_emb' in n for n in names)
  assert not any('history_values' in n for n in names)


@pytest.mark.parametrize('user_history', [False, True])
def test_fits_in_graph_mode_as_the_trainer_runs_it(user_history):
  # The trainer's fit traces the train and test steps (no run_eagerly), so
  # anything that only works eagerly fails here, not in a pipeline run.
  tf.keras.utils.set_random_seed(0)
  hparams = RetrievalHParams(embedding_dim=4, id_embedding_dim=3,
                             feature_embedding_dim=2, hidden_units=0,
                             user_history=user_history)
  history = retrieval_model.history_csr([0, 1, 2, 3], [1, 2, 3, 4],
                                        VOCAB_SIZES[features.USER_ID])
  query, candidate = retrieval_model.build_towers(VOCAB_SIZES, hparams,
                                                  history)
  probability = retrieval_trainer.sampling_probability_table(
      {b'm1': 1, b'm2': 1, b'm3': 1, b'm4': 1})
  model = retrieval_model.RetrievalModel(query, candidate, hparams,
                                         candidate_probability=probability)
  model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
  batch = tf.data.Dataset.from_tensors(_batch(users=[0, 1, 2, 3],
                                              movies=[1, 2, 3, 4]))
  fitted = model.fit(batch, validation_data=batch, epochs=3, verbose=0)
  assert np.all(np.isfinite(fitted.history['loss']))
  assert np.all(np.isfinite(fitted.history['val_loss']))


def test_candidate_ids_are_transforms_movie_index_where_the_features_have_it():
  with_index = {features.MOVIE_ID: tf.constant([b'ma', b'mb']),
                xf(features.MOVIE_ID): tf.constant([4, 7], tf.int64)}
  raw_only = {features.MOVIE_ID: tf.constant([b'ma', b'mb'])}

  assert retrieval_model.candidate_ids(with_index).numpy().tolist() == [4, 7]
  assert retrieval_model.candidate_ids(raw_only).numpy().tolist() == [
      b'ma', b'mb']


# Trend: movie ma (index 0) rated on days 0 and 1, mb (index 1) on day 2;
# one 7-day window. At day 2 ma has 2 earlier ratings, mb none; at now
# (day 3) ma 2, mb 1.
DAY = trend.DAY_SECONDS
TREND_TABLE = trend.build_table(np.array([0, 0, 1]),
                                np.array([10, DAY + 10, 2 * DAY + 10]),
                                num_movies=2)


def _trend_model(weight, negatives='in_batch', temperature=1.0):
  model = retrieval_model.RetrievalModel(
      FIXED_QUERY, FIXED_CANDIDATE,
      _hparams(temperature=temperature, negatives=negatives,
               logq_correction=False, trend_windows='7'),
      catalogue={features.MOVIE_ID: tf.constant([b'ma', b'mb']),
                 xf(features.MOVIE_ID): tf.constant([0, 1], tf.int64)},
      trend_table=TREND_TABLE)
  model.trend.weight.assign([weight / model.trend.WEIGHT_SCALE])
  return model


def _timed_pair_batch(day):
  return dict(_pair_batch(),
              **{features.TIMESTAMP: tf.constant([day * DAY + 50] * 2,
                                                 tf.int64)})


@pytest.mark.parametrize('negatives', ['in_batch', 'catalogue'])
def test_trend_term_adds_each_candidates_recent_count_at_the_query_time(
    negatives):
  # Day 2, weight 1: every logit of ma gains log 3, mb's log 1 = 0.
  # Query e0 rated ma: logits (1 + log 3, 0): -log(3e / (3e + 1))
  # Query e1 rated mb: logits (log 3, 1):     -log(e / (3 + e))
  loss = _trend_model(1.0, negatives).compute_loss(_timed_pair_batch(2))

  e = math.e
  assert float(loss) == pytest.approx(
      math.log((3 * e + 1) / (3 * e)) + math.log((3 + e) / e), rel=1e-5)


def test_trend_term_counts_nothing_before_the_first_rating():
  # Day 0: no earlier ratings, so the loss is the plain 2x2 batch's.
  loss = _trend_model(5.0).compute_loss(_timed_pair_batch(0))

  assert float(loss) == pytest.approx(2 * math.log(1 + math.exp(-1)))


def test_top_k_accuracy_ranks_with_the_trend_term():
  # Query e1 rated mb (score 1 against ma's 0); on day 2 with weight 2, ma
  # gains 2 log 3 = 2.2 and ranks first: mb misses the top 1.
  model = _trend_model(2.0)
  model.top_k = retrieval_model.TopKAccuracy(ks=(1,))
  batch = {xf(features.USER_ID): tf.constant([1], tf.int64),
           xf(features.MOVIE_ID): tf.constant([1], tf.int64),
           features.MOVIE_ID: tf.constant([b'mb']),
           features.TIMESTAMP: tf.constant([2 * DAY + 50], tf.int64)}

  model.compute_loss(batch, training=False)

  assert float(model.top_k.accuracy[0].result()) == 0.0


def _served_scores(model):
  """[2, 2] served scores of users 0, 1 against movies ma, mb, and the
  query embeddings' shape."""
  query, candidate = model.serving_towers()
  users = query({xf(features.USER_ID): tf.constant([0, 1], tf.int64)})
  movies = candidate({xf(features.MOVIE_ID): tf.constant([0, 1], tf.int64)})
  return tf.matmul(users, movies, transpose_b=True).numpy(), users.shape


def test_serving_towers_score_temperature_times_the_logit_at_now():
  scores, shape = _served_scores(_trend_model(0.5, temperature=0.1))

  # Now (day 3): ma has 2 ratings, mb 1. Score = q.c + 0.1 * 0.5 log(1+n).
  expected = np.eye(2) + 0.05 * np.log([[3., 2.], [3., 2.]])
  np.testing.assert_allclose(scores, expected, rtol=1e-5)
  assert shape == (2, 3)


def test_trend_windows_need_the_table():
  with pytest.raises(ValueError, match='needs the trend table'):
    retrieval_model.RetrievalModel(
        FIXED_QUERY, FIXED_CANDIDATE, _hparams(trend_windows='7'))


def test_served_towers_add_the_calibration_and_training_ignores_it():
  model = _trend_model(0.5, temperature=0.1)
  loss = float(model.compute_loss(_timed_pair_batch(2)))
  model.trend.calibration.assign([2.0])

  scores, _ = _served_scores(model)

  # Served weight 0.5 + 2: score = q.c + 0.1 * 2.5 log(1 + n at now).
  expected = np.eye(2) + 0.25 * np.log([[3., 2.], [3., 2.]])
  np.testing.assert_allclose(scores, expected, rtol=1e-5)
  assert float(model.compute_loss(_timed_pair_batch(2))) == pytest.approx(
      loss)
  assert model.trend.calibration not in model.trainable_variables
