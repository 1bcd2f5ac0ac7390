"""The local server over real gRPC on loopback, with TF Serving's own stubs:
answers equal the in-process SavedModel call, metadata and status as TF
Serving sends them, its status codes for unknown models and bad inputs, and
versions picked up, pinned, refused and unloaded while it runs."""

import concurrent.futures
import gc
import os
import shutil
import socket
import subprocess
import sys
import time
import weakref

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving import server as serving_server
from tests.serving import conftest
from tests.serving.conftest import RANKING, RECOMMENDER, RETRIEVAL

pytestmark = pytest.mark.integration

AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
END = get_model_status_pb2.ModelVersionStatus.END
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


@pytest.fixture(scope='module')
def channel(local_server):
  with grpc.insecure_channel(local_server.address) as channel:
    yield channel


@pytest.fixture(scope='module')
def predictions(channel):
  return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope='module')
def models(channel):
  return model_service_pb2_grpc.ModelServiceStub(channel)


def _request(model, version=None, signature='', **inputs):
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model
  request.model_spec.signature_name = signature
  if version is not None:
    request.model_spec.version.value = version
  for name, value in inputs.items():
    request.inputs[name].CopyFrom(
        value if isinstance(value, tensor_pb2.TensorProto)
        else tf.make_tensor_proto(value))
  return request


def _status_request(model, version=None):
  request = get_model_status_pb2.GetModelStatusRequest()
  request.model_spec.name = model
  if version is not None:
    request.model_spec.version.value = version
  return request


def _outputs(response):
  return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def _rpc_error(call, request):
  with pytest.raises(grpc.RpcError) as raised:
    call(request, timeout=10)
  return raised.value


def _wait_until(condition, timeout=60.0):
  """Polls condition() until true; the values, not the time, are tested."""
  deadline = time.monotonic() + timeout
  while not condition():
    assert time.monotonic() < deadline, 'condition never became true'
    time.sleep(0.05)


def _top_ids(stub, model='retrieval', user='1', version=None):
  response = stub.Predict(_request(model, version, user_id=[user]),
                          timeout=10)
  return ([m.decode() for m in tf.make_ndarray(
      response.outputs['movie_ids'])[0]], response.model_spec.version.value)


# --------------------------------------------------------------- Predict


@pytest.mark.parametrize('model, inputs', [
    (RETRIEVAL, {'user_id': ['1', '2', 'new-user']}),
    (RECOMMENDER, {'user_id': ['2', '']}),
    (RANKING, {'user_id': ['1', '2', '1', 'x'],
               'movie_id': ['10', '20', '99', 'y']}),
])
def test_predict_equals_the_in_process_call(predictions, in_process, model,
                                            inputs):
  response = predictions.Predict(_request(model, **inputs), timeout=10)

  expected = in_process[model](**{k: tf.constant(v)
                                  for k, v in inputs.items()})
  got = _outputs(response)
  assert sorted(got) == sorted(expected)
  for name, value in expected.items():
    assert got[name].dtype == value.numpy().dtype
    np.testing.assert_array_equal(got[name], value.numpy())
  assert response.model_spec.name == model
  assert response.model_spec.version.value == 1
  assert response.model_spec.signature_name == 'serving_default'


def test_predict_answers_the_hand_computed_values(predictions):
  retrieval = _outputs(predictions.Predict(
      _request(RETRIEVAL, user_id=['1', 'new-user']), timeout=10))
  ranking = _outputs(predictions.Predict(
      _request(RANKING, user_id=['1', '2'], movie_id=['10', '20']),
      timeout=10))

  assert retrieval['movie_ids'].tolist() == [
      [m.encode() for m in conftest.RETRIEVAL_TOP3[u][0]]
      for u in ('1', 'new-user')]
  assert retrieval['movie_titles'][0].tolist() == [
      b'Thirty (1992)', b'Ten (1990)', b'Twenty (1991)']
  assert retrieval['scores'].tolist() == [[3., 2., 1.], [3., 2., 1.]]
  assert ranking['rating'].tolist() == [4.5, 2.25]


