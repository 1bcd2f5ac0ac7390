"""AnomalyGate: the gate logic on hand-built and real TFDV anomalies, the
executor on ExampleValidator's on-disk layout, construction, and wiring."""

import json
import os
import pickle

import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import types
from tfx.components import ExampleValidator, Transform
from tfx.dsl.compiler import compiler
from tfx.dsl.components.common import importer
from tfx.orchestration import pipeline as pipeline_lib
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import json_utils, writer_utils

from components.anomaly_gate import AnomalyGate, AnomalyGateResult
from components.anomaly_gate import DataAnomaliesError, executor, gate, spec

pytestmark = pytest.mark.integration

ANOMALIES_URI = '/pipeline/ExampleValidator/anomalies/7'

# What TFDV writes for clean data: no anomaly_info, no data_missing.
CLEAN = anomalies_pb2.Anomalies(
    anomaly_name_format=anomalies_pb2.Anomalies.SERIALIZED_PATH)

# Built by hand in the shape TFDV produces: a float over its domain and a
# string outside the vocabulary.
BROKEN = text_format.Parse(
    """
    anomaly_info {
      key: "rating"
      value {
        severity: ERROR
        short_description: "Out-of-range values"
        description: "Unexpectedly large value: 7."
        reason {
          type: FLOAT_TYPE_BIG_FLOAT
          short_description: "Out-of-range values"
          description: "Unexpectedly large value: 7."
        }
        path { step: "rating" }
      }
    }
    anomaly_info {
      key: "gender"
      value {
        severity: ERROR
        short_description: "Unexpected string values"
        description: "Examples contain values missing from the schema: "
                     "X (~25%)."
        reason {
          type: ENUM_TYPE_UNEXPECTED_STRING_VALUES
          short_description: "Unexpected string values"
          description: "Examples contain values missing from the schema: "
                     "X (~25%)."
        }
        path { step: "gender" }
      }
    }
    anomaly_name_format: SERIALIZED_PATH
    """, anomalies_pb2.Anomalies())


# ---------------------------------------------------------------- gate logic


def test_clean_anomalies_pass_and_report_checked_splits():
  result = gate.check_anomalies({'train': CLEAN, 'eval': CLEAN},
                                anomalies_uri=ANOMALIES_URI)

  assert result.checked_splits == ('train', 'eval')
  assert result.tolerated == ()
  assert result.summary() == {
      'passed': True,
      'checked_splits': ['train', 'eval'],
      'anomalies_uri': ANOMALIES_URI,
      'tolerated_anomalies': [],
  }
  assert result.log_line() == (
      "AnomalyGate passed: no anomalies in splits ['train', 'eval'] of "
      f'{ANOMALIES_URI}.')


def test_broken_anomalies_raise_a_report_naming_features_and_descriptions():
  with pytest.raises(DataAnomaliesError) as raised:
    gate.check_anomalies({'train': CLEAN, 'eval': BROKEN},
                         anomalies_uri=ANOMALIES_URI)

  error = raised.value
  assert isinstance(error, RuntimeError)
  assert error.anomalies_uri == ANOMALIES_URI
  # Features in name order, one entry per reason.
  assert [(a.split, a.feature, a.type_name) for a in error.anomalies] == [
      ('eval', 'gender', 'ENUM_TYPE_UNEXPECTED_STRING_VALUES'),
      ('eval', 'rating', 'FLOAT_TYPE_BIG_FLOAT'),
  ]
  assert str(error) == '\n'.join([
      "Data validation found 2 anomalies in 1 of 2 checked splits "
      "['train', 'eval']; stopping the pipeline run.",
      f'Anomalies artifact: {ANOMALIES_URI}',
      "Split 'eval':",
      "  - feature 'gender': Unexpected string values "
      '[ENUM_TYPE_UNEXPECTED_STRING_VALUES, ERROR]',
      '      Examples contain values missing from the schema: X (~25%).',
      "  - feature 'rating': Out-of-range values [FLOAT_TYPE_BIG_FLOAT, ERROR]",
      '      Unexpectedly large value: 7.',
      'How to proceed:',
      '  - If the data is wrong, fix the raw data or its ingestion and rerun.',
      '  - If the data is right and the expectation is outdated, update the '
      'curated schema that ExampleValidator validates against, and rerun.',
      '  - To accept a kind of anomaly on purpose, add its type name (in '
      'brackets above) or its short description to '
      'AnomalyGate(ignore_anomaly_types=[...]).',
  ])


