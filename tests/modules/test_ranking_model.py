"""The ranking model from literal Transform-output tensors: both heads'
shapes and ranges, DCN vs MLP structure, the rating loss on a hand case,
relevance negatives drawn from the catalogue, and a short fit."""

import math

import numpy as np
import pytest
import tensorflow as tf

from modules import features, ranking_model, trend
from modules.hparams import RankingHParams
from tests.modules.test_retrieval_model import VOCAB_SIZES, _batch

pytestmark = pytest.mark.unit

xf = features.transformed_name

# relevance_weight 1: on a fixed batch, the relevance loss over freshly drawn
# negatives cannot fall as the rating loss does.
SMALL = dict(id_embedding_dim=3, feature_embedding_dim=2, cross_layers=1,
             hidden_units='6,4', relevance_weight=1.0)


def _catalogue(movies=(1, 2, 3, 4, 5)):
  batch = _batch(users=[0] * len(movies), movies=list(movies))
  return {k: (tf.RaggedTensor.from_sparse(v)
              if isinstance(v, tf.SparseTensor) else v)
          for k, v in batch.items() if k in ranking_model.MOVIE_INPUTS}


def _model(**overrides):
  hparams = RankingHParams(**dict(SMALL, **overrides))
  return ranking_model.RankingModel(VOCAB_SIZES, hparams,
                                    catalogue=_catalogue(),
                                    catalogue_counts=[5, 1, 1, 1, 1])


def _rated(batch, ratings):
  return dict(batch, **{xf(features.RATING): tf.constant(ratings,
                                                         tf.float32)})


def test_heads_give_one_rating_in_range_and_one_logit_per_pair():
  tf.keras.utils.set_random_seed(0)
  outputs = _model()(_batch(users=[0, 1, 2], movies=[1, 2, 3]))

  assert set(outputs) == {'rating', 'relevance'}
  assert outputs['rating'].shape == (3,) and outputs['relevance'].shape == (3,)
  rating = outputs['rating'].numpy()
  assert ((rating >= 1) & (rating <= 5)).all()


def test_ranking_ensemble_outputs_are_the_members_means():
  batch = _batch(users=[0, 1, 2], movies=[1, 2, 3])
  members = []
  for seed in (0, 1):
    tf.keras.utils.set_random_seed(seed)
    members.append(_model())
  outputs = [m(batch) for m in members]

  ensemble = ranking_model.RankingEnsemble(members)(batch)

  assert set(ensemble) == {'rating', 'relevance'}
  for key in ('rating', 'relevance'):
    np.testing.assert_allclose(
        ensemble[key].numpy(),
        (outputs[0][key].numpy() + outputs[1][key].numpy()) / 2, rtol=1e-6)
    assert not np.allclose(outputs[0][key], outputs[1][key])
  with pytest.raises(ValueError, match='at least one model'):
    ranking_model.RankingEnsemble([])


def test_dcn_has_cross_layers_and_mlp_has_none():
  assert len(_model(architecture='dcn', cross_layers=2).cross) == 2
  assert _model(architecture='mlp', cross_layers=2).cross == []


def test_unknown_architecture_and_sampling_are_refused():
  with pytest.raises(ValueError, match="'dcn' or 'mlp'"):
    _model(architecture='wide')
  with pytest.raises(ValueError, match="'uniform' or 'popularity'"):
    _model(relevance_negatives_by='random')


def test_relevance_task_needs_the_catalogue():
  with pytest.raises(ValueError, match='needs the catalogue'):
    ranking_model.RankingModel(VOCAB_SIZES, RankingHParams(**SMALL))


def test_rating_only_loss_is_the_mean_squared_error():
  tf.keras.utils.set_random_seed(0)
  model = ranking_model.RankingModel(
      VOCAB_SIZES, RankingHParams(**dict(SMALL, relevance_weight=0.0)))
  batch = _rated(_batch(users=[0, 1], movies=[1, 2]), [4.0, 2.0])
  predicted = model(batch)['rating'].numpy()

  loss = float(model.compute_loss(batch))

  # MSE = ((4 - p0)^2 + (2 - p1)^2) / 2, from the model's own predictions.
  expected = ((4 - predicted[0]) ** 2 + (2 - predicted[1]) ** 2) / 2
  assert loss == pytest.approx(expected, rel=1e-5)


