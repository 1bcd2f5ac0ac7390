"""retrieval_trainer's readers of the transformed examples: the movie
table and the user history, on a small hand-written file."""

import json
import os
import types

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from modules import features, retrieval_trainer  # noqa: E402

pytestmark = pytest.mark.unit

xf = features.transformed_name

SPEC = {
    features.MOVIE_ID: tf.io.FixedLenFeature([], tf.string),
    xf(features.MOVIE_ID): tf.io.FixedLenFeature([], tf.int64),
    xf(features.GENRES): tf.io.VarLenFeature(tf.int64),
    xf(features.TITLE_TOKENS): tf.io.VarLenFeature(tf.int64),
    xf(features.RELEASE_YEAR): tf.io.FixedLenFeature([], tf.float32),
    xf(features.RELEASE_YEAR_BUCKET): tf.io.FixedLenFeature([], tf.int64),
    xf(features.USER_ID): tf.io.FixedLenFeature([], tf.int64),
    xf(features.TIMESTAMP): tf.io.FixedLenFeature([], tf.float32),
}

# (user, movie id, movie index, genres, title tokens, year, bucket, time):
# movie 'b' is rated three times, 'a' twice, 'c' once; 'c' has no genres.
RATINGS = [
    (0, b'b', 2, [1, 3], [7], 0.5, 4, 3.0),
    (1, b'a', 1, [2], [5, 6], -1.0, 1, 1.0),
    (0, b'b', 2, [1, 3], [7], 0.5, 4, 1.0),
    (2, b'c', 3, [], [8], 0.0, 2, 2.0),
    (1, b'b', 2, [1, 3], [7], 0.5, 4, 2.0),
    (0, b'a', 1, [2], [5, 6], -1.0, 1, 2.0),
]


def _example(user, movie, index, genres, tokens, year, bucket, time):
  def ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

  def floats(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))

  return tf.train.Example(features=tf.train.Features(feature={
      features.MOVIE_ID: tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[movie])),
      xf(features.MOVIE_ID): ints([index]),
      xf(features.GENRES): ints(genres),
      xf(features.TITLE_TOKENS): ints(tokens),
      xf(features.RELEASE_YEAR): floats([year]),
      xf(features.RELEASE_YEAR_BUCKET): ints([bucket]),
      xf(features.USER_ID): ints([user]),
      xf(features.TIMESTAMP): floats([time]),
      features.USER_ID: tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[f'u{user}'.encode()])),
  })).SerializeToString()


def _write(tmp_path):
  path = str(tmp_path / 'ratings.gz')
  with tf.io.TFRecordWriter(path, 'GZIP') as writer:
    for rating in RATINGS:
      writer.write(_example(*rating))
  return path


def _read(path, reader, batch_size=8192):
  """The reader after one `scan` of the file."""
  retrieval_trainer.scan(path, [reader], batch_size)
  return reader


def test_movie_table_first_rows_in_order_and_counts_across_batches(tmp_path):
  path = _write(tmp_path)
  # Batches of 2 split the movies' occurrences over several batches.
  for batch_size in (2, 8192):
    columns, counts = _read(path, retrieval_trainer.MovieRows(SPEC),
                            batch_size).result()
    assert counts == {b'b': 3, b'a': 2, b'c': 1}
    # One row per movie, in order of first occurrence: b, a, c.
    assert columns[features.MOVIE_ID].numpy().tolist() == [b'b', b'a', b'c']
    assert columns[xf(features.MOVIE_ID)].numpy().tolist() == [2, 1, 3]
    assert columns[xf(features.GENRES)].to_list() == [[1, 3], [2], []]
    assert columns[xf(features.TITLE_TOKENS)].to_list() == [[7], [5, 6], [8]]
    assert columns[xf(features.RELEASE_YEAR)].numpy().tolist() == [
        0.5, -1.0, 0.0]
    assert columns[xf(features.RELEASE_YEAR_BUCKET)].numpy().tolist() == [
        4, 1, 2]


def test_training_history_keeps_each_users_newest_movies(tmp_path):
  path = _write(tmp_path)
  # User 0 rated b (t=3, and t=1) and a (t=2); user 1 a (t=1), b (t=2);
  # user 2 c. With a cap of 1: user 0 -> b, user 1 -> b, user 2 -> c.
  ratings = _read(path, retrieval_trainer.RatingColumns(SPEC))
  values, row_splits = ratings.history(4, 1)
  assert values.tolist() == [2, 2, 3]
  assert row_splits.tolist() == [0, 1, 2, 3, 3]
  values, row_splits = ratings.history(4)
  assert values.tolist() == [1, 2, 1, 2, 3]
  assert row_splits.tolist() == [0, 2, 4, 5, 5]