def test_ignore_list_tolerates_by_type_name_and_by_short_description():
  # Ignoring one of the two kinds still fails, on the other one only.
  with pytest.raises(DataAnomaliesError) as raised:
    gate.check_anomalies({'train': BROKEN},
                         ['ENUM_TYPE_UNEXPECTED_STRING_VALUES'])
  assert [a.feature for a in raised.value.anomalies] == ['rating']
  assert 'gender' not in str(raised.value)

  # Short descriptions match case-insensitively.
  result = gate.check_anomalies(
      {'train': BROKEN},
      ['ENUM_TYPE_UNEXPECTED_STRING_VALUES', 'out-of-range values'])
  assert [(a.feature, a.short_description) for a in result.tolerated] == [
      ('gender', 'Unexpected string values'),
      ('rating', 'Out-of-range values'),
  ]
  assert result.summary()['tolerated_anomalies'][0] == {
      'split': 'train',
      'feature': 'gender',
      'type_name': 'ENUM_TYPE_UNEXPECTED_STRING_VALUES',
      'short_description': 'Unexpected string values',
      'description':
          'Examples contain values missing from the schema: X (~25%).',
      'severity': 'ERROR',
  }
  assert result.log_line().endswith(
      '(2 tolerated: train/gender: ENUM_TYPE_UNEXPECTED_STRING_VALUES, '
      'train/rating: FLOAT_TYPE_BIG_FLOAT).')


def test_an_anomaly_with_several_reasons_needs_every_reason_ignored():
  anomalies = text_format.Parse(
      """
      anomaly_info {
        key: "occupation"
        value {
          severity: ERROR
          short_description: "Multiple errors"
          reason { type: ENUM_TYPE_UNEXPECTED_STRING_VALUES
                   short_description: "Unexpected string values" }
          reason { type: FEATURE_TYPE_LOW_FRACTION_PRESENT
                   short_description: "Column dropped" }
        }
      }
      """, anomalies_pb2.Anomalies())

  with pytest.raises(DataAnomaliesError) as raised:
    gate.check_anomalies({'train': anomalies},
                         ['ENUM_TYPE_UNEXPECTED_STRING_VALUES'])
  assert [a.type_name for a in raised.value.anomalies] == [
      'FEATURE_TYPE_LOW_FRACTION_PRESENT']

  result = gate.check_anomalies(
      {'train': anomalies},
      ['ENUM_TYPE_UNEXPECTED_STRING_VALUES',
       'FEATURE_TYPE_LOW_FRACTION_PRESENT'])
  assert len(result.tolerated) == 2


def test_reasonless_anomaly_uses_the_info_descriptions():
  anomalies = anomalies_pb2.Anomalies()
  anomalies.anomaly_info['age'].short_description = 'Out-of-range values'
  anomalies.anomaly_info['age'].description = 'Unexpectedly small value: -1.'

  with pytest.raises(DataAnomaliesError) as raised:
    gate.check_anomalies({'train': anomalies})
  assert raised.value.anomalies == (gate.Anomaly(
      split='train', feature='age', type_name='UNKNOWN_TYPE',
      short_description='Out-of-range values',
      description='Unexpectedly small value: -1.', severity='UNKNOWN'),)
  result = gate.check_anomalies({'train': anomalies}, ['Out-of-range values'])
  assert [a.feature for a in result.tolerated] == ['age']


def test_dataset_level_anomaly_and_missing_data_fail():
  low_count = text_format.Parse(
      """
      dataset_anomaly_info {
        severity: ERROR
        short_description: "Low num examples in dataset."
        description: "The dataset has 3 examples, fewer than 10."
        reason { type: DATASET_LOW_NUM_EXAMPLES
                 short_description: "Low num examples in dataset."
                 description: "The dataset has 3 examples, fewer than 10." }
      }
      """, anomalies_pb2.Anomalies())
  # TFDV reports an empty split only through data_missing, and ExampleValidator
  # blesses it; the gate does not.
  empty = anomalies_pb2.Anomalies(data_missing=True)

  with pytest.raises(DataAnomaliesError) as raised:
    gate.check_anomalies({'train': low_count, 'eval': empty})

  assert [(a.split, a.feature, a.type_name)
          for a in raised.value.anomalies] == [
      ('train', gate.DATASET_LEVEL, 'DATASET_LOW_NUM_EXAMPLES'),
      ('eval', gate.DATASET_LEVEL, 'NO_DATA_IN_SPAN'),
  ]
  message = str(raised.value)
  assert ('  - dataset: Low num examples in dataset. '
          '[DATASET_LOW_NUM_EXAMPLES, ERROR]') in message
  assert '  - dataset: Data missing [NO_DATA_IN_SPAN, ERROR]' in message


