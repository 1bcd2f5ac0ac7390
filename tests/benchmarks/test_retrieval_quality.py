"""Tests for the plumbing of benchmarks.retrieval_quality (no TensorFlow)."""

import os
import subprocess
import sys

import pytest

from benchmarks import common
from benchmarks import retrieval_quality as rq

pytestmark = pytest.mark.unit


def test_latest_pushed_model_compares_versions_as_integers(tmp_path):
  serving = tmp_path / 'serving' / 'retrieval'
  for name in ('9', '10', 'tmp-123'):
    (serving / name).mkdir(parents=True)
  # '9' > '10' as strings; as integers 10 is the newest.
  assert rq.latest_pushed_model(str(tmp_path)) == str(serving / '10')


def test_latest_pushed_model_without_push_says_so(tmp_path):
  with pytest.raises(RuntimeError, match='no pushed model'):
    rq.latest_pushed_model(str(tmp_path))


@pytest.mark.parametrize('protocol, epochs, options, extra', [
    ('tfrs', None, {}, [rq.NO_EXCLUDE_SEEN_FLAG]),
    ('msrec', 3, {}, ['--epochs', '3']),
    ('msrec', None, {'hparams': ['temperature=0.2', 'seed=1'],
                     'eval_fraction': 0.1},
     ['--hparam', 'temperature=0.2', '--hparam', 'seed=1',
      '--eval-fraction', '0.1']),
])
def test_run_pipeline_command(monkeypatch, tmp_path, protocol, epochs,
                              options, extra):
  calls = []

  def fake_run(command, **kwargs):
    calls.append((command, kwargs))
    (tmp_path / 'out' / 'serving' / 'retrieval' / '1700000000').mkdir(
        parents=True)
    return subprocess.CompletedProcess(command, 0)

  monkeypatch.setattr(common.subprocess, 'run', fake_run)
  (tmp_path / 'out' / 'stale').mkdir(parents=True)
  model_dir = rq.run_pipeline(protocol, 'train-dir', str(tmp_path / 'out'),
                              epochs, **options)

  (command, kwargs), = calls
  assert command == [sys.executable, common.RUNNER, '--data-dir', 'train-dir',
                     '--output-dir', str(tmp_path / 'out')] + extra
  assert kwargs['env']['TF_USE_LEGACY_KERAS'] == '1'
  assert model_dir.endswith(os.path.join('serving', 'retrieval',
                                         '1700000000'))
  # The output folder was emptied before the run.
  assert not (tmp_path / 'out' / 'stale').exists()


def test_run_pipeline_failure_raises(monkeypatch, tmp_path):
  monkeypatch.setattr(
      common.subprocess, 'run',
      lambda command, **_: subprocess.CompletedProcess(command, 1))
  with pytest.raises(RuntimeError, match='exited with 1'):
    rq.run_pipeline('msrec', 'train-dir', str(tmp_path / 'out'), None)


def test_update_readme_replaces_between_markers(tmp_path):
  readme = tmp_path / 'README.md'
  readme.write_text(f'intro\n{rq.RESULTS_BEGIN}\nold\n{rq.RESULTS_END}\nend\n',
                    encoding='utf-8')
  rq.update_readme(str(readme), '| new |')
  assert readme.read_text(encoding='utf-8') == (
      f'intro\n{rq.RESULTS_BEGIN}\n| new |\n{rq.RESULTS_END}\nend\n')


def test_update_readme_without_markers_is_an_error(tmp_path):
  readme = tmp_path / 'README.md'
  readme.write_text('no markers\n', encoding='utf-8')
  with pytest.raises(ValueError, match='markers'):
    rq.update_readme(str(readme), 'table')


def test_parse_args_rejects_unknown_protocol(capsys):
  with pytest.raises(SystemExit):
    rq.parse_args(['--protocols', 'tfrs,netflix'])
  assert 'netflix' in capsys.readouterr().err
  assert rq.parse_args(['--protocols', 'msrec']).protocols == ['msrec']


def test_served_recommendations_reads_the_serving_signature(tmp_path):
  tf = pytest.importorskip('tensorflow')

  class FakeRetrieval(tf.Module):
    """Serves '<user>-0' .. '<user>-99' for each user, like the real model."""

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name='user_id')])
    def serve(self, user_id):
      batch = tf.shape(user_id)[0]
      ranks = tf.tile(tf.strings.as_string(tf.range(100))[tf.newaxis],
                      [batch, 1])
      users = tf.tile(user_id[:, tf.newaxis], [1, 100])
      movie_ids = tf.strings.join([users, ranks], separator='-')
      return {'movie_ids': movie_ids, 'movie_titles': movie_ids,
              'scores': tf.zeros([batch, 100])}

  module = FakeRetrieval()
  model_dir = str(tmp_path / 'serving' / 'retrieval' / '1')
  tf.saved_model.save(module, model_dir,
                      signatures={'serving_default': module.serve})

  # More users than one serving batch.
  user_ids = [str(u) for u in range(1, rq.SERVING_BATCH + 3)]
  recs = rq.served_recommendations(model_dir, user_ids, k=10)
  assert list(recs) == user_ids
  assert recs['1'] == [f'1-{r}' for r in range(10)]
  assert recs[user_ids[-1]][0] == f'{user_ids[-1]}-0'
  with pytest.raises(ValueError, match='serves 100 movies'):
    rq.served_recommendations(model_dir, ['1'], k=101)
