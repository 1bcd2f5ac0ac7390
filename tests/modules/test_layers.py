"""The layers both models use, from literal tensors: the bag-of-embeddings
mean on hand cases."""

import numpy as np
import pytest
import tensorflow as tf

from modules import layers

pytestmark = pytest.mark.unit


def _sparse(rows):
  """int64 SparseTensor [len(rows), longest row] from lists of ids."""
  return tf.RaggedTensor.from_row_lengths(
      tf.constant([i for row in rows for i in row], tf.int64),
      [len(row) for row in rows]).to_sparse()


def test_bag_of_embeddings_is_the_mean_of_its_rows_and_zero_when_empty():
  bag = layers.BagOfEmbeddings(vocab_size=4, dim=2)
  bag(_sparse([[0]]))  # builds the weights
  bag.set_weights([np.array([[1., 0.], [0., 2.], [3., 3.], [-1., 5.]])])

  result = bag(_sparse([[0, 2], [], [3], [1, 1, 2]]))

  # [0, 2]:    ((1 + 3) / 2, (0 + 3) / 2)          = (2, 1.5)
  # []:        no ids                              = (0, 0)
  # [3]:                                           = (-1, 5)
  # [1, 1, 2]: ((0 + 0 + 3) / 3, (2 + 2 + 3) / 3)  = (1, 7/3)
  np.testing.assert_allclose(
      result.numpy(), [[2, 1.5], [0, 0], [-1, 5], [1, 7 / 3]], rtol=1e-6)


def test_bag_of_embeddings_keeps_the_batch_when_the_last_rows_are_empty():
  bag = layers.BagOfEmbeddings(vocab_size=4, dim=2)
  bag(_sparse([[0]]))
  bag.set_weights([np.array([[1., 0.], [0., 2.], [3., 3.], [-1., 5.]])])

  result = bag(_sparse([[1], [], []]))

  assert result.shape == (3, 2)
  np.testing.assert_allclose(result.numpy(), [[0, 2], [0, 0], [0, 0]])


def test_bag_of_embeddings_of_a_dense_tensor_counts_id_zero():
  bag = layers.BagOfEmbeddings(vocab_size=4, dim=2)
  bag(_sparse([[0]]))
  bag.set_weights([np.array([[1., 0.], [0., 2.], [3., 3.], [-1., 5.]])])

  result = bag(tf.constant([[0, 2], [3, 1]], tf.int64))

  # [0, 2]: (2, 1.5) as above; [3, 1]: ((-1 + 0) / 2, (5 + 2) / 2)
  np.testing.assert_allclose(result.numpy(), [[2, 1.5], [-0.5, 3.5]])