def test_negatives_keep_the_user_and_swap_in_catalogue_movies():
  tf.keras.utils.set_random_seed(0)
  model = _model(relevance_negatives=3)
  batch = _batch(users=[0, 1], movies=[1, 2])

  negatives = model._negatives(batch)  # pylint: disable=protected-access

  # 2 rows x 3 negatives, users repeated in order, movies from the
  # catalogue (ids 1..5) with their own features.
  users = negatives[xf(features.USER_ID)].numpy().tolist()
  assert users == [0, 1, 0, 1, 0, 1]
  movies = negatives[xf(features.MOVIE_ID)].numpy()
  assert set(movies) <= {1, 2, 3, 4, 5}
  years = negatives[xf(features.RELEASE_YEAR_BUCKET)].numpy()
  np.testing.assert_array_equal(years, movies % 11)
  assert isinstance(negatives[xf(features.GENRES)], tf.SparseTensor)
  assert negatives[xf(features.GENRES)].dense_shape[0] == 6


def test_popularity_negatives_follow_the_rating_counts():
  tf.keras.utils.set_random_seed(0)
  # Movie 1 has 5 of the 9 ratings: about 5/9 of the negatives.
  model = _model(relevance_negatives=1000,
                 relevance_negatives_by='popularity')
  movies = model._negatives(_batch(users=[0], movies=[1]))[  # pylint: disable=protected-access
      xf(features.MOVIE_ID)].numpy()

  assert np.mean(movies == 1) == pytest.approx(5 / 9, abs=0.05)


@pytest.mark.parametrize('architecture', ['mlp', 'dcn'])
def test_loss_is_finite_and_falls_on_a_fixed_batch(architecture):
  tf.keras.utils.set_random_seed(1)
  model = _model(relevance_negatives=2, architecture=architecture,
                 hidden_units='16,8')
  model.compile(optimizer=tf.keras.optimizers.Adam(0.05), run_eagerly=True)
  batch = _rated(_batch(users=[0, 1, 2, 3], movies=[1, 2, 3, 4]),
                 [5.0, 1.0, 4.0, 2.0])

  history = model.fit(tf.data.Dataset.from_tensors(batch), epochs=40,
                      verbose=0)

  losses = history.history['loss']
  assert np.all(np.isfinite(losses))
  assert losses[-1] < 0.3 * losses[0]
  # The rating head learned the four ratings.
  np.testing.assert_allclose(model(batch)['rating'].numpy(),
                             [5.0, 1.0, 4.0, 2.0], atol=0.5)
  assert history.history['rmse'][-1] < 0.5
  assert math.isfinite(history.history['relevance_auc'][-1])


@pytest.mark.parametrize('architecture', ['mlp', 'dcn'])
def test_fits_in_graph_mode_as_the_trainer_runs_it(architecture):
  # The trainer's fit traces the steps (no run_eagerly), with tf_keras left
  # unconverted (modules/keras_tracing.py): what needs conversion fails here.
  tf.keras.utils.set_random_seed(0)
  model = _model(relevance_negatives=2, architecture=architecture,
                 hidden_units='16,8')
  model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
  batch = tf.data.Dataset.from_tensors(_rated(
      _batch(users=[0, 1, 2, 3], movies=[1, 2, 3, 4]), [5.0, 1.0, 4.0, 2.0]))
  history = model.fit(batch, validation_data=batch, epochs=20, verbose=0)
  assert history.history['loss'][-1] < 0.5 * history.history['loss'][0]
  assert np.isfinite(history.history['val_rmse'][-1])


def _set_literal_rating_parts(model, head_bias=0.5):
  """Rating head constant (zero kernel, bias `head_bias`); user 0's bias
  0.25, movie 1's -0.5; user 0's id embedding [1, 2, 0], movie 1's
  [0.5, 0.25, 4]: dot product 1.0."""
  head = model.rating_head
  head.set_weights([np.zeros_like(head.kernel.numpy()),
                    np.full([1], head_bias, np.float32)])
  for key, row, value in ((features.USER_ID, 0, [1.0, 2.0, 0.0]),
                          (features.MOVIE_ID, 1, [0.5, 0.25, 4.0])):
    table = model.embedding.ids[key].embeddings
    table.assign(tf.tensor_scatter_nd_update(table, [[row]], [value]))
  for key, row, value in ((features.USER_ID, 0, 0.25),
                          (features.MOVIE_ID, 1, -0.5)):
    if key in model.rating_biases:
      table = model.rating_biases[key].embeddings
      table.assign(tf.tensor_scatter_nd_update(table, [[row, 0]], [value]))


