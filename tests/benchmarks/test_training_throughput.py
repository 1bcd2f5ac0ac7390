"""The training throughput benchmark: its arithmetic, the anchor model on a
hand-made dataset read as the trainers read theirs, the epoch timer, the
Transform output it finds, and the README section. No pipeline run."""

import os

import pytest

from benchmarks import training_throughput as tt

pytestmark = pytest.mark.unit


def test_summarise_epochs_by_hand():
  # 80,000 ratings an epoch; epochs of 12, 2, 2.5 and 1.5 s.
  summary = tt.summarise_epochs([12.0, 2.0, 2.5, 1.5], 80_000,
                                first_step_seconds=10.25)

  # Later epochs: mean (2 + 2.5 + 1.5) / 3 = 2 s -> 80,000 / 2 = 40,000/s;
  # first epoch 80,000 / 12 = 6,666.7/s and 12 - 2 = 10 s more than a
  # steady one.
  assert summary == {
      'first_epoch_s': 12.0, 'steady_epoch_s': 2.0, 'epoch_s_min': 1.5,
      'epoch_s_max': 2.5, 'examples_per_s': 40_000.0,
      'first_epoch_examples_per_s': 6666.7, 'first_epoch_extra_s': 10.0,
      'first_step_s': 10.25}


def test_summarise_epochs_without_a_first_step_time():
  summary = tt.summarise_epochs([3.0, 1.0], 1000)

  # One later epoch of 1 s: 1,000 examples/s; 3 - 1 = 2 s of extra.
  assert summary['examples_per_s'] == 1000.0
  assert summary['first_epoch_extra_s'] == 2.0
  assert summary['first_step_s'] is None


@pytest.mark.parametrize('seconds, examples', [([5.0], 100), ([], 100),
                                               ([5.0, 1.0], 0),
                                               ([5.0, 0.0], 100)])
def test_summarise_epochs_refuses_what_has_no_steady_figure(seconds,
                                                            examples):
  with pytest.raises(ValueError):
    tt.summarise_epochs(seconds, examples)


def _write_ratings(path, ratings):
  """Gzipped TFRecords of transformed-looking examples (user_id_xf,
  movie_id_xf, rating_xf)."""
  import tensorflow as tf
  with tf.io.TFRecordWriter(path, 'GZIP') as writer:
    for user, movie, rating in ratings:
      example = tf.train.Example(features=tf.train.Features(feature={
          'user_id_xf': tf.train.Feature(
              int64_list=tf.train.Int64List(value=[user])),
          'movie_id_xf': tf.train.Feature(
              int64_list=tf.train.Int64List(value=[movie])),
          'rating_xf': tf.train.Feature(
              float_list=tf.train.FloatList(value=[rating])),
      }))
      writer.write(example.SerializeToString())


@pytest.fixture(name='ratings_file')
def _ratings_file(tmp_path):
  # Rank one: user u rates movie m a(u) * b(m); every pair rated, the 12
  # ratings written 10 times over (more steps per epoch, fewer epochs).
  taste = {0: 1.0, 1: 2.0, 2: 1.5, 3: 0.5}
  appeal = {0: 2.0, 1: 1.0, 2: 2.5}
  ratings = [(u, m, taste[u] * appeal[m]) for u in taste for m in appeal]
  ratings *= 10
  path = str(tmp_path / 'ratings.gz')
  _write_ratings(path, ratings)
  return path


def test_anchor_learns_the_ratings_read_as_the_trainers_read_them(
    ratings_file):
  import tensorflow as tf
  from modules import training_data

  spec = {'user_id_xf': tf.io.FixedLenFeature([], tf.int64),
          'movie_id_xf': tf.io.FixedLenFeature([], tf.int64),
          'rating_xf': tf.io.FixedLenFeature([], tf.float32)}
  dataset = tt.with_rating_label(training_data.make_dataset(
      [ratings_file], spec, batch_size=8, shuffle=True, seed=0))
  tf.keras.utils.set_random_seed(0)
  model = tt.build_mf_model(num_users=4, num_movies=3, dim=4,
                            learning_rate=0.1)
  model.run_eagerly = True  # No tracing: seconds, not half a minute.
  timer = tt.make_epoch_timer('mf test')

  history = model.fit(dataset, epochs=4, callbacks=[timer], verbose=0)

  losses = history.history['loss']
  # Ratings 0.5 .. 5 (mean square 7.0) against predictions near 0 at the
  # start: the first epoch's mean squared error is large; by the fourth it
  # has fallen more than 20 times.
  assert losses[0] > 1.0
  assert losses[-1] < losses[0] / 20
  # 120 ratings in batches of 8: 15 steps an epoch, each epoch timed.
  assert timer.steps == [15] * 4
  assert len(timer.epoch_s) == 4 and min(timer.epoch_s) > 0
  assert 0 < timer.first_step_s <= timer.epoch_s[0]
  assert tt.count_examples([ratings_file]) == 120


