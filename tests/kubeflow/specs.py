"""Compiled specs for the tests and the golden files: the configurations,
how they are compiled (through the runners' own `main`), and how they are
normalised so that goldens do not change with versions or the checkout.

Regenerate the goldens after an intended change to the pipeline:

  make goldens        # = .venv/bin/python -m tests.kubeflow.regenerate
"""

import contextlib
import copy
import importlib
import io
import json
import os
import tempfile
from typing import Any, Dict, Iterator, List

import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          'golden')

IMAGE = 'europe-west4-docker.pkg.dev/test-project/movielens/movielens-tfx:test'
PIPELINE_ROOT = 'gs://movielens-test/root'
DATA_DIR = 'gs://movielens-test/data/ml-100k'
PROJECT = 'test-project'
REGION = 'europe-west4'

BASE_FLAGS = ['--pipeline-root', PIPELINE_ROOT, '--data-dir', DATA_DIR,
              '--image', IMAGE]
# Every option for scale, and non-default model settings, in one spec.
SCALE_FLAGS = BASE_FLAGS + [
    '--project', PROJECT, '--region', REGION,
    '--beam-runner', 'DataflowRunner', '--dataflow-max-workers', '8',
    '--dataflow-machine-type', 'n1-highmem-4',
    '--vertex-training', '--machine-type', 'n1-standard-8',
    '--accelerator-type', 'NVIDIA_TESLA_T4', '--accelerator-count', '1',
    '--epochs', '3', '--hparam', 'temperature=0.2',
    '--min-lift-over-popularity', '0.1', '--max-regression', '0.02',
    '--top-k', '50', '--ranking-epochs', '2', '--max-rmse', '1.05',
    '--max-rmse-increase', '0.02', '--recommender-top-k', '5',
    '--layout', 'ml-25m', '--retrieval-index', 'scann',
    '--max-eval-ratings', '500000',
]

# name -> (runner module, flags, golden file name)
CONFIGS = {
    'vertex': ('runner_vertex', BASE_FLAGS, 'vertex_pipeline.json'),
    'vertex_scale': ('runner_vertex', SCALE_FLAGS,
                     'vertex_pipeline_scale.json'),
    'kubeflow': ('runner_kubeflow', BASE_FLAGS, 'kubeflow_pipeline.yaml'),
}

CLOUD_ENV = ('GOOGLE_CLOUD_PROJECT', 'GOOGLE_CLOUD_REGION',
             'MOVIELENS_PIPELINE_ROOT', 'MOVIELENS_DATA_DIR',
             'MOVIELENS_SERVING_DIR', 'MOVIELENS_IMAGE',
             'MOVIELENS_SERVICE_ACCOUNT', 'KF_PIPELINES_ENDPOINT')


@contextlib.contextmanager
def without_cloud_env() -> Iterator[None]:
  """Clears the environment variables the runners fall back on."""
  import pytest  # pylint: disable=g-import-not-at-top
  with pytest.MonkeyPatch.context() as patch:
    for name in CLOUD_ENV:
      patch.delenv(name, raising=False)
    yield


def compile_with_runner(runner: str, flags: List[str], path: str) -> None:
  """Runs `<runner>.main(flags + ['--output', path])`; fails loudly."""
  module = importlib.import_module(runner)
  with without_cloud_env():
    code = module.main(list(flags) + ['--output', path])
  if code != 0:
    raise RuntimeError(f'{runner} {" ".join(flags)} exited with {code}')


def load(path: str) -> Dict[str, Any]:
  with open(path, encoding='utf-8') as f:
    if path.endswith('.json'):
      return json.load(f)
    return yaml.safe_load(f)


def compile_config(name: str) -> Dict[str, Any]:
  """The file a runner writes for CONFIGS[name], parsed."""
  runner, flags, golden = CONFIGS[name]
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, golden)
    compile_with_runner(runner, flags, path)
    return load(path)


def _tfx_version() -> str:
  from tfx import version  # pylint: disable=g-import-not-at-top
  return version.__version__


def normalise(document: Dict[str, Any]) -> Dict[str, Any]:
  """Strips what changes without a change of the pipeline.

  The TFX/Python versions (sdkVersion, the telemetry labels), this
  checkout's absolute path and the fingerprint of modules/ (see
  pipeline/code_version.py), wherever they appear. No timestamps or random
  ids appear in these specs (a test checks that compiling twice gives the
  same document).
  """
  result = copy.deepcopy(document)
  spec = result.get('pipelineSpec', result)
  if 'sdkVersion' in spec:
    spec['sdkVersion'] = spec['sdkVersion'].replace(_tfx_version(),
                                                    '<version>')
  for label in ('tfx_version', 'tfx_py_version'):
    if label in result.get('labels', {}):
      result['labels'][label] = '<version>'

  # The module-code fingerprint changes with every edit of modules/.
  from pipeline import code_version  # pylint: disable=g-import-not-at-top
  code = code_version.package_fingerprint('modules')

  def scrub(value):
    if isinstance(value, dict):
      return {key: scrub(item) for key, item in value.items()}
    if isinstance(value, list):
      return [scrub(item) for item in value]
    if isinstance(value, str):
      return value.replace(REPO_ROOT, '<repo>').replace(code,
                                                        '<code_fingerprint>')
    return value
  return scrub(result)


def dumps(document: Dict[str, Any], golden: str) -> str:
  """The golden file's text for a normalised document."""
  if golden.endswith('.json'):
    return json.dumps(document, indent=2, sort_keys=True) + '\n'
  stream = io.StringIO()
  stream.write('# Golden file: regenerate with `make goldens` '
               '(tests/kubeflow/regenerate.py).\n')
  yaml.safe_dump(document, stream, sort_keys=True)
  return stream.getvalue()
