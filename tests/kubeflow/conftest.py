"""Fixtures of the Kubeflow/Vertex tests: each spec compiled once per
session, through the runners' own `main`, offline."""

import os

import pytest

from tests.kubeflow import specs


@pytest.fixture(autouse=True)
def _kfp_ready_and_no_cloud_env():
  """Every test: no cloud env vars."""
  with specs.without_cloud_env():
    yield


@pytest.fixture(scope='session')
def compiled_files(tmp_path_factory):
  """Config name (specs.CONFIGS) -> path of the file its runner wrote."""
  folder = tmp_path_factory.mktemp('compiled')
  paths = {}
  for name, (runner, flags, golden) in specs.CONFIGS.items():
    paths[name] = os.path.join(folder, golden)
    specs.compile_with_runner(runner, flags, paths[name])
  return paths


@pytest.fixture(scope='session')
def vertex_job(compiled_files):
  """runner_vertex.py's PipelineJob JSON, default settings."""
  return specs.load(compiled_files['vertex'])


@pytest.fixture(scope='session')
def vertex_scale_job(compiled_files):
  """runner_vertex.py's PipelineJob JSON with Dataflow and Vertex Training."""
  return specs.load(compiled_files['vertex_scale'])


@pytest.fixture(scope='session')
def kfp_spec(compiled_files):
  """runner_kubeflow.py's KFP v2 PipelineSpec YAML, default settings."""
  return specs.load(compiled_files['kubeflow'])
