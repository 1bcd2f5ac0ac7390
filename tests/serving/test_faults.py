"""The local server under bad requests and bad versions: requests over its
size, batch and id limits refused with the limit named, large batches run
in chunks with the same answer, TensorFlow's errors turned into messages
about the request, and versions that fail to load retried with backoff
until they load or their folder goes."""

import dataclasses
import os
import shutil
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving import server as serving_server
from serving import servables
from tests.serving import conftest
from tests.serving.conftest import NUMERIC_IDS, RANKING, RECOMMENDER
from tests.serving.conftest import RETRIEVAL, RETRIEVAL_V2

pytestmark = pytest.mark.integration

AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
END = get_model_status_pb2.ModelVersionStatus.END


def _request(model, version=None, **inputs):
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model
  if version is not None:
    request.model_spec.version.value = version
  for name, values in inputs.items():
    request.inputs[name].CopyFrom(tf.make_tensor_proto(values))
  return request


def _rpc_error(stub, request):
  with pytest.raises(grpc.RpcError) as raised:
    stub.Predict(request, timeout=30)
  return raised.value


def _outputs(response):
  return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def _stubs(server):
  channel = grpc.insecure_channel(server.address)
  return (prediction_service_pb2_grpc.PredictionServiceStub(channel),
          model_service_pb2_grpc.ModelServiceStub(channel))


def _status(models, model):
  request = get_model_status_pb2.GetModelStatusRequest()
  request.model_spec.name = model
  return [(s.version, s.state, s.status.error_message)
          for s in models.GetModelStatus(request,
                                         timeout=10).model_version_status]


def _wait_until(condition, timeout=60.0):
  """Polls condition() until true; the values, not the time, are tested."""
  deadline = time.monotonic() + timeout
  while not condition():
    assert time.monotonic() < deadline, 'condition never became true'
    time.sleep(0.05)


# ----------------------------------------------------------------- limits


@pytest.fixture(scope='module')
def small_limits_server(serving_dir):
  """The fixture models behind limits small enough to test by hand: 2 KiB
  per request, 3 ids per input, 8 bytes per id."""
  server = serving_server.LocalServer(
      serving_dir, port=0, max_request_bytes=2048,
      limits=servables.RequestLimits(max_batch=3, max_id_bytes=8,
                                     chunk_rows=2)).start()
  yield server
  server.stop()


def test_a_request_over_the_size_limit_is_resource_exhausted(
    small_limits_server):
  predictions, _ = _stubs(small_limits_server)

  error = _rpc_error(predictions, _request(RETRIEVAL, user_id=['1' * 3000]))

  # gRPC's own check, before the request is parsed; it names both sizes.
  assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
  assert 'Received message larger than max' in error.details()
  assert 'vs. 2048)' in error.details()


@pytest.mark.parametrize('model, inputs, message', [
    (RETRIEVAL, {'user_id': ['1', '2', '1', '2']},
     "input 'user_id' holds 4 ids, more than the 3 a request may hold "
     '(--max-batch); split the batch into several requests'),
    (RANKING, {'user_id': ['1'] * 4, 'movie_id': ['10'] * 4},
     "holds 4 ids, more than the 3 a request may hold (--max-batch)"),
    (RETRIEVAL, {'user_id': ['1', '123456789']},
     "input 'user_id' holds a value of 9 bytes, more than the 8 bytes an id "
     'may have (--max-id-bytes)'),
])
def test_a_batch_or_an_id_over_its_limit_is_invalid_argument(
    small_limits_server, model, inputs, message):
  predictions, _ = _stubs(small_limits_server)

  error = _rpc_error(predictions, _request(model, **inputs))

  assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
  assert message in error.details()


def test_requests_at_the_limits_are_answered(small_limits_server):
  predictions, _ = _stubs(small_limits_server)

  response = predictions.Predict(
      _request(RETRIEVAL, user_id=['1', '2', '12345678']), timeout=10)

  # Three ids of at most 8 bytes, in two chunks (2 + 1 rows); '12345678' is
  # an unknown user.
  assert _outputs(response)['movie_ids'].tolist() == [
      [m.encode() for m in conftest.RETRIEVAL_TOP3[u][0]]
      for u in ('1', '2', 'new-user')]


def test_the_default_limits_refuse_1001_ids_and_a_5_mib_request(
    local_server):
  predictions, _ = _stubs(local_server)

  batch = _rpc_error(predictions, _request(RETRIEVAL, user_id=['1'] * 1001))
  size = _rpc_error(predictions,
                    _request(RETRIEVAL, user_id=['1' * (5 * 1024 * 1024)]))
  answered = predictions.Predict(_request(RETRIEVAL, user_id=['1'] * 1000),
                                 timeout=30)

  assert batch.code() == grpc.StatusCode.INVALID_ARGUMENT
  assert 'holds 1001 ids, more than the 1000' in batch.details()
  assert size.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
  assert 'vs. 4194304)' in size.details()
  assert _outputs(answered)['scores'].shape == (1000, 3)


