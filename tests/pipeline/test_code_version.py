"""The module-code fingerprint: stable, changed by any edit, and in the
custom_config of Transform and both Trainers."""

import sys

import pytest

from pipeline import code_version

pytestmark = pytest.mark.unit


@pytest.fixture
def package(tmp_path, monkeypatch):
  root = tmp_path / 'fakemodules'
  (root / 'sub').mkdir(parents=True)
  (root / '__init__.py').write_text('')
  (root / 'a.py').write_text('X = 1\n')
  (root / 'sub' / 'b.py').write_text('Y = 2\n')
  monkeypatch.syspath_prepend(str(tmp_path))
  yield root
  sys.modules.pop('fakemodules', None)


def test_fingerprint_is_stable_and_follows_every_file(package):
  first = code_version.package_fingerprint('fakemodules')
  assert code_version.package_fingerprint('fakemodules') == first
  assert len(first) == 16

  (package / 'sub' / 'b.py').write_text('Y = 3\n')
  second = code_version.package_fingerprint('fakemodules')
  (package / 'c.py').write_text('')
  third = code_version.package_fingerprint('fakemodules')

  assert len({first, second, third}) == 3


def test_not_a_package_is_an_error():
  with pytest.raises(ValueError, match='not an importable package'):
    code_version.package_fingerprint('no_such_package_here')


def test_transform_and_trainers_carry_the_fingerprint(pipeline_components):
  by_id = pipeline_components()
  expected = code_version.package_fingerprint('modules')
  for component in ('Transform', 'RetrievalTrainer', 'RankingTrainer'):
    config = by_id[component].exec_properties['custom_config']
    assert expected in config, (component, config)