def test_drift_counts_only_above_threshold():
  # TFDV lists every compared feature in drift_skew_info, under threshold too.
  anomalies = text_format.Parse(
      """
      drift_skew_info {
        path { step: "occupation" }
        drift_measurements { type: L_INFTY value: 0.25 threshold: 0.9 }
      }
      drift_skew_info {
        path { step: "gender" }
        drift_measurements { type: L_INFTY value: 0.25 threshold: 0.01 }
      }
      """, anomalies_pb2.Anomalies())

  with pytest.raises(DataAnomaliesError) as raised:
    gate.check_anomalies({'train': anomalies})
  assert raised.value.anomalies == (gate.Anomaly(
      split='train', feature='gender', type_name='COMPARATOR_L_INFTY_HIGH',
      short_description='High L_INFTY drift',
      description='The L_INFTY drift is 0.25, above the threshold 0.01.',
      severity='ERROR'),)

  # When TFDV also reported the feature in anomaly_info, that entry (with
  # TFDV's own wording) is the only one.
  anomalies.anomaly_info['gender'].reason.add(
      type=anomalies_pb2.AnomalyInfo.COMPARATOR_L_INFTY_HIGH,
      short_description='High Linfty distance between current and previous')
  assert [a.short_description for a in gate.list_anomalies(anomalies, 'train')
         ] == ['High Linfty distance between current and previous']


def test_real_tfdv_validation_of_broken_data_stops_the_gate():
  clean = pd.DataFrame({
      'user_id': ['1', '2', '3', '4'] * 5,
      'gender': ['M', 'F', 'M', 'F'] * 5,
      'rating': [1.0, 2.0, 3.0, 5.0] * 5,
  })
  # A new value in the categorical column, and the rating column dropped.
  broken = pd.DataFrame({
      'user_id': ['1', '2', '3', '4'] * 5,
      'gender': ['M', 'F', 'X', 'F'] * 5,
  })
  clean_stats = tfdv.generate_statistics_from_dataframe(clean)
  schema = tfdv.infer_schema(clean_stats)

  assert gate.check_anomalies(
      {'train': tfdv.validate_statistics(clean_stats, schema)}).tolerated == ()

  anomalies = tfdv.validate_statistics(
      tfdv.generate_statistics_from_dataframe(broken), schema)
  with pytest.raises(DataAnomaliesError) as raised:
    gate.check_anomalies({'eval': anomalies})

  assert [(a.feature, a.type_name, a.short_description)
          for a in raised.value.anomalies] == [
              ('gender', 'ENUM_TYPE_UNEXPECTED_STRING_VALUES',
               'Unexpected string values'),
              ('rating', 'SCHEMA_MISSING_COLUMN', 'Column dropped'),
          ]
  message = str(raised.value)
  # 'X' is 5 of 20 examples.
  assert 'Examples contain values missing from the schema: X (~25%).' in message
  assert ("  - feature 'rating': Column dropped "
          '[SCHEMA_MISSING_COLUMN, ERROR]') in message


@pytest.mark.parametrize('splits, message', [
    ('train', 'must be a list of split names'),
    ([], 'splits is empty'),
    (['train', ''], 'non-empty split names'),
    (['train', 'train'], r"splits lists \['train'\] more than once"),
])
def test_invalid_splits_are_rejected(splits, message):
  with pytest.raises(ValueError, match=message):
    gate.validate_splits(splits)


@pytest.mark.parametrize('entries, message', [
    ('SCHEMA_MISSING_COLUMN', 'must be a list'),
    (['  '], 'must hold AnomalyInfo.Type names or short descriptions'),
    (['ENUM_TYPE_UNEXPECTED_STRING'],
     r"Did you mean \['ENUM_TYPE_UNEXPECTED_STRING_VALUES'"),
])
def test_invalid_ignore_entries_are_rejected(entries, message):
  with pytest.raises(ValueError, match=message):
    gate.validate_ignore_anomaly_types(entries)


