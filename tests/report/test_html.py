"""The report's HTML assembly: tables, sections, the page and its data."""

import json
import re

import pytest

from report import html

pytestmark = pytest.mark.unit


def test_numbers_are_formatted_for_reading():
  assert html.number(100000) == '100,000'
  assert html.number(0.93985003) == '0.9399'
  assert html.number(19633.0) == '19,633'
  assert html.number(None) == '\u2014'
  assert html.number(True) == 'True'


def test_tables_escape_text_and_right_align_numbers():
  table = html.table(['title', 'rating'], [['<Heat> & Co', 4.5]], 'top')
  assert table == (
      '<table id="top"><thead><tr><th>title</th><th>rating</th></tr></thead>'
      '<tbody><tr><td>&lt;Heat&gt; &amp; Co</td><td class="num">4.5000</td>'
      '</tr></tbody></table>')


def test_raw_cells_are_inserted_as_they_are():
  table = html.table(['x'], [[html.Raw('<pre>a</pre>')]])
  assert '<td><pre>a</pre></td>' in table


def test_a_section_shows_and_records_what_is_missing():
  section = html.Section('evaluation', 'Evaluation')
  section.note_missing('No ranking evaluation in this run.')
  assert section.missing == ['No ranking evaluation in this run.']
  assert section.render() == (
      '<section id="evaluation"><h2>Evaluation</h2><p class="missing">No '
      'ranking evaluation in this run.</p></section>')


def test_the_page_links_every_section_and_inlines_its_data():
  data = html.Section('data', 'Data', data={'users': 943})
  run = html.Section('run', 'Run', data={'title': '</script><b>'})
  page = html.page('Report', 'outputs', [data, run], {'run_id': 'r1'})
  assert page.startswith('<!DOCTYPE html>')
  assert '<a href="#data">Data</a> <a href="#run">Run</a>' in page
  assert 'http' not in page  # Nothing fetched.
  inline = re.search(r'id="report-data">(.*?)</script>', page,
                     re.S).group(1)
  assert json.loads(inline.replace('<\\/', '</')) == {
      'run_id': 'r1',
      'sections': {'data': {'data': {'users': 943}, 'missing': []},
                   'run': {'data': {'title': '</script><b>'},
                           'missing': []}}}
