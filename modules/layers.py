"""Keras layers that both models use: plain TensorFlow, no TFX.

The retrieval towers and the ranking network embed a movie's multivalent
features (genres, title words) the same way; the layer lives here so that
neither model depends on the other.
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import tensorflow as tf  # noqa: E402


class BagOfEmbeddings(tf.keras.layers.Layer):
  """Mean of the embeddings of a SparseTensor of ids; zeros for none.

  Input: SparseTensor [batch, None] of int64 ids. Output: [batch, dim].
  """

  def __init__(self, vocab_size: int, dim: int, **kwargs):
    super().__init__(**kwargs)
    self.vocab_size = vocab_size
    self.dim = dim

  def build(self, input_shape):
    self.embeddings = self.add_weight(
        name='embeddings', shape=(self.vocab_size, self.dim),
        initializer='uniform')
    super().build(input_shape)

  def call(self, ids: tf.SparseTensor) -> tf.Tensor:
    if not isinstance(ids, tf.SparseTensor):
      # Not tf.sparse.from_dense: it drops id 0, a real vocabulary entry.
      ids = tf.RaggedTensor.from_tensor(ids).to_sparse()
    ids = tf.SparseTensor(ids.indices, tf.cast(ids.values, tf.int64),
                          ids.dense_shape)
    return tf.nn.safe_embedding_lookup_sparse(self.embeddings, ids, None,
                                              combiner='mean')
