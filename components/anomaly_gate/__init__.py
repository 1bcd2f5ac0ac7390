"""AnomalyGate: stops a pipeline run when ExampleValidator found anomalies."""

from components.anomaly_gate.component import AnomalyGate
from components.anomaly_gate.gate import DataAnomaliesError
from components.anomaly_gate.spec import AnomalyGateResult

__all__ = ['AnomalyGate', 'AnomalyGateResult', 'DataAnomaliesError']
