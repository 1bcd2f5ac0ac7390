"""--submit builds the right Vertex PipelineJob / kfp.Client call (fakes
replace the clients), and missing settings stop with one clear line before
anything is compiled or sent."""

import json

import pytest

from pipeline import kubeflow
import runner_kubeflow
import runner_vertex
from tests.kubeflow import specs

pytestmark = pytest.mark.unit

RESOURCE_NAME = ('projects/123456/locations/europe-west4/pipelineJobs/'
                 'movielens-tfx-20260101000000')


class FakeAiplatform:
  """Stands in for `google.cloud.aiplatform`: records the PipelineJob."""

  def __init__(self):
    self.jobs = []
    fake = self

    class PipelineJob:

      def __init__(self, **kwargs):
        self.kwargs = kwargs
        with open(kwargs['template_path'], encoding='utf-8') as f:
          self.template = json.load(f)
        self.submitted_with = None
        self.resource_name = RESOURCE_NAME
        fake.jobs.append(self)

      def submit(self, service_account=None):
        self.submitted_with = {'service_account': service_account}

    self.PipelineJob = PipelineJob  # pylint: disable=invalid-name


class FakeKfpClient:
  """Stands in for `kfp.Client`: records the client and the run request."""

  instances = []

  def __init__(self, host=None, namespace=None):
    self.init = {'host': host, 'namespace': namespace}
    self.runs = []
    FakeKfpClient.instances.append(self)

  def create_run_from_pipeline_package(self, pipeline_file, **kwargs):
    with open(pipeline_file, encoding='utf-8') as f:
      self.runs.append((specs.load(pipeline_file), f.read(), kwargs))

    class Result:
      run_id = 'run-42'
    return Result()


@pytest.fixture(autouse=True)
def fingerprint(monkeypatch):
  """The raw files' fingerprint without reading gs://."""
  monkeypatch.setattr(kubeflow, 'data_fingerprint',
                      lambda data_dir: f'fingerprint of {data_dir}')
  FakeKfpClient.instances = []


@pytest.fixture
def nothing_compiles(monkeypatch):
  """Fails the test if the runner gets as far as reading data or compiling."""

  def unreachable(*args):
    raise AssertionError(f'reached with {args}')
  monkeypatch.setattr(kubeflow, 'data_fingerprint', unreachable)
  monkeypatch.setattr(kubeflow, 'compile_pipeline', unreachable)


GCP = ['--project', specs.PROJECT, '--region', specs.REGION]


def test_vertex_submit_builds_the_pipeline_job(capsys):
  aiplatform = FakeAiplatform()
  code = runner_vertex.main(
      specs.BASE_FLAGS + GCP + ['--submit', '--service-account',
                                'runner@test-project.iam.gserviceaccount.com'],
      aiplatform=aiplatform)
  assert code == 0
  (job,) = aiplatform.jobs
  assert {k: v for k, v in job.kwargs.items() if k != 'template_path'} == {
      'display_name': 'movielens-tfx',
      'pipeline_root': specs.PIPELINE_ROOT,
      'project': specs.PROJECT,
      'location': specs.REGION,
      'enable_caching': True,
      'parameter_values': {
          'input_fingerprint': f'fingerprint of {specs.DATA_DIR}'},
  }
  # The template is the compiled job (written to a temporary file).
  assert job.template['runtimeConfig']['gcsOutputDirectory'] == (
      specs.PIPELINE_ROOT)
  assert 'RetrievalTrainer' in job.template['pipelineSpec']['root']['dag'][
      'tasks']
  assert job.submitted_with == {
      'service_account': 'runner@test-project.iam.gserviceaccount.com'}
  assert capsys.readouterr().out.splitlines()[-1] == (
      'Submitted to Vertex AI Pipelines: https://console.cloud.google.com/'
      'vertex-ai/locations/europe-west4/pipelines/runs/'
      'movielens-tfx-20260101000000?project=123456')


def test_vertex_settings_from_the_environment(monkeypatch, tmp_path):
  for name, value in (('GOOGLE_CLOUD_PROJECT', specs.PROJECT),
                      ('GOOGLE_CLOUD_REGION', specs.REGION),
                      ('MOVIELENS_PIPELINE_ROOT', specs.PIPELINE_ROOT),
                      ('MOVIELENS_DATA_DIR', specs.DATA_DIR),
                      ('MOVIELENS_IMAGE', specs.IMAGE),
                      ('MOVIELENS_SERVICE_ACCOUNT', 'sa@x.iam')):
    monkeypatch.setenv(name, value)
  aiplatform = FakeAiplatform()
  output = str(tmp_path / 'job.json')
  assert runner_vertex.main(['--submit', '--no-cache', '--output', output],
                            aiplatform=aiplatform) == 0
  (job,) = aiplatform.jobs
  assert job.kwargs['template_path'] == output
  assert job.kwargs['project'] == specs.PROJECT
  assert job.kwargs['location'] == specs.REGION
  assert job.kwargs['enable_caching'] is False
  assert job.submitted_with == {'service_account': 'sa@x.iam'}
  assert job.template['pipelineSpec']['deploymentSpec']['executors'][
      'Transform_executor']['container']['image'] == specs.IMAGE


def test_output_alone_sends_nothing(tmp_path):
  aiplatform = FakeAiplatform()
  output = str(tmp_path / 'out' / 'job.json')
  assert runner_vertex.main(specs.BASE_FLAGS + ['--output', output],
                            aiplatform=aiplatform) == 0
  assert not aiplatform.jobs
  assert specs.load(output)['displayName'] == 'movielens-tfx'