def test_anchor_predicts_the_dot_product():
  import numpy as np
  import tensorflow as tf

  model = tt.build_mf_model(num_users=2, num_movies=2, dim=2)
  inputs = {'user_id_xf': tf.constant([0, 1], tf.int64),
            'movie_id_xf': tf.constant([1, 1], tf.int64),
            'genres_xf': tf.sparse.from_dense([[1, 0], [0, 0]])}  # ignored
  model(inputs)
  model.users.set_weights([np.array([[1.0, 2.0], [3.0, -1.0]])])
  model.movies.set_weights([np.array([[9.0, 9.0], [0.5, 4.0]])])

  # user 0 . movie 1 = 1 * 0.5 + 2 * 4 = 8.5; user 1: 3 * 0.5 - 4 = -2.5.
  assert model(inputs).numpy().tolist() == pytest.approx([8.5, -2.5])


def _artifact(root, component, key, execution, *files):
  folder = os.path.join(root, 'pipeline', 'movielens-tfx', component, key,
                        str(execution))
  os.makedirs(folder, exist_ok=True)
  for name in files:
    path = os.path.join(folder, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, 'w', encoding='utf-8').close()
  return folder


def test_transform_output_takes_the_newest_execution(tmp_path):
  root = str(tmp_path)
  _artifact(root, 'Transform', 'transform_graph', 9)
  newest_graph = _artifact(root, 'Transform', 'transform_graph', 12)
  _artifact(root, 'Transform', 'transformed_examples', 9,
            'Split-train/a.gz')
  newest = _artifact(root, 'Transform', 'transformed_examples', 12,
                     'Split-train/b.gz', 'Split-train/a.gz', 'Split-eval/c.gz')

  data = tt.transform_output(root)

  # 12 > 9 as numbers (not as text, where '9' > '12').
  assert data['transform_graph'] == newest_graph
  assert data['train_files'] == [os.path.join(newest, 'Split-train', n)
                                 for n in ('a.gz', 'b.gz')]
  assert data['eval_files'] == [os.path.join(newest, 'Split-eval', 'c.gz')]


def test_transform_output_missing(tmp_path):
  with pytest.raises(FileNotFoundError):
    tt.transform_output(str(tmp_path))
  _artifact(str(tmp_path), 'Transform', 'transform_graph', 1)
  _artifact(str(tmp_path), 'Transform', 'transformed_examples', 1,
            'Split-eval/c.gz')
  with pytest.raises(FileNotFoundError, match='Split-train'):
    tt.transform_output(str(tmp_path))


def _run(model, batch, examples_per_s, first_epoch_s, first_step_s,
         conversions, epochs=(30.0, 2.0, 2.0)):
  run = {'model': model, 'batch_size': batch, 'steps_per_epoch': 157,
         'autograph_conversions': conversions,
         'threads': {'intra_op': 0, 'inter_op': 0, 'usable_cores': 2},
         'load_average_before': [1.5, 1.0, 1.0],
         'load_average_after': [2.25, 1.0, 1.0]}
  if len(epochs) > 1:
    run.update(tt.summarise_epochs(list(epochs), 80_000, first_step_s))
    run['examples_per_s'] = examples_per_s
  else:
    run.update(first_epoch_s=first_epoch_s, first_step_s=first_step_s)
  return run


def _result():
  return {
      'date': '2026-11-28T07:00:00+00:00',
      'machine': {'cpu_model': 'AMD EPYC', 'cpu_cores': 2},
      'packages': {'tensorflow': '2.16.2', 'tf-keras': '2.16.0',
                   'tensorflow-recommenders': '0.7.7'},
      'data': {'examples': {'train': 80_000, 'eval': 20_000}},
      'config': {'epochs': 3, 'output': 'results/training_throughput.json'},
      'runs': [_run('retrieval', 512, 10_000.0, 0, 29.5, 1200),
               _run('mf', 512, 40_000.0, 0, 29.0, 460),
               _run('mf', 1024, 50_000.0, 0, 29.0, 460),
               _run('input', 512, 80_000.0, 0, 0.5, None)],
      'first_epoch_diagnosis': [
          _run('retrieval', 512, None, 4.5, 3.5, 60, epochs=(4.5,))],
  }


