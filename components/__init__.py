"""Custom TFX components of the MovieLens pipeline."""
# KFP v2 imports a custom artifact type from its TYPE_NAME
# (`components.AnomalyGateResult`), so it must be importable from here.
from components.anomaly_gate.spec import AnomalyGateResult  # noqa: F401