def test_kubeflow_submit_builds_the_client_call(capsys):
  code = runner_kubeflow.main(
      specs.BASE_FLAGS + ['--submit', '--host', 'http://localhost:8080/',
                          '--namespace', 'kubeflow-user',
                          '--service-account', 'pipeline-runner'],
      client_factory=FakeKfpClient)
  assert code == 0
  (client,) = FakeKfpClient.instances
  assert client.init == {'host': 'http://localhost:8080/',
                         'namespace': 'kubeflow-user'}
  ((spec, text, kwargs),) = client.runs
  assert kwargs == {
      'arguments': {'input_fingerprint': f'fingerprint of {specs.DATA_DIR}'},
      'run_name': None,
      'experiment_name': 'movielens-tfx',
      'namespace': 'kubeflow-user',
      'pipeline_root': specs.PIPELINE_ROOT,
      'enable_caching': True,
      'service_account': 'pipeline-runner',
  }
  # The package is the bare KFP v2 PipelineSpec YAML.
  assert text.startswith('# PIPELINE DEFINITION\n# Name: movielens-tfx\n')
  assert spec['defaultPipelineRoot'] == specs.PIPELINE_ROOT
  assert 'pipelineSpec' not in spec
  assert capsys.readouterr().out.splitlines()[-1] == (
      'Submitted to Kubeflow Pipelines: '
      'http://localhost:8080/#/runs/details/run-42')


def test_kubeflow_host_from_the_environment(monkeypatch):
  monkeypatch.setenv('KF_PIPELINES_ENDPOINT', 'https://kfp.example.com')
  assert runner_kubeflow.main(specs.BASE_FLAGS + ['--submit', '--no-cache'],
                              client_factory=FakeKfpClient) == 0
  (client,) = FakeKfpClient.instances
  assert client.init['host'] == 'https://kfp.example.com'
  assert client.runs[0][2]['enable_caching'] is False


def without(flag):
  """BASE_FLAGS without `flag` and its value."""
  i = specs.BASE_FLAGS.index(flag)
  return specs.BASE_FLAGS[:i] + specs.BASE_FLAGS[i + 2:]


@pytest.mark.parametrize('argv, message', [
    (specs.BASE_FLAGS + ['--submit'],
     '--project and --region are required for --submit (or set '
     '$GOOGLE_CLOUD_PROJECT and $GOOGLE_CLOUD_REGION).'),
    (specs.BASE_FLAGS + ['--submit', '--project', 'p'],
     '--region is required for --submit (or set $GOOGLE_CLOUD_REGION).'),
    (without('--pipeline-root') + GCP + ['--submit'],
     '--pipeline-root is required: the bucket path of the artifacts, e.g. '
     'gs://BUCKET/movielens-tfx (or set $MOVIELENS_PIPELINE_ROOT).'),
    (without('--data-dir') + GCP + ['--submit'],
     '--data-dir is required: the raw MovieLens files, e.g. '
     'gs://BUCKET/data/ml-100k (or set $MOVIELENS_DATA_DIR).'),
    (without('--image') + GCP + ['--submit'],
     "--image is required: the URI of the image built from this project's "
     'Dockerfile (or set $MOVIELENS_IMAGE).'),
    (specs.BASE_FLAGS + GCP + ['--submit', '--pipeline-root', 'outputs'],
     "--pipeline-root must be a gs:// path (every step runs in its own "
     "container and reads and writes there), got 'outputs'."),
    (specs.BASE_FLAGS + GCP,
     'nothing to do: pass --output PATH to write the compiled pipeline, '
     '--submit to run it, or both.'),
])
def test_vertex_refuses_incomplete_settings(argv, message, capsys,
                                            nothing_compiles):
  del nothing_compiles
  aiplatform = FakeAiplatform()
  assert runner_vertex.main(argv, aiplatform=aiplatform) == 2
  assert capsys.readouterr().err == f'error: {message}\n'
  assert not aiplatform.jobs


def test_kubeflow_needs_a_host(capsys, nothing_compiles):
  del nothing_compiles
  assert runner_kubeflow.main(specs.BASE_FLAGS + ['--submit'],
                              client_factory=FakeKfpClient) == 2
  assert capsys.readouterr().err == (
      'error: --host is required for --submit: the KFP API endpoint, e.g. '
      'http://localhost:8080 after `kubectl port-forward` (or set '
      '$KF_PIPELINES_ENDPOINT).\n')
  assert not FakeKfpClient.instances


def test_unreadable_data_stops_before_compiling(monkeypatch, capsys):

  def unreadable(data_dir):
    raise kubeflow.ConfigError(f'cannot fingerprint the raw data in '
                               f'{data_dir}: 403 Forbidden')

  def unreachable(*args):
    raise AssertionError('compiled')
  monkeypatch.setattr(kubeflow, 'data_fingerprint', unreadable)
  monkeypatch.setattr(kubeflow, 'compile_pipeline', unreachable)
  aiplatform = FakeAiplatform()
  assert runner_vertex.main(specs.BASE_FLAGS + GCP + ['--submit'],
                            aiplatform=aiplatform) == 2
  assert capsys.readouterr().err == (
      f'error: cannot fingerprint the raw data in {specs.DATA_DIR}: 403 '
      'Forbidden\n')
  assert not aiplatform.jobs


def test_console_link():
  assert runner_vertex.console_link(
      'projects/my-project/locations/us-central1/pipelineJobs/job-1') == (
          'https://console.cloud.google.com/vertex-ai/locations/us-central1/'
          'pipelines/runs/job-1?project=my-project')
  with pytest.raises(ValueError, match='Not a pipeline job'):
    runner_vertex.console_link('projects/p/locations/l/customJobs/1')
