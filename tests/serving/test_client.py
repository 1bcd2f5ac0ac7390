"""ServingClient against the local server over loopback gRPC: the serving
contracts answered with the hand-computed values, status and metadata, and
each failure raised as its own error class with a one-line message."""

import socket
import time
from concurrent import futures

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving import client as serving_client
from serving import server as serving_server
from serving.client import (InvalidInputError, ModelNotAvailableError,
                            ModelNotFoundError, Rating, Recommendation,
                            ServerUnreachableError, ServingClient,
                            ServingError, ServingTimeoutError, TensorInfo,
                            VersionStatus)
from tests.serving import conftest
from tests.serving.conftest import RANKING, RECOMMENDER, RETRIEVAL

pytestmark = pytest.mark.integration


@pytest.fixture(scope='module')
def client(local_server):
  with ServingClient(local_server.address, timeout=10) as client:
    yield client


def _expected(top, user, ratings=None):
  ids, scores = top[user]
  ratings = ratings[user] if ratings else [None] * len(ids)
  return [Recommendation(m, conftest.MOVIE_TITLES[m], s, r)
          for m, s, r in zip(ids, scores, ratings)]


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


# ------------------------------------------------------------- contracts


def test_recommend_for_many_users_defaults_to_the_recommender(client):
  answers = client.recommend(['1', '2', 'new-user'])

  assert [a.user_id for a in answers] == ['1', '2', 'new-user']
  assert [a.items for a in answers] == [
      _expected(conftest.RECOMMENDER_TOP2, u, conftest.RECOMMENDER_RATINGS)
      for u in ('1', '2', 'new-user')]
  assert {(a.model, a.version) for a in answers} == {(RECOMMENDER, 1)}
  # 'new-user' gets the answer of the unknown id, as the model knows only
  # users '1' and '2'.
  assert [a.cold_start for a in answers] == [False, False, True]


def test_a_cold_start_answer_is_told_apart_on_every_model(client):
  [known, unknown] = client.recommend(['2', 'someone-new'], model=RETRIEVAL)

  assert (known.cold_start, unknown.cold_start) == (False, True)
  # The retrieval contract has no ratings.
  assert unknown.items == _expected(conftest.RETRIEVAL_TOP3, 'new-user')


def test_top_k_above_what_the_model_returns_is_refused(client):
  with pytest.raises(InvalidInputError) as raised:
    client.recommend(['1'], top_k=3)  # The recommender returns 2.

  assert str(raised.value) == (
      "model 'recommender' version 1 returns 2 movies per user, fewer than "
      'the 3 asked for')


def test_recommend_from_another_model_version_and_top_k(client):
  [answer] = client.recommend('1', model=RETRIEVAL, version=1, top_k=2)

  assert answer.items == _expected(conftest.RETRIEVAL_TOP3, '1')[:2]
  assert (answer.model, answer.version) == (RETRIEVAL, 1)


def test_rate_pairs_and_one_user_against_many_movies(client):
  pairs = list(conftest.RATINGS)

  ratings = client.rate([u for u, _ in pairs], [m for _, m in pairs])
  one_user = client.rate(['1'], ['10', '99'])

  # The ranking model knows users '1', '2' and movies '10', '20'.
  assert ratings == [
      Rating('1', '10', 4.5, RANKING, 1),
      Rating('2', '20', 2.25, RANKING, 1),
      Rating('1', '99', 3.5, RANKING, 1, unknown_movie=True),
      Rating('x', 'y', 3.0, RANKING, 1, unknown_user=True,
             unknown_movie=True)]
  assert [(r.rating, r.unknown_user, r.unknown_movie) for r in one_user] == [
      (4.5, False, False), (3.5, False, True)]


def test_predict_returns_the_raw_outputs(client):
  answer = client.predict(RETRIEVAL, {'user_id': ['2']},
                          output_filter=['scores'])

  assert list(answer.outputs) == ['scores']
  np.testing.assert_array_equal(answer.outputs['scores'],
                                np.array([[3., 2., 1.]], np.float32))


def test_status_and_metadata(client):
  status = client.status(RANKING)
  metadata = client.metadata(RANKING)

  assert status == [VersionStatus(1, 'AVAILABLE', 'OK', '')]
  assert (metadata.model, metadata.version) == (RANKING, 1)
  # TensorFlow's own __saved_model_init_op is left out.
  assert list(metadata.signatures) == ['serving_default']
  signature = metadata.signatures['serving_default']
  assert signature.inputs == {'movie_id': TensorInfo('string', (None,)),
                              'user_id': TensorInfo('string', (None,))}
  assert signature.outputs == {'rating': TensorInfo('float32', (None,))}


def test_a_client_on_an_existing_channel(local_server):
  channel = grpc.insecure_channel(local_server.address)
  with ServingClient('my-channel', channel=channel) as client:
    assert client.status(RETRIEVAL)[0].state == 'AVAILABLE'
  # The channel is the caller's: still open.
  assert ServingClient(channel=channel).status(RANKING)[0].version == 1
  channel.close()


# ----------------------------------------------------------------- errors


def test_unreachable_server(local_server):
  address = f'127.0.0.1:{_free_port()}'

  with pytest.raises(ServerUnreachableError) as raised:
    ServingClient(address, timeout=10).recommend(['1'])

  assert str(raised.value) == (
      f'cannot reach TF Serving at {address} (connection refused)')


