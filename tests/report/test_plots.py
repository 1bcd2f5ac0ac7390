"""Plots come out as inline SVG with their text as text."""

import pytest

from report import plots

pytestmark = pytest.mark.unit


def test_curves_are_inline_svg_with_the_best_epoch_in_the_legend():
  svg = plots.curves([1, 2, 3], {'loss': [3.0, 2.0, 2.5]}, 'ranking: loss',
                     best_epoch=2)
  assert svg.startswith('<svg') and svg.rstrip().endswith('</svg>')
  assert '<?xml' not in svg and '<!DOCTYPE' not in svg
  assert 'ranking: loss' in svg and 'best epoch 2' in svg


def test_bars_label_every_bar():
  svg = plots.bars(['Drama', 'Comedy'], [30, 20], 'Genres', horizontal=True,
                   annotate=['n=30', 'n=20'])
  for text in ('Drama', 'Comedy', 'n=30', 'n=20', 'Genres'):
    assert f'>{text}<' in svg


def test_log_histograms_and_grouped_bars_render():
  assert '<path' in plots.histogram([1, 2, 2, 5, 40, 300], 'Per user',
                                    'ratings', log=True)
  svg = plots.grouped_bars(['recall_at_10', 'recall_at_100'],
                           {'model': [0.1, 0.5], 'most popular': [0.06, 0.3]},
                           'Retrieval')
  assert 'most popular' in svg and 'recall_at_100' in svg