def test_ranking_user_table_keeps_each_users_latest_row(tmp_path):
  from modules import ranking_trainer  # pylint: disable=g-import-not-at-top
  # user_id (raw), user_id_xf and timestamp_xf per rating. User 'u0' is
  # newest at t=3 (its second rating), 'u1' has two ratings at t=2 (the
  # later in the file wins), 'u2' has one.
  rows = [(b'u0', 0, 1.0), (b'u1', 1, 2.0), (b'u0', 0, 3.0), (b'u2', 2, 0.5),
          (b'u1', 5, 2.0), (b'u0', 7, 2.0)]
  path = str(tmp_path / 'users.gz')
  with tf.io.TFRecordWriter(path, 'GZIP') as writer:
    for user, index, time in rows:
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          features.USER_ID: tf.train.Feature(
              bytes_list=tf.train.BytesList(value=[user])),
          xf(features.USER_ID): tf.train.Feature(
              int64_list=tf.train.Int64List(value=[index])),
          xf(features.TIMESTAMP): tf.train.Feature(
              float_list=tf.train.FloatList(value=[time])),
      })).SerializeToString())
  spec = {features.USER_ID: tf.io.FixedLenFeature([], tf.string),
          xf(features.USER_ID): tf.io.FixedLenFeature([], tf.int64),
          xf(features.TIMESTAMP): tf.io.FixedLenFeature([], tf.float32)}
  for batch_size in (2, 8192):
    table = _read(path, ranking_trainer.UserRows(spec), batch_size).result()
    assert table[features.USER_ID].numpy().tolist() == [b'u0', b'u1', b'u2']
    assert table[xf(features.USER_ID)].numpy().tolist() == [0, 5, 2]
    assert table[xf(features.TIMESTAMP)].numpy().tolist() == [3.0, 2.0, 0.5]


def test_validation_dataset_keeps_the_first_whole_batches(tmp_path):
  path = _write(tmp_path)

  def times(max_examples, batch_size):
    dataset = retrieval_trainer.validation_dataset(
        path, SPEC, max_examples, batch_size=batch_size)
    return [t for batch in dataset
            for t in batch[xf(features.TIMESTAMP)].numpy().tolist()]

  everything = [r[-1] for r in RATINGS]
  assert times(0, 4) == everything
  # 3 examples asked, batches of 2: two whole batches, 4 examples.
  assert times(3, 2) == everything[:4]
  assert times(2, 2) == everything[:2]
  assert times(100, 4) == everything
  with pytest.raises(ValueError, match='validation_examples must be >= 0'):
    retrieval_trainer.validation_dataset(path, SPEC, -1)


def test_one_scan_builds_the_same_tables_as_one_pass_each(tmp_path):
  from modules import ranking_trainer  # pylint: disable=g-import-not-at-top
  path = _write(tmp_path)
  spec = dict(SPEC, **{features.USER_ID: tf.io.FixedLenFeature([],
                                                              tf.string)})
  movies = retrieval_trainer.MovieRows(spec)
  ratings = retrieval_trainer.RatingColumns(spec)
  users = ranking_trainer.UserRows(spec)
  retrieval_trainer.scan(path, [movies, ratings, users], batch_size=4)

  columns, counts = movies.result()
  assert counts == {b'b': 3, b'a': 2, b'c': 1}
  assert columns[features.MOVIE_ID].numpy().tolist() == [b'b', b'a', b'c']
  assert columns[xf(features.GENRES)].to_list() == [[1, 3], [2], []]
  values, row_splits = ratings.history(4)
  assert values.tolist() == [1, 2, 1, 2, 3]
  assert row_splits.tolist() == [0, 2, 4, 5, 5]
  table = users.result()
  # Each user's latest rating: u0 at t=3, u1 at t=2, u2 at t=2.
  assert table[features.USER_ID].numpy().tolist() == [b'u0', b'u1', b'u2']
  assert table[xf(features.TIMESTAMP)].numpy().tolist() == [3.0, 2.0, 2.0]
  separate, _ = _read(path, retrieval_trainer.MovieRows(spec)).result()
  for key, column in separate.items():
    assert (column.to_list() if isinstance(column, tf.RaggedTensor)
            else column.numpy().tolist()) == (
                columns[key].to_list()
                if isinstance(columns[key], tf.RaggedTensor)
                else columns[key].numpy().tolist())


