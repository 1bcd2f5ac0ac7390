"""Builds `<output-dir>/report/index.html` from a run's artifacts.

The sections read what the latest run recorded in ML Metadata
(`report.artifacts`); a section whose artifacts are missing says so in the
page instead of failing the build. Loading the pushed servables is the
slowest step (seconds), so it runs in a second process, started first,
while this one builds the other sections.
"""

import concurrent.futures
import multiprocessing
import datetime
import logging
import os
import tempfile
import time
import traceback
from typing import Callable, Optional

from report import artifacts
from report import html

REPORT_FOLDER = 'report'
REPORT_FILE = 'index.html'


def _guarded(section_id: str, title: str,
             build: Callable[[], html.Section]) -> html.Section:
  """A section, or one that says why it could not be built."""
  try:
    return build()
  except Exception as error:  # pylint: disable=broad-except
    logging.warning('report: the %s section failed:\n%s', title,
                    traceback.format_exc())
    part = html.Section(section_id, title)
    part.note_missing(f'This section could not be built: '
                      f'{type(error).__name__}: {error}')
    return part


def _write_atomically(path: str, text: str) -> None:
  """Writes a temporary file beside `path`, then renames it over `path`."""
  folder = os.path.dirname(path)
  os.makedirs(folder, exist_ok=True)
  handle, temporary = tempfile.mkstemp(prefix='.index-', suffix='.html',
                                       dir=folder)
  try:
    with os.fdopen(handle, 'w', encoding='utf-8') as f:
      f.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
  except BaseException:
    if os.path.exists(temporary):
      os.remove(temporary)
    raise


def build(output_dir: str, report_path: Optional[str] = None) -> str:
  """Writes the run report of `output_dir` and returns its path.

  Args:
    output_dir: the runner's --output-dir (ML Metadata, logs, serving/).
    report_path: where to write; default <output_dir>/report/index.html.
  """
  # Imported here: `import report` stays cheap for the runner's flags.
  from report import data  # pylint: disable=g-import-not-at-top
  from report import evaluation  # pylint: disable=g-import-not-at-top
  from report import recommendations  # pylint: disable=g-import-not-at-top
  from report import run_info  # pylint: disable=g-import-not-at-top
  from report import training  # pylint: disable=g-import-not-at-top
  from pipeline import configs  # pylint: disable=g-import-not-at-top

  started = time.monotonic()
  output_dir = os.path.abspath(output_dir)
  report_path = report_path or os.path.join(output_dir, REPORT_FOLDER,
                                            REPORT_FILE)
  try:
    run = artifacts.load_run(output_dir)
  except artifacts.NoRunError as error:
    run, no_run = None, str(error)

  sections = []
  if run is None:
    for section_id, title in (('data', 'Data'), ('training', 'Training'),
                              ('evaluation', 'Evaluation'),
                              ('recommendations', 'Recommendations'),
                              ('run', 'Run')):
      part = html.Section(section_id, title)
      part.note_missing(no_run)
      sections.append(part)
    subtitle = output_dir
  else:
    # A fresh interpreter ('spawn'): the caller may hold TensorFlow state.
    with concurrent.futures.ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context('spawn')) as pool:
      answers = pool.submit(recommendations.query,
                            configs.serving_dir(output_dir),
                            list(recommendations.SAMPLE_USERS))
      examples = run.output('MovieLensExampleGen', 'ratings')
      ratings = data.read_ratings(examples.uri) if examples else None
      sections.append(_guarded('data', 'Data',
                               lambda: data.section(run, ratings)))
      sections.append(_guarded('training', 'Training',
                               lambda: training.section(run)))
      sections.append(_guarded('evaluation', 'Evaluation',
                               lambda: evaluation.section(run)))
      sections.append(_guarded('run', 'Run', lambda: run_info.section(run)))
      sections.insert(3, _guarded(
          'recommendations', 'Recommendations',
          lambda: recommendations.section(answers.result(), ratings)))
    subtitle = f'{output_dir} \u2014 run {run.run_id}'
  seconds = time.monotonic() - started
  built = datetime.datetime.now(datetime.timezone.utc).strftime(
      '%Y-%m-%d %H:%M UTC')
  document = html.page(
      'MovieLens TFX run report', f'{subtitle} \u2014 built {built} in '
      f'{seconds:.1f} s', sections,
      {'output_dir': output_dir, 'run_id': run.run_id if run else None,
       'build_seconds': seconds})
  _write_atomically(report_path, document)
  return report_path
