"""pipeline.kubeflow's flags and checks: derived defaults, Beam options,
Vertex Training settings, the raw-data fingerprint and the artifact-type
check."""

import os

import pytest
from tfx import types
from tfx.dsl.components.base import base_component, base_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import component_spec

from movielens import synthetic
from pipeline import kubeflow, trainers
import runner_kubeflow
import runner_vertex
from tests.kubeflow import specs

pytestmark = pytest.mark.unit

GCP = ['--project', specs.PROJECT, '--region', specs.REGION]


def checked(argv, runner=runner_vertex):
  args = runner.parse_args(argv)
  runner.check(args)
  return args


def test_defaults_derived_from_the_pipeline_root():
  args = checked(specs.BASE_FLAGS + ['--output', 'x.json',
                                     '--pipeline-root', 'gs://b/root/'])
  assert args.pipeline_root == 'gs://b/root'  # Trailing '/' dropped.
  assert args.serving_dir == 'gs://b/root/serving'
  assert args.schema_path == kubeflow.CONTAINER_SCHEMA_PATH
  assert kubeflow.beam_pipeline_args(args) == [
      '--runner=DirectRunner', '--direct_running_mode=in_memory',
      '--direct_num_workers=1']
  assert kubeflow.vertex_training(args) is None


@pytest.mark.parametrize('layout, schema_file', [
    ('ml-100k', 'schema.pbtxt'), ('ml-1m', 'schema.ml-1m.pbtxt'),
    ('ml-25m', 'schema.ml-25m.pbtxt')])
def test_layout_picks_the_curated_schema(layout, schema_file):
  args = checked(specs.BASE_FLAGS + ['--output', 'x.json', '--layout', layout])
  assert args.schema_path == (
      f'{kubeflow.CONTAINER_PROJECT_DIR}/pipeline/schema/{schema_file}')
  # Each named file exists in the repository (and so in the image).
  assert os.path.exists(os.path.join(os.path.dirname(kubeflow.__file__),
                                     'schema', schema_file))
  explicit = checked(specs.BASE_FLAGS + ['--output', 'x.json', '--layout',
                                         layout, '--schema-path', '/s.pbtxt'])
  assert explicit.schema_path == '/s.pbtxt'


def test_direct_runner_workers_and_extra_beam_options():
  args = checked(specs.BASE_FLAGS + [
      '--output', 'x.json', '--beam-workers', '4',
      '--beam-arg=--experiments=shuffle_mode=service'])
  assert kubeflow.beam_pipeline_args(args) == [
      '--runner=DirectRunner', '--direct_running_mode=multi_processing',
      '--direct_num_workers=4', '--experiments=shuffle_mode=service']


def test_dataflow_temp_location_can_be_set():
  args = checked(specs.BASE_FLAGS + GCP + [
      '--output', 'x.json', '--beam-runner', 'DataflowRunner',
      '--dataflow-temp-location', 'gs://other/tmp'], runner=runner_kubeflow)
  assert '--temp_location=gs://other/tmp' in kubeflow.beam_pipeline_args(args)


def test_vertex_training_settings_from_flags():
  args = checked(specs.BASE_FLAGS + GCP + [
      '--output', 'x.json', '--vertex-training', '--accelerator-type',
      'NVIDIA_L4', '--training-service-account', 'train@p.iam'])
  assert kubeflow.vertex_training(args) == {
      'project': specs.PROJECT, 'region': specs.REGION,
      'image_uri': specs.IMAGE, 'machine_type': 'n1-standard-4',
      'accelerator_type': 'NVIDIA_L4', 'accelerator_count': 1,
      'service_account': 'train@p.iam'}


@pytest.mark.parametrize('extra, message', [
    (['--beam-runner', 'DataflowRunner'],
     '--project and --region are required for --beam-runner DataflowRunner '
     '(or set $GOOGLE_CLOUD_PROJECT and $GOOGLE_CLOUD_REGION).'),
    (['--vertex-training', '--project', 'p'],
     '--region is required for --vertex-training (or set '
     '$GOOGLE_CLOUD_REGION).'),
    (GCP + ['--beam-runner', 'DataflowRunner', '--beam-workers', '2'],
     '--beam-workers only applies with --beam-runner DirectRunner (Dataflow '
     'autoscales; see --dataflow-max-workers).'),
    (['--dataflow-max-workers', '4'],
     '--dataflow-max-workers only applies with --beam-runner DataflowRunner.'),
    (['--accelerator-type', 'NVIDIA_TESLA_T4'],
     '--accelerator-type only applies with --vertex-training.'),
    (['--machine-type', 'n1-standard-8', '--accelerator-count', '1'],
     '--machine-type, --accelerator-count only apply with --vertex-training.'),
    (GCP + ['--vertex-training', '--accelerator-count', '2'],
     '--accelerator-count needs --accelerator-type (e.g. NVIDIA_TESLA_T4).'),
    (GCP + ['--vertex-training', '--accelerator-type', 'X',
                    '--accelerator-count', '0'],
     '--accelerator-type needs an --accelerator-count of at least 1.'),
    (['--serving-dir', '/srv/models'],
     "--serving-dir must be a gs:// path (every step runs in its own "
     "container and reads and writes there), got '/srv/models'."),
    (['--data-dir', 'data/ml-100k'],
     "--data-dir must be a gs:// path (every step runs in its own "
     "container and reads and writes there), got 'data/ml-100k'."),
])
def test_inconsistent_settings(extra, message):
  for runner in (runner_vertex, runner_kubeflow):
    with pytest.raises(kubeflow.ConfigError) as error:
      checked(specs.BASE_FLAGS + ['--output', 'x'] + extra, runner=runner)
    assert str(error.value) == message


