"""What runner_vertex.py and runner_kubeflow.py share: their flags and
checks, the pipeline (`create_pipeline`, as in runner_local.py) and its
compilation to a KFP v2 PipelineSpec.

Both runners compile the same spec with TFX's KubeflowV2DagRunner (schema
2.1.0, which Vertex AI Pipelines and Kubeflow Pipelines 2.x both take):
every component is a container step running
`python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor`
in this project's image (see Dockerfile), module code referenced by import
path.

What KFP v2 does differently from LocalDagRunner, handled here:

- It runs no custom drivers, so MovieLensExampleGen's driver, which
  fingerprints the raw files into the cache key, is dropped without a word.
  Its `input_fingerprint` exec property becomes a pipeline parameter
  instead (FINGERPRINT_PARAMETER); the runners compute it from the raw files
  when they submit, so changed data misses the cache and unchanged data hits.
- Latest-blessed-model resolvers compile to queries by artifact type only,
  which cannot find the right baseline here (`drop_baseline_resolvers`), so
  they are left out: every evaluator judges its model on its absolute
  thresholds, as on a first local run.
- ML Metadata is the platform's (Vertex ML Metadata, or the Kubeflow
  cluster's MLMD service on its MySQL): the compiled spec has no connection
  config, and none is passed.

Nothing here imports TensorFlow or TFX at module level: flag checks stay fast
and fail before any heavy work.
"""

import argparse
import copy
import os
import re
from typing import Any, Dict, List, Optional

from pipeline import configs, flags

# Where the Dockerfile puts the project (its WORKDIR). The curated schema is
# read there by ImportSchemaGen inside the container.
CONTAINER_PROJECT_DIR = '/movielens-tfx'
CONTAINER_SCHEMA_DIR = f'{CONTAINER_PROJECT_DIR}/pipeline/schema'
CONTAINER_SCHEMA_PATH = f'{CONTAINER_SCHEMA_DIR}/schema.pbtxt'  # ml-100k


def container_schema_path(layout: str) -> str:
  """The curated schema of a release layout (`configs.SCHEMA_FILES`) as
  ImportSchemaGen's container sees it."""
  return f'{CONTAINER_SCHEMA_DIR}/{configs.SCHEMA_FILES[layout]}'

# Pipeline parameter standing in for MovieLensExampleGen's driver.
FINGERPRINT_PARAMETER = 'input_fingerprint'

# TensorFlow in the image reads and writes gs:// natively; other stores
# (s3://, minio://) would need tensorflow-io and credentials in every pod.
REMOTE_SCHEME = 'gs://'

BEAM_RUNNERS = ('DirectRunner', 'DataflowRunner')

# KFP's rule for custom artifact types: the schema title, which the TFX
# container also imports as `<module>.<Class>` at run time.
_KFP_TYPE_TITLE = re.compile(
    r'^[a-z][a-z0-9-_]{2,20}[.][A-Z][a-zA-Z0-9-_]{2,49}$')


class ConfigError(ValueError):
  """A missing or inconsistent setting; the message is one line for users."""


class IncompatibleComponentError(ValueError):
  """A component cannot run on KFP v2 as written; says what to change."""


def _env(name: str) -> Optional[str]:
  return os.environ.get(name) or None


