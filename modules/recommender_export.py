"""The two-stage recommender servable: retrieval, then ranking, in one call.

Plain TensorFlow, no TFX: `RecommenderServable` wraps the retrieval servable
(`modules.retrieval_export`) and the ranking model
(`modules.ranking_trainer`), both loaded SavedModels, into one `tf.Module`.

Serving contract (signature `serving_default`):
  input   user_id       tf.string  [None]
  outputs movie_ids     tf.string  [None, K]   best first (K = 10 default)
          movie_titles  tf.string  [None, K]
          scores        tf.float32 [None, K]   the ranking score, descending
          ratings       tf.float32 [None, K]   the predicted rating, 1-5

Inside: the retrieval servable's top N candidates (N = its K, 100 by
default; the user's rated movies already excluded there) are scored by the
ranking model, and the best K by ranking score are returned. The ranking
score is the ranking model's relevance logit plus `retrieval_weight` times
the retrieval score:

  score = relevance(user, movie) + retrieval_weight * retrieval_score

Why not the predicted rating: ordering candidates by predicted rating makes
the top 10 much worse at predicting what a user watches (on ML-100K, MS
Recommenders protocol, nDCG@10 0.21 against 0.40 for retrieval alone; see
benchmarks/README.md). The relevance head is trained for exactly that; the
retrieval score adds the collaborative signal of the whole catalogue, which
the relevance head, trained on uniform negatives, is weakest at. The
predicted rating is still returned (`ratings`), per movie.

`retrieval_weight` 5: on ML-100K (MS Recommenders protocol) with the
default ranking model, nDCG@10 0.4603 at 5 against 0.4570 at 10 and 0.4267
for the relevance head alone (modules/hparams.py, `relevance_weight`); with
both models refit on train + eval (the pipeline's default), 0.4708 / 0.4760
/ 0.4821 / 0.4821 / 0.4780 at 2 / 3 / 5 / 8 / 12 (seed 42; seed 1: 0.4711
at 5, 0.4734 at 8; benchmarks/README.md); with both refits ensembles of
three (averaged offline from three seed runs), 0.4886 / 0.4934 / 0.4918 at
3 / 5 / 8.

A user with fewer than K candidates left (or an unknown user, answered
through both models' out-of-vocabulary paths) gets blank ids and -inf
scores in the unfilled slots.
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

from typing import Dict  # noqa: E402

import tensorflow as tf  # noqa: E402

from modules import keras_tracing  # noqa: E402

DEFAULT_TOP_K = 10
DEFAULT_RETRIEVAL_WEIGHT = 5.0


class RecommenderServable(tf.Module):
  """Retrieval top N -> ranking -> top K."""

  def __init__(self, retrieval, ranking, top_k: int = DEFAULT_TOP_K,
               retrieval_weight: float = DEFAULT_RETRIEVAL_WEIGHT):
    """Builds the servable.

    Args:
      retrieval: the loaded retrieval servable (`serving_default`).
      ranking: the loaded ranking model (`score_pairs`).
      top_k: K, movies returned per user (at most the retrieval's N).
      retrieval_weight: weight of the retrieval score in the ranking score.
    """
    super().__init__()
    if top_k < 1:
      raise ValueError(f'top_k must be at least 1, got {top_k}')
    self.retrieval = retrieval
    self.ranking = ranking
    self._retrieve = retrieval.signatures['serving_default']
    self._score = ranking.signatures['score_pairs']
    self._k = int(top_k)
    self._weight = float(retrieval_weight)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                               name='user_id')])
  def recommend(self, user_id):
    candidates = self._retrieve(user_id=user_id)
    movie_ids = candidates['movie_ids']  # [batch, N]
    batch, n = tf.shape(movie_ids)[0], tf.shape(movie_ids)[1]
    pairs = self._score(
        user_id=tf.reshape(tf.repeat(user_id[:, None], n, axis=1), [-1]),
        movie_id=tf.reshape(movie_ids, [-1]))
    relevance = tf.reshape(pairs['relevance'], [batch, n])
    ratings = tf.reshape(pairs['rating'], [batch, n])
    valid = movie_ids != ''
    retrieval_scores = tf.where(valid, candidates['scores'], 0.0)
    scores = tf.where(valid, relevance + self._weight * retrieval_scores,
                      float('-inf'))
    k = tf.minimum(self._k, n)
    top_scores, top = tf.math.top_k(scores, k=k)
    filled = top_scores > float('-inf')
    return {
        'movie_ids': tf.where(filled, tf.gather(movie_ids, top, batch_dims=1),
                              ''),
        'movie_titles': tf.where(
            filled, tf.gather(candidates['movie_titles'], top, batch_dims=1),
            ''),
        'scores': top_scores,
        'ratings': tf.where(filled, tf.gather(ratings, top, batch_dims=1),
                            0.0),
    }

  def signatures(self) -> Dict[str, tf.types.experimental.ConcreteFunction]:
    return {'serving_default': self.recommend.get_concrete_function()}


def save(servable: RecommenderServable, export_dir: str) -> None:
  """Saves after one call (the wrapped models' tables traced)."""
  servable.recommend(tf.constant(['']))
  keras_tracing.save(servable, export_dir, signatures=servable.signatures())