@pytest.mark.parametrize('biases,dot,expected', [
    (True, True, 3.0 + 0.5 + 0.25 - 0.5 + 1.0),
    (True, False, 3.0 + 0.5 + 0.25 - 0.5),
    (False, True, 3.0 + 0.5 + 1.0),
    (False, False, 3.0 + 0.5)])
def test_rating_is_offset_plus_network_plus_biases_plus_dot(biases, dot,
                                                            expected):
  tf.keras.utils.set_random_seed(0)
  model = _model(rating_biases=biases, rating_dot=dot, dropout=0.0)
  batch = _batch(users=[0], movies=[1])
  model(batch)  # Builds the weights.
  _set_literal_rating_parts(model)

  assert float(model(batch)['rating'][0]) == pytest.approx(expected, abs=1e-6)
  assert bool(model.rating_biases) == biases


def test_rating_with_biases_and_dot_is_clipped_to_the_scale():
  model = _model(rating_biases=True, rating_dot=True, dropout=0.0)
  batch = _batch(users=[0], movies=[1])
  model(batch)
  _set_literal_rating_parts(model, head_bias=10.0)
  assert float(model(batch)['rating'][0]) == ranking_model.MAX_RATING


def test_biases_start_at_zero():
  model = _model(rating_biases=True)
  model(_batch(users=[0, 1], movies=[1, 2]))
  for layer in model.rating_biases.values():
    assert not layer.embeddings.numpy().any()


def test_id_l2_penalises_id_embeddings_and_biases_in_the_losses():
  model = _model(rating_biases=True, id_l2=0.003)
  model(_batch(users=[0, 1], movies=[1, 2]))
  tables = [model.embedding.ids[k].embeddings
            for k in (features.USER_ID, features.MOVIE_ID)]
  tables += [model.rating_biases[k].embeddings
             for k in (features.USER_ID, features.MOVIE_ID)]
  # Biases are zero at first: give them values so that they count.
  tables[2].assign(tf.fill(tables[2].shape, 0.5))  # 5 users: 5 * 0.25
  expected = 0.003 * sum(float(tf.reduce_sum(t ** 2)) for t in tables)

  assert len(model.losses) == 4
  assert float(tf.add_n(model.losses)) == pytest.approx(expected, rel=1e-5)
  assert expected > 0.003 * 5 * 0.25


def test_no_regularisation_losses_without_id_l2():
  model = _model(rating_biases=True, id_l2=0.0)
  model(_batch(users=[0, 1], movies=[1, 2]))
  assert model.losses == []


def test_train_step_adds_the_regularisation_to_the_loss():
  tf.keras.utils.set_random_seed(0)
  model = _model(relevance_weight=0.0, id_l2=0.5, dropout=0.0)
  model.compile(optimizer=tf.keras.optimizers.SGD(0.0), run_eagerly=True)
  batch = _rated(_batch(users=[0, 1], movies=[1, 2]), [4.0, 2.0])
  model(batch)
  task = float(model.compute_loss(batch))
  penalty = float(tf.add_n(model.losses))

  # One step with a zero learning rate: the logged losses are that batch's.
  logs = model.fit(tf.data.Dataset.from_tensors(batch), epochs=1,
                   verbose=0).history

  assert penalty > 0
  assert logs['regularization_loss'][0] == pytest.approx(penalty, rel=1e-5)
  assert logs['total_loss'][0] == pytest.approx(task + penalty, rel=1e-5)