def add_flags(parser: argparse.ArgumentParser) -> None:
  """Adds the flags both runners take: every runner's (`pipeline.flags`),
  and paths, GCP, scale and what to do."""
  paths = parser.add_argument_group('where things are (gs:// paths)')
  paths.add_argument(
      '--pipeline-root', default=_env('MOVIELENS_PIPELINE_ROOT'),
      help='bucket path of all pipeline artifacts, e.g. '
      'gs://BUCKET/movielens-tfx [$MOVIELENS_PIPELINE_ROOT]')
  paths.add_argument(
      '--data-dir', default=_env('MOVIELENS_DATA_DIR'),
      help='raw MovieLens release (ml-100k layout), e.g. '
      'gs://BUCKET/data/ml-100k [$MOVIELENS_DATA_DIR]')
  paths.add_argument(
      '--serving-dir', default=_env('MOVIELENS_SERVING_DIR'),
      help='where blessed servables are pushed (<dir>/retrieval/<version>/); '
      'default <pipeline-root>/serving [$MOVIELENS_SERVING_DIR]')
  paths.add_argument(
      '--image', default=_env('MOVIELENS_IMAGE'),
      help="this project's container image (see Dockerfile), e.g. "
      'REGION-docker.pkg.dev/PROJECT/REPO/movielens-tfx:TAG '
      '[$MOVIELENS_IMAGE]')
  paths.add_argument(
      '--layout', choices=sorted(configs.SCHEMA_FILES), default='ml-100k',
      help="the release in --data-dir, which picks the curated schema "
      "(the data is not read at compile time): ml-100k, ml-1m, or ml-25m "
      "for the CSV releases (ml-20m, ml-25m, ml-latest)")
  paths.add_argument(
      '--schema-path', default=None,
      help='curated schema as the ImportSchemaGen container sees it '
      '(default: the --layout schema in the image, which holds the project '
      'at ' + CONTAINER_PROJECT_DIR + ')')

  gcp = parser.add_argument_group('Google Cloud')
  gcp.add_argument('--project', default=_env('GOOGLE_CLOUD_PROJECT'),
                   help='GCP project [$GOOGLE_CLOUD_PROJECT]')
  gcp.add_argument('--region', default=_env('GOOGLE_CLOUD_REGION'),
                   help='GCP region, e.g. europe-west4 [$GOOGLE_CLOUD_REGION]')

  flags.add_flags(parser)

  scale = parser.add_argument_group('scale')
  scale.add_argument(
      '--beam-runner', choices=BEAM_RUNNERS, default='DirectRunner',
      help='Beam runner of the Beam steps (ExampleGen, StatisticsGen, '
      'Transform, TFMA evaluation): in the step\'s own container, or on '
      'Dataflow')
  scale.add_argument('--dataflow-temp-location', default=None,
                     help='gs:// temp/staging folder of Dataflow jobs; '
                     'default <pipeline-root>/beam-tmp')
  scale.add_argument('--dataflow-max-workers', type=int, default=None,
                     help='upper bound of Dataflow autoscaling')
  scale.add_argument('--dataflow-machine-type', default=None,
                     help='Dataflow worker machine type, e.g. n1-standard-4')
  scale.add_argument('--beam-arg', action='append', default=[],
                     metavar='--OPTION=VALUE',
                     help='any further Beam pipeline option (repeatable), '
                     'e.g. --beam-arg=--network=my-vpc')
  scale.add_argument('--vertex-training', action='store_true',
                     help='run the Trainer as a Vertex AI Training job')
  scale.add_argument('--machine-type', default=None,
                     help='Vertex AI Training machine type; n1-standard-4 '
                     'when unset')
  scale.add_argument('--accelerator-type', default=None,
                     help='Vertex AI Training accelerator, e.g. '
                     'NVIDIA_TESLA_T4')
  scale.add_argument('--accelerator-count', type=int, default=None,
                     help='accelerators of the training worker; 1 when '
                     'unset and --accelerator-type is given')
  scale.add_argument('--training-service-account', default=None,
                     help='service account of the Vertex AI Training job')

  run = parser.add_argument_group('what to do')
  run.add_argument('--output', metavar='PATH', default=None,
                   help='write the compiled pipeline here (no network, no '
                   'credentials needed) and stop, unless --submit')
  run.add_argument('--submit', action='store_true',
                   help='compile and submit a run')


def parse_args(parser: argparse.ArgumentParser,
               argv: Optional[List[str]] = None) -> argparse.Namespace:
  """Parses argv; malformed values stop with argparse's usage error.

  The shared flags are checked by `flags.parse_args`, which also adds
  `args.hparams` and `args.ranking_hparams`. Settings that depend on each
  other are checked by `check`.
  """
  args = flags.parse_args(parser, argv)
  if args.schema_path is None:
    args.schema_path = container_schema_path(args.layout)
  if args.dataflow_max_workers is not None and args.dataflow_max_workers < 1:
    parser.error('--dataflow-max-workers must be at least 1')
  if args.accelerator_count is not None and args.accelerator_count < 0:
    parser.error('--accelerator-count must not be negative')
  return args