def test_split_selection():
  assert gate.select_splits(['train', 'eval'], None) == ['train', 'eval']
  assert gate.select_splits(['train', 'eval'], ['eval']) == ['eval']
  with pytest.raises(ValueError,
                     match=r"splits \['test'\] are not in the anomalies "
                     r"artifact, which has splits \['train', 'eval'\]"):
    gate.select_splits(['train', 'eval'], ['test'])
  with pytest.raises(ValueError, match='has no splits'):
    gate.select_splits([], None)


# ------------------------------------------------------------------ executor


def _anomalies_artifact(root, by_split):
  """An ExampleAnomalies artifact laid out as ExampleValidator writes it."""
  artifact = standard_artifacts.ExampleAnomalies()
  artifact.uri = os.path.join(root, 'anomalies')
  artifact.split_names = artifact_utils.encode_split_names(list(by_split))
  for split, anomalies in by_split.items():
    split_dir = os.path.join(artifact.uri, f'Split-{split}')
    os.makedirs(split_dir)
    writer_utils.write_anomalies(
        os.path.join(split_dir, 'SchemaDiff.pb'), anomalies)
  return artifact


def _run_executor(root, by_split, splits=None, ignore_anomaly_types=None):
  anomalies = _anomalies_artifact(root, by_split)
  result = AnomalyGateResult()
  result.uri = os.path.join(root, 'result')
  executor.Executor().Do(
      {spec.ANOMALIES_KEY: [anomalies]}, {spec.RESULT_KEY: [result]}, {
          spec.SPLITS_KEY: json_utils.dumps(splits),
          spec.IGNORE_ANOMALY_TYPES_KEY: json_utils.dumps(ignore_anomaly_types),
      })
  with open(os.path.join(result.uri, spec.RESULT_FILE_NAME)) as f:
    return anomalies.uri, json.load(f)


def test_executor_writes_summary_on_clean_anomalies(tmp_path):
  anomalies_uri, summary = _run_executor(
      str(tmp_path), {'train': CLEAN, 'eval': CLEAN})

  assert executor.ANOMALIES_FILE_NAME == 'SchemaDiff.pb'
  assert summary == {
      'passed': True,
      'checked_splits': ['train', 'eval'],
      'anomalies_uri': anomalies_uri,
      'tolerated_anomalies': [],
  }


def test_executor_raises_on_anomalous_split(tmp_path):
  with pytest.raises(DataAnomaliesError) as raised:
    _run_executor(str(tmp_path), {'train': CLEAN, 'eval': BROKEN})

  assert raised.value.anomalies_uri == str(tmp_path / 'anomalies')
  message = str(raised.value)
  assert f'Anomalies artifact: {tmp_path / "anomalies"}' in message
  assert "Split 'eval':" in message and "Split 'train':" not in message
  assert "feature 'gender': Unexpected string values" in message
  assert "feature 'rating': Out-of-range values" in message
  assert not (tmp_path / 'result' / spec.RESULT_FILE_NAME).exists()


def test_executor_checks_only_the_selected_splits(tmp_path):
  _, summary = _run_executor(
      str(tmp_path), {'train': CLEAN, 'eval': BROKEN}, splits=['train'])
  assert summary['checked_splits'] == ['train']


def test_executor_records_tolerated_anomalies(tmp_path):
  _, summary = _run_executor(
      str(tmp_path), {'train': BROKEN},
      ignore_anomaly_types=['FLOAT_TYPE_BIG_FLOAT', 'Unexpected string values'])
  assert [(a['feature'], a['type_name'])
          for a in summary['tolerated_anomalies']] == [
              ('gender', 'ENUM_TYPE_UNEXPECTED_STRING_VALUES'),
              ('rating', 'FLOAT_TYPE_BIG_FLOAT'),
          ]


