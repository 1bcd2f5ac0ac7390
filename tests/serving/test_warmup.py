"""Warm-up requests: derived from each model's serving_default signature,
written as TF Serving reads them (a TFRecord of PredictionLogs under
assets.extra/), answered by our models, and replayed by the local server,
which, like TF Serving, refuses a version whose warm-up fails."""

import os

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import prediction_log_pb2

from serving import server as serving_server
from serving import servables
from serving import warmup
from tests.serving import conftest
from tests.serving.conftest import RANKING, RECOMMENDER, RETRIEVAL

pytestmark = pytest.mark.integration


def _tensor_info(dtype, dims):
  info = meta_graph_pb2.TensorInfo(dtype=dtype)
  for size in dims:
    info.tensor_shape.dim.add(size=size)
  return info


def _values(request):
  return {name: tf.make_ndarray(proto).tolist()
          for name, proto in request.inputs.items()}


def test_requests_follow_the_ranking_signature(model_store):
  [request] = warmup.build_warmup_requests(model_store[RANKING], 'ranking')

  assert request.model_spec.name == 'ranking'
  assert request.model_spec.signature_name == 'serving_default'
  assert not request.model_spec.HasField('version')
  # A MovieLens id and the empty string (the out-of-vocabulary path).
  assert _values(request) == {'user_id': [b'1', b''],
                              'movie_id': [b'1', b'']}
  assert {k: v.dtype for k, v in request.inputs.items()} == {
      'user_id': types_pb2.DT_STRING, 'movie_id': types_pb2.DT_STRING}


def test_shapes_and_dtypes_of_other_inputs():
  signature = meta_graph_pb2.SignatureDef(inputs={
      'features': _tensor_info(types_pb2.DT_FLOAT, [-1, 3]),
      'count': _tensor_info(types_pb2.DT_INT64, []),
      'words': _tensor_info(types_pb2.DT_STRING, [-1, -1]),
      'flag': _tensor_info(types_pb2.DT_BOOL, [4]),
  })

  [request] = warmup.requests_for_signature(signature, 'm', 'sig',
                                            string_values=(b'a', b'b', b'c'))

  # Batch of 3 (the string values); other unknown dims 1; fixed dims and
  # scalars kept.
  assert _values(request) == {'features': [[0.0] * 3] * 3, 'count': 0,
                              'words': [[b'a'], [b'b'], [b'c']],
                              'flag': [False] * 4}
  assert request.model_spec.signature_name == 'sig'


def test_written_as_a_tfrecord_of_prediction_logs(model_store, tmp_path):
  model_dir = conftest.install(model_store, RETRIEVAL,
                               str(tmp_path / RETRIEVAL), 1)

  path = warmup.write_warmup_requests(model_dir, 'retrieval')

  assert path == os.path.join(model_dir, 'assets.extra',
                              'tf_serving_warmup_requests')
  records = list(tf.data.TFRecordDataset(path).as_numpy_iterator())
  assert len(records) == 1
  log = prediction_log_pb2.PredictionLog.FromString(records[0])
  assert log.predict_log.request == warmup.build_warmup_requests(
      model_dir, 'retrieval')[0]
  assert warmup.read_warmup_requests(model_dir) == [log.predict_log.request]


@pytest.mark.parametrize('model', [RETRIEVAL, RANKING, RECOMMENDER])
def test_our_models_answer_their_warmup_requests(model_store, tmp_path,
                                                 model):
  model_dir = conftest.install(model_store, model, str(tmp_path / model), 1)
  warmup.write_warmup_requests(model_dir, model)

  assert servables.check_warmup_requests(model_dir, model) == 1


def test_a_model_that_cannot_answer_them_is_refused(model_store, tmp_path):
  model_dir = conftest.install(model_store, conftest.NUMERIC_IDS,
                               str(tmp_path / 'm'), 1)
  warmup.write_warmup_requests(model_dir, 'm')

  with pytest.raises(servables.WarmupError,
                     match='TF Serving could not load this model: warm-up '
                     'request 1 of assets.extra/tf_serving_warmup_requests '
                     'failed:'):
    servables.check_warmup_requests(model_dir, 'm')


def test_missing_signature_or_saved_model(model_store, tmp_path):
  with pytest.raises(ValueError, match="no signature 'nope' to warm up "
                     r'\(signatures: __saved_model_init_op, serving_default, '
                     r'serving_examples\)'):
    warmup.build_warmup_requests(model_store[RETRIEVAL], 'r', 'nope')
  with pytest.raises(ValueError, match='not a readable SavedModel'):
    warmup.build_warmup_requests(str(tmp_path), 'r')


def test_the_server_replays_the_file_and_refuses_a_failing_one(
    model_store, tmp_path):
  root = tmp_path / 'serving'
  good = conftest.install(model_store, RETRIEVAL, str(root / RETRIEVAL), 1)
  warmup.write_warmup_requests(good, RETRIEVAL)
  bad = conftest.install(model_store, conftest.RETRIEVAL_V2,
                         str(root / RETRIEVAL), 2)
  # A request the signature refuses: a float user id.
  [request] = warmup.build_warmup_requests(bad, RETRIEVAL)
  request.inputs['user_id'].CopyFrom(tf.make_tensor_proto(
      np.array([1.0], np.float32)))
  warmup.write_warmup_requests(bad, RETRIEVAL, requests=[request])

  registry = serving_server.ModelRegistry(str(root))
  registry.poll()

  assert registry.served_versions() == {RETRIEVAL: [1]}
  [(_, failed), (_, served)] = registry.status(
      serving_server.model_pb2.ModelSpec(name=RETRIEVAL))
  assert served.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
  assert failed.state == get_model_status_pb2.ModelVersionStatus.END
  assert failed.error_code == grpc.StatusCode.INVALID_ARGUMENT
  assert failed.error_message == (
      'warm-up request 1 of assets.extra/tf_serving_warmup_requests failed: '
      "input 'user_id' must be string, got float32 (attempt 1 failed; next "
      'in 1 s, or as soon as its files change)')
  spec = serving_server.model_pb2.ModelSpec(name=RETRIEVAL)
  assert registry.get(spec).warmup_requests == 1
