"""Keys, output artifact type and ComponentSpec of AnomalyGate."""

from tfx import types
from tfx.types import component_spec, standard_artifacts

ANOMALIES_KEY = 'anomalies'
RESULT_KEY = 'result'
# Exec properties, JSON-encoded lists (None when unset), as ExampleValidator
# does for exclude_splits.
SPLITS_KEY = 'splits'
IGNORE_ANOMALY_TYPES_KEY = 'ignore_anomaly_types'

# Written into the output artifact's directory when the gate passes.
RESULT_FILE_NAME = 'gate_result.json'


class AnomalyGateResult(types.Artifact):
  """Proof that AnomalyGate passed: its directory holds RESULT_FILE_NAME.

  It only exists for a run whose data passed the gate, so a component that
  runs after it (see AnomalyGate) never sees anomalous data.
  """

  TYPE_NAME = 'components.AnomalyGateResult'


class AnomalyGateSpec(types.ComponentSpec):
  """ExampleValidator's anomalies in; a pass result out, or a failed run."""

  PARAMETERS = {
      SPLITS_KEY: component_spec.ExecutionParameter(type=str, optional=True),
      IGNORE_ANOMALY_TYPES_KEY: component_spec.ExecutionParameter(
          type=str, optional=True),
  }
  INPUTS = {
      ANOMALIES_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.ExampleAnomalies),
  }
  OUTPUTS = {
      RESULT_KEY: component_spec.ChannelParameter(type=AnomalyGateResult),
  }
