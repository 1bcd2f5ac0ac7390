"""Faults a real run meets, end to end on synthetic data: `kill -9` in a
Trainer and in a Pusher, a push's staging folder left behind, a second run
on the same output folder, and an output folder that cannot be used. After
each, the next run completes from the cache, pushes one version per model
and leaves no staging folder."""

import os
import signal
import subprocess
import sys
import time

import pytest

from movielens import synthetic

pytestmark = pytest.mark.e2e

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = ['--epochs', '2', '--ranking-epochs', '2', '--hparam',
         'ensemble_size=1', '--ranking-hparam', 'ensemble_size=1']
MODELS = ('retrieval', 'ranking', 'recommender')


def _command(data_dir, output_dir):
  return [sys.executable, os.path.join(REPO, 'runner_local.py'),
          '--data-dir', data_dir, '--output-dir', output_dir] + FLAGS


def _env():
  return dict(os.environ, TF_USE_LEGACY_KERAS='1', PYTHONPATH=REPO)


def _run_until(data_dir, output_dir, line_part, timeout=600):
  """Starts a run and kills it (SIGKILL) once a console line holds
  `line_part`; returns the lines printed until then."""
  run = subprocess.Popen(_command(data_dir, output_dir), cwd=REPO,
                         env=_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
  lines = []
  deadline = time.monotonic() + timeout
  try:
    for line in run.stdout:
      lines.append(line.rstrip('\n'))
      if line_part in line:
        run.send_signal(signal.SIGKILL)
        break
      assert time.monotonic() < deadline, '\n'.join(lines[-20:])
    else:
      pytest.fail(f'the run ended before {line_part!r}:\n' +
                  '\n'.join(lines[-30:]))
  finally:
    run.kill()
    run.wait()
  return lines


def _run(data_dir, output_dir):
  done = subprocess.run(_command(data_dir, output_dir), cwd=REPO, env=_env(),
                        capture_output=True, text=True, timeout=900)
  return done.returncode, done.stdout.splitlines(), done.stderr


def _versions(output_dir, model):
  base = os.path.join(output_dir, 'serving', model)
  return sorted(v for v in os.listdir(base) if v.isdigit())


def _staging(output_dir):
  serving = os.path.join(output_dir, 'serving')
  return [os.path.join(model, name)
          for model in (os.listdir(serving) if os.path.isdir(serving) else [])
          if os.path.isdir(os.path.join(serving, model))
          for name in os.listdir(os.path.join(serving, model))
          if name.startswith('.')]


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('raw'))
  # As in test_runner_local_e2e: tastes strong enough for both models to
  # be blessed, so all three are pushed.
  synthetic.generate(path, num_users=150, num_movies=300, num_ratings=6000,
                     seed=7, zipf_exponent=0.6, taste_weight=40)
  return path


def test_killed_in_a_trainer_then_in_a_pusher_the_rerun_completes(
    data_dir, tmp_path):
  output_dir = str(tmp_path / 'out')
  before = _run_until(data_dir, output_dir, 'RetrievalTrainer       started')
  assert any('Transform              done' in line for line in before)

  # Killed in a Pusher; and a push killed mid-copy earlier, its staging
  # folder left behind.
  _run_until(data_dir, output_dir, 'RetrievalPusher        started')
  stale = os.path.join(output_dir, 'serving', 'retrieval', '.push-killed')
  os.makedirs(os.path.join(stale, '1'), exist_ok=True)
  with open(os.path.join(stale, '1', 'saved_model.pb'), 'wb') as f:
    f.write(b'half')

  code, lines, stderr = _run(data_dir, output_dir)
  assert code == 0, stderr[-3000:]
  reused = {line.split('] ', 1)[1].split()[0] for line in lines
            if 'reused from cache' in line}
  assert {'MovieLensExampleGen', 'Transform', 'RankingTrainer',
          'RetrievalTrainer', 'RetrievalRefit'} <= reused
  for model in MODELS:
    assert len(_versions(output_dir, model)) == 1, model
  assert _staging(output_dir) == []


def test_a_second_run_on_the_same_output_folder_is_refused(data_dir,
                                                           tmp_path):
  output_dir = str(tmp_path / 'out')
  first = subprocess.Popen(_command(data_dir, output_dir), cwd=REPO,
                           env=_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
  try:
    for line in first.stdout:
      if 'started' in line:
        break
    code, _, stderr = _run(data_dir, output_dir)
    assert code == 1
    assert f'{output_dir} is in use by another run (PID {first.pid}, ' in (
        stderr)
    assert 'Traceback' not in stderr
  finally:
    first.kill()
    first.wait()


@pytest.mark.parametrize('make_bad', ['file', 'glob'])
def test_an_unusable_output_folder_is_one_line(data_dir, tmp_path,
                                               make_bad):
  if make_bad == 'file':
    output_dir = str(tmp_path / 'outputs')
    with open(output_dir, 'w') as f:
      f.write('')
    expected = f'error: --output-dir {output_dir}: is a file'
  else:
    output_dir = str(tmp_path / 'outputs [copy]')
    expected = 'holds a glob character'
  code, _, stderr = _run(data_dir, output_dir)
  assert code == 2
  assert expected in stderr and len(stderr.strip().splitlines()) == 1
