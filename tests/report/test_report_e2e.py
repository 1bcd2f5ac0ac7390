"""End to end: a small synthetic pipeline run, then its HTML report.

Checks that every section and plot is there, that the numbers shown are the
artifacts' own (TFMA's RMSE, metrics.json's recall@100, the example counts,
training_summary.json's best epoch), that the sample users' recommendations
are the pushed recommender's answers, that the page renders in a headless
browser with no console errors, that a run with pieces missing still gets a
report that names them, and that docs/report.md's notebook snippet runs.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma

import report
import runner_local
from modules import retrieval_export
from movielens import synthetic
from report import artifacts
from report import recommendations

pytestmark = pytest.mark.e2e

SECTIONS = ('data', 'training', 'evaluation', 'recommendations', 'run')
DOCS = os.path.join(os.path.dirname(__file__), '..', '..', 'docs',
                    'report.md')


def _report_data(path):
  with open(path, encoding='utf-8') as f:
    page = f.read()
  inline = re.search(r'<script type="application/json" id="report-data">'
                     r'(.*?)</script>', page, re.S).group(1)
  return page, json.loads(inline.replace('<\\/', '</'))


@pytest.fixture(scope='module')
def run_report(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp('raw'))
  # Strong tastes, as in tests/test_runner_local_e2e.py: two epochs are
  # enough for both models to be blessed and all three servables pushed.
  synthetic.generate(data_dir, num_users=150, num_movies=300,
                     num_ratings=6000, seed=7, zipf_exponent=0.6,
                     taste_weight=40)
  output_dir = str(tmp_path_factory.mktemp('outputs'))
  code = runner_local.main([
      '--data-dir', data_dir, '--output-dir', output_dir, '--epochs', '2',
      '--ranking-epochs', '2', '--hparam', 'ensemble_size=1',
      '--ranking-hparam', 'ensemble_size=1'])
  assert code == 0
  path = report.build(output_dir)
  page, data = _report_data(path)
  return output_dir, path, page, data


def test_the_report_is_written_where_documented_with_every_section(
    run_report):
  output_dir, path, page, data = run_report
  assert path == os.path.join(output_dir, 'report', 'index.html')
  # Written through a temporary file renamed into place: none left over.
  assert os.listdir(os.path.dirname(path)) == ['index.html']
  for section in SECTIONS:
    assert f'<section id="{section}">' in page
    assert data['sections'][section]['missing'] == [], section


def test_every_plot_is_inline_and_nothing_is_fetched(run_report):
  _, _, page, _ = run_report
  figures = re.findall(r'<figure>(<svg.*?</svg>)', page, re.S)
  # Data: ratings, per user, per movie, time, genres; training: loss and
  # metrics of the four Trainers (history.json) and the validation loss of
  # the two early-stopped ones; evaluation: retrieval,
  # ranking slices; run: timings.
  assert len(figures) == 5 + 10 + 2 + 1
  for svg in figures:
    assert len(svg) > 2000 and '<path' in svg
  assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', page)
  assert 'url(http' not in page and '@import' not in page


def test_data_numbers_are_the_examples_and_statistics(run_report):
  output_dir, _, _, data = run_report
  run = artifacts.load_run(output_dir)
  uri = run.output('MovieLensExampleGen', 'ratings').uri
  counts = {split: sum(1 for _ in tf.data.TFRecordDataset(
      glob.glob(os.path.join(uri, f'Split-{split}', '*')), 'GZIP'))
            for split in ('train', 'eval')}
  shown = data['sections']['data']['data']
  assert shown['ratings_per_split'] == counts
  assert shown['examples_per_split'] == counts
  assert shown['ratings'] == 6000
  assert sum(shown['rating_values'].values()) == 6000
  assert shown['gate']['passed'] is True


def test_training_curves_match_the_training_summaries(run_report):
  output_dir, _, _, data = run_report
  run = artifacts.load_run(output_dir)
  shown = data['sections']['training']['data']
  for component in ('RetrievalTrainer', 'RankingTrainer'):
    model = run.output(component, 'model').uri
    with open(os.path.join(model, 'training_summary.json')) as f:
      summary = json.load(f)
    assert shown['summaries'][component] == summary
    (curve,) = shown['curves'][component]
    assert curve['best_epoch'] == summary['best_epoch']
    assert len(curve['epochs']) == summary['epochs_run']
  for component in ('RetrievalRefit', 'RankingRefit'):
    (curve,) = shown['curves'][component]
    assert len(curve['epochs']) == shown['summaries'][component][
        'refit_epochs']
  ranking = shown['curves']['RankingTrainer'][0]['epochs']
  summary = shown['summaries']['RankingTrainer']
  # The log rounds to 4 decimals.
  assert ranking[summary['best_epoch'] - 1]['val_rmse'] == pytest.approx(
      summary['val_rmse'], abs=1e-4)


def test_evaluation_numbers_are_tfma_and_metrics_json(run_report):
  output_dir, _, page, data = run_report
  run = artifacts.load_run(output_dir)
  shown = data['sections']['evaluation']['data']
  result = tfma.load_eval_result(run.output('RankingEvaluator',
                                            'evaluation').uri)
  overall = next(iter(next(iter(dict(result.slicing_metrics)[()].values()))
                      .values()))
  rmse = overall['root_mean_squared_error']['doubleValue']
  assert shown['ranking_overall']['root_mean_squared_error'] == rmse
  assert f'{rmse:.4f}' in page
  labels = {row['label'] for row in shown['ranking_slices']}
  assert {'overall', 'gender: women', 'gender: men'} <= labels
  assert not any('age_bucket_xf' in label for label in labels)
  assert any(label.startswith('age ') for label in labels)
  assert shown['ranking_decision']['blessed'] is True

  with open(os.path.join(run.output('RetrievalEvaluator', 'evaluation').uri,
                         'metrics.json')) as f:
    metrics = json.load(f)
  recall = metrics['model']['metrics']['recall_at_100']
  assert shown['retrieval']['model']['recall_at_100'] == recall
  assert shown['retrieval']['most popular']['recall_at_100'] == metrics[
      'popularity']['metrics']['recall_at_100']
  assert f'{recall:.4f}' in page
  assert shown['retrieval_decision']['blessed'] == metrics['decision'][
      'blessed']


def test_recommendations_are_the_pushed_servables_answers(run_report):
  output_dir, _, _, data = run_report
  shown = data['sections']['recommendations']['data']
  serving = os.path.join(output_dir, 'serving')
  users = list(recommendations.SAMPLE_USERS)
  answer = tf.saved_model.load(recommendations.newest_version(
      serving, 'recommender')).signatures['serving_default'](
          user_id=tf.constant(users))
  for row, user in enumerate(users):
    ids = [i.decode() for i in answer['movie_ids'].numpy()[row]]
    got = shown['users'][user]['recommended']
    assert [r[0] for r in got] == ids
    assert [r[2] for r in got] == pytest.approx(
        answer['scores'].numpy()[row].tolist(), abs=1e-5)
    assert [r[3] for r in got] == pytest.approx(
        answer['ratings'].numpy()[row].tolist(), abs=1e-5)
    assert shown['users'][user]['top_rated']  # Every sample user rated.
  # The new user: the pushed retrieval servable's serving_examples answer.
  retrieval = tf.saved_model.load(recommendations.newest_version(
      serving, 'retrieval')).signatures['serving_examples']
  cold = retrieval(examples=tf.constant([retrieval_export.user_example(
      b'', recommendations.COLD_START_USER)]))
  ids = [i.decode() for i in cold['movie_ids'].numpy()[0][:10]]
  assert [r[0] for r in shown['cold_start']['recommended']] == ids


def test_run_section_lists_pushes_times_and_fingerprints(run_report):
  output_dir, _, _, data = run_report
  shown = data['sections']['run']['data']
  assert {model: len(v) for model, v in shown['pushed'].items()} == {
      'ranking': 1, 'recommender': 1, 'retrieval': 1}
  assert shown['components']['RankingTrainer']['state'] == 'complete'
  assert shown['components']['RankingTrainer']['seconds'] > 0
  assert shown['data_fingerprint'].startswith('split:u.data')
  assert len(set(shown['code_fingerprints'].values())) == 1


def test_missing_artifacts_are_named_instead_of_failing(run_report,
                                                        tmp_path):
  output_dir, _, _, _ = run_report
  # The same run with nothing pushed and no logs.
  copy = str(tmp_path / 'outputs')
  shutil.copytree(output_dir, copy, ignore=shutil.ignore_patterns(
      'serving', 'logs', 'report'))
  _, data = _report_data(report.build(copy))
  missing = data['sections']['recommendations']['missing']
  assert missing and 'No recommender pushed' in missing[0]
  assert data['sections']['run']['missing'][0].startswith('Nothing pushed')
  # Without logs, only the trainers that write history.json have curves.
  run = artifacts.load_run(output_dir)
  without_history = [c for c in ('RetrievalTrainer', 'RetrievalRefit',
                                 'RankingTrainer', 'RankingRefit')
                     if not glob.glob(os.path.join(
                         run.output(c, 'model_run').uri, '**',
                         'history.json'), recursive=True)]
  assert [m.split(':')[0] for m in data['sections']['training']['missing']
          ] == [f'No per-epoch history for {c}' for c in without_history]

  # No run at all: every section says so.
  empty = str(tmp_path / 'empty')
  _, data = _report_data(report.build(empty))
  for section in SECTIONS:
    assert 'no ML Metadata store' in data['sections'][section]['missing'][0]


def test_the_command_line_prints_the_report_path_last(run_report, tmp_path):
  output_dir, _, _, _ = run_report
  target = str(tmp_path / 'report.html')
  env = dict(os.environ, TF_USE_LEGACY_KERAS='1')
  completed = subprocess.run(
      [sys.executable, '-m', 'report', '--output-dir', output_dir,
       '--report-path', target], capture_output=True, text=True, env=env,
      check=True, cwd=os.path.join(os.path.dirname(__file__), '..', '..'),
      timeout=300)
  assert completed.stdout.strip().splitlines()[-1] == target
  assert os.path.getsize(target) > 10000


_SIZES_SCRIPT = """<script>
const sizes = [...document.querySelectorAll('figure > svg, img')].map(
    e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; });
