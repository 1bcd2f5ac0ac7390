"""AnomalyGate: stops the pipeline run when ExampleValidator found anomalies."""

from typing import Optional, Sequence

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.utils import json_utils

from components.anomaly_gate import executor, gate, spec


class AnomalyGate(base_component.BaseComponent):
  """Fails the run when ExampleValidator found anomalies.

  ExampleValidator only records anomalies; the run goes on either way. This
  component reads its `anomalies` output and raises `DataAnomaliesError`
  (listing, per split, each feature with its anomaly's descriptions) when any
  checked split has an anomaly that is not in `ignore_anomaly_types`.
  Otherwise it emits a `result` artifact holding a small JSON summary.

  Transform takes no input of this type, so make it run after the gate with a
  task dependency (compiled into the IR for LocalDagRunner and into the
  Vertex/Kubeflow task graph):

    # Stops the run when the data broke the curated schema.
    anomaly_gate = AnomalyGate(anomalies=example_validator.outputs['anomalies'])
    transform = Transform(...)
    transform.add_upstream_node(anomaly_gate)

  Component `outputs` contains:
    - `result`: Channel of type `AnomalyGateResult`; only produced when the
      gate passed.
  """

  SPEC_CLASS = spec.AnomalyGateSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self,
               anomalies: types.BaseChannel,
               splits: Optional[Sequence[str]] = None,
               ignore_anomaly_types: Optional[Sequence[str]] = None):
    """Constructs an AnomalyGate.

    Args:
      anomalies: a channel of `ExampleAnomalies`, the `anomalies` output of
        ExampleValidator.
      splits: names of the splits to check. Default (None): every split in
        the anomalies artifact.
      ignore_anomaly_types: anomalies to tolerate, each an `AnomalyInfo.Type`
        name (e.g. 'ENUM_TYPE_UNEXPECTED_STRING_VALUES') or a short
        description (e.g. 'Unexpected string values'). Default (None):
        tolerate none. Tolerated anomalies are still listed in the result.

    Raises:
      ValueError: `splits` or `ignore_anomaly_types` is malformed (checked
        here so that a typo fails when the pipeline is built, not at run
        time).
    """
    splits = gate.validate_splits(splits)
    ignore_anomaly_types = gate.validate_ignore_anomaly_types(
        ignore_anomaly_types)
    component_spec = spec.AnomalyGateSpec(
        anomalies=anomalies,
        splits=json_utils.dumps(splits),
        ignore_anomaly_types=json_utils.dumps(ignore_anomaly_types),
        result=types.Channel(type=spec.AnomalyGateResult))
    super().__init__(spec=component_spec)
