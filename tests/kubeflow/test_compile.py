"""The compiled specs: strict parsing into KFP's PipelineSpec proto, KFP's
and Vertex's own loaders, and every step with its image, command, upstream
steps, caching and the exec properties that matter."""

import json

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
import pytest

from pipeline import configs, kubeflow
import runner_vertex
from tests.kubeflow import specs

pytestmark = pytest.mark.unit

KFP_COMMAND = [
    'python', '-m',
    'tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor']

# The retrieval stage (the baseline resolvers are left out on KFP v2; see
# pipeline.kubeflow.drop_baseline_resolvers).
RETRIEVAL_TASKS = {
    'MovieLensExampleGen', 'StatisticsGen', 'ImportSchemaGen',
    'ExampleValidator', 'AnomalyGate', 'Transform', 'RetrievalTrainer',
    'RetrievalRefit', 'RetrievalIndexer', 'RetrievalEvaluator',
    'RetrievalPusher',
}
BASELINE_RESOLVERS = ('LatestBlessedRetrieval', 'LatestBlessedRanking')

EXECUTOR_CLASSES = {
    'MovieLensExampleGen': 'components.movielens_example_gen.executor.Executor',
    'StatisticsGen': 'tfx.components.statistics_gen.executor.Executor',
    'AnomalyGate': 'components.anomaly_gate.executor.Executor',
    'Transform': 'tfx.components.transform.executor.Executor',
    'RetrievalTrainer': 'tfx.components.trainer.executor.GenericExecutor',
    'RetrievalRefit': 'tfx.components.trainer.executor.GenericExecutor',
    'RetrievalIndexer': 'components.retrieval_indexer.executor.Executor',
    'RetrievalEvaluator': 'components.retrieval_evaluator.executor.Executor',
    'RetrievalPusher': 'components.atomic_pusher.executor.Executor',
    'RankingTrainer': 'tfx.components.trainer.executor.GenericExecutor',
    'RankingRefit': 'tfx.components.trainer.executor.GenericExecutor',
    'RankingEvaluator': 'tfx.components.evaluator.executor.Executor',
    'RecommenderBuilder': 'components.recommender_builder.executor.Executor',
    'RecommenderPusher': 'components.atomic_pusher.executor.Executor',
}
# The ranking stage and the recommender (runner_local.py's default).
RANKING_TASKS = {
    'RankingTrainer', 'RankingRefit', 'RankingEvaluator', 'RankingPusher',
    'RecommenderBuilder', 'RecommenderPusher',
}
BEAM_TASKS = ('MovieLensExampleGen', 'StatisticsGen', 'Transform',
              'RankingEvaluator')


def tasks(spec):
  return spec['root']['dag']['tasks']


def executor(spec, task):
  label = spec['components'][task]['executorLabel']
  return spec['deploymentSpec']['executors'][label]


def constant(spec, task, name):
  return tasks(spec)[task]['inputs']['parameters'][name]['runtimeValue'][
      'constant']


def checked_args():
  """runner_vertex's settings for specs.BASE_FLAGS, checked."""
  args = runner_vertex.parse_args(specs.BASE_FLAGS + ['--output', 'x.json'])
  kubeflow.check(args)
  return args


def container_tasks(spec):
  return sorted(t for t in tasks(spec)
                if 'container' in executor(spec, t))


def executor_class(spec, task):
  args = executor(spec, task)['container']['args']
  return args[args.index('--executor_class_path') + 1]


def test_specs_parse_strictly_into_pipeline_spec(vertex_job, kfp_spec):
  for spec in (vertex_job['pipelineSpec'], kfp_spec):
    proto = json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec(),
                                  ignore_unknown_fields=False)
    assert proto.pipeline_info.name == configs.PIPELINE_NAME
    assert proto.schema_version == '2.1.0'
    assert set(proto.root.dag.tasks) >= RETRIEVAL_TASKS | RANKING_TASKS
  job = json_format.ParseDict(vertex_job, pipeline_spec_pb2.PipelineJob(),
                              ignore_unknown_fields=False)
  assert job.runtime_config.gcs_output_directory == specs.PIPELINE_ROOT


