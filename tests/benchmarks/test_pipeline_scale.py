"""The pipeline-scale benchmark's parsing, memory sampling and reporting."""

import subprocess
import sys

import pytest

from benchmarks import pipeline_scale as ps

pytestmark = pytest.mark.integration


@pytest.mark.parametrize('text, expected', [
    ('1M', 1_000_000),
    ('25m', 25_000_000),
    ('250K', 250_000),
    ('1.5M', 1_500_000),
    ('5000', 5000),
])
def test_parse_size(text, expected):
  assert ps.parse_size(text) == expected


@pytest.mark.parametrize('text', ['', 'lots', '10', '1.0000005K', 'M'])
def test_parse_size_rejects(text):
  with pytest.raises(ValueError, match='size'):
    ps.parse_size(text)


@pytest.mark.parametrize('ratings, label', [
    (1_000_000, '1M'), (25_000_000, '25M'), (250_000, '250K'),
    (1_500_000, '1500K'), (1234, '1234')])
def test_size_label(ratings, label):
  assert ps.size_label(ratings) == label


def test_component_seconds_from_progress_lines():
  lines = [
      'Pipeline movielens-tfx: data /d, outputs /o',
      '[   15.8s] MovieLensExampleGen    started',
      '[   49.9s] MovieLensExampleGen    done in 34.1s (cpu 40.2s)',
      '[   50.0s] ImportSchemaGen        reused from cache in 0.1s',
      '  [  1.0s] Transform done in 2s',  # Indented: still a progress line.
      'Epoch 1/1 ... done in 3s',  # Not a progress line.
  ]
  assert ps.component_seconds(lines) == {
      'MovieLensExampleGen': 34.1, 'Transform': 2.0}


def _run(size, ratings, wall, rss=2**30):
  return {'size': size, 'ratings': ratings, 'exit_code': 0,
          'wall_seconds': wall, 'beam_workers': 2, 'epochs': 1,
          'seconds_per_million_ratings': wall / (ratings / 1e6),
          'peak_rss_sum_bytes': rss, 'peak_pss_sum_bytes': rss // 2,
          'peak_largest_process_rss_bytes': rss // 4,
          'components': {'Transform': 10.0, 'Trainer': 30.0, 'Pusher': 1.0,
                         'ExampleGen': 5.0}}


def test_merge_results_replaces_a_size_and_sorts_by_ratings():
  first = ps.merge_results(None, _run('5M', 5_000_000, 1000))
  second = ps.merge_results(first, _run('1M', 1_000_000, 180))
  third = ps.merge_results(second, _run('5M', 5_000_000, 900))
  assert [(r['size'], r['wall_seconds']) for r in third['runs']] == [
      ('1M', 180), ('5M', 900)]
  assert third['machine']['cpu_cores'] >= 1


def test_render_markdown_verdicts():
  # 1M: 180 s -> 180 s/M. 25M: 5000 s -> 200 s/M; 200 / 180 = 1.11 <= 1.3.
  # Peak RSS 17 GiB > 16 GiB: not met. 5000 s = 1.39 h <= 2 h: met.
  results = ps.merge_results(None, _run('1M', 1_000_000, 180))
  results = ps.merge_results(results, _run('25M', 25_000_000, 5000, 17 * 2**30))
  table = ps.render_markdown(results)
  assert '| 25M | 25,000,000 | 2 | 1 | 5000 | 200 | 17.00 | 8.50 | 4.25 ' \
         '| Trainer 30s, Transform 10s, ExampleGen 5s |' in table
  assert 'target ≤ 2 h: met' in table
  assert 'target ≤ 16 GiB: NOT met' in table
  assert '25M / 1M = 1.11 (target ≤ 1.3: met)' in table


def test_render_markdown_without_25m_says_so():
  table = ps.render_markdown(ps.merge_results(None, _run('1M', 10**6, 180)))
  assert '25M: not measured yet' in table


def test_tree_sampler_sees_a_child_process_memory():
  # A child that holds 200 MB for a while: the peak RSS of the tree rooted at
  # the parent (this python -c process) must include it.
  script = ('import subprocess, sys; subprocess.run([sys.executable, "-c", '
            '"import time; b = bytearray(200 * 2**20); b[::4096] = '
            'b\'x\' * len(b[::4096]); time.sleep(2)"])')
  with subprocess.Popen([sys.executable, '-c', script]) as process:
    with ps.TreeSampler(process.pid, interval=0.1, pss_every=1) as sampler:
      process.wait()
  assert sampler.peak.processes == 2
  assert sampler.peak.largest_process_rss >= 200 * 2**20
  assert sampler.peak.rss_sum >= 200 * 2**20
  assert 0 < sampler.peak.pss_sum <= sampler.peak.rss_sum


def test_runner_args_reach_the_runner_and_the_table(monkeypatch):
  args = ps.parse_args(['--sizes', '1M',
                        '--runner-arg=--hparam=batch_size=2048',
                        '--runner-arg=--ranking-hparam=batch_size=4096'])
  assert args.runner_arg == ['--hparam=batch_size=2048',
                             '--ranking-hparam=batch_size=4096']
  run = dict(_run('1M', 10**6, 180), runner_args=args.runner_arg)
  table = ps.render_markdown(ps.merge_results(None, run))
  assert ('Extra runner arguments: 1M: `--hparam=batch_size=2048 '
          '--ranking-hparam=batch_size=4096`.') in table
  assert 'Extra runner' not in ps.render_markdown(
      ps.merge_results(None, _run('1M', 10**6, 180)))
