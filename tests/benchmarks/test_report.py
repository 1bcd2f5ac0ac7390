"""What every result carries and where its table goes."""

import pytest

from benchmarks import report

pytestmark = pytest.mark.unit


def test_replace_section(tmp_path):
  readme = tmp_path / 'README.md'
  readme.write_text('a\n<!-- b -->\nold\n<!-- /b -->\nz\n', encoding='utf-8')
  report.replace_section(str(readme), '<!-- b -->', '<!-- /b -->', 'new')
  assert readme.read_text(encoding='utf-8') == (
      'a\n<!-- b -->\nnew\n<!-- /b -->\nz\n')
  with pytest.raises(ValueError, match='markers'):
    report.replace_section(str(readme), '<!-- c -->', '<!-- /c -->', 'x')


def test_a_missing_section_is_appended_under_its_heading_then_replaced(
    tmp_path):
  readme = tmp_path / 'README.md'
  readme.write_text('# Benchmarks\n\n', encoding='utf-8')
  for table in ('first', 'second'):
    report.replace_section(str(readme), '<!-- c -->', '<!-- /c -->', table,
                           heading='## C')
  assert readme.read_text(encoding='utf-8') == (
      '# Benchmarks\n\n## C\n\n<!-- c -->\nsecond\n<!-- /c -->\n')


def test_package_versions_names_missing_packages_none():
  versions = report.package_versions(('numpy', 'no-such-package-here'))
  assert versions['no-such-package-here'] is None
  assert versions['numpy'].split('.')[0].isdigit()
