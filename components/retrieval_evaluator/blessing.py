"""Decides whether a retrieval model is blessed, from its metrics.

Plain Python, no TFX: the executor computes the metrics and writes the
blessing; this module only validates the thresholds and applies them.

A model is blessed iff every check passes:
  1. beats popularity: model > popularity × (1 + min_lift_over_popularity)
     on the blessing metric. The inequality is strict, so with the default
     lift of 0 a model that only ties the most-popular baseline is not
     blessed: it would add serving cost and no value over a count. With 0.1
     it must be more than 10% better.
  2. absolute floor: model ≥ min_value on the blessing metric (default 0,
     which always passes).
  3. no regression, only when there is a baseline model (the latest blessed
     one): model ≥ baseline − max_regression on the blessing metric. The
     tolerance is absolute (0.01 means one percentage point of recall), so
     evaluation noise does not block every retrain. The first run has no
     baseline model; this check is then skipped and the model is judged on
     checks 1 and 2 alone.
Comparisons allow 1e-9 of floating-point noise: a metric within 1e-9 of its
threshold counts as equal to it.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

DEFAULT_BLESSING_METRIC = 'recall_at_100'
DEFAULT_MIN_LIFT_OVER_POPULARITY = 0.0
DEFAULT_MIN_VALUE = 0.0
DEFAULT_MAX_REGRESSION = 0.01

BEATS_POPULARITY = 'beats_popularity'
MIN_VALUE = 'min_value'
NO_REGRESSION = 'no_regression'

# Metrics are means of values in [0, 1]; two sums of the same numbers in a
# different order can differ by ~1e-16.
_TOLERANCE = 1e-9


@dataclasses.dataclass(frozen=True)
class Thresholds:
  """The blessing rule's settings (see the module docstring).

  Attributes:
    blessing_metric: the metric the decision is made on, e.g.
      'recall_at_100'. Default 'recall_at_100'.
    min_lift_over_popularity: the relative margin by which the model must
      beat the most-popular baseline. Default 0.0 (strictly better).
    min_value: absolute floor of the blessing metric. Default 0.0.
    max_regression: how far (absolute) the blessing metric may fall below
      the baseline model's. Default 0.01.
  """

  blessing_metric: str = DEFAULT_BLESSING_METRIC
  min_lift_over_popularity: float = DEFAULT_MIN_LIFT_OVER_POPULARITY
  min_value: float = DEFAULT_MIN_VALUE
  max_regression: float = DEFAULT_MAX_REGRESSION

  def as_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Check:
  """One check of the rule, with the numbers it compared.

  Attributes:
    name: BEATS_POPULARITY, MIN_VALUE or NO_REGRESSION.
    passed: True or False; None when the check was skipped (no baseline).
    value: the model's blessing metric.
    threshold: what `value` was compared with (None when skipped).
    reason: a readable sentence with the numbers, e.g. 'PASS beats
      popularity: recall_at_100 0.3100 > 0.2500 = popularity 0.2500 x (1 +
      0.00)'.
  """

  name: str
  passed: Optional[bool]
  value: float
  threshold: Optional[float]
  reason: str

  def as_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Decision:
  """The verdict and every check behind it."""

  blessed: bool
  checks: Tuple[Check, ...]

  @property
  def reasons(self) -> List[str]:
    return [check.reason for check in self.checks]

  def message(self) -> str:
    """One line for the blessing artifact's 'blessing_message' property."""
    verdict = 'BLESSED' if self.blessed else 'NOT BLESSED'
    return f'{verdict}: ' + '; '.join(self.reasons)

  def as_dict(self) -> Dict[str, Any]:
    return {
        'blessed': self.blessed,
        'reasons': self.reasons,
        'checks': [check.as_dict() for check in self.checks],
    }


def _number(name: str, value: Any, default: float) -> float:
  if value is None:
    return default
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise ValueError(f'{name} must be a number, got {value!r}.')
  value = float(value)
  if not math.isfinite(value):
    raise ValueError(f'{name} must be finite, got {value!r}.')
  return value


