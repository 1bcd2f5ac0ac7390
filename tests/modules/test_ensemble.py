"""MemberStack: members trained in one loop train as each would alone."""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_recommenders as tfrs  # noqa: E402

from modules import ensemble  # noqa: E402

pytestmark = pytest.mark.unit


class _Scalar(tfrs.Model):
  """prediction = w * x; loss = sum of squared errors (+ l2 * w^2)."""

  def __init__(self, w: float, l2: float = 0.0):
    super().__init__()
    self.w = tf.Variable(w)
    if l2:
      self.add_loss(lambda: l2 * tf.square(self.w))

  def compute_loss(self, inputs, training=False):
    error = self.w * inputs['x'] - inputs['y']
    return tf.reduce_sum(tf.square(error))


def _batch():
  return tf.data.Dataset.from_tensors({'x': tf.constant([1.0]),
                                       'y': tf.constant([0.0])})


def test_the_loss_is_the_sum_of_the_members_losses():
  # w = 1 and w = 2 on x = 1, y = 0: 1^2 + 2^2 = 5.
  stack = ensemble.MemberStack([_Scalar(1.0), _Scalar(2.0)])

  loss = stack.compute_loss({'x': tf.constant([1.0]), 'y': tf.constant([0.0])})

  assert float(loss) == pytest.approx(5.0)


def test_one_step_moves_each_member_by_its_own_gradient_only():
  # d(w^2)/dw = 2w: with SGD at 0.1, w = 1 -> 0.8 and w = 2 -> 1.6, as each
  # would alone; the other member's term does not reach it.
  members = [_Scalar(1.0), _Scalar(2.0)]
  stack = ensemble.MemberStack(members)
  stack.compile(optimizer=tf.keras.optimizers.SGD(0.1))

  stack.fit(_batch(), epochs=1, verbose=0)

  assert [float(m.w) for m in members] == pytest.approx([0.8, 1.6])


def test_members_regularisation_losses_are_trained_too():
  # Loss w^2 + 0.5 w^2: gradient 3w; w = 1 -> 1 - 0.1 * 3 = 0.7.
  member = _Scalar(1.0, l2=0.5)
  stack = ensemble.MemberStack([member])
  stack.compile(optimizer=tf.keras.optimizers.SGD(0.1))

  stack.fit(_batch(), epochs=1, verbose=0)

  assert float(member.w) == pytest.approx(0.7)


def test_an_empty_stack_is_refused():
  with pytest.raises(ValueError, match='at least one member'):
    ensemble.MemberStack([])
