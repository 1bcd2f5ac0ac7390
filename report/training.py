"""The Training section: loss and validation metrics per epoch for every
model trained, the best epoch marked, and each Trainer's
`training_summary.json`.

Curves come from the trainers' `history.json` (in the Trainer's `model_run`
artifact) when present, else from the per-epoch lines of the run's log
within the Trainer execution's times; the section says which.
"""

import json
import os
from typing import List

from report import artifacts
from report import html
from report import logs
from report import plots

# Trainer component -> (model, kind of training).
TRAINERS = {
    'RetrievalTrainer': ('retrieval', logs.EARLY_STOPPED),
    'RetrievalRefit': ('retrieval', logs.REFIT),
    'RankingTrainer': ('ranking', logs.EARLY_STOPPED),
    'RankingRefit': ('ranking', logs.REFIT),
}


def histories(run: artifacts.Run, component: str) -> List[logs.History]:
  """A Trainer's curves: its history.json files, else its log lines."""
  model, kind = TRAINERS[component]
  trainer = run.components[component]
  model_run = trainer.output('model_run')
  if model_run and os.path.isdir(model_run.uri):
    found = logs.find_history_json(model_run.uri)
    if found:
      return found
  # Log times have a millisecond resolution; allow a second either side.
  window = (trainer.producer_start_ms / 1000 - 1,
            trainer.producer_end_ms / 1000 + 1)
  return logs.histories_from_logs(run.output_dir, model, kind, window)


def _plot(history: logs.History) -> str:
  """Up to three plots, each on its own scale: training losses, validation
  losses (the retrieval validation batch is larger, so its in-batch loss
  is on another scale), other metrics."""
  epochs = [row['epoch'] for row in history.epochs]
  keys = [k for k in history.epochs[0] if k not in ('epoch', 'seconds')]

  def curves(wanted):
    return {k: [row.get(k) for row in history.epochs]
            for k in keys if wanted(k)}

  groups = (
      (curves(lambda k: k.endswith('loss') and not k.startswith('val_')),
       'loss', f'Source: {history.source}'),
      (curves(lambda k: k.endswith('loss') and k.startswith('val_')),
       'validation loss', 'On the eval split.'),
      (curves(lambda k: not k.endswith('loss')), 'metrics',
       'val_*: on the eval split' if any(
           k.startswith('val') for k in keys if not k.endswith('loss')) else
       'On the training data (a refit trains on train + eval).'),
  )
  figures = [html.figure(plots.curves(epochs, values,
                                      f'{history.label}: {title}',
                                      history.best_epoch), caption)
             for values, title, caption in groups if values]
  return '<div class="row">' + ''.join(figures) + '</div>'


def section(run: artifacts.Run) -> html.Section:
  """Builds the Training section."""
  part = html.Section('training', 'Training')
  part.data['curves'] = {}
  part.data['summaries'] = {}
  for component, (model, kind) in TRAINERS.items():
    part.add(f'<h3>{html.escape(component)}</h3>')
    trainer = run.components.get(component)
    if trainer is None:
      part.note_missing(f'{component} did not run in this run.')
      continue
    found = histories(run, component)
    if not found:
      part.note_missing(f'No per-epoch history for {component}: no '
                        'history.json in its model_run artifact and no '
                        'epoch lines in the run\'s logs during its '
                        'execution.')
    for history in found:
      source = ('history.json' if history.source.endswith('history.json')
                else f'log file {history.source}')
      part.add(html.paragraph(
          f'{history.label}: {len(history.epochs)} epochs'
          + (f', best epoch {history.best_epoch}' if history.best_epoch
             else '') + f' (from {source}).'))
      part.add(_plot(history))
      part.data['curves'].setdefault(component, []).append({
          'source': source, 'best_epoch': history.best_epoch,
          'epochs': history.epochs})
    model_artifact = trainer.output('model')
    summary = model_artifact and os.path.join(model_artifact.uri,
                                              'training_summary.json')
    if summary and os.path.exists(summary):
      with open(summary) as f:
        values = json.load(f)
      part.data['summaries'][component] = values
      part.add(html.table(['training_summary.json', 'value'],
                          [[k, v if isinstance(v, (int, float)) else
                            json.dumps(v)] for k, v in values.items()]))
    else:
      part.note_missing(f'No training_summary.json in {component}\'s model.')
  return part
