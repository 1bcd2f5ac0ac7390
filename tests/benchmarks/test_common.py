"""What the benchmarks share: the runner's command and environment, the
commit measured and whether the tree was clean, the runner's output, the
results files."""

import os
import subprocess
import sys

import pytest

from benchmarks import common

pytestmark = pytest.mark.integration


def test_repo_root_holds_the_runner_the_benchmarks_run():
  assert os.path.isfile(os.path.join(common.REPO_ROOT, 'runner_local.py'))
  assert common.RUNNER == os.path.join(common.REPO_ROOT, 'runner_local.py')


def test_runner_command_is_the_users_command_line_plus_the_extra_arguments():
  assert common.runner_command('/d', '/o', ['--epochs', '1']) == [
      sys.executable, common.RUNNER, '--data-dir', '/d', '--output-dir', '/o',
      '--epochs', '1']
  assert common.runner_command('/d', '/o') == [
      sys.executable, common.RUNNER, '--data-dir', '/d', '--output-dir', '/o']


def test_child_env_chooses_keras_2_and_keeps_this_environment(monkeypatch):
  monkeypatch.setenv('TF_USE_LEGACY_KERAS', '0')
  monkeypatch.setenv('SOME_SETTING', 'kept')
  env = common.child_env(PYTHONUNBUFFERED='1')
  assert env['TF_USE_LEGACY_KERAS'] == '1'
  assert env['SOME_SETTING'] == 'kept'
  assert env['PYTHONUNBUFFERED'] == '1'


def test_run_runner_runs_from_the_repository_root_and_raises_on_failure(
    tmp_path):
  marker = tmp_path / 'cwd.txt'
  common.run_runner([
      sys.executable, '-c',
      f'import os; open({str(marker)!r}, "w").write(os.getcwd() + " " + '
      'os.environ["TF_USE_LEGACY_KERAS"])'])
  assert marker.read_text() == f'{common.REPO_ROOT} 1'
  with pytest.raises(RuntimeError, match='runner_local.py exited with 3'):
    common.run_runner([sys.executable, '-c', 'raise SystemExit(3)'])


def _git(repo, *args):
  subprocess.run(['git', '-c', 'user.name=t', '-c', 'user.email=t@t', *args],
                 cwd=repo, check=True, capture_output=True)


@pytest.fixture(name='repo')
def _repo(tmp_path):
  """A checkout with code, a results file and the benchmarks README."""
  for path in ('pipeline.py', 'benchmarks/results/speed.json',
               'benchmarks/README.md', 'README.md'):
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / path).write_text('v1\n')
  _git(tmp_path, 'init', '-q')
  _git(tmp_path, 'add', '.')
  _git(tmp_path, 'commit', '-q', '-m', 'first')
  return tmp_path


def test_a_fresh_checkout_is_its_commit_and_clean(repo):
  head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=repo, check=True,
                        capture_output=True, text=True).stdout.strip()
  assert common.git_revision(str(repo)) == {'commit': head, 'dirty': False}


def test_results_the_benchmarks_write_and_untracked_files_leave_it_clean(
    repo):
  (repo / 'benchmarks/results/speed.json').write_text('v2\n')
  (repo / 'benchmarks/README.md').write_text('v2\n')
  (repo / 'notes.txt').write_text('not tracked\n')
  assert common.git_revision(str(repo))['dirty'] is False


@pytest.mark.parametrize('path', ['pipeline.py', 'README.md'])
def test_a_changed_tracked_file_makes_it_dirty(repo, path):
  (repo / path).write_text('v2\n')
  assert common.git_revision(str(repo))['dirty'] is True


def test_a_staged_change_makes_it_dirty(repo):
  (repo / 'pipeline.py').write_text('v2\n')
  _git(repo, 'add', 'pipeline.py')
  assert common.git_revision(str(repo))['dirty'] is True


def test_outside_git_neither_is_known(tmp_path):
  assert common.git_revision(str(tmp_path)) == {'commit': None,
                                                'dirty': None}


def test_this_checkout_has_a_full_commit_hash():
  commit = common.git_revision()['commit']
  assert len(commit) == 40 and int(commit, 16) >= 0


def test_component_times_from_progress_lines_with_cpu():
  lines = [
      'Pipeline tfrs-tutorial: 100,000 ratings written to /w/data in 0.4s',
      '[    7.8s] CsvExampleGen          started',
      '[   10.5s] CsvExampleGen          done in 2.7s (cpu 2.0s)',
      '[   10.6s] StatisticsGen          reused from cache in 0.1s (cpu 0.0s)',
      '[   25.0s] Transform              done in 10.5s (cpu 19.9s)',
      '[   30.0s] Pusher                 done in 0.1s',  # Before the CPU field.
      '1/1 - 8s - loss: 1818.8 - done in 3s (cpu 1s)',  # Not a progress line.
  ]
  assert common.component_times(lines) == [
      {'component': 'CsvExampleGen', 'wall_seconds': 2.7, 'cpu_seconds': 2.0},
      {'component': 'Transform', 'wall_seconds': 10.5, 'cpu_seconds': 19.9},
      {'component': 'Pusher', 'wall_seconds': 0.1, 'cpu_seconds': None},
  ]