def test_executor_rejects_bad_exec_properties_and_missing_files(tmp_path):
  with pytest.raises(ValueError, match=r"splits \['test'\] are not in"):
    _run_executor(str(tmp_path / 'a'), {'train': CLEAN}, splits=['test'])
  with pytest.raises(ValueError, match="'ignore_anomaly_types' must be a "
                     'JSON-encoded list'):
    executor.Executor().Do(
        {spec.ANOMALIES_KEY: [_anomalies_artifact(str(tmp_path / 'b'), {})]},
        {spec.RESULT_KEY: [AnomalyGateResult()]},
        {spec.IGNORE_ANOMALY_TYPES_KEY: 'SCHEMA_NEW_COLUMN'})

  anomalies = _anomalies_artifact(str(tmp_path / 'c'), {'train': CLEAN})
  anomalies.split_names = artifact_utils.encode_split_names(['train', 'eval'])
  with pytest.raises(FileNotFoundError, match=r"No anomalies for split 'eval'"):
    executor.Executor().Do({spec.ANOMALIES_KEY: [anomalies]},
                           {spec.RESULT_KEY: [AnomalyGateResult()]}, {})


# -------------------------------------------------------------- construction


def _anomalies_channel():
  return types.Channel(type=standard_artifacts.ExampleAnomalies)


def test_construction_outputs_and_exec_properties():
  component = AnomalyGate(
      anomalies=_anomalies_channel(), splits=['train', 'eval'],
      ignore_anomaly_types=['SCHEMA_NEW_COLUMN'])

  assert component.id == 'AnomalyGate'
  assert list(component.outputs) == ['result']
  assert component.outputs['result'].type_name == 'components.AnomalyGateResult'
  assert component.outputs['result'].type is AnomalyGateResult
  assert component.inputs['anomalies'].type_name == 'ExampleAnomalies'
  assert json.loads(component.exec_properties['splits']) == ['train', 'eval']
  assert json.loads(component.exec_properties['ignore_anomaly_types']) == [
      'SCHEMA_NEW_COLUMN']

  defaults = AnomalyGate(anomalies=_anomalies_channel())
  assert defaults.exec_properties['splits'] == 'null'
  assert json.loads(defaults.exec_properties['ignore_anomaly_types']) == []


def test_construction_rejects_bad_options_when_the_pipeline_is_built():
  with pytest.raises(ValueError, match='splits is empty'):
    AnomalyGate(anomalies=_anomalies_channel(), splits=[])
  with pytest.raises(ValueError, match="'SCHEMA_NEW_COLUM' is not an "
                     'AnomalyInfo.Type name'):
    AnomalyGate(anomalies=_anomalies_channel(),
                ignore_anomaly_types=['SCHEMA_NEW_COLUM'])


def test_compiled_pipeline_runs_transform_after_the_gate(tmp_path):
  # Transform has no input for the gate's result, so the order is a task
  # dependency; check it reaches the IR the orchestrators run.
  def imported(artifact_type, node_id):
    return importer.Importer(
        source_uri=str(tmp_path / node_id),
        artifact_type=artifact_type).with_id(node_id)

  examples = imported(standard_artifacts.Examples, 'examples')
  statistics = imported(standard_artifacts.ExampleStatistics, 'statistics')
  schema = imported(standard_artifacts.Schema, 'schema')
  example_validator = ExampleValidator(
      statistics=statistics.outputs['result'], schema=schema.outputs['result'])
  anomaly_gate = AnomalyGate(anomalies=example_validator.outputs['anomalies'])
  transform = Transform(
      examples=examples.outputs['result'], schema=schema.outputs['result'],
      preprocessing_fn='modules.preprocessing.preprocessing_fn')
  transform.add_upstream_node(anomaly_gate)

  ir = compiler.Compiler().compile(
      pipeline_lib.Pipeline(
          pipeline_name='anomaly_gate_wiring', pipeline_root=str(tmp_path),
          components=[examples, statistics, schema, example_validator,
                      anomaly_gate, transform]))

  upstream = {
      node.pipeline_node.node_info.id: list(node.pipeline_node.upstream_nodes)
      for node in ir.nodes
  }
  assert upstream['AnomalyGate'] == ['ExampleValidator']
  assert upstream['Transform'] == ['AnomalyGate', 'examples', 'schema']


def test_error_message_counts_in_singular_and_survives_pickling():
  anomalies = anomalies_pb2.Anomalies(data_missing=True)
  with pytest.raises(DataAnomaliesError) as raised:
    gate.check_anomalies({'train': anomalies}, anomalies_uri=ANOMALIES_URI)

  assert str(raised.value).splitlines()[0] == (
      "Data validation found 1 anomaly in 1 of 1 checked split ['train']; "
      'stopping the pipeline run.')
  copy = pickle.loads(pickle.dumps(raised.value))
  assert str(copy) == str(raised.value)
  assert copy.anomalies == raised.value.anomalies