def test_unknown_model(client, local_server):
  with pytest.raises(ModelNotFoundError) as raised:
    client.recommend(['1'], model='nope')

  assert str(raised.value) == (
      f"model 'nope' not found on {local_server.address}")
  assert raised.value.code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize('call', [
    lambda c: c.recommend(['1'], model=RETRIEVAL, version=7),
    lambda c: c.status(RETRIEVAL, version=7),
    lambda c: c.metadata(RETRIEVAL, version=7),
])
def test_version_not_served(client, local_server, call):
  with pytest.raises(ModelNotAvailableError) as raised:
    call(client)

  assert str(raised.value) == (
      f"model 'retrieval' version 7 not available on {local_server.address} "
      '(serving version(s) 1)')


def test_bad_input_is_explained(client, local_server):
  with pytest.raises(InvalidInputError) as raised:
    client.rate(['1'], ['10'], model=RETRIEVAL)

  assert str(raised.value) == (
      f"model 'retrieval' on {local_server.address} refused the request: "
      "unexpected input(s) movie_id: signature 'serving_default' takes "
      'user_id (string, shape [None] (rank 1))')
  assert '\n' not in str(raised.value)


@pytest.mark.parametrize('call, message', [
    (lambda c: c.recommend([]), 'no user id given'),
    (lambda c: c.recommend(['1'], top_k=0), 'top_k must be at least 1'),
    (lambda c: c.rate(['1', '2'], ['10', '20', '30']),
     '2 user ids and 3 movie ids'),
    (lambda c: c.recommend(['1'], model=''), 'no model name given'),
])
def test_bad_arguments_are_refused_before_any_call(client, call, message):
  with pytest.raises(InvalidInputError, match=message):
    call(client)


def test_a_model_with_another_contract_is_named(model_store, tmp_path):
  # NUMERIC_IDS takes a user_id too, but answers only 'scores' [None].
  conftest.install(model_store, conftest.NUMERIC_IDS,
                   str(tmp_path / 'other'), 1)
  with serving_server.LocalServer(str(tmp_path), port=0) as server:
    with pytest.raises(ServingError) as raised:
      ServingClient(server.address).recommend(['1'], model='other')

  assert str(raised.value) == (
      f"model 'other' version 1 on {server.address} does not answer as "
      "expected: output 'movie_ids' of rank 2 missing (it returned scores); "
      'wrong --model?')


def test_a_model_that_refuses_the_unknown_id_cannot_tell_it(model_store,
                                                             tmp_path):
  conftest.install(model_store, conftest.NUMERIC_RANKING,
                   str(tmp_path / 'numeric'), 1)
  with serving_server.LocalServer(str(tmp_path), port=0) as server:
    ratings = ServingClient(server.address).rate(['1'], ['10'], 'numeric')

  # 1 + 10, asked again without the unknown ids it refuses.
  assert ratings == [Rating('1', '10', 11.0, 'numeric', 1,
                            unknown_user=None, unknown_movie=None)]


# --------------------------------------- TF Serving while it loads, slowly


class _LoadingServing(prediction_service_pb2_grpc.PredictionServiceServicer,
                      model_service_pb2_grpc.ModelServiceServicer):
  """What TF Serving answers while `recommender` version 5 loads; Predict
  of model 'slow' takes 2 seconds."""

  def Predict(self, request, context):
    if request.model_spec.name == 'slow':
      time.sleep(2)
    context.abort(grpc.StatusCode.NOT_FOUND,
                  'Servable not found for request: Latest(recommender)')

  def GetModelStatus(self, request, context):
    response = get_model_status_pb2.GetModelStatusResponse()
    response.model_version_status.add(
        version=5, state=get_model_status_pb2.ModelVersionStatus.LOADING)
    return response


@pytest.fixture(scope='module')
def loading_server():
  server = grpc.server(futures.ThreadPoolExecutor(4))
  servicer = _LoadingServing()
  prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
      servicer, server)
  model_service_pb2_grpc.add_ModelServiceServicer_to_server(servicer, server)
  port = server.add_insecure_port('127.0.0.1:0')
  server.start()
  yield f'127.0.0.1:{port}'
  server.stop(None)


def test_model_not_yet_available(loading_server):
  with pytest.raises(ModelNotAvailableError) as raised:
    ServingClient(loading_server).recommend(['1'])

  assert str(raised.value) == (
      f"model 'recommender' not available on {loading_server} "
      '(version 5: LOADING)')


def test_timeout(loading_server):
  with pytest.raises(ServingTimeoutError) as raised:
    ServingClient(loading_server, timeout=0.2).recommend(['1'], model='slow')

  assert str(raised.value) == (
      f'TF Serving at {loading_server} did not answer within 0.2 s '
      "(model 'slow')")
  assert isinstance(raised.value, TimeoutError)


def test_every_error_is_a_serving_error():
  for error in (ServerUnreachableError, ModelNotFoundError,
                ModelNotAvailableError, InvalidInputError,
                ServingTimeoutError):
    assert issubclass(error, serving_client.ServingError)
  assert str(ServingError('two\n  lines')) == 'two lines'