@pytest.mark.parametrize('line, expected', [
    ('[  12.3s] Transform              done in 8.1s', True),
    ('[   0.0s] Transform              started', True),
    ('retrieval epoch 1: 1,200 batches, 614,400 examples, 10,523 '
     'examples/s, loss 812.3100', True),
    ('ranking epoch 12: 3.4s loss 8.9890 rmse 0.8654', True),
    ('read 4,012,426 training examples for MovieRows, UserRows in 61.0s '
     '(65,777 examples/s)', True),
    ('INFO absl: Training model.', False),
    ('the retrieval epoch was long', False),
])
def test_progress_lines_go_to_the_log(line, expected):
  assert common.is_progress_line(line) is expected


def test_count_ratings_leaves_out_the_header(tmp_path):
  from movielens import synthetic  # pylint: disable=g-import-not-at-top
  synthetic.main(['--layout', 'ml-25m', '--ratings', '1200', '--seed', '0',
                  '--dest', str(tmp_path)])
  with open(tmp_path / 'ratings.csv', encoding='utf-8') as f:
    assert next(f).startswith('userId,')
  assert common.count_ratings(str(tmp_path)) == 1200


def test_latest_version_compares_integer_folders_as_integers(tmp_path):
  for name in ('9', '10', '.staging', 'tmp-123'):
    (tmp_path / name).mkdir()
  # '9' > '10' as strings; as integers 10 is the newest.
  assert common.latest_version(str(tmp_path)) == str(tmp_path / '10')
  assert common.latest_version(str(tmp_path / 'missing')) is None


def test_latest_artifact_dir_takes_the_newest_execution(tmp_path):
  for run, execution in (('a', '7'), ('b', '12'), ('b', 'x')):
    (tmp_path / 'pipeline' / run / 'Transform' / 'transform_graph' /
     execution).mkdir(parents=True)
  assert common.latest_artifact_dir(str(tmp_path), 'Transform',
                                    'transform_graph') == str(
                                        tmp_path / 'pipeline' / 'b' /
                                        'Transform' / 'transform_graph' / '12')
  assert common.latest_artifact_dir(str(tmp_path), 'Trainer', 'model') is None


def test_percentile_is_the_nearest_rank():
  values = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]

  # rank = ceil(q / 100 * 10): p50 -> 5th, p90 -> 9th, p99 -> 10th,
  # p1 -> 1st, p55 -> ceil(5.5) = 6th.
  assert common.percentile(values, 50) == 50
  assert common.percentile(values, 90) == 90
  assert common.percentile(values, 99) == 100
  assert common.percentile(values, 1) == 10
  assert common.percentile(values, 55) == 60
  assert common.percentile(values, 100) == 100


def test_p99_of_a_thousand_values_is_the_990th():
  values = list(range(1, 1001))  # 1 .. 1000

  # ceil(0.99 * 1000) = 990; ceil(0.5 * 1000) = 500.
  assert common.percentile(values, 99) == 990
  assert common.percentile(values, 50) == 500
  assert common.percentile([7], 99) == 7


@pytest.mark.parametrize('values, q', [([], 50), ([1], 0), ([1], 101)])
def test_percentile_refuses_what_has_no_answer(values, q):
  with pytest.raises(ValueError):
    common.percentile(values, q)


def test_load_average_is_three_rounded_figures():
  load = common.load_average()
  assert len(load) == 3
  assert all(value >= 0 and round(value, 2) == value for value in load)


def test_write_json_then_read_json_round_trip(tmp_path):
  path = str(tmp_path / 'results' / 'bench.json')
  assert common.read_json(path) is None
  common.write_json(path, {'b': 'λ', 'a': 1}, sort_keys=True)
  with open(path, encoding='utf-8') as f:
    assert f.read() == '{\n  "a": 1,\n  "b": "λ"\n}\n'
  assert common.read_json(path) == {'a': 1, 'b': 'λ'}
  assert os.listdir(tmp_path / 'results') == ['bench.json']


def test_progress_writes_timestamped_lines_to_the_log(tmp_path, capsys):
  log = common.Progress(str(tmp_path / 'logs' / 'progress.log'))
  log('1M: started')
  line = (tmp_path / 'logs' / 'progress.log').read_text().rstrip('\n')
  assert line.endswith(' 1M: started') and len(line) == len(
      '2026-01-01 00:00:00 1M: started')
  assert capsys.readouterr().out == line + '\n'