def test_a_malformed_spec_is_refused():
  # The strict parse the tests (and compile_pipeline) rely on does fail.
  with pytest.raises(json_format.ParseError):
    kubeflow.pipeline_spec_proto({'root': {'dag': {'taskz': {}}}})


def test_both_runners_compile_the_same_pipeline(vertex_job, kfp_spec):
  kfp_only = dict(kfp_spec)
  assert kfp_only.pop('defaultPipelineRoot') == specs.PIPELINE_ROOT
  assert kfp_only == vertex_job['pipelineSpec']


def test_kfp_loads_the_yaml_with_its_own_loaders(compiled_files):
  from kfp import components  # pylint: disable=g-import-not-at-top
  from kfp.client import client  # pylint: disable=g-import-not-at-top
  path = compiled_files['kubeflow']
  # What kfp.Client.create_run_from_pipeline_package sends.
  document = client._extract_pipeline_yaml(path)  # pylint: disable=protected-access
  assert document.pipeline_spec.default_pipeline_root == specs.PIPELINE_ROOT
  assert set(document.pipeline_spec.root.dag.tasks) >= RETRIEVAL_TASKS
  # The SDK's component loader (the KFP UI's upload takes the same format).
  component = components.load_component_from_file(path)
  assert component.name == configs.PIPELINE_NAME


def test_vertex_sdk_takes_the_job_offline(compiled_files):
  from google.auth import credentials  # pylint: disable=g-import-not-at-top
  from google.cloud import aiplatform  # pylint: disable=g-import-not-at-top
  job = aiplatform.PipelineJob(
      display_name='movielens-tfx', template_path=compiled_files['vertex'],
      pipeline_root=specs.PIPELINE_ROOT, project=specs.PROJECT,
      location=specs.REGION, enable_caching=True,
      parameter_values={kubeflow.FINGERPRINT_PARAMETER: 'u.data,123'},
      credentials=credentials.AnonymousCredentials())
  resource = job._gca_resource  # pylint: disable=protected-access
  assert resource.runtime_config.gcs_output_directory == specs.PIPELINE_ROOT
  assert (resource.runtime_config.parameter_values[
      kubeflow.FINGERPRINT_PARAMETER] == 'u.data,123')
  assert set(resource.pipeline_spec['root']['dag']['tasks']) >= (
      RETRIEVAL_TASKS)


def test_every_component_of_create_pipeline_is_a_step(vertex_job):
  pipeline = kubeflow.build_pipeline(checked_args())
  node_ids = {node.id for node in pipeline.components}
  assert node_ids >= set(BASELINE_RESOLVERS)
  assert set(tasks(vertex_job['pipelineSpec'])) == (
      node_ids - set(BASELINE_RESOLVERS))
  assert node_ids >= RETRIEVAL_TASKS | RANKING_TASKS


def test_baseline_resolvers_are_left_out(vertex_job):
  spec = vertex_job['pipelineSpec']
  for task in tasks(spec):
    assert 'resolver' not in executor(spec, task), task
  for evaluator in ('RetrievalEvaluator', 'RankingEvaluator'):
    assert 'baseline_model' not in tasks(spec)[evaluator]['inputs'][
        'artifacts']
    definition = spec['components'][evaluator]['inputDefinitions'][
        'artifacts']['baseline_model']
    assert definition['isOptional'] is True
  # What TFX compiles them to, and why that cannot work: queries by type,
  # the same for both resolvers, whatever their channels' producers.
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  compiled = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=specs.IMAGE, use_pipeline_spec_2_1=True)).run(
              kubeflow.build_pipeline(checked_args()),
              write_out=False)['pipelineSpec']
  queries = {
      name: executor(compiled, name)['resolver']['outputArtifactQueries']
      for name in tasks(compiled) if 'resolver' in executor(compiled, name)}
  assert sorted(queries) == [
      'LatestBlessedRanking-model-blessing-resolver',
      'LatestBlessedRanking-model-resolver',
      'LatestBlessedRetrieval-model-blessing-resolver',
      'LatestBlessedRetrieval-model-resolver']
  assert (queries['LatestBlessedRanking-model-blessing-resolver'] ==
          queries['LatestBlessedRetrieval-model-blessing-resolver'])
  removed = kubeflow.drop_baseline_resolvers(compiled)
  assert removed == sorted(queries)
  kubeflow.pipeline_spec_proto(compiled)