def test_output_filter_and_other_signatures(predictions):
  request = _request(RETRIEVAL, user_id=['1'])
  request.output_filter.append('scores')
  filtered = predictions.Predict(request, timeout=10)
  example = tf.train.Example(features=tf.train.Features(feature={
      'user_id': tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[b'2']))})).SerializeToString()
  by_example = predictions.Predict(
      _request(RETRIEVAL, signature='serving_examples',
               examples=np.array([example], dtype=object)), timeout=10)

  assert list(filtered.outputs) == ['scores']
  request.output_filter.append('scores')
  duplicate = _rpc_error(predictions.Predict, request)
  assert duplicate.code() == grpc.StatusCode.INVALID_ARGUMENT
  assert duplicate.details() == 'duplicate output tensor alias: scores'
  del request.output_filter[:]
  request.output_filter.append('nope')
  unknown = _rpc_error(predictions.Predict, request)
  assert unknown.code() == grpc.StatusCode.INVALID_ARGUMENT
  assert "no output 'nope'" in unknown.details()
  assert tf.make_ndarray(by_example.outputs['movie_ids']).tolist() == [
      [b'20', b'30', b'40']]
  assert by_example.model_spec.signature_name == 'serving_examples'


# ------------------------------------------------------ GetModelMetadata


def test_metadata_lists_the_signatures_as_tf_serving_does(predictions):
  request = get_model_metadata_pb2.GetModelMetadataRequest(
      metadata_field=['signature_def'])
  request.model_spec.name = RETRIEVAL

  response = predictions.GetModelMetadata(request, timeout=10)

  assert response.model_spec.name == RETRIEVAL
  assert response.model_spec.version.value == 1
  packed = response.metadata['signature_def']
  assert packed.type_url == (
      'type.googleapis.com/tensorflow.serving.SignatureDefMap')
  signatures = get_model_metadata_pb2.SignatureDefMap()
  assert packed.Unpack(signatures)
  assert {'serving_default', 'serving_examples'} <= set(
      signatures.signature_def)
  default = signatures.signature_def['serving_default']
  assert default.method_name == 'tensorflow/serving/predict'
  assert list(default.inputs) == ['user_id']
  assert default.inputs['user_id'].dtype == types_pb2.DT_STRING
  assert [d.size for d in default.inputs['user_id'].tensor_shape.dim] == [-1]
  assert {k: (v.dtype, [d.size for d in v.tensor_shape.dim])
          for k, v in default.outputs.items()} == {
              'movie_ids': (types_pb2.DT_STRING, [-1, 3]),
              'movie_titles': (types_pb2.DT_STRING, [-1, 3]),
              'scores': (types_pb2.DT_FLOAT, [-1, 3])}


@pytest.mark.parametrize('fields, message', [
    ([], 'must specify at least one metadata_field'),
    (['signature_def', 'other'], 'Metadata field other is not supported'),
])
def test_metadata_refuses_unsupported_fields(predictions, fields, message):
  request = get_model_metadata_pb2.GetModelMetadataRequest(
      metadata_field=fields)
  request.model_spec.name = RETRIEVAL

  error = _rpc_error(predictions.GetModelMetadata, request)

  assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
  assert message in error.details()


# -------------------------------------------------------- GetModelStatus


@pytest.mark.parametrize('version', [None, 1])
def test_status_shows_available(models, version):
  response = models.GetModelStatus(_status_request(RANKING, version),
                                   timeout=10)

  assert len(response.model_version_status) == 1
  status = response.model_version_status[0]
  assert (status.version, status.state) == (1, AVAILABLE)
  assert status.status.error_code == 0
  assert status.status.error_message == ''


# ------------------------------------------------------- unknown things


