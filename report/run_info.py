"""The Run section: what was pushed, where the artifacts are, how long each
component took, the data and code fingerprints, and how to serve and query.

Times are ML Metadata's (an execution's create and last-update times); a
cached component's own time is near zero, so the time of the execution that
wrote its outputs is shown beside it.
"""

import datetime
import json
import os
import subprocess
from typing import Dict, List, Optional

from pipeline import configs
from report import artifacts
from report import html
from report import plots

COMMANDS = (
    ('serve the pushed models (gRPC, port 8500)',
     'make serve OUTPUT_DIR={output_dir}'),
    ('recommend for user 42', 'python -m serving.client recommend --user 42'),
    ('rebuild this report', 'python -m report --output-dir {output_dir}'),
)


def pushed_versions(output_dir: str) -> Dict[str, List[str]]:
  """{model: [versions, oldest first]} under <output-dir>/serving/."""
  serving = configs.serving_dir(output_dir)
  if not os.path.isdir(serving):
    return {}
  return {model: sorted((v for v in os.listdir(os.path.join(serving, model))
                         if v.isdigit()), key=int)
          for model in sorted(os.listdir(serving))
          if os.path.isdir(os.path.join(serving, model))}


def git_commit(folder: str) -> Optional[str]:
  """The commit checked out in `folder` (+ ' (modified)' when the tree has
  uncommitted changes), or None outside a git checkout."""
  try:
    commit = subprocess.run(['git', '-C', folder, 'rev-parse', 'HEAD'],
                            capture_output=True, text=True, check=True,
                            timeout=5).stdout.strip()
    dirty = subprocess.run(['git', '-C', folder, 'status', '--porcelain',
                            '--untracked-files=no'], capture_output=True,
                           text=True, check=True, timeout=5).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return None
  return commit + (' (modified)' if dirty else '')


def code_fingerprints(run: artifacts.Run) -> Dict[str, str]:
  """{component: the module code fingerprint in its custom_config}."""
  found = {}
  for name, component in run.components.items():
    config = component.exec_properties.get('custom_config')
    if not isinstance(config, str):
      continue
    try:
      fingerprint = json.loads(config).get('code_fingerprint')
    except (ValueError, AttributeError):
      continue
    if fingerprint:
      found[name] = fingerprint
  return found


def _utc(ms: int) -> str:
  return datetime.datetime.fromtimestamp(
      ms / 1000, datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S')


def section(run: artifacts.Run) -> html.Section:
  """Builds the Run section."""
  part = html.Section('run', 'Run')
  versions = pushed_versions(run.output_dir)
  part.data['pushed'] = versions
  part.add('<h3>Pushed</h3>')
  if versions:
    part.add(html.table(['model', 'versions', 'folder'], [
        [model, ', '.join(v) or 'none',
         os.path.join(configs.serving_dir(run.output_dir), model)]
        for model, v in versions.items()], 'pushed'))
  else:
    part.note_missing('Nothing pushed: no serving/ folder in '
                      f'{run.output_dir}.')

  part.add('<h3>Time per component</h3>')
  components = list(run.components.values())
  part.data['components'] = {
      c.component: {'state': c.state, 'seconds': c.seconds,
                    'producer_seconds': c.producer_seconds}
      for c in components}
  if components:
    part.add(html.figure(plots.bars(
        [c.component for c in components],
        [max(c.producer_seconds, 1e-3) for c in components],
        'Seconds per component (the execution that wrote the outputs)',
        'seconds', horizontal=True, annotate=[
            f'{c.producer_seconds:.1f}s' + (' (cached)' if c.state == 'cached'
                                            else '') for c in components],
        height=max(3, 0.25 * len(components))),
        f'Run {run.run_id}; start times in UTC below.'))
    part.add(html.table(
        ['component', 'state', 'started (UTC)', 'seconds this run',
         'seconds of the writing execution'],
        [[c.component, c.state, _utc(c.start_ms), round(c.seconds, 3),
          round(c.producer_seconds, 3)] for c in components], 'timings'))

  part.add('<h3>Versions</h3>')
  example_gen = run.components.get('MovieLensExampleGen')
  fingerprint = example_gen and example_gen.producer_properties.get(
      'input_fingerprint')
  project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  commit = git_commit(project)
  fingerprints = code_fingerprints(run)
  part.data.update(data_fingerprint=fingerprint, git_commit=commit,
                   code_fingerprints=fingerprints)
  rows = [['data fingerprint (ExampleGen input)',
           html.Raw(f'<pre>{html.escape(fingerprint)}</pre>') if fingerprint
           else 'not recorded'],
          ['data folder', (example_gen.producer_properties.get('input_base')
                           if example_gen else None) or 'unknown'],
          ['git commit of the code building this report',
           commit or 'not a git checkout']]
  rows += [[f'module code fingerprint ({name})', value]
           for name, value in sorted(fingerprints.items())]
  part.add(html.table(['', ''], rows, 'versions'))

  part.add('<h3>Artifacts</h3>')
  part.add(html.table(['component', 'output', 'type', 'location'], [
      [c.component, key, a.type_name, a.uri]
      for c in components for key, found in sorted(c.outputs.items())
      for a in found], 'artifacts'))
  part.add(html.paragraph(
      f'ML Metadata: {configs.metadata_path(run.output_dir)}; pipeline '
      f'root: {configs.pipeline_root(run.output_dir)}.', 'note'))

  part.add('<h3>Serve and query</h3>')
  part.add('<pre>' + '\n'.join(
      html.escape(f'# {what}\n{command.format(output_dir=run.output_dir)}')
      for what, command in COMMANDS) + '</pre>')
  return part
