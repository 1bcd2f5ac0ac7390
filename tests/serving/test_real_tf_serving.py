"""Opt-in: the client against a real `tensorflow_model_server`, started on
the fixture models with `serving/models.config` (its /models base paths
pointed at the fixture folder). Skipped unless the binary is on PATH (it
ships as the tensorflow/serving Docker image, Google's apt repository
`tensorflow-model-server`, or a Bazel build).

The same answers and errors as against the local server, which shows that
the client and the local server speak TF Serving's API as TF Serving does.
"""

import os
import shutil
import socket
import subprocess
import time

import pytest

from serving.client import (InvalidInputError, ModelNotAvailableError,
                            ModelNotFoundError, Rating, ServingClient,
                            ServingError, TensorInfo, VersionStatus)
from tests.serving import conftest
from tests.serving.conftest import RANKING, RECOMMENDER, RETRIEVAL

BINARY = 'tensorflow_model_server'
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which(BINARY) is None,
        reason=f'{BINARY} is not on PATH (install TF Serving: the '
        'tensorflow/serving Docker image or apt package '
        'tensorflow-model-server)'),
]


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


@pytest.fixture(scope='module')
def tf_serving(serving_dir, tmp_path_factory):
  """tensorflow_model_server on the fixture models; yields its address."""
  with open(os.path.join(REPO_ROOT, 'serving', 'models.config'),
            encoding='utf-8') as f:
    config = f.read().replace('"/models/', f'"{serving_dir}/')
  config_path = tmp_path_factory.mktemp('tf_serving') / 'models.config'
  config_path.write_text(config, encoding='utf-8')
  port = _free_port()
  log = open(config_path.parent / 'tf_serving.log', 'w')
  process = subprocess.Popen(
      [BINARY, f'--port={port}', f'--model_config_file={config_path}',
       '--file_system_poll_wait_seconds=1'], stdout=log,
      stderr=subprocess.STDOUT)
  address = f'127.0.0.1:{port}'
  try:
    # TF Serving listens once every configured model is available.
    deadline = time.monotonic() + 120
    while True:
      assert process.poll() is None, (
          f'{BINARY} exited; see {config_path.parent}/tf_serving.log')
      try:
        ServingClient(address, timeout=2).status(RECOMMENDER)
        break
      except ServingError:
        assert time.monotonic() < deadline, f'{BINARY} never became ready'
        time.sleep(0.5)
    yield address
  finally:
    process.terminate()
    process.wait(timeout=60)
    log.close()


@pytest.fixture
def client(tf_serving):
  with ServingClient(tf_serving, timeout=10) as client:
    yield client


def test_recommend_rate_status_and_metadata(client):
  [answer] = client.recommend(['1'], model=RETRIEVAL)
  ratings = client.rate(['1', '2'], ['10', '20'])
  [new_user] = client.recommend(['new-user'], model=RETRIEVAL)
  [new_movie] = client.rate(['1'], ['99'])

  ids, scores = conftest.RETRIEVAL_TOP3['1']
  assert [(r.movie_id, r.score) for r in answer.items] == list(
      zip(ids, scores))
  assert ratings == [Rating('1', '10', 4.5, RANKING, 1),
                     Rating('2', '20', 2.25, RANKING, 1)]
  assert (answer.cold_start, new_user.cold_start) == (False, True)
  assert new_movie == Rating('1', '99', 3.5, RANKING, 1, unknown_movie=True)
  assert client.status(RANKING) == [VersionStatus(1, 'AVAILABLE', 'OK', '')]
  signature = client.metadata(RETRIEVAL).signatures['serving_default']
  assert signature.inputs == {'user_id': TensorInfo('string', (None,))}


def test_same_answers_as_the_local_server(client, local_server):
  local = ServingClient(local_server.address)
  for model, inputs in ((RECOMMENDER, {'user_id': ['1', '2', 'x']}),
                        (RANKING, {'user_id': ['1', 'x'],
                                   'movie_id': ['10', 'y']})):
    real = client.predict(model, inputs)
    ours = local.predict(model, inputs)
    assert (real.model, real.version) == (ours.model, ours.version)
    assert sorted(real.outputs) == sorted(ours.outputs)
    for name, value in real.outputs.items():
      assert value.dtype == ours.outputs[name].dtype
      assert value.tolist() == ours.outputs[name].tolist()


def test_the_same_errors(client):
  with pytest.raises(ModelNotFoundError):
    client.recommend(['1'], model='nope')
  with pytest.raises(ModelNotAvailableError, match='version 7 not available'):
    client.recommend(['1'], model=RETRIEVAL, version=7)
  with pytest.raises(InvalidInputError):
    client.rate(['1'], ['10'], model=RETRIEVAL)