def _require_remote(flag: str, path: Optional[str], what: str) -> str:
  if not path:
    raise ConfigError(f'{flag} is required: {what}.')
  if not path.startswith(REMOTE_SCHEME):
    raise ConfigError(
        f'{flag} must be a {REMOTE_SCHEME} path (every step runs in its own '
        f'container and reads and writes there), got {path!r}.')
  return path.rstrip('/')


def require_gcp(args: argparse.Namespace, reason: str) -> None:
  """Raises ConfigError naming whichever of --project/--region is missing."""
  missing = [flag for flag, value in (('--project', args.project),
                                      ('--region', args.region)) if not value]
  if missing:
    env = {'--project': '$GOOGLE_CLOUD_PROJECT',
           '--region': '$GOOGLE_CLOUD_REGION'}
    verb = 'is' if len(missing) == 1 else 'are'
    raise ConfigError(
        f'{" and ".join(missing)} {verb} required for {reason} (or set '
        f'{" and ".join(env[flag] for flag in missing)}).')


def _listing(flags: List[str]) -> str:
  verb = 'only applies' if len(flags) == 1 else 'only apply'
  return f'{", ".join(flags)} {verb}'


def check(args: argparse.Namespace) -> None:
  """Checks the shared settings and fills in derived defaults, in place.

  Runs before anything is built, read or sent. Runner-specific needs (e.g.
  --project for a Vertex submission, --host for Kubeflow) are the runners'.

  Raises:
    ConfigError: the first problem found, as one line.
  """
  if not args.output and not args.submit:
    raise ConfigError('nothing to do: pass --output PATH to write the '
                      'compiled pipeline, --submit to run it, or both.')
  args.pipeline_root = _require_remote(
      '--pipeline-root', args.pipeline_root,
      'the bucket path of the artifacts, e.g. gs://BUCKET/movielens-tfx '
      '(or set $MOVIELENS_PIPELINE_ROOT)')
  args.data_dir = _require_remote(
      '--data-dir', args.data_dir,
      'the raw MovieLens files, e.g. gs://BUCKET/data/ml-100k (or set '
      '$MOVIELENS_DATA_DIR)')
  args.serving_dir = _require_remote(
      '--serving-dir', args.serving_dir or f'{args.pipeline_root}/serving',
      'where blessed servables go')
  if not args.image:
    raise ConfigError('--image is required: the URI of the image built from '
                      "this project's Dockerfile (or set $MOVIELENS_IMAGE).")

  dataflow_flags = [flag for flag, value in (
      ('--dataflow-temp-location', args.dataflow_temp_location),
      ('--dataflow-max-workers', args.dataflow_max_workers),
      ('--dataflow-machine-type', args.dataflow_machine_type)) if value]
  if args.beam_runner == 'DataflowRunner':
    if args.beam_workers != 1:
      raise ConfigError('--beam-workers only applies with --beam-runner '
                        'DirectRunner (Dataflow autoscales; see '
                        '--dataflow-max-workers).')
    require_gcp(args, '--beam-runner DataflowRunner')
    args.dataflow_temp_location = _require_remote(
        '--dataflow-temp-location',
        args.dataflow_temp_location or f'{args.pipeline_root}/beam-tmp',
        'the temp folder of Dataflow jobs')
  elif dataflow_flags:
    raise ConfigError(f'{_listing(dataflow_flags)} with '
                      '--beam-runner DataflowRunner.')

  training_flags = [flag for flag, value in (
      ('--machine-type', args.machine_type),
      ('--accelerator-type', args.accelerator_type),
      ('--accelerator-count', args.accelerator_count),
      ('--training-service-account', args.training_service_account))
                    if value is not None]
  if args.vertex_training:
    require_gcp(args, '--vertex-training')
    if args.accelerator_count and not args.accelerator_type:
      raise ConfigError('--accelerator-count needs --accelerator-type (e.g. '
                        'NVIDIA_TESLA_T4).')
    if args.accelerator_type and args.accelerator_count == 0:
      raise ConfigError('--accelerator-type needs an --accelerator-count of '
                        'at least 1.')
  elif training_flags:
    raise ConfigError(f'{_listing(training_flags)} with --vertex-training.')


