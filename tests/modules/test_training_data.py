"""The trainers' reader of the transformed examples: the movie table, the
validation split, one scan for several readers (the trainers' own among
them) and the batches of `make_dataset`, on small hand-written files."""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from modules import features  # noqa: E402
from modules import ranking_trainer  # noqa: E402
from modules import retrieval_trainer  # noqa: E402
from modules import training_data  # noqa: E402

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


def write_ratings(tmp_path):
  """`RATINGS` as a gzipped TFRecord file; returns its path."""
  path = str(tmp_path / 'ratings.gz')
  with tf.io.TFRecordWriter(path, 'GZIP') as writer:
    for rating in RATINGS:
      writer.write(_example(*rating))
  return path


def scanned(path, reader, batch_size=8192):
  """The reader after one `scan` of the file."""
  training_data.scan(path, [reader], batch_size)
  return reader


def test_movie_table_first_rows_in_order_and_counts_across_batches(tmp_path):
  path = write_ratings(tmp_path)
  # Batches of 2 split the movies' occurrences over several batches.
  for batch_size in (2, 8192):
    columns, counts = scanned(path, training_data.MovieRows(SPEC),
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


def test_validation_dataset_keeps_the_first_whole_batches(tmp_path):
  path = write_ratings(tmp_path)

  def times(max_examples, batch_size):
    dataset = training_data.validation_dataset(
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
    training_data.validation_dataset(path, SPEC, -1)


def test_one_scan_builds_the_same_tables_as_one_pass_each(tmp_path):
  path = write_ratings(tmp_path)
  spec = dict(SPEC, **{features.USER_ID: tf.io.FixedLenFeature([],
                                                              tf.string)})
  movies = training_data.MovieRows(spec)
  ratings = retrieval_trainer.RatingColumns(spec)
  users = ranking_trainer.UserRows(spec)
  training_data.scan(path, [movies, ratings, users], batch_size=4)

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
  separate, _ = scanned(path, training_data.MovieRows(spec)).result()
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
  ours = training_data.make_dataset(pattern, SPEC, 16, shuffle=shuffle,
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
  batches = list(training_data.make_dataset(paths[1], SPEC, 4, False, 0))
  assert [b[xf(features.MOVIE_ID)].numpy().tolist() for b in batches] == [
      [5, 6, 7, 8], [9]]
  missing = str(tmp_path / 'nothing-*')
  with pytest.raises(FileNotFoundError, match='nothing-'):
    training_data.make_dataset(missing, SPEC, 4, False, 0)


def test_make_dataset_turns_tf_data_autotuning_off(tmp_path):
  # Keras drops each epoch's iterator; with autotuning on that waits on the
  # autotuner's thread (up to a second per epoch).
  paths = _write_shards(tmp_path, shards=1, per_shard=5)
  dataset = training_data.make_dataset(paths[0], SPEC, 4, True, 0)
  assert dataset.options().autotune.enabled is False
  assert sorted(v for b in dataset
                for v in b[xf(features.MOVIE_ID)].numpy().tolist()) == [
                    0, 1, 2, 3, 4]


def test_scan_reports_what_it_read(tmp_path, capsys):
  _write_shards(tmp_path, shards=2, per_shard=5)
  movies = training_data.MovieRows(SPEC)
  ratings = retrieval_trainer.RatingColumns(SPEC)
  training_data.scan(str(tmp_path / 'part-*'), [movies, ratings],
                         batch_size=4)
  line = capsys.readouterr().out.strip().splitlines()[-1]
  assert line.startswith('read 10 training examples for MovieRows, '
                         'RatingColumns in ')
  assert len(movies.result()[1]) == 10


def _timed_ratings(tmp_path, times):
  """Movies 'm0', 'm1', ... rated at `times` (raw seconds), one file."""
  path = str(tmp_path / 'timed.gz')
  with tf.io.TFRecordWriter(path, 'GZIP') as writer:
    for i, time in enumerate(times):
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          features.MOVIE_ID: tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[f'm{i}'.encode()])),
          features.TIMESTAMP: tf.train.Feature(
              int64_list=tf.train.Int64List(value=[time])),
      })).SerializeToString())
  return path


def test_make_dataset_and_scan_before_keep_only_earlier_examples(tmp_path):
  path = _timed_ratings(tmp_path, [50, 99, 100, 10, 150])
  spec = {features.MOVIE_ID: tf.io.FixedLenFeature([], tf.string)}


  class Ids:
    def __init__(self):
      self.spec, self.ids = spec, []

    def add(self, batch):
      self.ids += batch[features.MOVIE_ID].numpy().tolist()

  dataset = training_data.make_dataset(path, spec, 2, shuffle=True, seed=3,
                                       before=100)
  scanned_ids = Ids()
  training_data.scan(path, [scanned_ids], batch_size=2, before=100)

  assert sorted(m for b in dataset
                for m in b[features.MOVIE_ID].numpy().tolist()) == [
                    b'm0', b'm1', b'm3']
  assert scanned_ids.ids == [b'm0', b'm1', b'm3']