def test_request_limits_refuse_values_below_one():
  with pytest.raises(ValueError, match='max_batch must be >= 1'):
    servables.RequestLimits(max_batch=0)


# ----------------------------------------------------------------- chunks


class _CountingFunction:
  """A signature's function that records the rows of each call."""

  def __init__(self, function):
    self._function = function
    self.structured_outputs = function.structured_outputs
    self.rows = []

  def __call__(self, **inputs):
    self.rows.append(int(next(iter(inputs.values())).shape[0]))
    return self._function(**inputs)


@pytest.fixture
def recommender(serving_dir):
  return servables.load_version(os.path.join(serving_dir, RECOMMENDER, '1'),
                                RECOMMENDER, 1)


def test_a_batch_larger_than_a_chunk_answers_as_one_call(recommender):
  users = ['1', '2', 'new-user', '', '2']
  request = _request(RECOMMENDER, user_id=users)
  signature = recommender.signatures['serving_default']
  counting = _CountingFunction(signature.function)
  recommender.signatures['serving_default'] = dataclasses.replace(
      signature, function=counting, flat_order=None)

  whole = _outputs(recommender.predict(request))
  chunked = _outputs(recommender.predict(
      request, servables.RequestLimits(chunk_rows=2)))

  # One call of 5 rows, then 5 rows as 2 + 2 + 1.
  assert counting.rows == [5, 2, 2, 1]
  assert sorted(chunked) == ['movie_ids', 'movie_titles', 'ratings',
                             'scores']
  for name, value in whole.items():
    assert chunked[name].dtype == value.dtype
    np.testing.assert_array_equal(chunked[name], value)
  # By hand (conftest): top 2 per user, rating 2.5 + score / 2.
  assert chunked['movie_ids'].tolist() == [
      [m.encode() for m in conftest.RECOMMENDER_TOP2[u][0]]
      for u in ('1', '2', 'new-user', 'new-user', '2')]
  assert chunked['ratings'].tolist() == [
      conftest.RECOMMENDER_RATINGS[u]
      for u in ('1', '2', 'new-user', 'new-user', '2')]


def test_chunks_run_only_the_outputs_asked_for_and_ranking_pairs_stay_aligned(
    serving_dir):
  ranking = servables.load_version(os.path.join(serving_dir, RANKING, '1'),
                                   RANKING, 1)
  pairs = [('1', '10'), ('2', '20'), ('1', '99'), ('x', 'y'), ('1', '10')]
  request = _request(RANKING, user_id=[u for u, _ in pairs],
                     movie_id=[m for _, m in pairs])

  response = ranking.predict(request, servables.RequestLimits(chunk_rows=2))

  assert _outputs(response)['rating'].tolist() == [conftest.RATINGS[p]
                                                   for p in pairs]
  assert ranking.signatures['serving_default'].batch_major


# ------------------------------------------------------------ graph errors


def test_a_graph_error_from_the_inputs_is_invalid_argument_in_words(
    model_store, tmp_path):
  model_dir = conftest.install(model_store, NUMERIC_IDS,
                               str(tmp_path / NUMERIC_IDS), 1)
  with serving_server.LocalServer(str(tmp_path), port=0) as server:
    predictions, _ = _stubs(server)

    error = _rpc_error(predictions,
                       _request(NUMERIC_IDS, user_id=['7', 'abc']))
    answer = predictions.Predict(_request(NUMERIC_IDS, user_id=['7']),
                                 timeout=10)

  assert os.path.isdir(model_dir)
  assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
  assert error.details() == (
      "signature 'serving_default' of model 'numeric_ids' could not process "
      'the inputs user_id (string, 2 value(s)): StringToNumberOp could not '
      'correctly convert string: abc (at node StringToNumber). It takes '
      'user_id (string, shape [None] (rank 1))')
  assert 'Graph execution error' not in error.details()
  assert _outputs(answer)['scores'].tolist() == [7.0]


