"""Training an ensemble's members together: one Keras loop, one input
pipeline, every member stepped on each batch. Plain TensorFlow / TFRS.

The refit trains `ensemble_size` models that differ only by seed. Fitted
one after another, each pays its own input pipeline, its own traced step
and Keras' per-step overhead, and the steps of one small model leave a core
idle. `MemberStack` sums the members' losses into one step: each member's
variables get exactly the gradient of its own loss (the sum's other terms
do not depend on them), so with a per-variable optimizer (Adam, LazyAdam)
a member trains as it would alone on the same batches, while their ops run
side by side. The members still differ by their initial weights (each is
built under its own seed), their dropout masks and their sampled
negatives; they share the order of the batches.
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

from typing import Dict, Sequence  # noqa: E402

import tensorflow as tf  # noqa: E402
import tensorflow_recommenders as tfrs  # noqa: E402

from modules import keras_tracing  # noqa: E402,F401  (fast tracing)


class MemberStack(tfrs.Model):
  """`tfrs.Model`s trained as one: the loss is the sum of the members'.

  Regularisation losses (Keras `losses` of every member's layers) are
  added by `tfrs.Model.train_step`, as for a single member. Metrics of the
  members' tasks are updated by each member; Keras reports one value per
  metric name (the last member's).

  Args:
    members: models with `compute_loss(inputs, training)`, e.g.
      `RankingModel` or `RetrievalModel`, none of them trained elsewhere.
  """

  def __init__(self, members: Sequence[tfrs.Model], **kwargs):
    super().__init__(**kwargs)
    if not members:
      raise ValueError('MemberStack needs at least one member')
    self.members = list(members)

  def compute_loss(self, inputs: Dict[str, tf.Tensor],
                   training: bool = False) -> tf.Tensor:
    return tf.add_n([member.compute_loss(inputs, training=training)
                     for member in self.members])
