"""Loading a version and converting its tensors (`serving.servables`):
TensorProtos round-trip as `tf.make_tensor_proto` writes them, and the fast
signature call is used only where it answers as the public one."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2

from serving import servables
from tests.serving import conftest
from tests.serving.conftest import RANKING, RETRIEVAL

pytestmark = pytest.mark.integration


def _request(model, **inputs):
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model
  for name, values in inputs.items():
    request.inputs[name].CopyFrom(tf.make_tensor_proto(values))
  return request


# ------------------------------------------------------ tensor conversion


@pytest.mark.parametrize('value', [
    np.array([b'1', b'', b'\xff\x00'], dtype=object),  # bytes kept as is
    np.array([[b'a', b'b']], dtype=object),
    np.array(b'scalar', dtype=object),
    np.array([[1.5, -2.0]], np.float32),
    np.array([7, -1], np.int64),
    np.array([True, False]),
    np.zeros([0, 3], np.float32),
])
def test_tensors_round_trip_as_tf_make_tensor_proto_writes_them(value):
  proto = tensor_pb2.TensorProto()

  servables.fill_tensor_proto(proto, tf.constant(value))
  back = servables.to_tensor(tf.make_tensor_proto(value))

  got = tf.make_ndarray(proto)
  assert got.dtype == value.dtype and got.shape == value.shape
  np.testing.assert_array_equal(got, value)
  assert back.dtype == tf.constant(value).dtype
  np.testing.assert_array_equal(back.numpy(), value)


# ------------------------------------------------------------ fast calls


def test_signatures_take_the_fast_call_when_it_answers_the_same(
    local_server):
  loaded = local_server.registry.get(
      model_pb2.ModelSpec(name=RANKING))

  # Inputs in the function's flat order (sorted names), checked at load.
  assert loaded.signatures['serving_default'].flat_order == (
      'movie_id', 'user_id')


def test_a_fast_call_that_answers_differently_is_not_used(
    model_store, tmp_path, monkeypatch):
  def wrong(function, args, captured):  # Zeros instead of the answer.
    return {k: tf.zeros_like(v)
            for k, v in function(user_id=args[0]).items()}

  monkeypatch.setattr(servables, '_CALL_FLAT', wrong)
  model_dir = conftest.install(model_store, RETRIEVAL,
                               str(tmp_path / RETRIEVAL), 1)

  loaded = servables.load_version(model_dir, RETRIEVAL, 1)
  response = loaded.predict(_request(RETRIEVAL, user_id=['1']))

  assert loaded.signatures['serving_default'].flat_order is None
  assert tf.make_ndarray(response.outputs['scores']).tolist() == [
      [3., 2., 1.]]
