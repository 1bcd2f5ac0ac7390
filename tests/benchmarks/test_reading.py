"""benchmarks.reading: both readers timed over the same examples."""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import reading  # noqa: E402

pytestmark = pytest.mark.unit

SPEC = {'movie_id_xf': tf.io.FixedLenFeature([], tf.int64),
        'genres_xf': tf.io.VarLenFeature(tf.int64)}


def _write(path, first, count):
  with tf.io.TFRecordWriter(path, 'GZIP') as writer:
    for n in range(first, first + count):
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          'movie_id_xf': tf.train.Feature(
              int64_list=tf.train.Int64List(value=[n])),
          'genres_xf': tf.train.Feature(
              int64_list=tf.train.Int64List(value=[n % 3] * (n % 2))),
      })).SerializeToString())
  return path


def test_compare_times_both_readers_on_the_same_examples(tmp_path):
  files = [_write(str(tmp_path / 'a.gz'), 0, 7),
           _write(str(tmp_path / 'b.gz'), 7, 6)]
  results = reading.compare(files, SPEC, batches=3, batch_size=4)
  assert sorted(results) == sorted(
      f'{reader}, shuffle={shuffle}' for shuffle in (False, True)
      for reader in ('make_batched_features_dataset',
                     'training_data.make_dataset'))
  # 3 batches of 4 out of 13 examples.
  assert {r['examples'] for r in results.values()} == {12}
  assert all(r['cpu_us_per_example'] >= 0 and r['wall_us_per_example'] > 0
             for r in results.values())
  everything = reading.compare(files, SPEC, batches=10, batch_size=4)
  assert {r['examples'] for r in everything.values()} == {13}


def test_main_names_a_missing_pipeline_output(tmp_path, capsys):
  with pytest.raises(SystemExit) as exit_info:
    reading.main(['--pipeline-output', str(tmp_path / 'none')])
  assert exit_info.value.code == 2
  assert 'pipeline_scale' in capsys.readouterr().err