def beam_pipeline_args(args: argparse.Namespace) -> List[str]:
  """Beam options of the Beam-powered components.

  TFX hands them to every step; the Beam ones (ExampleGen, StatisticsGen,
  Transform, TFMA) use them. On Dataflow the workers run this project's
  image too (built on the TFX image, whose entrypoint is Beam's worker
  boot), so they import the project's modules with no local files staged.
  """
  if args.beam_runner == 'DataflowRunner':
    options = [
        '--runner=DataflowRunner',
        f'--project={args.project}',
        f'--region={args.region}',
        f'--temp_location={args.dataflow_temp_location}',
        f'--sdk_container_image={args.image}',
        '--sdk_location=container',
    ]
    if args.dataflow_max_workers:
      options.append(f'--max_num_workers={args.dataflow_max_workers}')
    if args.dataflow_machine_type:
      options.append(f'--machine_type={args.dataflow_machine_type}')
  elif args.beam_workers == 1:
    options = ['--runner=DirectRunner', '--direct_running_mode=in_memory',
               '--direct_num_workers=1']
  else:
    options = ['--runner=DirectRunner',
               '--direct_running_mode=multi_processing',
               f'--direct_num_workers={args.beam_workers}']
  return options + list(args.beam_arg)


def vertex_training(args: argparse.Namespace) -> Optional[Dict[str, Any]]:
  """The `vertex_training` argument of create_pipeline (None: in place)."""
  if not args.vertex_training:
    return None
  from pipeline import trainers  # pylint: disable=g-import-not-at-top
  accelerator_count = args.accelerator_count
  if accelerator_count is None:
    accelerator_count = 1 if args.accelerator_type else 0
  return trainers.vertex_training_settings(
      project=args.project,
      region=args.region,
      image_uri=args.image,
      machine_type=args.machine_type or trainers.DEFAULT_MACHINE_TYPE,
      accelerator_type=args.accelerator_type,
      accelerator_count=accelerator_count,
      service_account=args.training_service_account)


def build_pipeline(args: argparse.Namespace):
  """The pipeline of runner_local.py, with this runner's settings."""
  from pipeline.pipeline import create_pipeline  # pylint: disable=g-import-not-at-top
  return create_pipeline(**flags.create_pipeline_kwargs(
      args,
      pipeline_root=args.pipeline_root,
      data_path=args.data_dir,
      schema_path=args.schema_path,
      serving_dir=args.serving_dir,
      beam_pipeline_args=beam_pipeline_args(args),
      # The platform's ML Metadata (see the module docstring).
      metadata_connection_config=None,
      vertex_training=vertex_training(args),
      # KFP v2 compiles TFX's own strategy only (the resolvers are then
      # dropped: drop_baseline_resolvers).
      baseline_excludes_candidate=False,
  ))


def check_artifact_types(pipeline) -> None:
  """Fails when a custom artifact type cannot run on KFP v2.

  KFP takes a custom type's TYPE_NAME as its schema title, which must look
  like `<module>.<Class>`, and TFX's container imports the class from that
  path at run time. TFX's compiler only checks the shape, with a terse
  message; this also checks that the path imports the class.

  Raises:
    IncompatibleComponentError: naming the type and the fix.
  """
  from tfx.orchestration.kubeflow.v2 import compiler_utils  # pylint: disable=g-import-not-at-top
  from tfx.utils import import_utils  # pylint: disable=g-import-not-at-top
  standard = compiler_utils._SUPPORTED_STANDARD_ARTIFACT_TYPES  # pylint: disable=protected-access
  for node in pipeline.components:
    for key, channel in node.outputs.items():
      artifact_type = channel.type
      if artifact_type in standard:
        continue
      name = artifact_type.TYPE_NAME
      try:
        imported = (_KFP_TYPE_TITLE.fullmatch(name) and
                    import_utils.import_class_by_path(name))
      except (ImportError, AttributeError):
        imported = None
      if imported is not artifact_type:
        raise IncompatibleComponentError(
            f'{node.id} output {key!r} has the custom artifact type '
            f'{artifact_type.__module__}.{artifact_type.__name__} with '
            f'TYPE_NAME {name!r}; KFP v2 needs a TYPE_NAME that is the '
            "class's import path '<package>.<Class>' (one dot, e.g. "
            f"'components.{artifact_type.__name__}', the class exported "
            'from that package). See docs/kubeflow_vertex.md.')


