"""Test-wide set-up: Keras 2 for TFRS and tensorflow-transform, before any
test module imports TensorFlow."""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import pytest  # noqa: E402

# What a test runs, one marker per test file (`pytestmark`):
#   unit         plain Python / TensorFlow in this process (`make test-fast`)
#   integration  a component's executor, a Beam or TFMA pipeline, a
#                SavedModel round trip, a server or a subprocess
#   e2e          a whole pipeline run, a container step, a real TF Serving
TIERS = ('unit', 'integration', 'e2e')


def pytest_collection_modifyitems(config, items):
  """Refuses a test with no tier, or with more than one."""
  del config  # Unused.
  wrong = []
  for item in items:
    tiers = {tier for tier in TIERS if item.get_closest_marker(tier)}
    if len(tiers) != 1:
      wrong.append(f'{item.nodeid}: {sorted(tiers) or "no tier"}')
  if wrong:
    raise pytest.UsageError(
        'Each test file sets exactly one of pytest.mark.unit / integration '
        '/ e2e as its pytestmark (tests/conftest.py):\n  ' +
        '\n  '.join(wrong[:20]))
  # Whole pipelines first: under `make test`'s two workers (pytest-xdist,
  # one file per worker at a time) the long files start at once and the
  # short ones fill in around them, instead of two long ones ending the run.
  rank = {tier: index for index, tier in enumerate(reversed(TIERS))}
  items.sort(key=lambda item: rank[next(
      tier for tier in TIERS if item.get_closest_marker(tier))])
