"""The pipeline-speed benchmark: ratio, table, code measured, the
tutorial's CSV (the tutorial pipeline end to end: test_tutorial_pipeline.py)."""

import csv
import glob
import os

import pytest

from benchmarks import common
from benchmarks import pipeline_speed as speed
from benchmarks.tutorial import data as tutorial_data
from movielens import layout, synthetic

pytestmark = pytest.mark.unit


def _run(wall, cpu, components, data='ml-100k', exit_code=0):
  return {
      'exit_code': exit_code, 'wall_seconds': wall, 'cpu_seconds': cpu,
      'command': 'python cmd', 'data': data, 'ratings': 100_000,
      'code': 'e9da52b2f6c3a1d0e9da52b2f6c3a1d0e9da52b2', 'dirty': False,
      'components': [{'component': name, 'wall_seconds': w, 'cpu_seconds': c}
                     for name, w, c in components],
  }


TUTORIAL = _run(100.0, 120.0, [('CsvExampleGen', 10.0, 11.0),
                               ('StatisticsGen', 8.0, 9.5),
                               ('Transform', 20.0, 30.0),
                               ('Trainer', 40.0, 50.0)])
OURS = _run(380.0, 480.0, [('MovieLensExampleGen', 30.0, 35.0),
                           ('StatisticsGen', 12.0, 14.0),
                           ('Transform', 60.0, 90.0),
                           ('RetrievalTrainer', 200.0, 250.0)])


def test_ratio_is_ours_over_tutorial_wall_time():
  # 380 s / 100 s = 3.80.
  assert speed.speed_ratio({'tutorial': TUTORIAL, 'ours': OURS}) == 3.8


@pytest.mark.parametrize('runs', [
    {'tutorial': TUTORIAL},
    {'tutorial': TUTORIAL, 'ours': dict(OURS, exit_code=1)},
    {'tutorial': TUTORIAL, 'ours': dict(OURS, data='ml-1m')},
])
def test_no_ratio_without_both_finished_runs_on_the_same_data(runs):
  assert speed.speed_ratio(runs) is None


def test_rendered_table_on_hand_written_results():
  table = speed.render_markdown(
      speed.merge_results(None, {'tutorial': TUTORIAL, 'ours': OURS}))
  # Tutorial in components: 10 + 8 + 20 + 40 = 78 s wall,
  # 11 + 9.5 + 30 + 50 = 100.5 s CPU. CPU ratio 480 / 120 = 4.00.
  assert ('| Tutorial | e9da52b | `python cmd` | ml-100k (100,000 ratings) '
          '| 4 | 100.0 | 120.0 | 78.0 / 100.5 |') in table
  assert ('| Ours | e9da52b | `python cmd` | ml-100k (100,000 ratings) | 4 '
          '| 380.0 | 480.0 | 302.0 / 389.0 |') in table
  assert 'wall time end to end: **3.80×** (CPU: 4.00×).' in table
  # A row per component id, the tutorial's order first; shared ids align.
  rows = [line for line in table.splitlines()
          if line.startswith('| ') and line.count('|') == 6]
  assert rows[1:] == [
      '| CsvExampleGen | 10.0 | 11.0 | – | – |',
      '| StatisticsGen | 8.0 | 9.5 | 12.0 | 14.0 |',
      '| Transform | 20.0 | 30.0 | 60.0 | 90.0 |',
      '| Trainer | 40.0 | 50.0 | – | – |',
      '| MovieLensExampleGen | – | – | 30.0 | 35.0 |',
      '| RetrievalTrainer | – | – | 200.0 | 250.0 |',
  ]


def test_a_single_pipeline_run_keeps_the_other_ones_result():
  first = speed.merge_results(None, {'tutorial': TUTORIAL, 'ours': OURS})
  faster = _run(50.0, 60.0, [('Trainer', 20.0, 25.0)])
  second = speed.merge_results(first, {'tutorial': faster})
  assert second['runs']['ours'] == OURS
  assert second['runs']['tutorial'] == faster
  assert second['ratio'] == 7.6  # 380 / 50.
  assert second['machine']['cpu_cores'] >= 1
  table = speed.render_markdown(speed.merge_results(None, {'ours': OURS}))
  assert '| Tutorial | not measured |' in table
  assert 'needs both pipelines' in table


def test_ours_runs_as_a_user_runs_it_plus_the_trial_arguments():
  args = speed.parse_args(['--only', 'ours',
                           '--runner-args=--no-ranking --epochs 2'])
  assert args.only == 'ours'
  assert args.runner_args == ['--no-ranking', '--epochs', '2']
  command = speed.ours_command('/d', '/w/ours', args.runner_args)
  assert command[1:] == [os.path.join(speed.REPO_ROOT, 'runner_local.py'),
                         '--data-dir', '/d', '--output-dir', '/w/ours',
                         '--no-cache', '--no-ranking', '--epochs', '2']
  assert speed._shown(command) == (  # pylint: disable=protected-access
      'python runner_local.py --data-dir /d --output-dir /w/ours --no-cache '
      '--no-ranking --epochs 2')
  assert speed.parse_args([]).only == 'both'
  with pytest.raises(SystemExit):
    speed.parse_args(['--only', 'neither'])


