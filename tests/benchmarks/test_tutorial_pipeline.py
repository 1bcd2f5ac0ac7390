"""The tutorial-shaped pipeline of the speed benchmark, end to end on a
small synthetic release: its components run and its pushed model answers."""

import glob
import os

import pytest

from benchmarks import common
from benchmarks import pipeline_speed as speed
from movielens import synthetic

pytestmark = pytest.mark.e2e


def test_tutorial_pipeline_pushes_a_model_that_answers_with_catalogue_titles(
    tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  raw = tmp_path / 'raw'
  synthetic.generate(str(raw), num_users=30, num_movies=60, num_ratings=400,
                     seed=0)
  records = synthetic.synthesize(30, 60, 400, seed=0)
  work = tmp_path / 'work'
  result = speed.run_measured(
      speed.tutorial_command(str(raw), str(work)) + ['--epochs', '1'],
      'tutorial', str(tmp_path / 'tutorial.out'),
      common.Progress(str(tmp_path / 'progress.log')))
  assert result['exit_code'] == 0, (tmp_path / 'tutorial.out').read_text()
  assert [c['component'] for c in result['components']] == [
      'CsvExampleGen', 'StatisticsGen', 'SchemaGen', 'ExampleValidator',
      'Transform', 'Trainer', 'Pusher']
  assert all(c['cpu_seconds'] is not None for c in result['components'])
  assert result['wall_seconds'] >= sum(
      c['wall_seconds'] for c in result['components'])
  assert result['cpu_seconds'] > 0

  versions = glob.glob(str(work / 'serving' / '*' / 'saved_model.pb'))
  assert len(versions) == 1
  serve = tf.saved_model.load(os.path.dirname(versions[0])).signatures[
      'serving_default']
  user_id = records.ratings[0].user_id
  answer = serve(user_id=tf.constant([user_id]))
  titles = answer['movie_titles'].numpy()
  assert titles.shape == (1, 10)
  catalogue = {movie.title.encode() for movie in records.movies}
  assert set(titles[0]) <= catalogue
  scores = answer['scores'].numpy()[0]
  assert list(scores) == sorted(scores, reverse=True)