def test_every_container_step_runs_the_image_with_tfx_entrypoint(vertex_job):
  spec = vertex_job['pipelineSpec']
  assert set(container_tasks(spec)) == set(tasks(spec))
  for task in container_tasks(spec):
    container = executor(spec, task)['container']
    assert container['image'] == specs.IMAGE, task
    assert container['command'] == KFP_COMMAND, task
    assert container['args'][2:4] == ['--json_serialized_invocation_args',
                                      '{{$}}'], task


def test_executors_are_import_paths_the_image_has(vertex_job):
  from tfx.utils import import_utils  # pylint: disable=g-import-not-at-top
  spec = vertex_job['pipelineSpec']
  for task, class_path in EXECUTOR_CLASSES.items():
    assert executor_class(spec, task) == class_path
  for task in container_tasks(spec):
    assert import_utils.import_class_by_path(executor_class(spec, task))


def test_no_local_path_reaches_the_containers(vertex_job):
  # Module code by import path; nothing under this checkout.
  text = json.dumps(vertex_job)
  assert specs.REPO_ROOT not in text
  for task, body in tasks(vertex_job['pipelineSpec']).items():
    assert 'module_file' not in body.get('inputs', {}).get('parameters', {}), (
        task)


def test_upstream_steps(vertex_job):
  spec = vertex_job['pipelineSpec']

  def upstream(task):
    return set(tasks(spec)[task].get('dependentTasks', []))

  assert upstream('AnomalyGate') == {'ExampleValidator'}
  # The gate's task dependency: Transform never sees data that failed it.
  assert upstream('Transform') == {'AnomalyGate', 'ImportSchemaGen',
                                   'MovieLensExampleGen'}
  assert upstream('RetrievalTrainer') == {'ImportSchemaGen', 'Transform'}
  # The refits train after early stopping picked the epochs (base_model).
  assert upstream('RetrievalRefit') == {'ImportSchemaGen', 'Transform',
                                        'RetrievalTrainer'}
  assert upstream('RankingRefit') == {'ImportSchemaGen', 'Transform',
                                      'RankingTrainer'}
  assert upstream('RetrievalIndexer') == {'MovieLensExampleGen',
                                          'RetrievalRefit', 'RetrievalTrainer'}
  artifacts = tasks(spec)['RetrievalIndexer']['inputs']['artifacts']
  assert artifacts['model']['taskOutputArtifact']['producerTask'] == (
      'RetrievalRefit')
  assert artifacts['eval_model']['taskOutputArtifact']['producerTask'] == (
      'RetrievalTrainer')
  assert upstream('RetrievalEvaluator') == {'MovieLensExampleGen',
                                            'RetrievalIndexer'}
  assert upstream('RankingEvaluator') == {'MovieLensExampleGen',
                                          'RankingTrainer'}
  assert upstream('RetrievalPusher') == {'RetrievalEvaluator',
                                         'RetrievalIndexer'}
  artifacts = tasks(spec)['RetrievalPusher']['inputs']['artifacts']
  assert artifacts['model_blessing']['taskOutputArtifact'] == {
      'producerTask': 'RetrievalEvaluator', 'outputArtifactKey': 'blessing'}
  assert artifacts['model']['taskOutputArtifact'] == {
      'producerTask': 'RetrievalIndexer', 'outputArtifactKey': 'servable'}


