"""ranking_trainer's own reader of the transformed examples: the user
table, on a small hand-written file."""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from modules import features  # noqa: E402
from modules import ranking_trainer  # noqa: E402
from tests.modules.test_training_data import scanned  # noqa: E402

pytestmark = pytest.mark.unit

xf = features.transformed_name


def test_ranking_user_table_keeps_each_users_latest_row(tmp_path):
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
    table = scanned(path, ranking_trainer.UserRows(spec), batch_size).result()
    assert table[features.USER_ID].numpy().tolist() == [b'u0', b'u1', b'u2']
    assert table[xf(features.USER_ID)].numpy().tolist() == [0, 5, 2]
    assert table[xf(features.TIMESTAMP)].numpy().tolist() == [3.0, 2.0, 0.5]
