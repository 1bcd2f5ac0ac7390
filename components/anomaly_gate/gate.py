"""Decides whether ExampleValidator's anomalies may let the pipeline go on.

ExampleValidator records anomalies (and a 'blessed' custom property) but never
fails, so a run with broken data would carry on into Transform and Trainer.
This module holds the decision, as plain functions over
`tensorflow_metadata` `Anomalies` protos with no TFX imports, so that it can be
tested on hand-built protos and on real TFDV output.

What counts as an anomaly in one split's `Anomalies` proto:
  - every reason of every `anomaly_info` entry (feature-level anomalies);
  - every reason of `dataset_anomaly_info` (e.g. too few examples);
  - `data_missing` (the split had no examples at all). TFDV reports an empty
    split only through this flag, and ExampleValidator blesses it, so it is
    checked explicitly;
  - a `drift_skew_info` measurement above its threshold, when TFDV has not
    already reported that feature in `anomaly_info`. TFDV lists measurements
    below the threshold too; those are not anomalies.

Any of them can be tolerated by listing its `AnomalyInfo.Type` name (e.g.
'ENUM_TYPE_UNEXPECTED_STRING_VALUES') or its short description (e.g.
'Unexpected string values') in `ignore_anomaly_types`.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from tensorflow_metadata.proto.v0 import anomalies_pb2

# Feature name used in reports for anomalies about the whole split.
DATASET_LEVEL = '(dataset)'

_TYPE_NAMES = frozenset(anomalies_pb2.AnomalyInfo.Type.keys())
# An ignore entry spelled like an enum name is checked against the enum, so a
# typo fails at construction instead of silently ignoring nothing.
_LOOKS_LIKE_TYPE_NAME = re.compile(r'[A-Z][A-Z0-9]*(_[A-Z0-9]+)+')

# The AnomalyInfo type TFDV uses for a drift/skew measurement over threshold.
_MEASUREMENT_TYPES = {
    anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY:
        'COMPARATOR_L_INFTY_HIGH',
    anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE:
        'COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH',
    anomalies_pb2.DriftSkewInfo.Measurement.NORMALIZED_ABSOLUTE_DIFFERENCE:
        'COMPARATOR_NORMALIZED_ABSOLUTE_DIFFERENCE_HIGH',
}


class DataAnomaliesError(RuntimeError):
  """Data validation found anomalies in at least one checked split.

  The message is a self-contained report for the run log: per split, every
  feature with its anomaly's short and long description, where the anomalies
  artifact is, and how to proceed.

  Attributes:
    anomalies: the anomalies that stopped the run, in report order.
    checked_splits: every split that was checked, failed or not.
    anomalies_uri: URI of the ExampleAnomalies artifact that was checked.
  """

  def __init__(self, anomalies: Sequence[Anomaly],
               checked_splits: Sequence[str], anomalies_uri: str):
    self.anomalies = tuple(anomalies)
    self.checked_splits = tuple(checked_splits)
    self.anomalies_uri = anomalies_uri
    super().__init__(
        format_report(self.anomalies, self.checked_splits, anomalies_uri))

  def __reduce__(self):
    # Keeps the error picklable (e.g. across processes) despite the
    # non-standard constructor.
    return (type(self), (self.anomalies, self.checked_splits,
                         self.anomalies_uri))


@dataclasses.dataclass(frozen=True)
class Anomaly:
  """One reason for one anomaly, flattened out of an `Anomalies` proto.

  Attributes:
    split: the split it was found in, e.g. 'train'.
    feature: the `anomaly_info` key (the feature name or serialized path), or
      DATASET_LEVEL for anomalies about the whole split.
    type_name: the `AnomalyInfo.Type` name, e.g. 'SCHEMA_MISSING_COLUMN';
      'UNKNOWN_TYPE' when the proto has no typed reason.
    short_description: e.g. 'Column dropped'.
    description: e.g. 'Column is completely missing'.
    severity: 'ERROR', 'WARNING' or 'UNKNOWN'.
  """

  split: str
  feature: str
  type_name: str
  short_description: str
  description: str
  severity: str = 'UNKNOWN'

  def as_dict(self) -> Dict[str, str]:
    return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class GateResult:
  """What a passed gate checked.

  Attributes:
    checked_splits: the splits whose anomalies were read, in order.
    tolerated: anomalies found but listed in `ignore_anomaly_types`.
    anomalies_uri: URI of the ExampleAnomalies artifact that was checked.
  """

  checked_splits: Tuple[str, ...]
  tolerated: Tuple[Anomaly, ...]
  anomalies_uri: str = ''

  def summary(self) -> Dict[str, Any]:
    """A JSON-serialisable summary, as written to the gate's output."""
    return {
        'passed': True,
        'checked_splits': list(self.checked_splits),
        'anomalies_uri': self.anomalies_uri,
        'tolerated_anomalies': [a.as_dict() for a in self.tolerated],
    }

  def log_line(self) -> str:
    """One line for the run log."""
    line = (f'AnomalyGate passed: no anomalies in splits '
            f'{list(self.checked_splits)} of {self.anomalies_uri or "input"}')
    if self.tolerated:
      tolerated = ', '.join(
          f'{a.split}/{a.feature}: {a.type_name}' for a in self.tolerated)
      line += f' ({len(self.tolerated)} tolerated: {tolerated})'
    return line + '.'


