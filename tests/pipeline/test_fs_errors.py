"""Filesystem problems become one line naming the path and what to do."""

import errno
import os

import pytest
import tensorflow as tf

from pipeline import fs_errors

pytestmark = pytest.mark.unit


def test_a_full_disk_inside_a_wrapped_error_is_named():
  try:
    try:
      raise OSError(errno.ENOSPC, 'No space left on device',
                    '/out/serving/recommender/.staging/variables.data')
    except OSError as e:
      raise RuntimeError('Beam step failed') from e
  except RuntimeError as wrapped:
    line = fs_errors.describe(wrapped)
  assert line == ('/out/serving/recommender/.staging/variables.data: no space '
                  'left on the device: free some space or pass another '
                  '--output-dir')


def test_tensorflows_own_message_is_read():
  error = tf.errors.ResourceExhaustedError(
      None, None, '/out/pipeline/x/model.ckpt; No space left on device')
  assert fs_errors.describe(error) == (
      '/out/pipeline/x/model.ckpt: no space left on the device: free some '
      'space or pass another --output-dir')


def test_a_permission_error_names_the_path():
  error = PermissionError(errno.EACCES, 'Permission denied', '/data/u.data')
  assert fs_errors.describe(error) == (
      '/data/u.data: permission denied: check the permissions or pass '
      'another --output-dir')


def test_a_bug_is_not_a_filesystem_problem():
  assert fs_errors.describe(KeyError('user_id')) is None
  assert fs_errors.describe(OSError(errno.EIO, 'I/O error')) is None


def test_an_output_dir_that_is_a_file_is_refused(tmp_path):
  path = tmp_path / 'outputs'
  path.write_text('')
  with pytest.raises(fs_errors.OutputDirError) as error:
    fs_errors.check_output_dir(str(path))
  assert str(error.value) == (f'--output-dir {path}: is a file; pass a '
                              'folder (it is created if missing)')


def test_an_output_dir_under_a_file_is_refused(tmp_path):
  (tmp_path / 'file').write_text('')
  path = str(tmp_path / 'file' / 'outputs')
  with pytest.raises(fs_errors.OutputDirError, match=(
      f'--output-dir {path}: cannot write there \\(a part of the path is a '
      'file, not a folder\\)')):
    fs_errors.check_output_dir(path)


def test_a_writable_output_dir_is_created_and_left_clean(tmp_path):
  path = str(tmp_path / 'new' / 'outputs')
  fs_errors.check_output_dir(path)
  assert os.listdir(path) == []


def test_an_output_dir_with_glob_characters_is_refused(tmp_path):
  path = str(tmp_path / 'outputs [copy]')
  with pytest.raises(fs_errors.OutputDirError, match=(
      'holds a glob character')):
    fs_errors.check_output_dir(path)
  assert not os.path.exists(path)