@pytest.mark.parametrize('call, request_factory, message', [
    ('Predict', lambda: _request('nope', user_id=['1']),
     'Servable not found for request: Latest(nope)'),
    ('Predict', lambda: _request(RETRIEVAL, 7, user_id=['1']),
     'Servable not found for request: Specific(retrieval, 7)'),
    ('GetModelMetadata', lambda: get_model_metadata_pb2.
     GetModelMetadataRequest(model_spec={'name': 'nope'},
                             metadata_field=['signature_def']),
     'Latest(nope)'),
    ('GetModelStatus', lambda: _status_request('nope'),
     'Could not find any versions of model nope'),
    ('GetModelStatus', lambda: _status_request(RETRIEVAL, 7),
     'Could not find version 7 of model retrieval'),
])
def test_unknown_model_or_version_is_not_found(predictions, models, call,
                                               request_factory, message):
  stub = models if call == 'GetModelStatus' else predictions

  error = _rpc_error(getattr(stub, call), request_factory())

  assert error.code() == grpc.StatusCode.NOT_FOUND
  assert message in error.details()


def test_unknown_signature_is_failed_precondition_as_in_tf_serving(
    predictions):
  error = _rpc_error(predictions.Predict,
                     _request(RETRIEVAL, signature='nope', user_id=['1']))

  assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
  assert 'Serving signature key "nope" not found' in error.details()


def test_methods_tf_serving_has_but_this_server_does_not_are_unimplemented(
    predictions):
  error = _rpc_error(predictions.Classify,
                     classification_pb2.ClassificationRequest())

  assert error.code() == grpc.StatusCode.UNIMPLEMENTED


# ------------------------------------------------------------ bad inputs


def _string_proto(values, shape):
  proto = tf.make_tensor_proto(np.array(values, dtype=object))
  del proto.tensor_shape.dim[:]
  for size in shape:
    proto.tensor_shape.dim.add(size=size)
  return proto


@pytest.mark.parametrize('model, inputs, message', [
    # Wrong dtype.
    (RETRIEVAL, {'user_id': np.array([1.0], np.float32)},
     "input 'user_id' must be string, got float32"),
    # Missing input.
    (RANKING, {'user_id': ['1']},
     'missing input(s) movie_id: signature \'serving_default\' takes '
     'movie_id (string, shape [None] (rank 1)), user_id (string, shape '
     '[None] (rank 1))'),
    # Unexpected input.
    (RETRIEVAL, {'user_id': ['1'], 'age': ['30']},
     'unexpected input(s) age'),
    # Wrong rank: a matrix, then a scalar.
    (RETRIEVAL, {'user_id': [['1'], ['2']]},
     "input 'user_id' must have shape [None] (rank 1), got shape [2, 1] "
     '(rank 2)'),
    (RETRIEVAL, {'user_id': np.array('1', dtype=object)},
     "input 'user_id' must have shape [None] (rank 1), got shape [] "
     '(rank 0)'),
    # More values than the shape holds.
    (RETRIEVAL, {'user_id': _string_proto(['1', '2', '3'], [2])},
     "input 'user_id' is malformed"),
])
def test_bad_inputs_are_invalid_argument_and_the_server_keeps_serving(
    predictions, model, inputs, message):
  error = _rpc_error(predictions.Predict, _request(model, **inputs))

  assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
  assert message in error.details()
  assert _top_ids(predictions) == (conftest.RETRIEVAL_TOP3['1'][0], 1)


def test_a_request_without_a_model_name_is_invalid(predictions):
  error = _rpc_error(predictions.Predict, _request('', user_id=['1']))

  assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_concurrent_requests_each_get_their_own_answer(predictions):
  users = ['1', '2', 'new-user'] * 20

  with concurrent.futures.ThreadPoolExecutor(8) as pool:
    answers = list(pool.map(lambda u: _top_ids(predictions, user=u)[0],
                            users))

  assert answers == [conftest.RETRIEVAL_TOP3[u][0] for u in users]


# -------------------------------------------------------------- versions


