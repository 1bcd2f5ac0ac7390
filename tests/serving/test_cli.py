"""The client's command line (`python -m serving.client`) against the local
server: what each command prints, `--json`, and failures as one `error:`
line with exit code 1."""

import json
import os
import socket
import subprocess
import sys

import pytest

from serving import client as serving_client

pytestmark = pytest.mark.integration

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _run(capsys, *argv):
  code = serving_client.main(list(argv))
  out, err = capsys.readouterr()
  return code, out, err


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def test_recommend_prints_each_users_list(local_server, capsys):
  code, out, err = _run(capsys, 'recommend', '--user', '1', '--user', '2',
                        '--address', local_server.address)

  assert (code, err) == (0, '')
  # Ratings 2.5 + score / 2 (tests/serving/conftest.py).
  assert out.splitlines() == [
      'user 1 (recommender version 1):',
      '    1. 30  Thirty (1992)  rating 4.00  score 3.0000',
      '    2. 10  Ten (1990)     rating 3.50  score 2.0000',
      '',
      'user 2 (recommender version 1):',
      '    1. 20  Twenty (1991)  rating 4.00  score 3.0000',
      '    2. 30  Thirty (1992)  rating 3.50  score 2.0000',
  ]


def test_recommend_says_when_the_answer_is_a_cold_start(local_server,
                                                        capsys):
  code, out, _ = _run(capsys, 'recommend', '--user', 'new-user',
                      '--address', local_server.address)
  _, json_out, _ = _run(capsys, 'recommend', '--user', 'new-user', '--json',
                        '--address', local_server.address)

  assert code == 0
  assert out.splitlines() == [
      'user new-user (recommender version 1, unknown user: cold-start '
      'answer):',
      '    1. 10  Ten (1990)     rating 4.00  score 3.0000',
      '    2. 30  Thirty (1992)  rating 3.50  score 2.0000',
  ]
  assert json.loads(json_out) == [{
      'user_id': 'new-user', 'model': 'recommender', 'version': 1,
      'cold_start': True,
      'items': [{'movie_id': '10', 'title': 'Ten (1990)', 'score': 3.0,
                 'rating': 4.0},
                {'movie_id': '30', 'title': 'Thirty (1992)', 'score': 2.0,
                 'rating': 3.5}]}]


def test_top_above_what_the_model_returns_is_one_error_line(local_server,
                                                            capsys):
  code, out, err = _run(capsys, 'recommend', '--user', '1', '--top', '3',
                        '--address', local_server.address)

  assert (code, out) == (1, '')
  assert err == ("error: model 'recommender' version 1 returns 2 movies per "
                 'user, fewer than the 3 asked for\n')


def test_without_top_at_most_ten_movies_are_shown(local_server, capsys):
  # Retrieval returns 3 per user here: all of them, below the default 10.
  code, out, _ = _run(capsys, 'recommend', '--user', '1', '--model',
                      'retrieval', '--address', local_server.address)

  assert code == 0
  assert out.splitlines() == [
      'user 1 (retrieval version 1):',
      '    1. 30  Thirty (1992)  score 3.0000',
      '    2. 10  Ten (1990)     score 2.0000',
      '    3. 20  Twenty (1991)  score 1.0000',
  ]


def test_recommend_json_from_another_model(local_server, capsys):
  code, out, _ = _run(capsys, 'recommend', '--user', 'new-user', '--model',
                      'retrieval', '--version', '1', '--top', '1', '--json',
                      '--address', local_server.address)

  assert code == 0
  assert json.loads(out) == [{
      'user_id': 'new-user', 'model': 'retrieval', 'version': 1,
      'cold_start': True,
      'items': [{'movie_id': '10', 'title': 'Ten (1990)', 'score': 3.0,
                 'rating': None}]}]


def test_rate_says_which_ids_the_model_does_not_know(local_server, capsys):
  code, out, _ = _run(capsys, 'rate', '--user', '1', '--user', 'x',
                      '--movie', '10', '--movie', '99',
                      '--address', local_server.address)
  _, json_out, _ = _run(capsys, 'rate', '--user', '1', '--movie', '99',
                        '--json', '--address', local_server.address)

  assert code == 0
  assert out.splitlines() == [
      'user 1  movie 10  4.500  (ranking version 1)',
      'user x  movie 99  3.000  (ranking version 1)  [unknown user: cold '
      'start, unknown movie]']
  assert json.loads(json_out) == [{
      'user_id': '1', 'movie_id': '99', 'rating': 3.5, 'model': 'ranking',
      'version': 1, 'unknown_user': False, 'unknown_movie': True}]


def test_status_and_metadata(local_server, capsys):
  status = _run(capsys, 'status', '--model', 'ranking', '--address',
                local_server.address)
  metadata = _run(capsys, 'metadata', '--model', 'ranking', '--address',
                  local_server.address)

  assert status == (0, 'ranking version 1: AVAILABLE\n', '')
  assert metadata[0] == 0
  assert metadata[1].splitlines() == [
      'ranking version 1',
      '  signature serving_default',
      '    inputs:',
      '      movie_id: string [None]',
      '      user_id: string [None]',
      '    outputs:',
      '      rating: float32 [None]']


@pytest.mark.parametrize('argv, message', [
    (['recommend', '--user', '1', '--model', 'nope'],
     "error: model 'nope' not found on {address}"),
    (['status', '--model', 'ranking', '--version', '3'],
     "error: model 'ranking' version 3 not available on {address} "
     '(serving version(s) 1)'),
    (['rate', '--user', '1', '--user', '2', '--movie', '1', '--movie', '2',
      '--movie', '3'],
     'error: 2 user ids and 3 movie ids: give one of each per pair, or one '
     'user (or movie) for all'),
])
def test_failures_are_one_line_and_exit_1(local_server, capsys, argv,
                                          message):
  code, out, err = _run(capsys, *argv, '--address', local_server.address)

  assert (code, out) == (1, '')
  assert err == message.format(address=local_server.address) + '\n'


def test_usage_errors_exit_2(capsys):
  with pytest.raises(SystemExit) as raised:
    serving_client.main(['recommend', '--timeout', '0', '--user', '1'])

  assert raised.value.code == 2
  assert '--timeout: must be > 0' in capsys.readouterr().err


def test_python_dash_m_serving_client_prints_no_traceback():
  address = f'127.0.0.1:{_free_port()}'

  done = subprocess.run(
      [sys.executable, '-m', 'serving.client', 'recommend', '--user', '1',
       '--address', address], cwd=REPO_ROOT, capture_output=True, text=True,
      timeout=120)

  assert done.returncode == 1
  assert done.stdout == ''
  assert done.stderr == (
      f'error: cannot reach TF Serving at {address} (connection refused)\n')