def test_id_l2_on_rows_penalises_the_looked_up_rows_and_keeps_grads_sparse():
  model = ranking_model.RankingModel(
      VOCAB_SIZES, RankingHParams(**dict(
          SMALL, rating_biases=True, relevance_weight=0.0, dropout=0.0,
          id_l2=0.003, id_l2_per_rating=0.5)),
      catalogue=_catalogue(), catalogue_counts=[5, 1, 1, 1, 1],
      id_l2_on_rows=True)
  batch = _rated(_batch(users=[0, 1], movies=[1, 1]), [4.0, 2.0])
  model(batch)
  assert model.losses == []  # No whole-table regularizer.
  user_table = model.embedding.ids[features.USER_ID].embeddings
  movie_table = model.embedding.ids[features.MOVIE_ID].embeddings
  user_table.assign(tf.zeros_like(user_table))
  movie_table.assign(tf.zeros_like(movie_table))
  user_table[0, 0].assign(1.0)  # |user 0|^2 = 1
  movie_table[1, :2].assign([2.0, 1.0])  # |movie 1|^2 = 5
  model.rating_biases[features.USER_ID].embeddings[1, 0].assign(3.0)  # 9
  # Rows (0, 1): 1 + 5; (1, 1): 5 + 9; mean 10; weight 0.5.
  np.testing.assert_allclose(model.id_penalty(batch).numpy(), [6.0, 14.0])
  task = float(model.rating_task(
      labels=batch[xf(features.RATING)],
      predictions=model(batch)['rating']))
  assert float(model.compute_loss(batch)) == pytest.approx(task + 5.0,
                                                           rel=1e-5)
  with tf.GradientTape() as tape:
    loss = model.compute_loss(batch)
  grad = tape.gradient(loss, user_table)
  assert isinstance(grad, tf.IndexedSlices)
  assert set(grad.indices.numpy().tolist()) == {0, 1}


def test_context_features_are_embedded_only_when_asked():
  batch = _batch(users=[0, 1], movies=[1, 2])
  with_context = ranking_model.FeatureEmbedding(
      VOCAB_SIZES, RankingHParams(**dict(SMALL, context_features=True)))
  without = ranking_model.FeatureEmbedding(
      VOCAB_SIZES, RankingHParams(**dict(SMALL, context_features=False)))

  # Hour of day and day of week, feature_embedding_dim 2 each (the batch
  # has no timestamp).
  assert with_context(batch).shape[1] - without(batch).shape[1] == 4
  assert features.HOUR_OF_DAY not in without.embeddings
  assert features.HOUR_OF_DAY in with_context.embeddings


def test_rating_is_clipped_to_the_given_scale():
  batch = _batch(users=[0], movies=[1])
  default = _model(rating_biases=True, rating_dot=True, dropout=0.0)
  default(batch)
  _set_literal_rating_parts(default, head_bias=-10.0)
  assert float(default(batch)['rating'][0]) == 1.0
  # ml-20m/25m: half stars from 0.5.
  half_stars = ranking_model.RankingModel(
      VOCAB_SIZES, RankingHParams(**dict(SMALL, rating_biases=True,
                                         rating_dot=True, dropout=0.0)),
      catalogue=_catalogue(), catalogue_counts=[5, 1, 1, 1, 1],
      rating_range=(0.5, 5.0))
  half_stars(batch)
  _set_literal_rating_parts(half_stars, head_bias=-10.0)
  assert float(half_stars(batch)['rating'][0]) == 0.5
  with pytest.raises(ValueError, match='rating_range'):
    ranking_model.RankingModel(VOCAB_SIZES, RankingHParams(**SMALL),
                               catalogue=_catalogue(), rating_range=(5, 1))


def test_trainer_takes_the_rating_scale_from_the_schema():
  import types  # pylint: disable=g-import-not-at-top
  from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
  from tensorflow_metadata.proto.v0 import schema_pb2  # pylint: disable=g-import-not-at-top
  from modules import ranking_trainer  # pylint: disable=g-import-not-at-top

  def output(schema_text):
    schema = text_format.Parse(schema_text, schema_pb2.Schema())
    return types.SimpleNamespace(
        raw_metadata=types.SimpleNamespace(schema=schema))

  assert ranking_trainer.rating_range(output(
      'feature { name: "rating" type: FLOAT '
      'float_domain { min: 0.5 max: 5.0 } }')) == (0.5, 5.0)
  assert ranking_trainer.rating_range(output(
      'feature { name: "rating" type: FLOAT }')) == (1.0, 5.0)