def validate_thresholds(metric_names: Sequence[str],
                        blessing_metric: Optional[str] = None,
                        min_lift_over_popularity: Optional[float] = None,
                        min_value: Optional[float] = None,
                        max_regression: Optional[float] = None) -> Thresholds:
  """Checks the blessing settings; None takes the default.

  Args:
    metric_names: the metrics that will be computed (already validated).
    blessing_metric: one of `metric_names`. Default 'recall_at_100'.
    min_lift_over_popularity: ≥ 0. Default 0.0.
    min_value: in [0, 1] (every metric is in [0, 1]). Default 0.0.
    max_regression: in [0, 1]. Default 0.01.

  Returns:
    The thresholds, defaults filled in.

  Raises:
    ValueError: a setting has the wrong type or is out of range, or the
      blessing metric is not among the computed metrics.
  """
  if blessing_metric is None:
    blessing_metric = DEFAULT_BLESSING_METRIC
  if not isinstance(blessing_metric, str) or not blessing_metric:
    raise ValueError(
        f'blessing_metric must be a metric name, got {blessing_metric!r}.')
  if blessing_metric not in metric_names:
    raise ValueError(
        f'blessing_metric {blessing_metric!r} is not among the computed '
        f'metric_names {list(metric_names)}; add it there or pick one of them.')
  lift = _number('min_lift_over_popularity', min_lift_over_popularity,
                 DEFAULT_MIN_LIFT_OVER_POPULARITY)
  if lift < 0:
    raise ValueError(
        f'min_lift_over_popularity must be >= 0 (0 means "strictly better '
        f'than popularity", 0.1 "more than 10% better"), got {lift!r}.')
  floor = _number('min_value', min_value, DEFAULT_MIN_VALUE)
  if not 0.0 <= floor <= 1.0:
    raise ValueError(f'min_value must be in [0, 1] like every metric, got '
                     f'{floor!r}.')
  regression = _number('max_regression', max_regression,
                       DEFAULT_MAX_REGRESSION)
  if not 0.0 <= regression <= 1.0:
    raise ValueError(
        f'max_regression is an absolute tolerance in [0, 1] (0.01 = one '
        f'point of the metric), got {regression!r}.')
  return Thresholds(blessing_metric=blessing_metric,
                    min_lift_over_popularity=lift, min_value=floor,
                    max_regression=regression)


def _metric(metrics: Mapping[str, float], name: str, whose: str) -> float:
  if name not in metrics:
    raise ValueError(f'The {whose} metrics have no {name!r}; they have '
                     f'{sorted(metrics)}.')
  return metrics[name]


def decide(model_metrics: Mapping[str, float],
           popularity_metrics: Mapping[str, float],
           thresholds: Thresholds,
           baseline_model_metrics: Optional[Mapping[str, float]] = None
           ) -> Decision:
  """Applies the rule of the module docstring to the blessing metric.

  Args:
    model_metrics: metric name -> value for the candidate model.
    popularity_metrics: the same metrics for the most-popular baseline.
    thresholds: validated settings.
    baseline_model_metrics: the same metrics for the latest blessed model,
      or None when there is none (first run).

  Returns:
    Blessed iff no check failed, with one Check per rule in order.
  """
  name = thresholds.blessing_metric
  value = _metric(model_metrics, name, 'model')
  popularity = _metric(popularity_metrics, name, 'popularity')

  lift = thresholds.min_lift_over_popularity
  required = popularity * (1.0 + lift)
  beats = value > required + _TOLERANCE
  checks = [
      Check(BEATS_POPULARITY, beats, value, required,
            f'{_verdict(beats)} beats popularity: {name} {value:.4f} '
            f'{">" if beats else "<="} {required:.4f} = popularity '
            f'{popularity:.4f} x (1 + {lift:.2f})'),
  ]

  floor = thresholds.min_value
  above = value >= floor - _TOLERANCE
  checks.append(
      Check(MIN_VALUE, above, value, floor,
            f'{_verdict(above)} absolute floor: {name} {value:.4f} '
            f'{">=" if above else "<"} min_value {floor:.4f}'))

  if baseline_model_metrics is None:
    checks.append(
        Check(NO_REGRESSION, None, value, None,
              'SKIP no regression: no baseline model (no model blessed yet), '
              'judged on the thresholds alone'))
  else:
    baseline = _metric(baseline_model_metrics, name, 'baseline model')
    tolerance = thresholds.max_regression
    allowed = baseline - tolerance
    holds = value >= allowed - _TOLERANCE
    checks.append(
        Check(NO_REGRESSION, holds, value, allowed,
              f'{_verdict(holds)} no regression: {name} {value:.4f} '
              f'{">=" if holds else "<"} {allowed:.4f} = baseline model '
              f'{baseline:.4f} - max_regression {tolerance:.4f}'))
  blessed = all(check.passed is not False for check in checks)
  return Decision(blessed=blessed, checks=tuple(checks))


def _verdict(passed: bool) -> str:
  return 'PASS' if passed else 'FAIL'