def test_the_rerun_is_ours_again_with_the_cache_on(tmp_path):
  assert '--no-cache' not in speed.ours_command('/d', '/w/ours', cache=True)
  # Versions pushed: the folders under serving/<servable>.
  for servable, versions in (('retrieval', ['17', '18']), ('ranking', ['9'])):
    for version in versions:
      (tmp_path / 'serving' / servable / version).mkdir(parents=True)
  assert speed.pushed_versions(str(tmp_path)) == {
      'retrieval': ['17', '18'], 'ranking': ['9'], 'recommender': []}
  assert speed.count_cached([
      '[  1.0s] Transform              reused from cache in 0.1s',
      '[  9.0s] RetrievalTrainer       done in 8.0s (cpu 9.0s)']) == 1


def test_rerun_ratio_and_its_line_in_the_table():
  rerun = dict(_run(19.0, 21.0, []), cached_components=17,
               new_versions_pushed={'retrieval': [], 'ranking': [],
                                    'recommender': []})
  runs = {'tutorial': TUTORIAL, 'ours': OURS, 'ours_rerun': rerun}
  assert speed.rerun_ratio(runs) == 0.05  # 19 / 380.
  assert speed.rerun_ratio({'ours': OURS}) is None
  assert speed.rerun_ratio(
      {'ours': OURS, 'ours_rerun': dict(rerun, exit_code=1)}) is None
  table = speed.render_markdown(speed.merge_results(None, runs))
  assert ('19.0 s, **0.050×** the first run; 17 components reused from '
          'cache, 0 model versions pushed.') in table
  # The rerun is no row of the pipelines' table.
  assert table.count('| `python cmd` |') == 2


def test_the_table_says_when_the_measured_tree_had_uncommitted_changes():
  dirty = dict(OURS, dirty=True)
  older = {key: value for key, value in TUTORIAL.items() if key != 'dirty'}
  table = speed.render_markdown(
      speed.merge_results(None, {'tutorial': older, 'ours': dirty}))
  assert '| Ours | e9da52b + uncommitted changes | `python cmd` |' in table
  # A result written before `dirty` was recorded says it is unknown.
  assert '| Tutorial | e9da52b (dirty: ?) | `python cmd` |' in table
  assert speed.code_text({'code': None}) == '?'


def test_each_run_records_its_commit_and_whether_the_tree_was_clean(
    monkeypatch):
  monkeypatch.setattr(common, 'git_revision',
                      lambda: {'commit': 'abc123', 'dirty': True})
  assert speed.code_measured() == {'code': 'abc123', 'dirty': True}


def test_the_csv_has_a_row_per_rating_with_its_movie_title(tmp_path):
  raw = tmp_path / 'raw'
  synthetic.generate(str(raw), num_users=20, num_movies=30, num_ratings=150,
                     seed=3)
  records = synthetic.synthesize(20, 30, 150, seed=3)
  titles = {movie.movie_id: movie.title for movie in records.movies}
  path = tmp_path / 'csv' / 'ratings.csv'
  assert tutorial_data.write_ratings_csv(str(raw), str(path)) == 150
  with open(path, encoding='utf-8', newline='') as f:
    reader = csv.DictReader(f)
    rows = [(row['user_id'], row['movie_title']) for row in reader]
  assert reader.fieldnames == ['user_id', 'movie_title']
  assert len(rows) == common.count_ratings(str(raw)) == 150
  assert rows == [(r.user_id, titles[r.movie_id]) for r in records.ratings]


def _write_ml100k(folder, ratings, movies):
  folder.mkdir()
  (folder / 'u.data').write_text(
      ''.join(layout.format_ml100k_rating(r) for r in ratings))
  (folder / 'u.item').write_text(
      ''.join(layout.format_ml100k_movie(m) for m in movies),
      encoding='latin-1')


def test_the_csv_quotes_titles_with_commas_and_refuses_unknown_movies(
    tmp_path):
  movie = layout.Movie('7', 'American President, The (1995)', 1995,
                       ('Comedy',))
  _write_ml100k(tmp_path / 'ok', [layout.Rating('1', '7', 4.0, 880000000)],
                [movie])
  path = tmp_path / 'ok.csv'
  tutorial_data.write_ratings_csv(str(tmp_path / 'ok'), str(path))
  assert path.read_text(encoding='utf-8') == (
      'user_id,movie_title\n1,"American President, The (1995)"\n')
  _write_ml100k(tmp_path / 'bad', [layout.Rating('1', '8', 4.0, 880000000)],
                [movie])
  with pytest.raises(ValueError, match='movie 8 is not in u.item'):
    tutorial_data.write_ratings_csv(str(tmp_path / 'bad'),
                                    str(tmp_path / 'bad.csv'))