@pytest.mark.parametrize('architecture', ['mlp', 'dcn'])
def test_negatives_relevance_from_shared_user_parts_equals_the_full_forward_pass(
    architecture):
  # The loss scores negatives from the rating's user part (tiled); the
  # logits must be those of the model called on the full negative rows.
  model = _model(relevance_negatives=3, architecture=architecture,
                 hidden_units='16,8')
  batch = _batch(users=[0, 1], movies=[1, 2])
  model(batch)
  user = model.embedding.user_side(batch)

  tf.keras.utils.set_random_seed(5)
  shared = model.negative_relevance(batch, user).numpy()
  tf.keras.utils.set_random_seed(5)
  full = model(model._negatives(batch))['relevance'].numpy()  # pylint: disable=protected-access

  assert shared.shape == (6,)
  np.testing.assert_allclose(shared, full, rtol=1e-5, atol=1e-6)


def test_the_mlp_first_layer_is_a_dense_layer_over_user_then_movie_parts():
  # PairDense with a hand-set kernel: user part [1, 2] and movie part [3]
  # against kernel rows [1, 0], [0, 1], [1, 1] (bias 0, no activation):
  # [1, 2, 3] @ K = [1 + 3, 2 + 3] = [4, 5]; two movies per user tile it.
  layer = ranking_model.PairDense(2)
  layer.build(((None, 2), (None, 1)))
  layer.kernel.assign([[1., 0.], [0., 1.], [1., 1.]])

  out = layer((tf.constant([[1., 2.]]), tf.constant([[3.], [0.]])),
              repeats=2)

  np.testing.assert_allclose(out.numpy(), [[4., 5.], [1., 2.]])


DAY = 86400


def _trend_model(**overrides):
  """Movies 1 and 2 rated on days 0, 1, 1 (movie 1) and 1 (movie 2)."""
  table = trend.build_table(np.array([1, 1, 1, 2]),
                            np.array([0, DAY, DAY + 5, DAY + 9]) + 100 * DAY,
                            num_movies=VOCAB_SIZES[features.MOVIE_ID])
  hparams = RankingHParams(**dict(SMALL, trend_windows='1,7', **overrides))
  return ranking_model.RankingModel(VOCAB_SIZES, hparams,
                                    catalogue=_catalogue(),
                                    catalogue_counts=[5, 1, 1, 1, 1],
                                    trend_table=table)


def test_the_movie_part_ends_with_its_recent_popularity_at_the_row_time():
  model = _trend_model()
  batch = _batch(users=[0, 0, 0], movies=[1, 1, 2])
  plain = model.embedding.movie_side(batch).numpy()
  timed = dict(batch, timestamp=tf.constant([100, 101, 101], tf.int64) * DAY)

  movie = model.embedding.movie_side(timed).numpy()

  # [1-day, 7-day] log(1 + count): day 100 sees nothing; day 101 sees
  # movie 1's day-100 rating, not its own day's; without a time, now (day
  # 102): movie 1's three, movie 2's one.
  np.testing.assert_allclose(np.expm1(movie[:, -2:]),
                             [[0, 0], [1, 1], [0, 0]], atol=1e-5)
  np.testing.assert_allclose(np.expm1(plain[:, -2:]),
                             [[2, 3], [2, 3], [1, 1]], atol=1e-5)
  assert model.embedding.movie_side(
      _batch(users=[0], movies=[1])).shape[1] == movie.shape[1]


def test_negatives_take_their_recent_popularity_at_their_rating_time():
  model = _trend_model(relevance_negatives=2)
  batch = dict(_batch(users=[0, 1], movies=[1, 2]),
               timestamp=tf.constant([100 * DAY, 102 * DAY], tf.int64))
  model(batch)
  user = model.embedding.user_side(batch)

  tf.keras.utils.set_random_seed(5)
  negatives = model._negatives(batch)  # pylint: disable=protected-access
  tf.keras.utils.set_random_seed(5)
  shared = model.negative_relevance(batch, user).numpy()

  assert negatives['timestamp'].numpy().tolist() == [100 * DAY, 102 * DAY] * 2
  np.testing.assert_allclose(shared, model(negatives)['relevance'].numpy(),
                             rtol=1e-5, atol=1e-6)


def test_trend_windows_need_the_table():
  with pytest.raises(ValueError, match='needs the trend table'):
    ranking_model.RankingModel(
        VOCAB_SIZES, RankingHParams(**dict(SMALL, trend_windows='7')),
        catalogue=_catalogue(), catalogue_counts=[5, 1, 1, 1, 1])
