"""AtomicPusher: the executor pushes a blessed model into `<base>/<version>`
in one rename, with TF Serving's warm-up requests already inside, pushes
nothing for an unblessed one or one that fails its warm-up, and leaves
neither a version folder nor its staging folder behind when the push
fails; stale staging folders of killed pushes are removed on request."""

import os
import shutil
import types as pytypes

import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from components.atomic_pusher import AtomicPusher, executor
from components.atomic_pusher import STAGING_PREFIX, remove_stale_staging
from serving import servables, warmup

pytestmark = pytest.mark.integration

VERSION = 1700000000  # the fixed clock below: int(1700000000.75)
WARMUP = os.path.join('assets.extra', 'tf_serving_warmup_requests')


class _TinyModel(tf.Module):
  """serving_default: user_id -> scores; `numeric` parses the id as a
  number, which fails on the empty string of the warm-up requests."""

  def __init__(self, numeric=False):
    super().__init__()
    self._numeric = numeric
    self.scale = tf.Variable(2.0)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                               name='user_id')])
  def serve(self, user_id):
    if self._numeric:
      value = tf.strings.to_number(user_id)
    else:
      value = tf.cast(tf.strings.length(user_id), tf.float32)
    return {'scores': self.scale * value}


@pytest.fixture(scope='module')
def saved_models(tmp_path_factory):
  """'good' and 'numeric' SavedModels, saved once for the module."""
  root = tmp_path_factory.mktemp('saved_models')
  paths = {}
  for name in ('good', 'numeric'):
    module = _TinyModel(numeric=name == 'numeric')
    paths[name] = str(root / name)
    tf.saved_model.save(module, paths[name], signatures={
        'serving_default': module.serve.get_concrete_function()})
  return paths


@pytest.fixture
def fixed_clock(monkeypatch):
  """The stock Pusher names the version after int(time.time())."""
  monkeypatch.setattr(pusher_executor, 'time',
                      pytypes.SimpleNamespace(time=lambda: VERSION + 0.75))


def _model(tmp_path, source, fingerprint=None):
  """A Trainer model artifact: <uri>/Format-Serving with a SavedModel; its
  fingerprint.pb replaced by `fingerprint` (removed when None)."""
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / 'model')
  serving = os.path.join(model.uri, 'Format-Serving')
  shutil.rmtree(serving, ignore_errors=True)
  shutil.copytree(source, serving)
  os.remove(os.path.join(serving, 'fingerprint.pb'))
  if fingerprint is not None:
    with open(os.path.join(serving, 'fingerprint.pb'), 'wb') as f:
      f.write(fingerprint)
  return model


def _blessing(tmp_path, blessed):
  """As the Evaluator writes it: the custom property and a marker file."""
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / 'blessing')
  os.makedirs(blessing.uri, exist_ok=True)
  marker = 'BLESSED' if blessed else 'NOT_BLESSED'
  open(os.path.join(blessing.uri, marker), 'w').close()
  blessing.set_int_custom_property('blessed', int(blessed))
  return blessing


@pytest.fixture
def push(tmp_path, saved_models):
  """push(base, ...) runs the executor on a blessed (or not) model."""

  def push(base, blessed=True, fingerprint=None, name='pushed',
           model='good'):
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / name)
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(
            base_directory=str(base)))
    executor.Executor().Do(
        {standard_component_specs.MODEL_KEY: [
            _model(tmp_path, saved_models[model], fingerprint)],
         standard_component_specs.MODEL_BLESSING_KEY: [
             _blessing(tmp_path, blessed)]},
        {standard_component_specs.PUSHED_MODEL_KEY: [pushed]},
        {standard_component_specs.PUSH_DESTINATION_KEY:
             proto_utils.proto_to_json(destination)})
    return pushed

  return push


def _read(path):
  with open(path, 'rb') as f:
    return f.read()


def test_blessed_model_is_pushed_into_a_version_folder(
    tmp_path, fixed_clock, push, saved_models):
  base = tmp_path / 'serving'

  pushed = push(base)

  final = os.path.join(str(base), str(VERSION))
  source = saved_models['good']
  # Only the version folder: the hidden staging folder is gone.
  assert os.listdir(base) == [str(VERSION)]
  assert _read(os.path.join(final, 'saved_model.pb')) == _read(
      os.path.join(source, 'saved_model.pb'))
  assert _read(os.path.join(final, 'variables', 'variables.index')) == (
      _read(os.path.join(source, 'variables', 'variables.index')))
  assert pushed.get_int_custom_property('pushed') == 1
  assert pushed.get_string_custom_property('pushed_destination') == final
  assert pushed.get_string_custom_property('pushed_version') == str(VERSION)
  # The stock Pusher's archive copy in the artifact's own uri is kept.
  assert _read(os.path.join(pushed.uri, 'saved_model.pb')) == _read(
      os.path.join(source, 'saved_model.pb'))


