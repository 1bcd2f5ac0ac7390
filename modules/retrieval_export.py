"""The retrieval servable: trained towers + an index over the whole catalogue.

Plain TensorFlow, no TFX: `build_servable` takes the Trainer's towers
SavedModel (see `modules.retrieval_trainer`), the catalogue and the users'
training history, and returns a `tf.Module` to save for TF Serving.

Serving contract (signature `serving_default`):
  input   user_id       tf.string  [None]
  outputs movie_ids     tf.string  [None, K]   best first
          movie_titles  tf.string  [None, K]
          scores        tf.float32 [None, K]   dot products, descending
The user's features (age, gender, occupation, zip code and the time of their
latest rating, for the time context) are looked up from the training data;
an unknown user id gets the out-of-vocabulary path with default features, so
it is answered, never an error. Every movie the user rated in the data the
pipeline ingested (train and eval splits) is excluded, unless built with
`exclude_seen=False`.

Signature `serving_examples`: input `examples`, serialized tf.Examples
[None] with at least `user_id` (and any of age, gender, occupation,
zip_code, timestamp, which then override the stored features: a new user's
demographics give a real cold-start answer); same outputs.

Signature `evaluation`: as `serving_default`, but excludes only the movies
of the train split, whatever `exclude_seen` says: the eval split's movies are
what the RetrievalEvaluator measures, so they must stay rankable.

Why not TFRS' BruteForce layer: its `query_with_exclusions` needs the
exclusion width known when tracing and at most `num_candidates - k`
exclusions, which fails for heavy raters and small catalogues. The index
here is the same brute-force dot product with a mask of seen movies, then
`tf.math.top_k`.

Built with `index='scann'`, the servable searches an approximate ScaNN
index instead (`modules.retrieval_index`): same signatures and outputs,
scores still dot products, but loading it needs ScaNN's custom ops
(`import scann` in Python; a TF Serving build linked with them).
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

from typing import Dict, List, Mapping, Optional, Sequence, Tuple  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from modules import features, keras_tracing, retrieval_index  # noqa: E402

QUERY_FEATURES = (features.AGE, features.GENDER, features.OCCUPATION,
                  features.ZIP_CODE, features.TIMESTAMP)
_EXCLUDED_SCORE = -1e9


def _feature(values, dtype) -> tf.train.Feature:
  if dtype == tf.string:
    return tf.train.Feature(bytes_list=tf.train.BytesList(
        value=[v if isinstance(v, bytes) else str(v).encode() for v in values]))
  return tf.train.Feature(int64_list=tf.train.Int64List(
      value=[int(v) for v in values]))


def user_example(user_id: bytes, user_features: Mapping[str, object]
                ) -> bytes:
  """A serialized query Example: the user id and their stored features."""
  feature = {features.USER_ID: _feature([user_id], tf.string)}
  for key in QUERY_FEATURES:
    if user_features.get(key) is not None:
      dtype = tf.int64 if key in (features.AGE, features.TIMESTAMP) else (
          tf.string)
      feature[key] = _feature([user_features[key]], dtype)
  return tf.train.Example(features=tf.train.Features(
      feature=feature)).SerializeToString()


class RetrievalServable(tf.Module):
  """Query tower + seen-movie exclusion + top-K over the movies (brute
  force, or a ScaNN index)."""

  def __init__(self, towers, movie_ids: Sequence[bytes],
               movie_titles: Sequence[bytes], movie_embeddings: np.ndarray,
               user_ids: Sequence[bytes], user_examples: Sequence[bytes],
               train_movies: Sequence[Sequence[int]],
               other_movies: Sequence[Sequence[int]], top_k: int,
               exclude_seen: bool = True,
               index: str = retrieval_index.BRUTE_FORCE):
    """Builds the servable.

    Args:
      towers: the loaded Trainer SavedModel (with `query_embedding`).
      movie_ids / movie_titles: the catalogue, N movies.
      movie_embeddings: [N, D] candidate embeddings, row i for movie_ids[i].
      user_ids: the U known users.
      user_examples: U serialized query Examples (see `user_example`).
      train_movies: U lists of catalogue rows each user rated in train.
      other_movies: U lists of catalogue rows each user rated elsewhere
        (the eval split), excluded when serving but not in `evaluation`.
      top_k: K; capped at N.
      exclude_seen: drop each user's seen movies from the answer.
      index: 'brute_force' (exact) or 'scann' (approximate; needs ScaNN,
        see `modules.retrieval_index`).

    Raises:
      ValueError: an unknown index.
      ImportError: 'scann' without ScaNN installed (says what to install).
    """
    super().__init__()
    self.towers = towers
    num_movies = len(movie_ids)
    self._k = min(int(top_k), num_movies)
    self._exclude_seen = exclude_seen
    self._index = retrieval_index.check_index(index)
    self.movie_ids = tf.constant(list(movie_ids), tf.string)
    self.movie_titles = tf.constant(list(movie_titles), tf.string)
    if self._index == retrieval_index.SCANN:
      self.scann_index = retrieval_index.ScannIndex(movie_embeddings,
                                                    self._k)
    else:
      self.movie_embeddings = tf.Variable(
          tf.constant(movie_embeddings, tf.float32), trainable=False,
          name='movie_embeddings')
    # Row U of the user arrays is the unknown user: no id, no history.
    self.user_rows = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(user_ids), tf.string),
            tf.range(len(user_ids), dtype=tf.int64)),
        default_value=len(user_ids))
    self.user_examples = tf.constant(
        list(user_examples) + [user_example(b'', {})], tf.string)
    self.train_seen = _ragged_rows(train_movies)
    self.all_seen = _ragged_rows(
        [sorted(set(a) | set(b)) for a, b in zip(train_movies, other_movies)])
    self._query_fn = towers.signatures['query_embedding']
    # A known user's query is fixed (their stored features, history and
    # latest time), so it is embedded once here, not at every request: a
    # request by user id is a row lookup plus the top K.
    self.user_embeddings = tf.Variable(
        embed_examples(self._query_fn, self.user_examples.numpy().tolist()),
        trainable=False, name='user_embeddings')

  def _top_k(self, user_id: tf.Tensor, query: tf.Tensor,
             exclusions: Optional[tf.RaggedTensor]) -> Dict[str, tf.Tensor]:
    """The top K for `query` ([batch, D] embeddings of `user_id`'s users)."""
    rows = self.user_rows.lookup(user_id)
    seen = None if exclusions is None else tf.gather(exclusions, rows)
    if self._index == retrieval_index.SCANN:
      top_scores, top_rows = self.scann_index.top_k(query, seen,
                                                    _EXCLUDED_SCORE)
    else:
      top_scores, top_rows = self._brute_force_top_k(query, seen)
    # A user who has seen almost everything can have excluded movies left
    # in the top K: blank them rather than recommend them.
    valid = top_scores > _EXCLUDED_SCORE / 2
    return {
        'movie_ids': tf.where(valid, tf.gather(self.movie_ids, top_rows), ''),
        'movie_titles': tf.where(valid, tf.gather(self.movie_titles,
                                                  top_rows), ''),
        'scores': tf.where(valid, top_scores, float('-inf')),
    }

  def _brute_force_top_k(self, query: tf.Tensor,
                         seen: Optional[tf.RaggedTensor]
                        ) -> Tuple[tf.Tensor, tf.Tensor]:
    """Scores [batch, K] and catalogue rows [batch, K] of the best movies;
    `seen` ([batch, None] movie rows) get _EXCLUDED_SCORE."""
    scores = tf.matmul(query, self.movie_embeddings, transpose_b=True)
    if seen is not None:
      index = tf.stack([seen.value_rowids(), seen.flat_values], axis=1)
      scores = tf.tensor_scatter_nd_update(
          scores, index,
          tf.fill([tf.shape(index)[0]], tf.constant(_EXCLUDED_SCORE)))
    return tf.math.top_k(scores, k=self._k)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                               name='user_id')])
  def serve_user_ids(self, user_id):
    rows = self.user_rows.lookup(user_id)
    return self._top_k(user_id, tf.gather(self.user_embeddings, rows),
                       self.all_seen if self._exclude_seen else None)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                               name='user_id')])
  def evaluate_user_ids(self, user_id):
    rows = self.user_rows.lookup(user_id)
    return self._top_k(user_id, tf.gather(self.user_embeddings, rows),
                       self.train_seen)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                               name='examples')])
  def serve_examples(self, examples):
    parsed = tf.io.parse_example(examples, {
        features.USER_ID: tf.io.FixedLenFeature([], tf.string,
                                                default_value='')})
    user_id = parsed[features.USER_ID]
    stored = tf.gather(self.user_examples, self.user_rows.lookup(user_id))
    # Features in the given Example override the stored ones: parsing the
    # concatenation of two serialized Examples keeps the last value.
    query = self._query_fn(
        examples=tf.strings.join([stored, examples]))['embedding']
    return self._top_k(user_id, query,
                       self.all_seen if self._exclude_seen else None)

  def signatures(self) -> Dict[str, tf.types.experimental.ConcreteFunction]:
    return {
        'serving_default': self.serve_user_ids.get_concrete_function(),
        'serving_examples': self.serve_examples.get_concrete_function(),
        'evaluation': self.evaluate_user_ids.get_concrete_function(),
    }