def _write_shards(tmp_path, shards=3, per_shard=40):
  """Gzipped shards of distinct ratings (movie index = global position)."""
  paths = []
  for shard in range(shards):
    path = str(tmp_path / f'part-{shard:05d}-of-{shards:05d}.gz')
    with tf.io.TFRecordWriter(path, 'GZIP') as writer:
      for i in range(per_shard):
        n = shard * per_shard + i
        writer.write(_example(n % 7, f'm{n}'.encode(), n, [n % 3], [], 0.0,
                              0, float(n)))
    paths.append(path)
  return paths


@pytest.mark.parametrize('shuffle', [False, True])
def test_make_dataset_reads_in_the_order_of_make_batched_features_dataset(
    tmp_path, shuffle):
  # Same order (files, records, epochs), batches and values as the
  # experimental reader it replaces, so seeded runs train identically.
  _write_shards(tmp_path)
  pattern = [str(tmp_path / 'part-*')]
  reference = tf.data.experimental.make_batched_features_dataset(
      file_pattern=pattern, batch_size=16, features=SPEC,
      reader=lambda files: tf.data.TFRecordDataset(files, 'GZIP'),
      num_epochs=2, shuffle=shuffle, shuffle_seed=7,
      shuffle_buffer_size=50_000, drop_final_batch=False)
  ours = retrieval_trainer.make_dataset(pattern, SPEC, 16, shuffle=shuffle,
                                        seed=7, num_epochs=2)
  expected = [batch[xf(features.MOVIE_ID)].numpy().tolist()
              for batch in reference]
  got = [batch for batch in ours]
  assert [b[xf(features.MOVIE_ID)].numpy().tolist() for b in got] == expected
  assert [len(b) for b in expected] == [16] * 15  # 240 = 2 x 120 ratings.
  ids = sum(expected, [])
  assert sorted(ids) == sorted(list(range(120)) * 2)
  assert (ids[:120] == list(range(120))) != shuffle  # Files in order.
  genres = got[0][xf(features.GENRES)]
  assert isinstance(genres, tf.SparseTensor)
  assert tf.sparse.to_dense(genres).numpy()[:, 0].tolist() == [
      n % 3 for n in expected[0]]


def test_make_dataset_takes_one_pattern_and_names_a_missing_one(tmp_path):
  paths = _write_shards(tmp_path, shards=2, per_shard=5)
  batches = list(retrieval_trainer.make_dataset(paths[1], SPEC, 4, False, 0))
  assert [b[xf(features.MOVIE_ID)].numpy().tolist() for b in batches] == [
      [5, 6, 7, 8], [9]]
  missing = str(tmp_path / 'nothing-*')
  with pytest.raises(FileNotFoundError, match='nothing-'):
    retrieval_trainer.make_dataset(missing, SPEC, 4, False, 0)


def test_make_dataset_turns_tf_data_autotuning_off(tmp_path):
  # Keras drops each epoch's iterator; with autotuning on that waits on the
  # autotuner's thread (up to a second per epoch).
  paths = _write_shards(tmp_path, shards=1, per_shard=5)
  dataset = retrieval_trainer.make_dataset(paths[0], SPEC, 4, True, 0)
  assert dataset.options().autotune.enabled is False
  assert sorted(v for b in dataset
                for v in b[xf(features.MOVIE_ID)].numpy().tolist()) == [
                    0, 1, 2, 3, 4]


def test_scan_reports_what_it_read(tmp_path, capsys):
  _write_shards(tmp_path, shards=2, per_shard=5)
  movies = retrieval_trainer.MovieRows(SPEC)
  ratings = retrieval_trainer.RatingColumns(SPEC)
  retrieval_trainer.scan(str(tmp_path / 'part-*'), [movies, ratings],
                         batch_size=4)
  line = capsys.readouterr().out.strip().splitlines()[-1]
  assert line.startswith('read 10 training examples for MovieRows, '
                         'RatingColumns in ')
  assert len(movies.result()[1]) == 10


def test_the_training_summary_carries_the_best_epoch_to_the_refit(tmp_path):
  serving = str(tmp_path / 'model' / 'Format-Serving')
  os.makedirs(serving)
  retrieval_trainer.write_summary(serving, {'best_epoch': 3, 'loss': 1.5})

  assert retrieval_trainer.read_best_epoch(serving) == 3
  assert retrieval_trainer.read_best_epoch(serving + '/') == 3


