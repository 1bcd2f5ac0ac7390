"""Per-epoch training curves: the trainers' `history.json`, or their log lines.

The trainers write `history.json` next to their TensorBoard logs in the
Trainer's `model_run` artifact:

    {"model": "ranking", "kind": "early_stopped",
     "epochs": [{"epoch": 1, "loss": 8.74, "val_rmse": 1.04, ...}, ...],
     "best_epoch": 19}

A run whose trainers do not write it still logs a line per epoch
(`modules/training_log.py`), which the runner copies to
`<output-dir>/logs/run-*.log`:

    ... INFO absl: ranking epoch 3: 1.3s loss 7.9723 rmse 0.9433 val rmse 0.9829
    ... INFO absl: ranking refit (3 members) epoch 2: 3.7s loss 24.7 rmse 0.96
    ... INFO absl: ranking: best epoch 19 of 22, val RMSE 0.9398, val MAE 0.7411

Plain Python: no TensorFlow, no TFX.
"""

import dataclasses
import datetime
import glob
import json
import os
import re
from typing import Dict, Iterable, List, Optional, Tuple

EARLY_STOPPED = 'early_stopped'
REFIT = 'refit'

_TIME = r'(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})'
_EPOCH = re.compile(
    _TIME + r'.*?\b(?P<model>ranking|retrieval)'
    r'(?P<refit> refit(?: \((?P<members>\d+) members?\))?)? epoch '
    r'(?P<epoch>\d+): '
    r'(?P<seconds>[\d.]+)s (?P<metrics>.*)$')
_BEST = re.compile(_TIME + r'.*?\b(?P<model>ranking|retrieval): best epoch '
                   r'(?P<best>\d+) of \d+')
_NUMBER = re.compile(r'^-?(\d+\.?\d*|\.\d+)(e-?\d+)?$|^nan$|^inf$')


@dataclasses.dataclass
class History:
  """One model's training curve."""
  model: str  # 'ranking' or 'retrieval'
  kind: str  # EARLY_STOPPED or REFIT
  epochs: List[Dict[str, float]]  # each has 'epoch' and the metrics
  best_epoch: Optional[int]
  source: str  # the file it was read from
  members: Optional[int] = None  # a refit ensemble's size, when logged

  @property
  def label(self) -> str:
    if self.kind == REFIT:
      members = f' ({self.members} members)' if self.members else ''
      return f'{self.model} refit{members}'
    return f'{self.model} early-stopped'


def parse_metrics(text: str) -> Dict[str, float]:
  """'loss 7.97 rmse 0.94 val rmse 0.98 val top-10 0.02' ->
  {'loss': 7.97, 'rmse': 0.94, 'val_rmse': 0.98, 'val_top_10': 0.02}."""
  metrics, words = {}, []
  for token in text.replace(',', ' ').split():
    if _NUMBER.match(token) and words:
      key = '_'.join(words).replace('-', '_').lower()
      metrics[key] = float(token)
      words = []
    else:
      words.append(token)
  return metrics


def _timestamp(text: str) -> float:
  """Seconds since the epoch of a log time, read as this machine's time."""
  return datetime.datetime.strptime(text, '%Y-%m-%d %H:%M:%S,%f').timestamp()


def parse_log_lines(lines: Iterable[str], source: str = '',
                    window: Optional[Tuple[float, float]] = None
                    ) -> List[History]:
  """Training curves from log lines, one per (model, kind) and sequence.

  A sequence restarts when the epoch number drops (a second training of the
  same model in the same log). `window`: (start, end) in seconds since the
  epoch; lines outside it are skipped, so a Trainer execution's times pick
  its own lines out of a log that holds several runs.
  """
  histories: List[History] = []
  current: Dict[Tuple[str, str], History] = {}
  for line in lines:
    if ' epoch ' not in line:  # Cheap: most lines are not about epochs.
      continue
    match = _EPOCH.search(line) or _BEST.search(line)
    if not match:
      continue
    if window and not window[0] <= _timestamp(match['time']) <= window[1]:
      continue
    model = match['model']
    if 'best' in match.groupdict():
      history = current.get((model, EARLY_STOPPED))
      if history:
        history.best_epoch = int(match['best'])
      continue
    kind = REFIT if match['refit'] else EARLY_STOPPED
    epoch = int(match['epoch'])
    history = current.get((model, kind))
    if history is None or epoch <= history.epochs[-1]['epoch']:
      history = History(model=model, kind=kind, epochs=[], best_epoch=None,
                        source=source,
                        members=int(match['members']) if match['members']
                        else None)
      current[(model, kind)] = history
      histories.append(history)
    row = {'epoch': epoch, 'seconds': float(match['seconds'])}
    row.update(parse_metrics(match['metrics']))
    history.epochs.append(row)
  return histories


def read_history_json(path: str) -> History:
  """A trainer's `history.json`."""
  with open(path) as f:
    data = json.load(f)
  return History(model=data['model'], kind=data['kind'],
                 epochs=list(data['epochs']),
                 best_epoch=data.get('best_epoch'), source=path)


def find_history_json(model_run_uri: str) -> List[History]:
  """Every `history.json` under a Trainer's `model_run` folder."""
  paths = sorted(glob.glob(os.path.join(model_run_uri, '**', 'history.json'),
                           recursive=True))
  return [read_history_json(path) for path in paths]


def run_logs(output_dir: str) -> List[str]:
  """The runner's log files, newest first."""
  return sorted(glob.glob(os.path.join(output_dir, 'logs', 'run-*.log')),
                reverse=True)


def histories_from_logs(output_dir: str, model: str, kind: str,
                        window: Tuple[float, float]) -> List[History]:
  """The (model, kind) curves logged within `window` in the run's logs."""
  for path in run_logs(output_dir):
    with open(path, errors='replace') as f:
      found = [h for h in parse_log_lines(f, os.path.basename(path), window)
               if h.model == model and h.kind == kind]
    if found:
      return found
  return []
