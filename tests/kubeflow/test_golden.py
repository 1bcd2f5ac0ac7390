"""The compiled specs against the golden files in tests/kubeflow/golden/.

A difference fails with the diff. After an intended change to the pipeline,
regenerate them and review the diff:

  make goldens        # = .venv/bin/python -m tests.kubeflow.regenerate
  git diff tests/kubeflow/golden
"""

import difflib
import os

import pytest

from tests.kubeflow import specs

pytestmark = pytest.mark.unit


@pytest.mark.parametrize('name', sorted(specs.CONFIGS))
def test_compiled_spec_matches_golden(name, compiled_files):
  golden = specs.CONFIGS[name][2]
  golden_path = os.path.join(specs.GOLDEN_DIR, golden)
  actual = specs.normalise(specs.load(compiled_files[name]))
  expected = specs.load(golden_path)
  if actual != expected:
    with open(golden_path, encoding='utf-8') as f:
      expected_text = f.read()
    diff = ''.join(difflib.unified_diff(
        expected_text.splitlines(keepends=True),
        specs.dumps(actual, golden).splitlines(keepends=True),
        fromfile=f'golden/{golden}', tofile='compiled', n=2))
    pytest.fail(
        f'The compiled spec differs from tests/kubeflow/golden/{golden}. If '
        'the change is intended, run `make goldens` and review `git diff '
        f'tests/kubeflow/golden`.\n{diff[:8000]}', pytrace=False)


def test_compiling_twice_gives_the_same_file(compiled_files, tmp_path):
  # So the goldens need no normalising of timestamps or random ids.
  runner, flags, golden = specs.CONFIGS['vertex_scale']
  again = str(tmp_path / golden)
  specs.compile_with_runner(runner, flags, again)
  assert specs.load(again) == specs.load(compiled_files['vertex_scale'])


def test_normalise_strips_versions_and_the_checkout():
  from tfx import version  # pylint: disable=g-import-not-at-top
  job = {
      'labels': {'tfx_version': '1-16-0', 'tfx_py_version': '3-10',
                 'tfx_runner': 'kubeflow_v2'},
      'pipelineSpec': {
          'sdkVersion': f'tfx-{version.__version__}',
          'root': {'x': [f'{specs.REPO_ROOT}/pipeline/schema/schema.pbtxt']},
      },
  }
  assert specs.normalise(job) == {
      'labels': {'tfx_version': '<version>', 'tfx_py_version': '<version>',
                 'tfx_runner': 'kubeflow_v2'},
      'pipelineSpec': {
          'sdkVersion': 'tfx-<version>',
          'root': {'x': ['<repo>/pipeline/schema/schema.pbtxt']},
      },
  }
  # A bare PipelineSpec (the KFP YAML) has its sdkVersion at the top.
  assert specs.normalise({'sdkVersion': f'tfx-{version.__version__}'}) == {
      'sdkVersion': 'tfx-<version>'}