def test_the_refit_names_a_missing_or_bad_training_summary(tmp_path):
  serving = str(tmp_path / 'model' / 'Format-Serving')
  os.makedirs(serving)
  with pytest.raises(ValueError, match='needs the early-stopped'):
    retrieval_trainer.read_best_epoch(None)
  with pytest.raises(FileNotFoundError, match='training_summary.json: no '
                     'training summary'):
    retrieval_trainer.read_best_epoch(serving)
  # A refit's own summary has no best epoch: it cannot be a base model.
  retrieval_trainer.write_summary(serving, {'refit_epochs': 3})
  with pytest.raises(ValueError, match='best_epoch must be a positive '
                     'integer, got None'):
    retrieval_trainer.read_best_epoch(serving)


def _refit_args(tmp_path, train_bytes, eval_bytes):
  """fn_args of a refit Trainer: split files of the given sizes and a base
  model (a SavedModel folder with a variables/ sub-folder)."""
  for split, size in (('train', train_bytes), ('eval', eval_bytes)):
    (tmp_path / split).mkdir()
    (tmp_path / split / 'part-0.gz').write_bytes(b'x' * size)
  base = tmp_path / 'base' / 'Format-Serving'
  (base / 'variables').mkdir(parents=True)
  (base / 'saved_model.pb').write_bytes(b'graph')
  (base / 'variables' / 'variables.index').write_bytes(b'index')
  return types.SimpleNamespace(
      train_files=[str(tmp_path / 'train' / '*')],
      eval_files=[str(tmp_path / 'eval' / '*')], base_model=str(base),
      serving_model_dir=str(tmp_path / 'refit' / 'Format-Serving'))


def test_the_refit_is_skipped_when_eval_is_a_small_share(tmp_path, capsys):
  # ml-25m's case: about 1M eval ratings of 25M (4%).
  args = _refit_args(tmp_path, train_bytes=960, eval_bytes=40)

  assert retrieval_trainer.eval_share(args.train_files,
                                      args.eval_files) == 0.04
  reason = retrieval_trainer.skip_refit(args, 0.1)
  assert reason == ('the eval split holds 4.0% of the examples, under '
                    'refit_min_eval_share 10%')
  retrieval_trainer.copy_base_model(args, reason)

  # The early-stopped SavedModel, copied whole, is served.
  refit = tmp_path / 'refit' / 'Format-Serving'
  assert (refit / 'saved_model.pb').read_bytes() == b'graph'
  assert (refit / 'variables' / 'variables.index').read_bytes() == b'index'
  summary = json.loads((tmp_path / 'refit' /
                        'training_summary.json').read_text())
  assert summary == {'refit_epochs': 0, 'skipped': reason}
  assert 'no refit, the early-stopped model is served' in (
      capsys.readouterr().out)


def test_the_refit_runs_when_eval_is_a_fifth(tmp_path):
  args = _refit_args(tmp_path, train_bytes=800, eval_bytes=200)

  assert retrieval_trainer.skip_refit(args, 0.1) is None
  assert retrieval_trainer.skip_refit(args, 0.25) is not None


@pytest.mark.parametrize('extra, share, size, message', [
    (-1, 0.1, 1, 'refit_extra_epochs must be >= 0, got -1'),
    (0, 1.5, 1, r'refit_min_eval_share must be in \[0, 1\], got 1.5'),
    (0, 0.1, 0, 'ensemble_size must be >= 1, got 0')])
def test_bad_refit_hyper_parameters_are_named(extra, share, size, message):
  with pytest.raises(ValueError, match=message):
    retrieval_trainer.check_refit(extra, share, size)


def test_the_refit_plan_is_the_best_epoch_plus_the_extra_ones(tmp_path):
  from modules.hparams import RankingHParams, RetrievalHParams  # pylint: disable=g-import-not-at-top
  args = _refit_args(tmp_path, train_bytes=800, eval_bytes=200)
  retrieval_trainer.write_summary(args.base_model, {'best_epoch': 2})

  assert retrieval_trainer.plan_refit(args, RetrievalHParams()) == 3
  assert retrieval_trainer.plan_refit(args, RankingHParams()) == 2
  # Skipped: nothing to train, the base model is served.
  assert retrieval_trainer.plan_refit(args, RetrievalHParams(
      refit_min_eval_share=0.5)) is None
  assert (tmp_path / 'refit' / 'Format-Serving' / 'saved_model.pb').exists()