def test_the_version_arrives_with_its_warmup_requests(
    tmp_path, fixed_clock, push):
  base = tmp_path / 'serving' / 'retrieval'

  push(base)

  final = os.path.join(str(base), str(VERSION))
  records = list(tf.data.TFRecordDataset(
      os.path.join(final, WARMUP)).as_numpy_iterator())
  assert len(records) == 1
  request = prediction_log_pb2.PredictionLog.FromString(
      records[0]).predict_log.request
  # Named after the destination folder, built from serving_default.
  assert request == warmup.build_warmup_requests(final, 'retrieval')[0]
  assert request.model_spec.name == 'retrieval'
  assert tf.make_ndarray(request.inputs['user_id']).tolist() == [b'1', b'']
  # Only in the served copy: the archived artifact is the model as trained.
  assert not os.path.exists(os.path.join(tmp_path / 'pushed', WARMUP))


def test_a_model_that_fails_its_warmup_is_not_pushed(
    tmp_path, fixed_clock, push):
  base = tmp_path / 'serving'

  with pytest.raises(servables.WarmupError, match='TF Serving could not load '
                     'this model: warm-up request 1'):
    push(base, model='numeric')

  assert os.listdir(base) == []


def test_the_same_model_is_not_pushed_twice(tmp_path, monkeypatch, push):
  base = tmp_path / 'serving'
  clock = iter([VERSION + 0.5, VERSION + 60.5, VERSION + 120.5])
  monkeypatch.setattr(pusher_executor, 'time',
                      pytypes.SimpleNamespace(time=lambda: next(clock)))

  push(base, fingerprint=b'model A')
  again = push(base, fingerprint=b'model A', name='again')

  # Same SavedModel fingerprint: no second version, the push points at the
  # version already serving.
  assert os.listdir(base) == [str(VERSION)]
  assert again.get_int_custom_property('pushed') == 1
  assert again.get_string_custom_property('pushed_version') == str(VERSION)

  push(base, fingerprint=b'model B', name='other')
  # A different model is a new version.
  assert sorted(os.listdir(base)) == [str(VERSION), str(VERSION + 60)]


def test_version_is_the_current_unix_time(tmp_path, push):
  base = tmp_path / 'serving'

  pushed = push(base)

  version = pushed.get_string_custom_property('pushed_version')
  assert os.listdir(base) == [version]
  assert version.isdigit() and int(version) > 1_600_000_000


def test_unblessed_model_is_not_pushed(tmp_path, fixed_clock, push):
  base = tmp_path / 'serving'

  pushed = push(base, blessed=False)

  assert os.listdir(base) == []
  assert pushed.get_int_custom_property('pushed') == 0
  assert not pushed.has_custom_property('pushed_destination')
  assert not os.path.exists(pushed.uri)


def test_failure_mid_push_leaves_no_version_and_no_staging_folder(
    tmp_path, fixed_clock, monkeypatch, push):
  base = tmp_path / 'serving'
  staged = []

  def push_half_then_fail(self, input_dict, output_dict, exec_properties):
    destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.PUSH_DESTINATION_KEY],
        destination)
    staging = destination.filesystem.base_directory
    os.makedirs(os.path.join(staging, str(VERSION), 'variables'))
    with open(os.path.join(staging, str(VERSION), 'variables',
                           'variables.index'), 'wb') as f:
      f.write(b'fake variables')
    staged.append(staging)
    raise IOError('disk full')

  monkeypatch.setattr(pusher_executor.Executor, 'Do', push_half_then_fail)

  with pytest.raises(IOError, match='disk full'):
    push(base)

  # The stock push was pointed at a hidden folder inside base.
  assert len(staged) == 1
  assert os.path.dirname(staged[0]) == str(base)
  assert os.path.basename(staged[0]).startswith(STAGING_PREFIX)
  assert os.listdir(base) == []