def add_fingerprint_parameter(pipeline) -> None:
  """Makes MovieLensExampleGen's `input_fingerprint` a pipeline parameter.

  KFP v2 does not run the component's driver, which sets this exec property
  from the raw files so that changed data misses the cache. As a pipeline
  parameter it is part of the step's cache key all the same, with the value
  the runner passes at submission (`data_fingerprint`).

  Raises:
    IncompatibleComponentError: the pipeline has no MovieLensExampleGen.
  """
  from tfx.orchestration import data_types  # pylint: disable=g-import-not-at-top
  from components.movielens_example_gen import MovieLensExampleGen  # pylint: disable=g-import-not-at-top
  from components.movielens_example_gen import spec  # pylint: disable=g-import-not-at-top
  example_gens = [node for node in pipeline.components
                  if isinstance(node, MovieLensExampleGen)]
  if not example_gens:
    raise IncompatibleComponentError(
        'The pipeline has no MovieLensExampleGen, whose input fingerprint '
        'this runner passes as a parameter; update pipeline/kubeflow.py.')
  for node in example_gens:
    node.exec_properties[spec.INPUT_FINGERPRINT_KEY] = (
        data_types.RuntimeParameter(name=FINGERPRINT_PARAMETER, ptype=str))


def compile_pipeline(args: argparse.Namespace) -> Dict[str, Any]:
  """Builds and compiles the pipeline.

  Returns:
    The PipelineJob as a JSON-ready dict (what KubeflowV2DagRunner writes):
    `pipelineSpec` (schema 2.1.0) plus `runtimeConfig` (the pipeline root and
    parameter values), `displayName` and `labels`. Root parameters carry
    their defaults in the spec too, so it also runs without runtimeConfig.

  Raises:
    IncompatibleComponentError: a component cannot run on KFP v2.
  """
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  pipeline = build_pipeline(args)
  check_artifact_types(pipeline)
  add_fingerprint_parameter(pipeline)
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=args.image, use_pipeline_spec_2_1=True))
  job = runner.run(pipeline, parameter_values={FINGERPRINT_PARAMETER: ''},
                   write_out=False)
  drop_baseline_resolvers(job['pipelineSpec'])
  defaults = job['runtimeConfig'].get('parameterValues', {})
  parameters = job['pipelineSpec']['root']['inputDefinitions']['parameters']
  for name, value in defaults.items():
    parameters[name]['defaultValue'] = value
    parameters[name]['isOptional'] = True
  pipeline_spec_proto(job['pipelineSpec'])  # Fails here if malformed.
  return job


