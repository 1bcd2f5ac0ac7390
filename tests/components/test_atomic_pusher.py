"""AtomicPusher: the executor pushes a blessed model into `<base>/<version>`
in one rename, pushes nothing for an unblessed one, and leaves neither a
version folder nor its staging folder behind when the push fails."""

import os
import types as pytypes

import pytest
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from components.atomic_pusher import AtomicPusher, executor

VERSION = 1700000000  # the fixed clock below: int(1700000000.75)
SAVED_MODEL = b'fake saved_model.pb'
VARIABLES = b'fake variables'


@pytest.fixture
def fixed_clock(monkeypatch):
  """The stock Pusher names the version after int(time.time())."""
  monkeypatch.setattr(pusher_executor, 'time',
                      pytypes.SimpleNamespace(time=lambda: VERSION + 0.75))


def _model(tmp_path, fingerprint=None):
  """A Trainer model artifact: <uri>/Format-Serving with a SavedModel."""
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / 'model')
  serving = os.path.join(model.uri, 'Format-Serving')
  os.makedirs(os.path.join(serving, 'variables'), exist_ok=True)
  if fingerprint is not None:
    with open(os.path.join(serving, 'fingerprint.pb'), 'wb') as f:
      f.write(fingerprint)
  with open(os.path.join(serving, 'saved_model.pb'), 'wb') as f:
    f.write(SAVED_MODEL)
  with open(os.path.join(serving, 'variables', 'variables.index'), 'wb') as f:
    f.write(VARIABLES)
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


def _push(tmp_path, base, blessed=True, fingerprint=None, name='pushed'):
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / name)
  destination = pusher_pb2.PushDestination(
      filesystem=pusher_pb2.PushDestination.Filesystem(
          base_directory=str(base)))
  executor.Executor().Do(
      {standard_component_specs.MODEL_KEY: [_model(tmp_path, fingerprint)],
       standard_component_specs.MODEL_BLESSING_KEY: [
           _blessing(tmp_path, blessed)]},
      {standard_component_specs.PUSHED_MODEL_KEY: [pushed]},
      {standard_component_specs.PUSH_DESTINATION_KEY:
           proto_utils.proto_to_json(destination)})
  return pushed


def _read(path):
  with open(path, 'rb') as f:
    return f.read()


def test_blessed_model_is_pushed_into_a_version_folder(tmp_path, fixed_clock):
  base = tmp_path / 'serving'

  pushed = _push(tmp_path, base)

  final = os.path.join(str(base), str(VERSION))
  # Only the version folder: the hidden staging folder is gone.
  assert os.listdir(base) == [str(VERSION)]
  assert _read(os.path.join(final, 'saved_model.pb')) == SAVED_MODEL
  assert _read(os.path.join(final, 'variables', 'variables.index')) == (
      VARIABLES)
  assert pushed.get_int_custom_property('pushed') == 1
  assert pushed.get_string_custom_property('pushed_destination') == final
  assert pushed.get_string_custom_property('pushed_version') == str(VERSION)
  # The stock Pusher's archive copy in the artifact's own uri is kept.
  assert _read(os.path.join(pushed.uri, 'saved_model.pb')) == SAVED_MODEL


def test_the_same_model_is_not_pushed_twice(tmp_path, monkeypatch):
  base = tmp_path / 'serving'
  clock = iter([VERSION + 0.5, VERSION + 60.5, VERSION + 120.5])
  monkeypatch.setattr(pusher_executor, 'time',
                      pytypes.SimpleNamespace(time=lambda: next(clock)))

  _push(tmp_path, base, fingerprint=b'model A')
  again = _push(tmp_path, base, fingerprint=b'model A', name='again')

  # Same SavedModel fingerprint: no second version, the push points at the
  # version already serving.
  assert os.listdir(base) == [str(VERSION)]
  assert again.get_int_custom_property('pushed') == 1
  assert again.get_string_custom_property('pushed_version') == str(VERSION)

  _push(tmp_path, base, fingerprint=b'model B', name='other')
  # A different model is a new version.
  assert sorted(os.listdir(base)) == [str(VERSION), str(VERSION + 60)]


def test_version_is_the_current_unix_time(tmp_path):
  base = tmp_path / 'serving'

  pushed = _push(tmp_path, base)

  version = pushed.get_string_custom_property('pushed_version')
  assert os.listdir(base) == [version]
  assert version.isdigit() and int(version) > 1_600_000_000


def test_unblessed_model_is_not_pushed(tmp_path, fixed_clock):
  base = tmp_path / 'serving'

  pushed = _push(tmp_path, base, blessed=False)

  assert os.listdir(base) == []
  assert pushed.get_int_custom_property('pushed') == 0
  assert not pushed.has_custom_property('pushed_destination')
  assert not os.path.exists(pushed.uri)


def test_failure_mid_push_leaves_no_version_and_no_staging_folder(
    tmp_path, fixed_clock, monkeypatch):
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
      f.write(VARIABLES)
    staged.append(staging)
    raise IOError('disk full')

  monkeypatch.setattr(pusher_executor.Executor, 'Do', push_half_then_fail)

  with pytest.raises(IOError, match='disk full'):
    _push(tmp_path, base)

  # The stock push was pointed at a hidden folder inside base.
  assert len(staged) == 1
  assert os.path.dirname(staged[0]) == str(base)
  assert os.path.basename(staged[0]).startswith('.push-')
  assert os.listdir(base) == []


def test_an_existing_version_is_not_overwritten(tmp_path, fixed_clock):
  base = tmp_path / 'serving'
  existing = base / str(VERSION)
  existing.mkdir(parents=True)
  (existing / 'saved_model.pb').write_bytes(b'older model')

  with pytest.raises(FileExistsError, match=str(VERSION)):
    _push(tmp_path, base)

  assert os.listdir(base) == [str(VERSION)]
  assert os.listdir(existing) == ['saved_model.pb']
  assert (existing / 'saved_model.pb').read_bytes() == b'older model'


def test_remote_destination_falls_back_to_the_stock_push(
    tmp_path, monkeypatch):
  calls = []
  monkeypatch.setattr(
      pusher_executor.Executor, 'Do',
      lambda self, inputs, outputs, properties: calls.append(properties))

  _push(tmp_path, 'gs://bucket/serving')

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