def test_render_markdown_rows_and_anchor_ratio():
  text = tt.render_markdown(_result())
  lines = text.splitlines()

  assert lines[0].startswith('Run of 2026-11-28T07:00:00+00:00 on AMD EPYC '
                             '(2 cores)')
  assert 'intra-op threads default (one per core)' in lines[0]
  assert 'load average (1 min) 1.5–2.25 during the runs' in lines[0]
  assert '80000 training ratings per epoch, 3 epochs per model' in lines[0]
  # Retrieval at 10,000/s against the anchor's 40,000/s at the same batch
  # size: 0.25. Epochs 30, 2, 2 s: epoch 1 30.0 s, later 2.00 (2.00-2.00).
  assert ('| Retrieval (two towers, in-batch softmax) | 512 | 157 | 30.0 | '
          '29.5 | 2.00 (2.00–2.00) | 10,000 | 0.25 |') in lines
  assert ('| Matrix factorisation (anchor) | 1024 | 157 | 30.0 | 29.0 | '
          '2.00 (2.00–2.00) | 50,000 | 1 |') in lines
  # Reading alone is no model: no ratio to the anchor.
  assert ('| Reading the data only (no model) | 512 | 157 | 30.0 | 0.5 | '
          '2.00 (2.00–2.00) | 80,000 | – |') in lines
  # The diagnosis: the same model's first epoch as measured and without
  # AutoGraph converting tf_keras.
  assert ('| Retrieval (two towers, in-batch softmax) | yes (as the '
          'trainers run) | 30.0 | 29.5 | 1,200 |') in lines
  assert ('| Retrieval (two towers, in-batch softmax) | no | 4.5 | 3.5 | '
          '60 |') in lines


def test_readme_section_is_replaced_between_the_markers(tmp_path):
  readme = tmp_path / 'README.md'
  readme.write_text(f'# Title\n\nbefore\n{tt.RESULTS_BEGIN}\nold table\n'
                    f'{tt.RESULTS_END}\nafter\n', encoding='utf-8')

  tt.update_readmes([str(readme)], 'new table')
  tt.update_readmes([str(readme)], 'newer table')

  assert readme.read_text(encoding='utf-8') == (
      f'# Title\n\nbefore\n{tt.RESULTS_BEGIN}\nnewer table\n'
      f'{tt.RESULTS_END}\nafter\n')


def test_the_benchmarks_readme_carries_the_markers():
  for path in tt.README_PATHS:
    with open(path, encoding='utf-8') as f:
      text = f.read()
    assert 0 <= text.index(tt.RESULTS_BEGIN) < text.index(tt.RESULTS_END)


def test_parse_models_and_flags():
  assert tt.parse_models('ranking, mf') == ['ranking', 'mf']
  assert tt.parse_models('mf,mf') == ['mf']
  with pytest.raises(ValueError):
    tt.parse_models('retrieval,svd')
  with pytest.raises(ValueError):
    tt.parse_models('')
  args = tt.parse_args([])
  assert args.models == ['retrieval', 'ranking', 'mf', 'input']
  assert args.epochs >= 2 and args.run_pipeline and args.readme
  with pytest.raises(SystemExit):
    tt.parse_args(['--epochs', '1'])


def test_hparam_overrides_are_parsed_per_model_and_checked():
  args = tt.parse_args(['--hparam', 'retrieval.batch_size=2048',
                        '--hparam', 'retrieval.history_max=50',
                        '--hparam', 'ranking.epochs=3'])
  assert args.hparams == {
      'retrieval': {'batch_size': '2048', 'history_max': '50'},
      'ranking': {'epochs': '3'}}
  assert tt.parse_args([]).hparams == {}
  for bad in ('batch_size=2048', 'mf.batch_size=1', 'retrieval.batch=1',
              'retrieval.batch_size=big', 'retrieval.batch_size'):
    with pytest.raises(SystemExit):
      tt.parse_args(['--hparam', bad])
