"""Pusher executor whose version folder appears complete or not at all.

TFX's Pusher copies the model into `<base>/<version>/` file by file (with
saved_model.pb last), so TF Serving, which polls the base folder, can see a
half-copied version. Here the stock executor pushes into a hidden staging
folder beside the destination (TF Serving ignores names that are not
integers), and the finished version folder is then renamed into place:
a rename within one local filesystem is atomic. On object stores (gs://),
where a folder rename is a copy, it falls back to the stock behaviour.

Pushing is also idempotent: when the newest version already holds the same
SavedModel (same `fingerprint.pb`, which TensorFlow writes from the graph
and variables' checksums), no duplicate version is created. That happens on
a rerun with nothing changed: the evaluator reruns because its baseline
(the latest blessed model) is now this very model, and blesses it again.
"""

import os
import shutil
import tempfile
from typing import Any, Dict, List

from absl import logging
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

_PUSHED_DESTINATION_KEY = 'pushed_destination'
_PUSHED_VERSION_KEY = 'pushed_version'


def _is_local(path: str) -> bool:
  return '://' not in path


def _fingerprint(model_dir: str) -> bytes:
  path = os.path.join(model_dir, 'fingerprint.pb')
  if not os.path.exists(path):
    return b''
  with open(path, 'rb') as f:
    return f.read()


def newest_version(base: str) -> str:
  """The largest integer folder name under base, or '' when none."""
  versions = [n for n in os.listdir(base) if n.isdigit()] if os.path.isdir(
      base) else []
  return max(versions, key=int) if versions else ''


class Executor(pusher_executor.Executor):
  """Pushes a blessed model atomically to a local filesystem destination."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.PUSH_DESTINATION_KEY],
        destination)
    base = destination.filesystem.base_directory
    if (destination.WhichOneof('destination') != 'filesystem' or
        not _is_local(base)):
      super().Do(input_dict, output_dict, exec_properties)
      return

    os.makedirs(base, exist_ok=True)
    if self._already_pushed(input_dict, output_dict, base):
      return
    staging = tempfile.mkdtemp(prefix='.push-', dir=base)
    try:
      staged = pusher_pb2.PushDestination()
      staged.CopyFrom(destination)
      staged.filesystem.base_directory = staging
      properties = dict(exec_properties)
      properties[standard_component_specs.PUSH_DESTINATION_KEY] = (
          proto_utils.proto_to_json(staged))
      super().Do(input_dict, output_dict, properties)

      model_push = artifact_utils.get_single_instance(
          output_dict[standard_component_specs.PUSHED_MODEL_KEY])
      if not model_push.get_int_custom_property('pushed'):
        return  # Not blessed: nothing was pushed.
      version = model_push.get_string_custom_property(_PUSHED_VERSION_KEY)
      final = os.path.join(base, version)
      if os.path.exists(final):
        raise FileExistsError(
            f'Serving version {final} already exists; not overwriting it.')
      os.rename(os.path.join(staging, version), final)
      model_push.set_string_custom_property(_PUSHED_DESTINATION_KEY, final)
      logging.info('Model pushed atomically to %s', final)
    finally:
      shutil.rmtree(staging, ignore_errors=True)

  def _already_pushed(self, input_dict, output_dict, base: str) -> bool:
    """Marks the push done when the newest version is this very model."""
    if not self.CheckBlessing(input_dict):
      return False
    model_path = self.GetModelPath(input_dict)
    version = newest_version(base)
    fingerprint = _fingerprint(model_path)
    if not version or not fingerprint or fingerprint != _fingerprint(
        os.path.join(base, version)):
      return False
    model_push = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    io_utils.copy_dir(model_path, model_push.uri)
    self._MarkPushed(model_push, pushed_destination=os.path.join(
        base, version), pushed_version=version)
    logging.info('Model already serving as %s; no new version pushed.',
                 os.path.join(base, version))
    return True
