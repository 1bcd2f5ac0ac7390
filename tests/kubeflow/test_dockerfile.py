"""The Dockerfile, checked statically (no Docker engine here): the base image
and Beam boot match the lock file, the lock is installed before the project
(layer caching), Keras 2 is set, the project sits where the compiled
pipeline expects it, and its install holds every package the steps
import."""

import ast
import os
import re
import subprocess
import sys

import pytest

from pipeline import kubeflow
from tests.kubeflow import specs

pytestmark = pytest.mark.integration


def read(name):
  with open(os.path.join(specs.REPO_ROOT, name), encoding='utf-8') as f:
    return f.read()


@pytest.fixture(scope='module')
def instructions():
  """(INSTRUCTION, arguments) of the Dockerfile, continuations joined."""
  text = re.sub(r'\\\n\s*', ' ', read('Dockerfile'))
  lines = [line.strip() for line in text.splitlines()]
  return [tuple(line.split(None, 1)) for line in lines
          if line and not line.startswith('#')]


def locked_version(package):
  match = re.search(rf'^{re.escape(package)}==(\S+)$',
                    read('requirements.lock'), re.MULTILINE)
  assert match, f'{package} is not pinned in requirements.lock'
  return match.group(1)


def test_base_image_is_the_locked_tfx_release(instructions):
  assert instructions[0] == (
      'FROM', f'gcr.io/tfx-oss-public/tfx:{locked_version("tfx")}')


def test_beam_worker_boot_matches_the_locked_beam(instructions):
  copies = [args for op, args in instructions if op == 'COPY'
            and args.startswith('--from=')]
  assert copies == [f'--from=apache/beam_python3.10_sdk:'
                    f'{locked_version("apache-beam")} /opt/apache/beam '
                    '/opt/apache/beam']


def test_keras_2_everywhere(instructions):
  assert ('ENV', 'TF_USE_LEGACY_KERAS=1') in instructions


def test_lock_installed_before_the_project_is_copied(instructions):
  steps = [(op, args) for op, args in instructions if op in ('COPY', 'RUN')
           and not args.startswith('--from=')]
  assert steps[0] == ('COPY', 'requirements.lock .')
  assert steps[1][0] == 'RUN'
  assert 'pip install --no-cache-dir -r requirements.lock' in steps[1][1]
  assert steps[2] == ('COPY', '. .')
  assert steps[3][0] == 'RUN'
  assert 'pip install --no-cache-dir --no-deps --no-build-isolation .' in (
      steps[3][1])


def test_project_is_where_the_pipeline_reads_it(instructions):
  assert ('WORKDIR', kubeflow.CONTAINER_PROJECT_DIR) in instructions
  assert kubeflow.CONTAINER_SCHEMA_PATH.startswith(
      kubeflow.CONTAINER_PROJECT_DIR + '/')
  relative = kubeflow.CONTAINER_SCHEMA_PATH[
      len(kubeflow.CONTAINER_PROJECT_DIR) + 1:]
  assert os.path.isfile(os.path.join(specs.REPO_ROOT, relative))


def test_dockerignore_keeps_local_state_out():
  ignored = {line.strip() for line in read('.dockerignore').splitlines()
             if line.strip() and not line.startswith('#')}
  assert {'.git', '.venv', 'data', 'outputs', 'benchmarks/work'} <= ignored
  # ...but nothing the image needs.
  for needed in ('requirements.lock', 'setup.py', 'pyproject.toml',
                 'pipeline', 'components', 'modules', 'movielens'):
    assert needed not in ignored


def test_setup_py_installs_every_package_the_steps_import(vertex_job):
  # The image installs the project with `pip install .`, which takes only
  # the packages setup.py lists (unlike the editable install of .venv).
  # Import what the steps run (executors, run_fn and preprocessing_fn
  # modules) in a fresh interpreter, and list the top-level packages of this
  # checkout that came with them.
  spec = vertex_job['pipelineSpec']
  entry_points = set()
  for executor in spec['deploymentSpec']['executors'].values():
    args = executor['container']['args']
    entry_points.add(args[args.index('--executor_class_path') + 1])
  for task in spec['root']['dag']['tasks'].values():
    for name in ('run_fn', 'preprocessing_fn'):
      value = task.get('inputs', {}).get('parameters', {}).get(name)
      if value:
        entry_points.add(value['runtimeValue']['constant'])
  script = (
      'import importlib, sys\n'
      f'for path in {sorted(entry_points)!r}:\n'
      '  importlib.import_module(path.rsplit(".", 1)[0])\n'
      f'root = {specs.REPO_ROOT!r} + "/"\n'
      'files = [getattr(m, "__file__", None) or "" for m in '
      'list(sys.modules.values())]\n'
      # Top-level folders of the checkout, not its .venv.
      'print(sorted({f[len(root):].split("/")[0] for f in files '
      'if f.startswith(root) and not f[len(root):].startswith(".")}))\n')
  result = subprocess.run(
      [sys.executable, '-c', script], cwd=specs.REPO_ROOT, check=True,
      capture_output=True, text=True,
      env={**os.environ, 'TF_USE_LEGACY_KERAS': '1'})
  imported = set(ast.literal_eval(result.stdout.strip().splitlines()[-1]))
  setup = ast.parse(read('setup.py'))
  (include,) = [keyword.value for node in ast.walk(setup)
                if isinstance(node, ast.Call) for keyword in node.keywords
                if keyword.arg == 'include']
  installed = {ast.literal_eval(item).split('.')[0] for item in include.elts}
  assert imported <= installed, (
      f'The steps import {sorted(imported - installed)} from this checkout, '
      "but setup.py's find_packages(include=...) leaves them out of the "
      'image (add them there).')