@pytest.fixture
def versioned_dir(model_store, tmp_path):
  """<tmp>/retrieval/1 (v1 model) and /2 (v2 model)."""
  root = str(tmp_path / 'serving')
  conftest.install(model_store, RETRIEVAL, os.path.join(root, RETRIEVAL), 1)
  conftest.install(model_store, conftest.RETRIEVAL_V2,
                   os.path.join(root, RETRIEVAL), 2)
  return root


def _stubs(server):
  channel = grpc.insecure_channel(server.address)
  return (prediction_service_pb2_grpc.PredictionServiceStub(channel),
          model_service_pb2_grpc.ModelServiceStub(channel))


def test_newest_version_by_default_and_a_pinned_one_on_request(
    versioned_dir):
  with serving_server.LocalServer(versioned_dir, port=0) as server:
    predictions, _ = _stubs(server)

    assert _top_ids(predictions) == (conftest.RETRIEVAL_V2_TOP3['1'][0], 2)
    assert _top_ids(predictions, version=1) == (
        conftest.RETRIEVAL_TOP3['1'][0], 1)


def test_only_the_newest_num_versions_are_served(versioned_dir):
  with serving_server.LocalServer(versioned_dir, port=0,
                                  num_versions=1) as server:
    predictions, models = _stubs(server)

    error = _rpc_error(predictions.Predict,
                       _request(RETRIEVAL, 1, user_id=['1']))
    status = models.GetModelStatus(_status_request(RETRIEVAL), timeout=10)

  assert error.code() == grpc.StatusCode.NOT_FOUND
  assert [(s.version, s.state) for s in status.model_version_status] == [
      (2, AVAILABLE)]


def test_new_versions_and_models_are_served_without_a_restart(
    model_store, tmp_path):
  root = str(tmp_path / 'serving')
  conftest.install(model_store, RETRIEVAL, os.path.join(root, RETRIEVAL), 1)
  with serving_server.LocalServer(root, port=0, poll_seconds=0.1) as server:
    predictions, models = _stubs(server)
    assert _top_ids(predictions) == (conftest.RETRIEVAL_TOP3['1'][0], 1)

    conftest.install(model_store, conftest.RETRIEVAL_V2,
                     os.path.join(root, RETRIEVAL), 2)
    conftest.install(model_store, RANKING, os.path.join(root, RANKING), 5)
    _wait_until(lambda: server.registry.served_versions() == {
        RETRIEVAL: [2, 1], RANKING: [5]})

    assert _top_ids(predictions) == (conftest.RETRIEVAL_V2_TOP3['1'][0], 2)
    rating = predictions.Predict(
        _request(RANKING, user_id=['1'], movie_id=['10']), timeout=10)
    assert tf.make_ndarray(rating.outputs['rating']).tolist() == [4.5]

    # A version deleted from disk is unloaded; the other keeps serving.
    shutil.rmtree(os.path.join(root, RETRIEVAL, '2'))
    _wait_until(lambda: server.registry.served_versions()[RETRIEVAL] == [1])
    assert _top_ids(predictions) == (conftest.RETRIEVAL_TOP3['1'][0], 1)


def test_a_version_that_fails_to_load_is_skipped_and_reported(
    versioned_dir):
  broken = os.path.join(versioned_dir, RETRIEVAL, '3')
  os.makedirs(broken)
  with open(os.path.join(broken, 'saved_model.pb'), 'wb') as f:
    f.write(b'not a SavedModel')

  with serving_server.LocalServer(versioned_dir, port=0,
                                  load_retry_seconds=600,
                                  max_load_retry_seconds=600) as server:
    predictions, models = _stubs(server)
    answer = _top_ids(predictions)
    status = models.GetModelStatus(_status_request(RETRIEVAL), timeout=10)
    server.registry.poll()  # Before its retry is due: neither retried nor
    # forgotten.
    again = models.GetModelStatus(_status_request(RETRIEVAL), timeout=10)

  # Version 2 keeps serving; version 3 is END with its error.
  assert answer == (conftest.RETRIEVAL_V2_TOP3['1'][0], 2)
  states = [(s.version, s.state, s.status.error_code)
            for s in status.model_version_status]
  assert states == [(3, END, grpc.StatusCode.UNKNOWN.value[0]),
                    (2, AVAILABLE, 0), (1, AVAILABLE, 0)]
  message = status.model_version_status[0].status.error_message
  assert 'not a readable SavedModel' in message
  assert message.endswith('(attempt 1 failed; next in 600 s, or as soon as '
                          'its files change)')
  assert again == status


