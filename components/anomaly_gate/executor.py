"""AnomalyGate executor: reads ExampleValidator's output and calls the gate."""

import json
import os
from typing import Any, Dict, List, Optional

from absl import logging
from tensorflow_data_validation.utils import anomalies_util
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import types
from tfx.components.example_validator import executor as example_validator
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import io_utils, json_utils

from components.anomaly_gate import gate, spec

# ExampleValidator writes one binary Anomalies proto per split, to
# <artifact uri>/Split-<split>/SchemaDiff.pb.
ANOMALIES_FILE_NAME = example_validator.DEFAULT_FILE_NAME


class Executor(base_executor.BaseExecutor):
  """Fails the run on anomalies; otherwise writes a small pass summary."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    """Checks the anomalies of the selected splits.

    Args:
      input_dict: ANOMALIES_KEY -> one ExampleAnomalies artifact.
      output_dict: RESULT_KEY -> one AnomalyGateResult artifact.
      exec_properties: SPLITS_KEY and IGNORE_ANOMALY_TYPES_KEY, JSON-encoded
        lists or None.

    Raises:
      ValueError: an exec property is invalid, or names a split the artifact
        does not have.
      FileNotFoundError: a split's anomalies file is missing.
      gate.DataAnomaliesError: a checked split has anomalies that are not
        ignored.
    """
    self._log_startup(input_dict, output_dict, exec_properties)
    requested_splits = gate.validate_splits(
        _json_list(exec_properties, spec.SPLITS_KEY))
    ignore_anomaly_types = gate.validate_ignore_anomaly_types(
        _json_list(exec_properties, spec.IGNORE_ANOMALY_TYPES_KEY))

    anomalies_artifact = artifact_utils.get_single_instance(
        input_dict[spec.ANOMALIES_KEY])
    splits = gate.select_splits(
        artifact_utils.decode_split_names(anomalies_artifact.split_names),
        requested_splits)
    anomalies_by_split = {
        split: load_split_anomalies(anomalies_artifact, split)
        for split in splits
    }

    result = gate.check_anomalies(anomalies_by_split, ignore_anomaly_types,
                                  anomalies_uri=anomalies_artifact.uri)

    result_artifact = artifact_utils.get_single_instance(
        output_dict[spec.RESULT_KEY])
    io_utils.write_string_file(
        os.path.join(result_artifact.uri, spec.RESULT_FILE_NAME),
        json.dumps(result.summary(), indent=2, sort_keys=True))
    logging.info(result.log_line())


def load_split_anomalies(artifact: types.Artifact,
                         split: str) -> anomalies_pb2.Anomalies:
  """Reads the Anomalies proto ExampleValidator wrote for `split`.

  Raises:
    FileNotFoundError: the split's directory has no anomalies file.
  """
  path = os.path.join(artifact_utils.get_split_uri([artifact], split),
                      ANOMALIES_FILE_NAME)
  if not fileio.exists(path):
    raise FileNotFoundError(
        f'No anomalies for split {split!r}: {path} does not exist. AnomalyGate '
        'expects the ExampleAnomalies output of ExampleValidator (one binary '
        f'{ANOMALIES_FILE_NAME} per split).')
  return anomalies_util.load_anomalies_binary(path)


def _json_list(exec_properties: Dict[str, Any], key: str) -> Optional[Any]:
  """Decodes a JSON exec property; unset or 'null' gives None."""
  value = exec_properties.get(key)
  if value is None:
    return None
  try:
    return json_utils.loads(value)
  except (TypeError, ValueError) as error:
    raise ValueError(
        f'Exec property {key!r} must be a JSON-encoded list, got '
        f'{value!r}.') from error