def test_caching_is_on_for_every_step_by_default(vertex_job):
  spec = vertex_job['pipelineSpec']
  for task in container_tasks(spec):
    assert tasks(spec)[task]['cachingOptions'] == {'enableCache': True}


def test_no_cache_compiles_without_caching(tmp_path):
  path = str(tmp_path / 'p.json')
  specs.compile_with_runner('runner_vertex', specs.BASE_FLAGS + ['--no-cache'],
                            path)
  spec = specs.load(path)['pipelineSpec']
  assert not [t for t in tasks(spec) if 'cachingOptions' in tasks(spec)[t]]


def test_exec_properties_that_matter(vertex_job):
  spec = vertex_job['pipelineSpec']
  assert constant(spec, 'MovieLensExampleGen', 'input_base') == specs.DATA_DIR
  assert constant(spec, 'MovieLensExampleGen', 'eval_fraction') == 0.2
  assert constant(spec, 'MovieLensExampleGen',
                  'max_eval_ratings') == 1_000_000
  assert (constant(spec, 'ImportSchemaGen', 'schema_file') ==
          kubeflow.CONTAINER_SCHEMA_PATH)
  assert (constant(spec, 'Transform', 'preprocessing_fn') ==
          configs.PREPROCESSING_FN == 'modules.preprocessing.preprocessing_fn')
  assert json.loads(constant(spec, 'Transform', 'splits_config')) == {
      'analyze': ['train'], 'transform': ['train', 'eval']}
  assert (constant(spec, 'RetrievalTrainer', 'run_fn') ==
          configs.RETRIEVAL_RUN_FN == 'modules.retrieval_trainer.run_fn')
  from pipeline import code_version  # pylint: disable=g-import-not-at-top
  assert json.loads(constant(spec, 'RetrievalTrainer', 'custom_config')) == {
      'hparams': {},
      'code_fingerprint': code_version.package_fingerprint('modules')}
  assert constant(spec, 'RetrievalIndexer', 'top_k') == 100
  assert constant(spec, 'RetrievalEvaluator', 'blessing_metric') == (
      'recall_at_100')
  assert constant(spec, 'RetrievalEvaluator', 'min_lift_over_popularity') == (
      configs.MIN_LIFT_OVER_POPULARITY)
  assert constant(spec, 'RetrievalEvaluator', 'max_regression') == (
      configs.MAX_REGRESSION)
  destination = json.loads(constant(spec, 'RetrievalPusher',
                                    'push_destination'))
  assert destination == {'filesystem': {
      'base_directory': f'{specs.PIPELINE_ROOT}/serving/retrieval'}}


def test_ranking_stage(vertex_job):
  spec = vertex_job['pipelineSpec']
  assert (constant(spec, 'RankingTrainer', 'run_fn') ==
          configs.RANKING_RUN_FN == 'modules.ranking_trainer.run_fn')
  assert (constant(spec, 'RankingRefit', 'run_fn') ==
          configs.RANKING_REFIT_FN == 'modules.ranking_trainer.refit_fn')
  assert (constant(spec, 'RetrievalRefit', 'run_fn') ==
          configs.RETRIEVAL_REFIT_FN == 'modules.retrieval_trainer.refit_fn')
  artifacts = tasks(spec)['RankingPusher']['inputs']['artifacts']
  assert artifacts['model']['taskOutputArtifact']['producerTask'] == (
      'RankingRefit')
  assert artifacts['model_blessing']['taskOutputArtifact'][
      'producerTask'] == 'RankingEvaluator'
  eval_config = json.loads(constant(spec, 'RankingEvaluator', 'eval_config'))
  (rmse,) = [metric for metric in eval_config['metrics_specs'][0]['metrics']
             if metric['class_name'] == 'RootMeanSquaredError']
  threshold = rmse['per_slice_thresholds'][0]['threshold']
  assert threshold['value_threshold'] == {'upper_bound': configs.MAX_RMSE}
  assert threshold['change_threshold']['absolute'] == (
      configs.MAX_RMSE_INCREASE)
  assert constant(spec, 'RecommenderBuilder', 'top_k') == (
      configs.RECOMMENDER_TOP_K)
  for pusher, model in (('RankingPusher', 'ranking'),
                        ('RecommenderPusher', 'recommender')):
    assert json.loads(constant(spec, pusher, 'push_destination')) == {
        'filesystem': {
            'base_directory': f'{specs.PIPELINE_ROOT}/serving/{model}'}}
  assert set(tasks(spec)['RecommenderBuilder']['dependentTasks']) == {
      'RankingEvaluator', 'RankingRefit', 'RetrievalEvaluator',
      'RetrievalIndexer'}


