"""Executor of RecommenderBuilder: checks both blessings, builds, saves."""

import hashlib
import os
import time
from typing import Any, Dict, List

from absl import logging
import tensorflow as tf
from tfx import types
from tfx.components.util import model_utils
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from components.atomic_pusher import executor as atomic_executor
from components.recommender_builder import spec
from modules import recommender_export

_BLESSED_FILE = 'BLESSED'
_NOT_BLESSED_FILE = 'NOT_BLESSED'


def write_blessing(artifact: types.Artifact, blessed: bool, message: str,
                   model: types.Artifact) -> None:
  """The blessing as TFX's Evaluator writes it (file and properties)."""
  artifact.set_string_custom_property('current_model', model.uri)
  artifact.set_int_custom_property('current_model_id', model.id)
  artifact.set_string_custom_property('blessing_message', message)
  io_utils.write_string_file(
      os.path.join(artifact.uri,
                   _BLESSED_FILE if blessed else _NOT_BLESSED_FILE), '')
  artifact.set_int_custom_property('blessed', int(blessed))


def model_identity(retrieval_uri: str, ranking_uri: str, top_k, weight
                  ) -> str:
  """sha256 over both input models' fingerprints and the settings."""
  digest = hashlib.sha256()
  for uri in (retrieval_uri, ranking_uri):
    path = os.path.join(path_utils.serving_model_path(uri), 'fingerprint.pb')
    digest.update(io_utils.read_bytes_file(path) if os.path.exists(path)
                  else uri.encode())
  digest.update(f'top_k={top_k} weight={weight}'.encode())
  return digest.hexdigest()


class Executor(base_executor.BaseExecutor):
  """Builds the recommender when both models are blessed."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    started = time.time()
    retrieval = artifact_utils.get_single_instance(
        input_dict[spec.RETRIEVAL_KEY])
    ranking = artifact_utils.get_single_instance(input_dict[spec.RANKING_KEY])
    recommender = artifact_utils.get_single_instance(
        output_dict[spec.RECOMMENDER_KEY])
    blessing = artifact_utils.get_single_instance(
        output_dict[spec.BLESSING_KEY])
    unblessed = [
        name for name, key in (('retrieval', spec.RETRIEVAL_BLESSING_KEY),
                               ('ranking', spec.RANKING_BLESSING_KEY))
        if not model_utils.is_model_blessed(
            artifact_utils.get_single_instance(input_dict[key]))]
    if unblessed:
      message = (f'not built: the {" and ".join(unblessed)} model'
                 f'{"s were" if len(unblessed) > 1 else " was"} not blessed')
      logging.info('RecommenderBuilder: %s', message)
      print(f'RecommenderBuilder: {message}', flush=True)
      write_blessing(blessing, False, message, recommender)
      return

    top_k = exec_properties.get(spec.TOP_K_KEY)
    weight = exec_properties.get(spec.RETRIEVAL_WEIGHT_KEY)
    servable = recommender_export.RecommenderServable(
        tf.saved_model.load(path_utils.serving_model_path(retrieval.uri)),
        tf.saved_model.load(path_utils.serving_model_path(ranking.uri)),
        top_k=recommender_export.DEFAULT_TOP_K if top_k is None else top_k,
        retrieval_weight=(recommender_export.DEFAULT_RETRIEVAL_WEIGHT
                          if weight is None else weight))
    export_dir = path_utils.serving_model_path(recommender.uri)
    recommender_export.save(servable, export_dir)
    # Rebuilding from the same two models gives the same identity, so the
    # Pusher does not push a duplicate version (see atomic_pusher).
    io_utils.write_bytes_file(
        os.path.join(export_dir, atomic_executor.IDENTITY_FILE),
        model_identity(retrieval.uri, ranking.uri, top_k, weight).encode())
    write_blessing(blessing, True,
                   'built from the blessed retrieval and ranking models',
                   recommender)
    logging.info('RecommenderBuilder: saved to %s in %.1fs', export_dir,
                 time.time() - started)
