"""Every container step of the compiled spec run through TFX's container
entrypoint (`kubeflow_v2_run_executor`), as KFP's launcher calls it: the
step's own args from the spec, an ExecutorInput built from the task's inputs,
upstream outputs (with their metadata) handed on. Local folders stand in for
gs:// and this process for the image; every step from ingestion to the
pushers, on synthetic data, one training epoch (two to three minutes on 2
cores).

This is what no compile-only test shows: that our executors take the exec
properties as the container parses them (the fingerprint parameter
included), that AnomalyGate's custom artifact type resolves at run time,
that split names and blessings travel as artifact metadata, and that the
Beam options reach the Beam steps.
"""

import json
import os

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
import pytest

from pipeline import configs, kubeflow

pytestmark = pytest.mark.e2e


def container_steps(spec):
  """Every container step, upstream first (ties by name)."""
  tasks = spec['root']['dag']['tasks']
  executors = spec['deploymentSpec']['executors']
  containers = {t for t, body in tasks.items() if 'container' in executors[
      spec['components'][body['componentRef']['name']]['executorLabel']]}
  done, order = set(tasks) - containers, []
  while len(order) < len(containers):
    ready = sorted(t for t in containers - set(order)
                   if set(tasks[t].get('dependentTasks', [])) <= done)
    assert ready, 'cycle in the task graph'
    order.append(ready[0])
    done.add(ready[0])
  return order


def local_overrides(spec, task, data_dir, root):
  """The image's and the bucket's paths mapped to this checkout and `root`,
  and one training epoch (enough to check the wiring)."""
  parameters = spec['root']['dag']['tasks'][task].get('inputs', {}).get(
      'parameters', {})
  overrides = {}
  if task == 'MovieLensExampleGen':
    overrides['input_base'] = data_dir
  if 'schema_file' in parameters:
    overrides['schema_file'] = configs.SCHEMA_PATH
  if 'run_fn' in parameters:
    overrides['custom_config'] = json.dumps({'hparams': {'epochs': 1}})
  if 'push_destination' in parameters:
    destination = json.loads(
        parameters['push_destination']['runtimeValue']['constant'])
    model = os.path.basename(destination['filesystem']['base_directory'])
    overrides['push_destination'] = json.dumps({'filesystem': {
        'base_directory': os.path.join(root, 'serving', model)}})
  return overrides


class LocalLauncher:
  """Runs steps of a compiled PipelineSpec the way KFP's launcher does."""

  def __init__(self, spec, root, parameters):
    self.spec = spec
    self.root = root
    self.parameters = parameters  # Pipeline parameters, by name.
    self.outputs = {}  # task -> key -> RuntimeArtifact dict (with metadata)

  def _executor(self, task):
    label = self.spec['components'][task]['executorLabel']
    return self.spec['deploymentSpec']['executors'][label]['container']

  def _parameter(self, value, overrides, name):
    if name in overrides:
      return overrides[name]
    if 'componentInputParameter' in value:
      return self.parameters[value['componentInputParameter']]
    return value['runtimeValue']['constant']

  def _upstream(self, producerTask, outputArtifactKey):  # pylint: disable=invalid-name
    artifact = self.outputs.get(producerTask, {}).get(outputArtifactKey)
    return [artifact] if artifact else []

  def run(self, task, overrides=None):
    """Runs `task` in this process; returns its executor output."""
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor  # pylint: disable=g-import-not-at-top
    overrides = overrides or {}
    body = self.spec['root']['dag']['tasks'][task]
    component = self.spec['components'][task]
    inputs = body.get('inputs', {})
    task_root = os.path.join(self.root, task)
    executor_input = {
        'inputs': {
            'parameterValues': {
                name: self._parameter(value, overrides, name)
                for name, value in inputs.get('parameters', {}).items()},
            'artifacts': {
                name: {'artifacts': self._upstream(
                    **value['taskOutputArtifact'])}
                for name, value in inputs.get('artifacts', {}).items()},
        },
        'outputs': {
            'artifacts': {
                key: {'artifacts': [{
                    'name': f'{task}/{key}',
                    'type': definition['artifactType'],
                    'uri': os.path.join(task_root, key),
                }]}
                for key, definition in component.get(
                    'outputDefinitions', {}).get('artifacts', {}).items()},
            'outputFile': os.path.join(task_root, 'executor_output.json'),
        },
    }
    # The launcher's contract: a valid ExecutorInput.
    json_format.ParseDict(executor_input, pipeline_spec_pb2.ExecutorInput())
    args = [json.dumps(executor_input) if arg == '{{$}}' else arg
            for arg in self._executor(task)['args']]
    kubeflow_v2_run_executor.main(kubeflow_v2_run_executor._parse_flags(args))  # pylint: disable=protected-access
    with open(executor_input['outputs']['outputFile'], encoding='utf-8') as f:
      output = json.load(f)
    self.outputs[task] = {}
    for key, artifacts in output.get('artifacts', {}).items():
      (artifact,) = artifacts['artifacts']
      artifact['type'] = component['outputDefinitions']['artifacts'][key][
          'artifactType']  # The launcher knows the type from the spec.
      artifact['name'] = f'{task}/{key}'
      self.outputs[task][key] = artifact
    return output


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  from movielens import synthetic  # pylint: disable=g-import-not-at-top
  folder = str(tmp_path_factory.mktemp('raw') / 'ml')
  # More movies than the evaluator's deepest metric (top 100).
  synthetic.generate(folder, num_users=40, num_movies=120, num_ratings=900)
  return folder


def test_every_step_runs_through_the_container_entrypoint(
    vertex_job, data_dir, tmp_path):
  spec = vertex_job['pipelineSpec']
  launcher = LocalLauncher(spec, str(tmp_path), parameters={
      kubeflow.FINGERPRINT_PARAMETER: kubeflow.data_fingerprint(data_dir)})
  for task in container_steps(spec):
    launcher.run(task, local_overrides(spec, task, data_dir, str(tmp_path)))

  ratings = launcher.outputs['MovieLensExampleGen']['ratings']
  assert json.loads(ratings['metadata']['split_names']) == ['train', 'eval']
  assert os.listdir(os.path.join(ratings['uri'], 'Split-train'))
  movies = launcher.outputs['MovieLensExampleGen']['movies']
  assert json.loads(movies['metadata']['split_names']) == ['catalog']
  # The gate passed and wrote its result into its custom-typed artifact.
  result = launcher.outputs['AnomalyGate']['result']
  with open(os.path.join(result['uri'], 'gate_result.json'),
            encoding='utf-8') as f:
    assert json.load(f)['passed'] is True
  # Each evaluator judged its model on the thresholds (no baseline yet) and
  # its pusher acted on that blessing.
  for evaluator, pusher, model in (
      ('RetrievalEvaluator', 'RetrievalPusher', 'retrieval'),
      ('RankingEvaluator', 'RankingPusher', 'ranking')):
    blessed = launcher.outputs[evaluator]['blessing']['metadata']['blessed']
    pushed = launcher.outputs[pusher]['pushed_model']['metadata']['pushed']
    assert pushed == blessed, (evaluator, pusher)
    serving = tmp_path / 'serving' / model
    versions = os.listdir(serving) if serving.exists() else []
    assert len([v for v in versions if v.isdigit()]) == int(blessed), model
