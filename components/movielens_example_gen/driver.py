"""Driver that fingerprints the raw files before the cache lookup.

The component has no input artifacts, only a folder path, so without this a
rerun over changed files would hit the cache and reuse stale examples. TFX's
launcher runs a custom driver before it computes the cache key, and the
fingerprint it adds to the exec properties becomes part of that key (the
same mechanism as TFX's FileBasedExampleGen).
"""

import glob
import os

from tfx.dsl.components.base import base_driver as legacy_base_driver
from tfx.dsl.io import fileio
from tfx.orchestration import metadata
from tfx.orchestration import data_types_utils
from tfx.orchestration.portable import base_driver
from tfx.orchestration.portable import data_types
from tfx.proto.orchestration import driver_output_pb2
from tfx.utils import io_utils

from components.movielens_example_gen import spec
from movielens import layout as raw


def input_fingerprint(input_base: str) -> str:
  """Names, sizes and mtimes of the raw files of the release in input_base."""
  data_layout = raw.detect_layout(input_base, exists=fileio.exists)
  parts = []
  for file_name in data_layout.files:
    path = os.path.join(input_base, file_name)
    if fileio.exists(path):
      # TFX reads the path as a glob pattern: escaped, so that a folder
      # named e.g. 'ml-100k [copy]' is fingerprinted, not matched away.
      parts.append(io_utils.generate_fingerprint(file_name,
                                                 glob.escape(path)))
    else:
      parts.append(f'split:{file_name},missing')
  return '\n'.join(parts)


class Driver(legacy_base_driver.BaseDriver, base_driver.BaseDriver):
  """Adds `input_fingerprint` to the exec properties.

  Derives from both driver bases, like TFX's own ExampleGen driver: the
  component class checks for the legacy base, the IR launcher calls `run`.
  """

  def __init__(self, metadata_handle: metadata.Metadata):
    legacy_base_driver.BaseDriver.__init__(self, metadata_handle)
    base_driver.BaseDriver.__init__(self, metadata_handle)

  def run(self, execution_info: data_types.ExecutionInfo
         ) -> driver_output_pb2.DriverOutput:
    exec_properties = dict(execution_info.exec_properties)
    exec_properties[spec.INPUT_FINGERPRINT_KEY] = input_fingerprint(
        exec_properties[spec.INPUT_BASE_KEY])
    result = driver_output_pb2.DriverOutput()
    for key, value in exec_properties.items():
      if value is not None:
        data_types_utils.set_metadata_value(result.exec_properties[key], value)
    return result
