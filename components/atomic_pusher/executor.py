"""Pusher executor whose version folder appears complete or not at all.

TFX's Pusher copies the model into `<base>/<version>/` file by file (with
saved_model.pb last), so TF Serving, which polls the base folder, can see a
half-copied version. Here the stock executor pushes into a hidden staging
folder beside the destination (TF Serving ignores names that are not
integers), and the finished version folder is then renamed into place:
a rename within one local filesystem is atomic. A failed push removes its
staging folder; one killed mid-copy leaves it, for
`staging.remove_stale_staging` to remove. On object stores (gs://),
where a folder rename is a copy, it falls back to the stock behaviour.

Before the rename, the staged version gets TF Serving's warm-up requests
(`assets.extra/tf_serving_warmup_requests`, see `serving/warmup.py`),
derived from its `serving_default` signature, so TF Serving runs them when
it loads the version and the first real request is not slow. They are
replayed on the staged model first: TF Serving refuses to load a version
whose warm-up fails, so such a model is not pushed at all. The model name
in the requests is the destination folder's name (`.../serving/retrieval`
-> 'retrieval'); TF Serving does not use it when warming up.

Pushing is also idempotent: when the newest version already holds the same
SavedModel (same `fingerprint.pb`, which TensorFlow writes from the graph
and variables' checksums, or the same `assets.extra/model_identity` for a
model built from other models), no duplicate version is created. That happens on
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

from components.atomic_pusher.staging import STAGING_PREFIX
from serving import servables, warmup

_PUSHED_DESTINATION_KEY = 'pushed_destination'
_PUSHED_VERSION_KEY = 'pushed_version'


def _is_local(path: str) -> bool:
  return '://' not in path


# A SavedModel built from other SavedModels (the recommender) is traced
# anew at each build, so its fingerprint.pb differs between builds of the
# same inputs; its builder writes this file, derived from the inputs, and it
# identifies the model instead.
IDENTITY_FILE = os.path.join('assets.extra', 'model_identity')


def _fingerprint(model_dir: str) -> bytes:
  """What identifies a SavedModel: its IDENTITY_FILE, else fingerprint.pb."""
  for name in (IDENTITY_FILE, 'fingerprint.pb'):
    path = os.path.join(model_dir, name)
    if os.path.exists(path):
      with open(path, 'rb') as f:
        return f.read()
  return b''


def add_warmup_requests(model_dir: str, model_name: str) -> str:
  """Writes the warm-up file into a SavedModel folder and replays it.

  Raises:
    ValueError: the SavedModel has no `serving_default` signature.
    serving.servables.WarmupError: the model cannot answer the requests, so
      TF Serving would refuse to load it.
  """
  path = warmup.write_warmup_requests(model_dir, model_name)
  count = servables.check_warmup_requests(model_dir, model_name)
  logging.info('Wrote and replayed %d warm-up request(s): %s', count, path)
  return path


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
    staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=base)
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
      staged_version = os.path.join(staging, version)
      add_warmup_requests(staged_version,
                          os.path.basename(os.path.normpath(base)))
      os.rename(staged_version, final)
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