# ---------------------------------------------------- start-up and flags


def test_binds_loopback_by_default_and_refuses_a_port_in_use(
    serving_dir, local_server):
  assert local_server.address == f'127.0.0.1:{local_server.port}'
  assert local_server.port > 0

  with pytest.raises(OSError, match=f'cannot listen on 127.0.0.1:'
                     f'{local_server.port}'):
    serving_server.LocalServer(serving_dir, port=local_server.port).start()


def test_a_missing_serving_folder_is_refused(tmp_path):
  with pytest.raises(ValueError, match='does not exist'):
    serving_server.LocalServer(str(tmp_path / 'nope'))


@pytest.mark.parametrize('flags, message', [
    (['--port', '70000'], '--port must be 0..65535'),
    (['--poll-seconds', '0'], '--poll-seconds must be > 0'),
    (['--num-versions', '-1'], '--num-versions must be >= 0'),
    (['--threads', '0'], '--threads must be >= 1'),
    (['--max-request-bytes', '0'], '--max-request-bytes must be >= 1'),
    (['--max-batch', '0'], '--max-batch must be >= 1'),
    (['--max-id-bytes', '0'], '--max-id-bytes must be >= 1'),
    (['--chunk-rows', '0'], '--chunk-rows must be >= 1'),
    (['--load-retry-seconds', '60', '--max-load-retry-seconds', '30'],
     'need 0 < --load-retry-seconds <= --max-load-retry-seconds'),
])
def test_command_line_flags_are_validated(flags, message, capsys):
  with pytest.raises(SystemExit):
    serving_server.parse_args(['--serving-dir', 'x'] + flags)

  assert message in capsys.readouterr().err


def test_limits_and_retries_default_to_the_documented_values():
  args = serving_server.parse_args(['--serving-dir', 'x'])

  assert (args.max_request_bytes, args.max_batch, args.max_id_bytes,
          args.chunk_rows) == (4 * 1024 * 1024, 1000, 256, 100)
  assert (args.load_retry_seconds, args.max_load_retry_seconds) == (1.0, 30.0)
  assert serving_server.DEFAULT_LIMITS == serving_server.RequestLimits(
      max_batch=1000, max_id_bytes=256, chunk_rows=100)


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def test_python_dash_m_serving_server_serves_until_terminated(serving_dir):
  port = _free_port()
  process = subprocess.Popen(
      [sys.executable, '-m', 'serving.server', '--serving-dir', serving_dir,
       '--port', str(port)], cwd=REPO_ROOT, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True)
  try:
    ready = process.stdout.readline()
    with grpc.insecure_channel(f'127.0.0.1:{port}') as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      answer = _top_ids(stub, user='2')
  finally:
    process.terminate()
    _, stderr = process.communicate(timeout=60)

  assert ready == (f'Serving 3 model(s) on 127.0.0.1:{port} (local '
                   'development server, not TF Serving)\n')
  assert answer == (conftest.RETRIEVAL_TOP3['2'][0], 1)
  assert process.returncode == 0
  for model in (RANKING, RECOMMENDER, RETRIEVAL):
    assert f'Loaded {model} version 1 from ' in stderr