@pytest.mark.parametrize('error, code, message', [
    (tf.errors.UnavailableError(None, None, 'Graph execution error:\n\n'
                                'Detected at node Lookup defined at (most '
                                'recent call last):\n<stack traces '
                                'unavailable>\ntable gone\n\t [[{{node '
                                'Lookup}}]] [Op:__inference_f_1]'),
     grpc.StatusCode.INTERNAL,
     "model 'numeric_ids' version 1 failed running signature "
     "'serving_default': UnavailableError: table gone (at node Lookup)"),
    (tf.errors.ResourceExhaustedError(None, None, 'OOM when allocating '
                                      'tensor with shape[100000,1000]'),
     grpc.StatusCode.RESOURCE_EXHAUSTED,
     "model 'numeric_ids' version 1 failed running signature "
     "'serving_default': ResourceExhaustedError: OOM when allocating tensor "
     'with shape[100000,1000]'),
])
def test_other_graph_errors_are_one_line_with_their_own_code(
    model_store, tmp_path, error, code, message):
  model_dir = conftest.install(model_store, NUMERIC_IDS,
                               str(tmp_path / NUMERIC_IDS), 1)
  loaded = servables.load_version(model_dir, NUMERIC_IDS, 1)

  def raising(**inputs):
    raise error

  signature = loaded.signatures['serving_default']
  loaded.signatures['serving_default'] = dataclasses.replace(
      signature, function=raising, flat_order=None)
  with pytest.raises(servables.ServingError) as raised:
    loaded.predict(_request(NUMERIC_IDS, user_id=['1']))

  assert raised.value.code == code
  assert raised.value.message == message


def test_an_unexpected_failure_is_internal_with_one_line(local_server,
                                                         monkeypatch):
  predictions, _ = _stubs(local_server)
  loaded = local_server.registry.get(model_pb2.ModelSpec(name=RANKING))

  def broken(request, limits):
    raise RuntimeError('first line\nsecond line')

  monkeypatch.setattr(loaded, 'predict', broken)
  error = _rpc_error(predictions,
                     _request(RANKING, user_id=['1'], movie_id=['10']))

  assert error.code() == grpc.StatusCode.INTERNAL
  assert error.details() == (
      "Predict failed for model 'ranking': RuntimeError: first line")


# ----------------------------------------------------------------- retries


def _copy_files(source, target, names):
  for name in names:
    src = os.path.join(source, name)
    dst = os.path.join(target, name)
    if os.path.isdir(src):
      shutil.copytree(src, dst)
    else:
      shutil.copy2(src, dst)


def test_a_version_copied_graph_first_is_served_once_its_variables_arrive(
    model_store, versioned_dir_with_v1):
  root, model_dir = versioned_dir_with_v1
  source = model_store[RETRIEVAL_V2]
  version_dir = os.path.join(model_dir, '2')
  os.makedirs(version_dir)
  # A copy that is not atomic: the graph first, the rest later. The retry
  # delay is long: only the change of its files makes it load again.
  _copy_files(source, version_dir, ['saved_model.pb'])
  with serving_server.LocalServer(root, port=0, poll_seconds=0.05,
                                  load_retry_seconds=600,
                                  max_load_retry_seconds=600) as server:
    predictions, models = _stubs(server)
    broken = _status(models, RETRIEVAL)
    served_meanwhile = predictions.Predict(_request(RETRIEVAL, user_id=['1']),
                                           timeout=10)

    _copy_files(source, version_dir, [n for n in os.listdir(source)
                                      if n != 'saved_model.pb'])
    _wait_until(lambda: server.registry.served_versions()[RETRIEVAL] == [
        2, 1])
    fixed = _status(models, RETRIEVAL)
    answer = predictions.Predict(_request(RETRIEVAL, user_id=['1']),
                                 timeout=10)

  assert [(v, s) for v, s, _ in broken] == [(2, END), (1, AVAILABLE)]
  assert broken[0][2].endswith('(attempt 1 failed; next in 600 s, or as '
                               'soon as its files change)')
  assert served_meanwhile.model_spec.version.value == 1
  assert fixed == [(2, AVAILABLE, ''), (1, AVAILABLE, '')]
  assert answer.model_spec.version.value == 2
  assert _outputs(answer)['movie_ids'][0].tolist() == [
      m.encode() for m in conftest.RETRIEVAL_V2_TOP3['1'][0]]


@pytest.fixture
def versioned_dir_with_v1(model_store, tmp_path):
  root = str(tmp_path / 'serving')
  model_dir = os.path.join(root, RETRIEVAL)
  conftest.install(model_store, RETRIEVAL, model_dir, 1)
  return root, model_dir


class _Clock:

  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now


def _broken_version(model_dir, version):
  path = os.path.join(model_dir, str(version))
  os.makedirs(path)
  with open(os.path.join(path, 'saved_model.pb'), 'wb') as f:
    f.write(b'not a SavedModel')
  return path


