"""The runners from the command line: a bad hyper-parameter stops each one
at once, before TensorFlow is imported, with one line and exit status 2."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize('runner', ['runner_local.py', 'runner_vertex.py',
                                    'runner_kubeflow.py'])
def test_a_bad_ranking_hparam_stops_the_runner_with_one_line(runner):
  # -X importtime lists every module imported: TensorFlow must not be.
  result = subprocess.run(
      [sys.executable, '-X', 'importtime', runner, '--ranking-hparam',
       'architecture=foo'],
      cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
      env={**os.environ, 'PYTHONPATH': ROOT})

  assert result.returncode == 2
  assert result.stdout == ''
  errors = [line for line in result.stderr.splitlines()
            if not line.startswith('import time:')]
  assert errors == [
      f"{runner}: error: --ranking-hparam: Hyper-parameter architecture: "
      "expected one of 'mlp', 'dcn', got 'foo'"]
  imported = {line.split('|')[-1].strip()
              for line in result.stderr.splitlines()
              if line.startswith('import time:')}
  assert 'modules.hparams' in imported
  assert 'tensorflow' not in imported