def _make_files(root, paths):
  for path in paths:
    full = os.path.join(str(root), path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, 'wb') as f:
      f.write(b'x')


def test_remove_stale_staging_deletes_only_staging_folders_of_models(
    tmp_path):
  serving = tmp_path / 'serving'
  _make_files(serving, [
      'retrieval/.push-ab12/1700000000/saved_model.pb',  # killed mid-copy
      'retrieval/.push-cd34/1700000001/variables/variables.index',
      'retrieval/1699999999/saved_model.pb',  # a served version
      'ranking/.push-file',  # a file, not a staging folder
      'ranking/.pushed/keep',  # another hidden folder
      '.push-top/keep',  # not inside a model folder
  ])
  os.symlink(str(serving / 'retrieval' / '1699999999'),
             str(serving / 'ranking' / '.push-link'))

  removed = remove_stale_staging(str(serving))

  assert STAGING_PREFIX == '.push-'
  assert removed == [str(serving / 'retrieval' / '.push-ab12'),
                     str(serving / 'retrieval' / '.push-cd34')]
  assert sorted(os.listdir(serving / 'retrieval')) == ['1699999999']
  assert sorted(os.listdir(serving / 'ranking')) == [
      '.push-file', '.push-link', '.pushed']
  assert os.listdir(serving / '.push-top') == ['keep']
  assert remove_stale_staging(str(serving)) == []


def test_remove_stale_staging_of_a_missing_folder_removes_nothing(tmp_path):
  assert remove_stale_staging(str(tmp_path / 'nope')) == []


def test_a_push_after_a_killed_one_leaves_only_its_version(
    tmp_path, fixed_clock, push):
  base = tmp_path / 'serving' / 'retrieval'
  _make_files(base, ['.push-killed/1600000000/saved_model.pb'])

  removed = remove_stale_staging(str(tmp_path / 'serving'))
  push(base)

  assert removed == [str(base / '.push-killed')]
  assert os.listdir(base) == [str(VERSION)]


def test_an_existing_version_is_not_overwritten(tmp_path, fixed_clock,
                                                push):
  base = tmp_path / 'serving'
  existing = base / str(VERSION)
  existing.mkdir(parents=True)
  (existing / 'saved_model.pb').write_bytes(b'older model')

  with pytest.raises(FileExistsError, match=str(VERSION)):
    push(base)

  assert os.listdir(base) == [str(VERSION)]
  assert os.listdir(existing) == ['saved_model.pb']
  assert (existing / 'saved_model.pb').read_bytes() == b'older model'


def test_remote_destination_falls_back_to_the_stock_push(
    tmp_path, monkeypatch, push):
  calls = []
  monkeypatch.setattr(
      pusher_executor.Executor, 'Do',
      lambda self, inputs, outputs, properties: calls.append(properties))

  push('gs://bucket/serving')

  # Unchanged destination, and nothing staged locally.
  destination = pusher_pb2.PushDestination()
  proto_utils.json_to_proto(
      calls[0][standard_component_specs.PUSH_DESTINATION_KEY], destination)
  assert len(calls) == 1
  assert destination.filesystem.base_directory == 'gs://bucket/serving'
  assert not os.path.exists('gs:')


# ------------------------------------------------------------ construction


def _channel(artifact_type):
  return types.Channel(type=artifact_type)


def test_construction_uses_the_atomic_executor():
  pusher = AtomicPusher(
      model=_channel(standard_artifacts.Model),
      model_blessing=_channel(standard_artifacts.ModelBlessing),
      push_destination=pusher_pb2.PushDestination(
          filesystem=pusher_pb2.PushDestination.Filesystem(
              base_directory='/serving/movielens')))

  assert pusher.executor_spec.executor_class is executor.Executor
  assert issubclass(executor.Executor, pusher_executor.Executor)
  assert {k: c.type for k, c in pusher.outputs.items()} == {
      'pushed_model': standard_artifacts.PushedModel}
  assert set(pusher.inputs) == {'model', 'model_blessing'}
  destination = pusher_pb2.PushDestination()
  proto_utils.json_to_proto(pusher.exec_properties['push_destination'],
                            destination)
  assert destination.filesystem.base_directory == '/serving/movielens'


def test_construction_requires_a_push_destination():
  with pytest.raises(ValueError, match='push_destination is required'):
    AtomicPusher(model=_channel(standard_artifacts.Model),
                 model_blessing=_channel(standard_artifacts.ModelBlessing))