const out = document.createElement('pre');
out.id = 'rendered-sizes';
out.textContent = JSON.stringify(sizes);
document.body.appendChild(out);
</script></body>"""


@pytest.mark.skipif(not shutil.which('chromium'),
                    reason='chromium is not installed (apt-get install '
                    'chromium; .ci/run installs it where it can)')
def test_the_report_renders_in_a_headless_browser(run_report, tmp_path):
  _, path, page, _ = run_report
  screenshot = tmp_path / 'report.png'
  flags = ['chromium', '--headless=new', '--disable-gpu', '--no-sandbox',
           '--window-size=1280,4000', '--enable-logging=stderr', '--v=0',
           f'--user-data-dir={tmp_path / "profile"}']
  shot = subprocess.run(flags + [f'--screenshot={screenshot}',
                                 f'file://{path}'],
                        capture_output=True, text=True, timeout=120)
  assert screenshot.exists() and screenshot.stat().st_size > 10000
  console = [line for line in shot.stderr.splitlines()
             if 'CONSOLE' in line or 'Uncaught' in line]
  assert console == []

  # A copy with a script that writes each plot's rendered size into the
  # DOM (the report itself runs no script).
  probe = tmp_path / 'probe.html'
  probe.write_text(page.replace('</body>', _SIZES_SCRIPT), encoding='utf-8')
  dumped = subprocess.run(flags + ['--dump-dom', f'file://{probe}'],
                          capture_output=True, text=True, timeout=120)
  assert [line for line in dumped.stderr.splitlines()
          if 'CONSOLE' in line or 'Uncaught' in line] == []
  sizes = json.loads(re.search(r'<pre id="rendered-sizes">(.*?)</pre>',
                               dumped.stdout, re.S).group(1))
  assert len(sizes) == 18
  assert all(width > 50 and height > 50 for width, height in sizes)


def test_the_notebook_snippet_in_the_docs_runs(run_report):
  output_dir, _, _, _ = run_report
  with open(DOCS) as f:
    snippet = re.search(r'<!-- snippet -->\s*```python\n(.*?)```', f.read(),
                        re.S).group(1)
  namespace = {'OUTPUT_DIR': output_dir}
  exec(compile(snippet.replace("OUTPUT_DIR = 'outputs'", ''), DOCS, 'exec'),
       namespace)  # pylint: disable=exec-used
  assert namespace['train'].datasets[0].num_examples > 0
  assert namespace['validation'].validation_ok