def test_no_refit_serves_the_early_stopped_models(tmp_path):
  path = str(tmp_path / 'p.json')
  specs.compile_with_runner('runner_vertex',
                            specs.BASE_FLAGS + ['--no-refit'], path)
  spec = specs.load(path)['pipelineSpec']
  assert set(tasks(spec)) == (RETRIEVAL_TASKS | RANKING_TASKS) - {
      'RetrievalRefit', 'RankingRefit'}
  artifacts = tasks(spec)['RankingPusher']['inputs']['artifacts']
  assert artifacts['model']['taskOutputArtifact']['producerTask'] == (
      'RankingTrainer')


def test_no_ranking_compiles_retrieval_only(tmp_path):
  path = str(tmp_path / 'p.json')
  specs.compile_with_runner('runner_vertex',
                            specs.BASE_FLAGS + ['--no-ranking'], path)
  assert set(tasks(specs.load(path)['pipelineSpec'])) == RETRIEVAL_TASKS


def test_model_flags_reach_the_steps(vertex_scale_job):
  spec = vertex_scale_job['pipelineSpec']
  custom_config = json.loads(constant(spec, 'RetrievalTrainer',
                                      'custom_config'))
  # Strings, as from runner_local: RetrievalHParams casts and checks them.
  assert custom_config['hparams'] == {'epochs': 3, 'temperature': '0.2'}
  assert constant(spec, 'RetrievalIndexer', 'top_k') == 50
  assert constant(spec, 'RetrievalEvaluator',
                  'min_lift_over_popularity') == 0.1
  assert constant(spec, 'RetrievalEvaluator', 'max_regression') == 0.02
  assert json.loads(constant(spec, 'RankingTrainer', 'custom_config'))[
      'hparams'] == {'epochs': 2}
  eval_config = constant(spec, 'RankingEvaluator', 'eval_config')
  assert '"upper_bound": 1.05' in eval_config
  assert '"absolute": 0.02' in eval_config
  assert constant(spec, 'RecommenderBuilder', 'top_k') == 5
  assert constant(spec, 'RetrievalIndexer', 'index') == 'scann'
  assert constant(spec, 'MovieLensExampleGen', 'max_eval_ratings') == 500000
  assert constant(spec, 'ImportSchemaGen', 'schema_file') == (
      kubeflow.CONTAINER_PROJECT_DIR + '/pipeline/schema/schema.ml-25m.pbtxt')


def test_beam_steps_run_in_their_container_by_default(vertex_job):
  spec = vertex_job['pipelineSpec']
  for task in BEAM_TASKS:
    args = executor(spec, task)['container']['args']
    assert args[-3:] == ['--runner=DirectRunner',
                         '--direct_running_mode=in_memory',
                         '--direct_num_workers=1'], task


def test_dataflow_options(vertex_scale_job):
  spec = vertex_scale_job['pipelineSpec']
  for task in BEAM_TASKS:
    args = executor(spec, task)['container']['args']
    assert args[args.index('--runner=DataflowRunner'):] == [
        '--runner=DataflowRunner',
        f'--project={specs.PROJECT}',
        f'--region={specs.REGION}',
        f'--temp_location={specs.PIPELINE_ROOT}/beam-tmp',
        f'--sdk_container_image={specs.IMAGE}',
        '--sdk_location=container',
        '--max_num_workers=8',
        '--machine_type=n1-highmem-4',
    ], task