def drop_baseline_resolvers(spec: Dict[str, Any]) -> List[str]:
  """Removes the resolver steps, and the baseline inputs they feed.

  TFX compiles a LatestBlessedModelStrategy resolver into two queries: the
  newest blessed ModelBlessing of the pipeline, then the Model its
  `current_model_id` names. Both go by artifact type alone: the channels'
  producer restriction is lost, so with several evaluators (retrieval,
  ranking, the recommender's blessing) the retrieval evaluator can be handed
  the ranking model, and fail. Nor does RetrievalEvaluator's blessing ever
  resolve: TFX's container turns model ids into the platform's artifact
  names for TFX's own Evaluator only. Without the resolvers each baseline
  input is simply absent (marked optional), which every evaluator takes as
  a first run. The regression thresholds (--max-regression,
  --max-rmse-increase) therefore do not apply on KFP v2.

  Args:
    spec: a compiled PipelineSpec dict, changed in place.

  Returns:
    The names of the removed steps.
  """
  tasks = spec['root']['dag']['tasks']
  executors = spec['deploymentSpec']['executors']
  resolvers = sorted(
      name for name in tasks
      if 'resolver' in executors[spec['components'][name]['executorLabel']])
  for name in resolvers:
    del executors[spec['components'][name]['executorLabel']]
    del spec['components'][name]
    del tasks[name]
  for name, task in tasks.items():
    artifacts = task.get('inputs', {}).get('artifacts', {})
    for key in [key for key, value in artifacts.items() if value.get(
        'taskOutputArtifact', {}).get('producerTask') in resolvers]:
      del artifacts[key]
      spec['components'][name]['inputDefinitions']['artifacts'][key][
          'isOptional'] = True
    if 'dependentTasks' in task:
      task['dependentTasks'] = [
          upstream for upstream in task['dependentTasks']
          if upstream not in resolvers]
  return resolvers


def pipeline_spec_proto(spec: Dict[str, Any]):
  """Parses a PipelineSpec dict strictly (unknown fields are errors)."""
  from google.protobuf import json_format  # pylint: disable=g-import-not-at-top
  from kfp.pipeline_spec import pipeline_spec_pb2  # pylint: disable=g-import-not-at-top
  return json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec(),
                               ignore_unknown_fields=False)


def kfp_pipeline_spec(job: Dict[str, Any]) -> Dict[str, Any]:
  """The PipelineSpec that open-source Kubeflow Pipelines takes.

  The KFP v2 package format is the bare PipelineSpec (no PipelineJob
  wrapper), so the pipeline root, which the job's runtimeConfig holds,
  becomes `defaultPipelineRoot`.
  """
  spec = copy.deepcopy(job['pipelineSpec'])
  spec['defaultPipelineRoot'] = job['runtimeConfig']['gcsOutputDirectory']
  return spec


def data_fingerprint(data_dir: str) -> str:
  """Names, sizes and modification times of the raw files in data_dir.

  The value MovieLensExampleGen's driver computes locally; it needs read
  access to data_dir (gs:// with the submitter's credentials).

  Raises:
    ConfigError: the folder holds no MovieLens release or cannot be read.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.movielens_example_gen import driver  # pylint: disable=g-import-not-at-top
  from movielens.layout import RawDataError  # pylint: disable=g-import-not-at-top
  try:
    return driver.input_fingerprint(data_dir)
  except (RawDataError, tf.errors.OpError, OSError) as e:
    message = ' '.join(str(e).split())
    raise ConfigError(f'cannot fingerprint the raw data in {data_dir}: '
                      f'{message}') from e


def describe(job: Dict[str, Any]) -> str:
  """E.g. '12 steps (MovieLensExampleGen, StatisticsGen, ...)'."""
  tasks = job['pipelineSpec']['root']['dag']['tasks']
  return f'{len(tasks)} steps ({", ".join(sorted(tasks))})'


def write_compiled(document: Dict[str, Any], path: Optional[str],
                   file_format: str) -> str:
  """Writes a compiled pipeline as 'json' or 'yaml'; returns the path.

  Without a path (--submit alone) it goes to a new temporary folder.
  """
  import json  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  import yaml  # pylint: disable=g-import-not-at-top
  if not path:
    path = os.path.join(tempfile.mkdtemp(prefix='movielens-tfx-'),
                        f'{configs.PIPELINE_NAME}.{file_format}')
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  with open(path, 'w', encoding='utf-8') as f:
    if file_format == 'json':
      json.dump(document, f, indent=2, sort_keys=True)
      f.write('\n')
    elif file_format == 'yaml':
      f.write(f'# PIPELINE DEFINITION\n# Name: {configs.PIPELINE_NAME}\n'
              '# KFP v2 PipelineSpec compiled by runner_kubeflow.py from '
              'pipeline/pipeline.py.\n')
      yaml.safe_dump(document, f, sort_keys=True)
    else:
      raise ValueError(f'file_format must be json or yaml, got '
                       f'{file_format!r}')
  return path