def test_a_failed_version_is_retried_with_doubling_delays_until_it_loads(
    versioned_dir_with_v1, monkeypatch):
  root, model_dir = versioned_dir_with_v1
  _broken_version(model_dir, 2)
  clock = _Clock()
  registry = serving_server.ModelRegistry(root, load_retry_seconds=1,
                                          max_load_retry_seconds=4,
                                          clock=clock)
  real_load = serving_server.load_version
  attempts = []

  def load(path, name, version):
    if version == 2:
      attempts.append(clock.now)
      if clock.now >= 15:  # The folder was fixed by other means.
        return real_load(os.path.join(model_dir, '1'), name, version)
    return real_load(path, name, version)

  monkeypatch.setattr(serving_server, 'load_version', load)
  states = {}
  for second in range(17):
    clock.now = float(second)
    registry.poll()
    states[second] = registry.status(model_pb2.ModelSpec(name=RETRIEVAL))

  # Delays 1, 2, 4, then 4 (the maximum): attempts at 0, 1, 3, 7, 11, 15;
  # the last one loads.
  assert attempts == [0.0, 1.0, 3.0, 7.0, 11.0, 15.0]
  assert [(v, s.state) for v, s in states[14]] == [(2, END), (1, AVAILABLE)]
  assert states[14][0][1].error_message.endswith(
      '(attempt 5 failed; next in 4 s, or as soon as its files change)')
  assert 'not a readable SavedModel' in states[14][0][1].error_message
  assert [(v, s.state) for v, s in states[16]] == [(2, AVAILABLE),
                                                   (1, AVAILABLE)]
  assert registry.served_versions() == {RETRIEVAL: [2, 1]}


def test_a_change_of_its_files_resets_the_backoff(versioned_dir_with_v1,
                                                  monkeypatch):
  root, model_dir = versioned_dir_with_v1
  path = _broken_version(model_dir, 2)
  clock = _Clock()
  registry = serving_server.ModelRegistry(root, load_retry_seconds=1,
                                          max_load_retry_seconds=30,
                                          clock=clock)
  attempts = []
  real_load = serving_server.load_version

  def load(path_, name, version):
    if version == 2:
      attempts.append(clock.now)
    return real_load(path_, name, version)

  monkeypatch.setattr(serving_server, 'load_version', load)
  for second in (0, 1, 2, 3):  # Attempts at 0, 1 and 3 (delays 1, 2).
    clock.now = float(second)
    registry.poll()
  with open(os.path.join(path, 'variables.partial'), 'wb') as f:
    f.write(b'more bytes')
  clock.now = 3.5
  registry.poll()  # Changed: at once, though 4 s are not over.
  clock.now = 4.0
  registry.poll()  # Unchanged since: waits its 1 s again.
  clock.now = 4.5
  registry.poll()

  assert attempts == [0.0, 1.0, 3.0, 3.5, 4.5]
  [(version, state), _] = registry.status(model_pb2.ModelSpec(
      name=RETRIEVAL))
  assert (version, state.state) == (2, END)
  assert state.error_message.endswith('(attempt 2 failed; next in 2 s, or '
                                      'as soon as its files change)')


def test_a_failed_version_deleted_from_disk_is_no_longer_retried(
    versioned_dir_with_v1, monkeypatch):
  root, model_dir = versioned_dir_with_v1
  path = _broken_version(model_dir, 2)
  clock = _Clock()
  registry = serving_server.ModelRegistry(root, load_retry_seconds=1,
                                          clock=clock)
  attempts = []
  real_load = serving_server.load_version

  def load(path_, name, version):
    attempts.append((clock.now, version))
    return real_load(path_, name, version)

  monkeypatch.setattr(serving_server, 'load_version', load)
  registry.poll()
  before = registry.status(model_pb2.ModelSpec(name=RETRIEVAL))
  shutil.rmtree(path)
  for second in range(1, 40):
    clock.now = float(second)
    registry.poll()

  assert [(v, s.state) for v, s in before] == [(2, END), (1, AVAILABLE)]
  assert attempts == [(0.0, 2), (0.0, 1)]
  assert [(v, s.state) for v, s in registry.status(
      model_pb2.ModelSpec(name=RETRIEVAL))] == [(1, AVAILABLE)]
  assert registry.served_versions() == {RETRIEVAL: [1]}


def test_versions_arriving_while_others_load_are_swapped_in_one_by_one(
    model_store, versioned_dir_with_v1, monkeypatch):
  root, model_dir = versioned_dir_with_v1
  registry = serving_server.ModelRegistry(root)
  registry.poll()
  real_load = serving_server.load_version
  seen = {}

  def load(path, name, version):
    # Each load sees what is served, then the next version arrives.
    seen[version] = registry.served_versions()
    if version < 4:
      conftest.install(model_store, RETRIEVAL, model_dir, version + 1)
    return real_load(path, name, version)

  monkeypatch.setattr(serving_server, 'load_version', load)
  conftest.install(model_store, RETRIEVAL, model_dir, 2)
  registry.poll()

  # One poll loads 2, 3 and 4; each is served as soon as it is loaded, and
  # the versions beyond the newest 2 are unloaded at once.
  assert seen == {2: {RETRIEVAL: [1]}, 3: {RETRIEVAL: [2, 1]},
                  4: {RETRIEVAL: [3, 2]}}
  assert registry.served_versions() == {RETRIEVAL: [4, 3]}
