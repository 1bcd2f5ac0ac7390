"""Plots as inline SVG strings (matplotlib, no display, no files).

Each function takes plain numbers and returns `<svg ...>...</svg>`, which
the HTML embeds as is. Text stays text (`svg.fonttype: none`), so the
files are small and the browser renders the labels with its own fonts.
"""

import io
from typing import Dict, Optional, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

matplotlib.rcParams.update({'svg.fonttype': 'none', 'font.size': 9,
                            'axes.spines.top': False,
                            'axes.spines.right': False,
                            'svg.hashsalt': 'report'})


def _svg(fig) -> str:
  buffer = io.StringIO()
  fig.savefig(buffer, format='svg')
  plt.close(fig)
  text = buffer.getvalue()
  # The XML prologue and doctype belong to a file, not to inline SVG.
  return text[text.index('<svg'):]


def bars(labels: Sequence[str], values: Sequence[float], title: str,
         xlabel: str = '', ylabel: str = '', horizontal: bool = False,
         log: bool = False, annotate: Optional[Sequence[str]] = None,
         width: float = 6.0, height: float = 3.0) -> str:
  """One bar per label."""
  fig, ax = plt.subplots(layout='constrained', figsize=(width, height))
  positions = range(len(labels))
  if horizontal:
    ax.barh(positions, values, color='#4c78a8')
    ax.set_yticks(list(positions), labels)
    ax.invert_yaxis()
    if log:
      ax.set_xscale('log')
  else:
    ax.bar(positions, values, color='#4c78a8')
    ax.set_xticks(list(positions), labels,
                  rotation=45 if max(map(len, labels or [''])) > 4 else 0,
                  ha='right' if max(map(len, labels or [''])) > 4 else
                  'center')
    if log:
      ax.set_yscale('log')
  if annotate:
    for position, value, text in zip(positions, values, annotate):
      if horizontal:
        ax.annotate(text, (value, position), xytext=(3, 0),
                    textcoords='offset points', va='center', fontsize=7)
      else:
        ax.annotate(text, (position, value), xytext=(0, 2),
                    textcoords='offset points', ha='center', fontsize=7)
  ax.set_title(title)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  return _svg(fig)


def grouped_bars(groups: Sequence[str], series: Dict[str, Sequence[float]],
                 title: str, ylabel: str = '') -> str:
  """Bars per group, one colour per series (e.g. metrics x models)."""
  fig, ax = plt.subplots(layout='constrained', figsize=(7, 3.2))
  count = max(1, len(series))
  width = 0.8 / count
  for i, (name, values) in enumerate(series.items()):
    offsets = [g + (i - (count - 1) / 2) * width for g in range(len(groups))]
    ax.bar(offsets, values, width=width, label=name)
  ax.set_xticks(list(range(len(groups))), groups)
  ax.set_title(title)
  ax.set_ylabel(ylabel)
  ax.legend(frameon=False)
  return _svg(fig)


def histogram(values: Sequence[float], title: str, xlabel: str,
              bins: int = 50, log: bool = False) -> str:
  """A histogram; `log` for log-spaced bins and log counts."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(layout='constrained', figsize=(5, 3))
  values = np.asarray(values, dtype=float)
  if log and len(values) and values.min() > 0:
    edges = np.logspace(np.log10(values.min()), np.log10(values.max() + 1),
                        bins)
    ax.hist(values, bins=edges, color='#4c78a8')
    ax.set_xscale('log')
    ax.set_yscale('log')
  else:
    ax.hist(values, bins=bins, color='#4c78a8')
  ax.set_title(title)
  ax.set_xlabel(xlabel)
  ax.set_ylabel('count')
  return _svg(fig)


def curves(epochs: Sequence[int], series: Dict[str, Sequence[float]],
           title: str, best_epoch: Optional[int] = None,
           ylabel: str = '') -> str:
  """Lines over epochs; the best epoch as a dashed vertical line."""
  fig, ax = plt.subplots(layout='constrained', figsize=(5, 3))
  for name, values in series.items():
    ax.plot(epochs, values, marker='o', markersize=3, label=name)
  if best_epoch:
    ax.axvline(best_epoch, color='#c5221f', linestyle='--', linewidth=1,
               label=f'best epoch {best_epoch}')
  ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
  ax.set_title(title)
  ax.set_xlabel('epoch')
  ax.set_ylabel(ylabel)
  ax.legend(frameon=False, fontsize=7)
  return _svg(fig)