def validate_splits(splits: Optional[Sequence[str]]) -> Optional[List[str]]:
  """Checks the `splits` option; None means 'every split of the artifact'.

  Args:
    splits: split names to check, or None.

  Returns:
    The split names as a list, or None.

  Raises:
    ValueError: `splits` is not a list of distinct non-empty strings, or is
      empty (a gate that checks nothing would always pass).
  """
  if splits is None:
    return None
  if isinstance(splits, (str, bytes)) or not isinstance(splits, Sequence):
    raise ValueError(
        f'splits must be a list of split names such as ["train", "eval"], '
        f'got {splits!r}.')
  if not splits:
    raise ValueError(
        'splits is empty, so the gate would check nothing; leave it unset '
        '(None) to check every split of the anomalies artifact.')
  for split in splits:
    if not isinstance(split, str) or not split:
      raise ValueError(
          f'splits must hold non-empty split names, got {split!r} in '
          f'{list(splits)!r}.')
  duplicates = sorted({s for s in splits if list(splits).count(s) > 1})
  if duplicates:
    raise ValueError(f'splits lists {duplicates} more than once.')
  return list(splits)


def validate_ignore_anomaly_types(
    ignore_anomaly_types: Optional[Sequence[str]]) -> List[str]:
  """Checks the `ignore_anomaly_types` option; None means 'tolerate nothing'.

  Args:
    ignore_anomaly_types: `AnomalyInfo.Type` names (e.g.
      'ENUM_TYPE_UNEXPECTED_STRING_VALUES') or short descriptions (e.g.
      'Unexpected string values'), or None.

  Returns:
    The entries as a list (empty for None).

  Raises:
    ValueError: not a list of non-empty strings, or an entry spelled like a
      type name that `AnomalyInfo.Type` does not have (the message suggests
      the closest names).
  """
  if ignore_anomaly_types is None:
    return []
  if (isinstance(ignore_anomaly_types, (str, bytes)) or
      not isinstance(ignore_anomaly_types, Sequence)):
    raise ValueError(
        'ignore_anomaly_types must be a list such as '
        '["ENUM_TYPE_UNEXPECTED_STRING_VALUES"] or ["Unexpected string '
        f'values"], got {ignore_anomaly_types!r}.')
  for entry in ignore_anomaly_types:
    if not isinstance(entry, str) or not entry.strip():
      raise ValueError(
          'ignore_anomaly_types must hold AnomalyInfo.Type names or short '
          f'descriptions, got {entry!r} in {list(ignore_anomaly_types)!r}.')
    if _LOOKS_LIKE_TYPE_NAME.fullmatch(entry) and entry not in _TYPE_NAMES:
      close = difflib.get_close_matches(entry, sorted(_TYPE_NAMES), n=3)
      hint = f' Did you mean {close}?' if close else ''
      raise ValueError(
          f'ignore_anomaly_types: {entry!r} is not an AnomalyInfo.Type name '
          f'of tensorflow_metadata.{hint}')
  return list(ignore_anomaly_types)


def select_splits(available: Sequence[str],
                  requested: Optional[Sequence[str]]) -> List[str]:
  """The splits to check: `requested`, or every available one.

  Args:
    available: the split names of the anomalies artifact.
    requested: the `splits` option, already validated, or None.

  Returns:
    The split names to check, in the order given.

  Raises:
    ValueError: a requested split is not in the artifact, or there is no split
      to check at all.
  """
  if requested is None:
    if not available:
      raise ValueError(
          'The anomalies artifact has no splits, so there is nothing to '
          'check; did ExampleValidator exclude every split?')
    return list(available)
  missing = [split for split in requested if split not in available]
  if missing:
    raise ValueError(
        f'splits {missing} are not in the anomalies artifact, which has '
        f'splits {list(available)}. ExampleValidator only validates the splits '
        'it was not told to exclude.')
  return list(requested)


