"""Rewrites the golden specs under tests/kubeflow/golden/ from the current
pipeline, after an intended change (e.g. a new component):

  make goldens        # = .venv/bin/python -m tests.kubeflow.regenerate

Review the diff (`git diff tests/kubeflow/golden`) before committing it.
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import sys  # noqa: E402
import warnings  # noqa: E402

from tests.kubeflow import specs  # noqa: E402


def main() -> int:
  # Google client libraries warn at import about Python 3.10.
  warnings.filterwarnings('ignore', category=FutureWarning)
  os.makedirs(specs.GOLDEN_DIR, exist_ok=True)
  for name, (_, _, golden) in specs.CONFIGS.items():
    document = specs.normalise(specs.compile_config(name))
    path = os.path.join(specs.GOLDEN_DIR, golden)
    with open(path, 'w', encoding='utf-8') as f:
      f.write(specs.dumps(document, golden))
    print(f'{name}: wrote {os.path.relpath(path, specs.REPO_ROOT)}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