@pytest.mark.parametrize('argv, message', [
    (['--hparam', 'temprature=0.2'], 'Unknown retrieval hyper-parameters'),
    (['--epochs', '0'], '--epochs must be at least 1'),
    (['--eval-fraction', '1'], '--eval-fraction must be between 0 and 1'),
    (['--max-eval-ratings', '-5'], '--max-eval-ratings must be >= 0'),
    (['--beam-runner', 'FlinkRunner'], 'invalid choice'),
    (['--ranking-hparam', 'architecture'],
     '--ranking-hparam takes NAME=VALUE'),
    (['--ranking-epochs', '0'], '--ranking-epochs must be at least 1'),
    (['--top-k', '20', '--recommender-top-k', '30'],
     '--recommender-top-k must be between 1 and --top-k (20)'),
])
def test_malformed_flags_stop_at_parsing(argv, message, capsys):
  with pytest.raises(SystemExit) as exit_info:
    runner_vertex.parse_args(specs.BASE_FLAGS + argv)
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err


def test_data_fingerprint_follows_the_raw_files(tmp_path):
  data_dir = str(tmp_path / 'ml')
  synthetic.generate(data_dir, num_users=20, num_movies=30, num_ratings=200)
  before = kubeflow.data_fingerprint(data_dir)
  assert before == kubeflow.data_fingerprint(data_dir)
  # One line per raw file, as the local driver computes it.
  assert sorted(line.split(',')[0] for line in before.splitlines()) == [
      'split:u.data', 'split:u.item', 'split:u.user']
  with open(os.path.join(data_dir, 'u.data'), 'a', encoding='utf-8') as f:
    f.write('1\t1\t5\t881250949\n')
  assert kubeflow.data_fingerprint(data_dir) != before


def test_data_fingerprint_of_a_folder_without_data(tmp_path):
  with pytest.raises(kubeflow.ConfigError,
                     match='cannot fingerprint the raw data in .*no '
                     'MovieLens ratings file found'):
    kubeflow.data_fingerprint(str(tmp_path))


def test_custom_artifact_types_must_be_import_paths():
  class Loose(types.Artifact):
    TYPE_NAME = 'LooseResult'

  class Spec(types.ComponentSpec):
    PARAMETERS, INPUTS = {}, {}
    OUTPUTS = {'out': component_spec.ChannelParameter(type=Loose)}

  class Component(base_component.BaseComponent):
    SPEC_CLASS = Spec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(base_executor.BaseExecutor)

  class FakePipeline:
    components = [Component(Spec(out=types.Channel(type=Loose)))]

  with pytest.raises(kubeflow.IncompatibleComponentError,
                     match="Component output 'out' has the custom artifact "
                     "type .*Loose with TYPE_NAME 'LooseResult'; KFP v2 "
                     'needs'):
    kubeflow.check_artifact_types(FakePipeline)
  # AnomalyGateResult's TYPE_NAME is an import path: it passes.
  args = checked(specs.BASE_FLAGS + ['--output', 'x'])
  kubeflow.check_artifact_types(kubeflow.build_pipeline(args))


def test_vertex_training_requires_project_region_and_image():
  with pytest.raises(ValueError, match='vertex_training needs'):
    trainers.vertex_training_settings(project='p', region='', image_uri='i')


@pytest.mark.parametrize('argv, message', [
    (['--dataflow-max-workers', '0'], '--dataflow-max-workers must be at '
     'least 1'),
    (['--accelerator-count', '-1'], '--accelerator-count must not be '
     'negative'),
    (['--hparam', 'batch_size=0'], '--hparam: Hyper-parameter batch_size: '
     'expected >= 1, got 0'),
])
def test_the_compiling_runners_own_checks_stop_at_parsing(argv, message,
                                                          capsys):
  for runner in (runner_vertex, runner_kubeflow):
    with pytest.raises(SystemExit) as exit_info:
      runner.parse_args(specs.BASE_FLAGS + argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.endswith(f': error: {message}\n')