def test_help_and_usage_errors_answer_before_tensorflow_is_imported():
  # -X importtime lists every module imported, on stderr.
  def run(*flags):
    return subprocess.run(
        [sys.executable, '-X', 'importtime', '-m', 'serving.server', *flags],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)

  helped = run('--help')
  refused = run('--serving-dir', 'x', '--port', '70000')

  assert helped.returncode == 0
  assert helped.stdout.startswith('usage: python -m serving.server')
  assert refused.returncode == 2
  assert refused.stderr.splitlines()[-1] == (
      'python -m serving.server: error: --port must be 0..65535, got 70000')
  for done in (helped, refused):
    imported = [line.split('|')[-1].strip()
                for line in done.stderr.splitlines()
                if line.startswith('import time:')]
    assert 'argparse' in imported
    assert not [m for m in imported if m.split('.')[0] in (
        'tensorflow', 'grpc', 'numpy')]


@pytest.mark.parametrize('variables, flags', [
    ([], '--host 127.0.0.1 --port 8500'),
    (['PORT=9100'], '--host 127.0.0.1 --port 9100'),
    (['PORT=9100', 'SERVE_HOST=0.0.0.0'], '--host 0.0.0.0 --port 9100'),
])
def test_make_serve_binds_loopback_on_8500_unless_told(variables, flags):
  # -n prints the commands without running them.
  done = subprocess.run(
      ['make', '--no-print-directory', '-n', 'serve', 'OUTPUT_DIR=out',
       *variables], cwd=REPO_ROOT, capture_output=True, text=True,
      timeout=60,
      # Under `make test` the outer make's flags would reach this one.
      env={k: v for k, v in os.environ.items()
           if k not in ('PORT', 'SERVE_HOST', 'MAKEFLAGS', 'MFLAGS',
                        'MAKELEVEL')})

  assert done.returncode == 0, done.stderr
  assert done.stdout.splitlines()[-1].endswith(
      f'-m serving.server --serving-dir out/serving {flags}')


def test_memory_is_released_once_an_unloaded_version_is_no_longer_served(
    versioned_dir, monkeypatch):
  registry = serving_server.ModelRegistry(versioned_dir)
  served_at_release = []
  monkeypatch.setattr(serving_server.memory, 'release',
                      lambda: served_at_release.append(
                          registry.served_versions()))
  registry.poll()  # Two loads: one release, after both are served.
  registry.poll()  # Nothing changed: none.
  shutil.rmtree(os.path.join(versioned_dir, RETRIEVAL, '1'))
  registry.poll()

  # Released after the requests' view dropped version 1, not before: a
  # collection before would find it still referenced.
  assert served_at_release == [{RETRIEVAL: [2, 1]}, {RETRIEVAL: [2]}]


def test_release_frees_objects_in_reference_cycles():
  class Node:
    pass
  node = Node()
  node.self = node
  alive = weakref.ref(node)
  gc.disable()
  try:
    del node
    assert alive() is not None  # Only the cyclic collector frees it.
    assert serving_server.memory.release() >= 1
    assert alive() is None
  finally:
    gc.enable()


def test_a_model_whose_folder_is_removed_is_no_longer_served(
    versioned_dir):
  registry = serving_server.ModelRegistry(versioned_dir)
  registry.poll()
  shutil.rmtree(os.path.join(versioned_dir, RETRIEVAL))
  registry.poll()

  assert registry.served_versions() == {}
  with pytest.raises(serving_server.ServingError) as error:
    registry.get(_request(RETRIEVAL).model_spec)
  assert error.value.code == grpc.StatusCode.NOT_FOUND


def test_malloc_is_trimmed_after_a_batch_larger_than_one_chunk(
    versioned_dir, monkeypatch):
  registry = serving_server.ModelRegistry(versioned_dir)
  registry.poll()
  servicer = serving_server.PredictionServicer(
      registry, serving_server.RequestLimits(chunk_rows=2))
  trims = []
  monkeypatch.setattr(serving_server.memory, 'trim',
                      lambda: trims.append(True))

  for users in (['1'], ['1', '2'], ['1', '2', '1']):
    servicer.Predict(_request(RETRIEVAL, user_id=users), context=None)
    trims.append(len(users))

  assert trims == [1, 2, True, 3]