def test_vertex_training(vertex_scale_job):
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  vertex = tfx.extensions.google_cloud_ai_platform
  spec = vertex_scale_job['pipelineSpec']
  for trainer in ('RetrievalTrainer', 'RankingTrainer'):
    assert executor_class(spec, trainer) == (
        'tfx.extensions.google_cloud_ai_platform.trainer.executor.'
        'GenericExecutor')
  assert constant(spec, 'RetrievalTrainer', 'run_fn') == (
      configs.RETRIEVAL_RUN_FN)
  assert constant(spec, 'RankingTrainer', 'run_fn') == configs.RANKING_RUN_FN
  custom_config = json.loads(constant(spec, 'RetrievalTrainer',
                                      'custom_config'))
  ranking_config = json.loads(constant(spec, 'RankingTrainer',
                                       'custom_config'))
  assert ranking_config['hparams'] == {'epochs': 2}
  del custom_config['hparams'], ranking_config['hparams']
  assert ranking_config == custom_config
  assert custom_config[vertex.ENABLE_VERTEX_KEY] is True
  assert custom_config[vertex.VERTEX_REGION_KEY] == specs.REGION
  assert custom_config[vertex.TRAINING_ARGS_KEY] == {
      'project': specs.PROJECT,
      'job_spec': {'worker_pool_specs': [{
          'machine_spec': {'machine_type': 'n1-standard-8',
                           'accelerator_type': 'NVIDIA_TESLA_T4',
                           'accelerator_count': 1},
          'replica_count': 1,
          'container_spec': {'image_uri': specs.IMAGE},
      }]},
  }


def test_example_gen_driver_is_replaced_by_a_fingerprint_parameter(
    vertex_job, kfp_spec):
  spec = vertex_job['pipelineSpec']
  # KFP v2 runs no custom driver: the step has no pre-cache hook...
  assert 'lifecycle' not in executor(spec, 'MovieLensExampleGen')['container']
  # ...so the raw files' fingerprint comes in as a pipeline parameter, part
  # of the step's cache key, '' unless the runner passes one.
  assert tasks(spec)['MovieLensExampleGen']['inputs']['parameters'][
      kubeflow.FINGERPRINT_PARAMETER] == {
          'componentInputParameter': kubeflow.FINGERPRINT_PARAMETER}
  expected = {'parameterType': 'STRING', 'defaultValue': '',
              'isOptional': True}
  for root in (spec['root'], kfp_spec['root']):
    assert root['inputDefinitions']['parameters'] == {
        kubeflow.FINGERPRINT_PARAMETER: expected}
  assert vertex_job['runtimeConfig'] == {
      'gcsOutputDirectory': specs.PIPELINE_ROOT,
      'parameterValues': {kubeflow.FINGERPRINT_PARAMETER: ''}}


def test_custom_artifact_types_resolve_in_the_container(vertex_job):
  from components.anomaly_gate import AnomalyGateResult  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as utils  # pylint: disable=g-import-not-at-top
  spec = vertex_job['pipelineSpec']
  for task, component in spec['components'].items():
    for key, definition in component.get('outputDefinitions', {}).get(
        'artifacts', {}).items():
      runtime = pipeline_spec_pb2.ArtifactList(artifacts=[
          json_format.ParseDict(
              {'name': 'x', 'uri': '/tmp/x',
               'type': definition['artifactType']},
              pipeline_spec_pb2.RuntimeArtifact())])
      (artifact,) = utils.parse_raw_artifact_dict({key: runtime})[key]
      if task == 'AnomalyGate':
        assert isinstance(artifact, AnomalyGateResult)
      assert artifact.type_name, (task, key)