def list_anomalies(anomalies: anomalies_pb2.Anomalies,
                   split: str) -> List[Anomaly]:
  """Flattens one split's `Anomalies` proto into one entry per reason.

  Args:
    anomalies: the proto ExampleValidator wrote for `split`.
    split: the split name, recorded on every entry.

  Returns:
    Dataset-level anomalies first, then features in name order.
  """
  found = []
  if anomalies.data_missing:
    found.append(
        Anomaly(split=split, feature=DATASET_LEVEL,
                type_name='NO_DATA_IN_SPAN',
                short_description='Data missing',
                description=('The split has no examples (the statistics have '
                             'num_examples == 0).'),
                severity='ERROR'))
  if anomalies.HasField('dataset_anomaly_info'):
    found.extend(
        _reasons(anomalies.dataset_anomaly_info, split, DATASET_LEVEL))
  for feature in sorted(anomalies.anomaly_info):
    found.extend(_reasons(anomalies.anomaly_info[feature], split, feature))
  for drift_skew in anomalies.drift_skew_info:
    feature = '.'.join(drift_skew.path.step)
    if feature in anomalies.anomaly_info:
      continue  # TFDV already reported it with its own descriptions.
    for kind, measurements in (('drift', drift_skew.drift_measurements),
                               ('skew', drift_skew.skew_measurements)):
      for measurement in measurements:
        if measurement.value > measurement.threshold:
          measure = anomalies_pb2.DriftSkewInfo.Measurement.Type.Name(
              measurement.type)
          found.append(
              Anomaly(split=split, feature=feature,
                      type_name=_MEASUREMENT_TYPES.get(measurement.type,
                                                       'UNKNOWN_TYPE'),
                      short_description=f'High {measure} {kind}',
                      description=(f'The {measure} {kind} is '
                                   f'{measurement.value:g}, above the '
                                   f'threshold {measurement.threshold:g}.'),
                      severity='ERROR'))
  return found


def check_anomalies(anomalies_by_split: Mapping[str, anomalies_pb2.Anomalies],
                    ignore_anomaly_types: Sequence[str] = (),
                    anomalies_uri: str = '') -> GateResult:
  """Passes if no checked split has an anomaly outside the ignore list.

  Args:
    anomalies_by_split: split name -> that split's `Anomalies` proto, for
      exactly the splits to check.
    ignore_anomaly_types: validated entries of `ignore_anomaly_types`; an
      anomaly is tolerated when its type name or short description is listed
      (short descriptions compare case-insensitively).
    anomalies_uri: where the anomalies came from, quoted in the report.

  Returns:
    What was checked and which anomalies were tolerated.

  Raises:
    DataAnomaliesError: some anomaly is not tolerated. Its message lists every
      such anomaly, per split.
  """
  ignored = {entry.strip().casefold() for entry in ignore_anomaly_types}
  blocking, tolerated = [], []
  for split, anomalies in anomalies_by_split.items():
    for anomaly in list_anomalies(anomalies, split):
      if (anomaly.type_name.casefold() in ignored or
          anomaly.short_description.strip().casefold() in ignored):
        tolerated.append(anomaly)
      else:
        blocking.append(anomaly)
  checked_splits = tuple(anomalies_by_split)
  if blocking:
    raise DataAnomaliesError(blocking, checked_splits, anomalies_uri)
  return GateResult(checked_splits=checked_splits, tolerated=tuple(tolerated),
                    anomalies_uri=anomalies_uri)


def format_report(anomalies: Sequence[Anomaly], checked_splits: Sequence[str],
                  anomalies_uri: str) -> str:
  """The text of DataAnomaliesError: readable on its own in a run log."""
  failed_splits = [s for s in checked_splits if any(a.split == s
                                                     for a in anomalies)]
  lines = [
      f'Data validation found {_count(len(anomalies), "anomaly", "anomalies")}'
      f' in {len(failed_splits)} of '
      f'{_count(len(checked_splits), "checked split", "checked splits")} '
      f'{list(checked_splits)}; stopping the pipeline run.',
      f'Anomalies artifact: {anomalies_uri or "(unknown)"}',
  ]
  for split in failed_splits:
    lines.append(f"Split '{split}':")
    for anomaly in anomalies:
      if anomaly.split != split:
        continue
      subject = ('dataset' if anomaly.feature == DATASET_LEVEL else
                 f"feature '{anomaly.feature}'")
      lines.append(f'  - {subject}: {anomaly.short_description} '
                   f'[{anomaly.type_name}, {anomaly.severity}]')
      if anomaly.description:
        lines.append(f'      {anomaly.description.strip()}')
  lines += [
      'How to proceed:',
      '  - If the data is wrong, fix the raw data or its ingestion and rerun.',
      '  - If the data is right and the expectation is outdated, update the '
      'curated schema that ExampleValidator validates against, and rerun.',
      '  - To accept a kind of anomaly on purpose, add its type name (in '
      'brackets above) or its short description to '
      'AnomalyGate(ignore_anomaly_types=[...]).',
  ]
  return '\n'.join(lines)


def _reasons(info: anomalies_pb2.AnomalyInfo, split: str,
             feature: str) -> List[Anomaly]:
  """One Anomaly per reason; the info itself when it has no reasons."""
  severity = anomalies_pb2.AnomalyInfo.Severity.Name(info.severity)
  if not info.reason:
    return [
        Anomaly(split=split, feature=feature, type_name='UNKNOWN_TYPE',
                short_description=info.short_description,
                description=info.description, severity=severity)
    ]
  return [
      Anomaly(split=split, feature=feature,
              type_name=anomalies_pb2.AnomalyInfo.Type.Name(reason.type),
              short_description=reason.short_description,
              description=reason.description, severity=severity)
      for reason in info.reason
  ]


def _count(n: int, singular: str, plural: str) -> str:
  return f'{n} {singular if n == 1 else plural}'