def _ragged_rows(rows: Sequence[Sequence[int]]) -> tf.RaggedTensor:
  """[U + 1, None] int64 rows, ascending (the ScaNN index looks them up by
  binary search); the extra last row (unknown user) is empty."""
  return tf.RaggedTensor.from_row_lengths(
      tf.constant([m for ms in rows for m in sorted(ms)], tf.int64),
      tf.constant([len(ms) for ms in rows] + [0], tf.int64))


def embed_examples(embed, examples: List[bytes],
                   batch_size: int = 1024) -> np.ndarray:
  """[N, D] embeddings of serialized Examples by a tower's signature."""
  parts = [embed(examples=tf.constant(examples[i:i + batch_size]))
           ['embedding'].numpy()
           for i in range(0, len(examples), batch_size)]
  return np.concatenate(parts, axis=0)


def embed_catalogue(towers, movie_examples: List[bytes],
                    batch_size: int = 1024) -> np.ndarray:
  """[N, D] candidate embeddings of serialized movie Examples."""
  return embed_examples(towers.signatures['candidate_embedding'],
                        movie_examples, batch_size)


def save(servable: RetrievalServable, export_dir: str) -> None:
  """Saves with both signatures, after one call (tables and top-k traced)."""
  servable.serve_user_ids(tf.constant(['']))
  keras_tracing.save(servable, export_dir, signatures=servable.signatures())
