"""serving_faults: the version swap as the pusher does it, the summary, the
memory reading and the README lines. The load itself runs in the
benchmark, not here."""

import os

import pytest

from benchmarks import serving_faults

pytestmark = pytest.mark.unit


def _version(model_dir, number, payload):
  os.makedirs(os.path.join(model_dir, str(number)))
  with open(os.path.join(model_dir, str(number), 'saved_model.pb'), 'w') as f:
    f.write(payload)


def test_a_swap_adds_a_copy_of_the_newest_and_keeps_two(tmp_path):
  model_dir = str(tmp_path)
  _version(model_dir, 1, 'one')
  _version(model_dir, 2, 'two')
  assert serving_faults.swap_once(model_dir) == 3
  assert serving_faults.versions(model_dir) == [2, 3]
  with open(os.path.join(model_dir, '3', 'saved_model.pb')) as f:
    assert f.read() == 'two'
  assert sorted(os.listdir(model_dir)) == ['2', '3']  # No staging left.


def test_the_summary_counts_answers_and_errors():
  summary = serving_faults.summarise([0.001, 0.002, 0.003, 0.010],
                                     {'InvalidInputError': 1}, 2.0)
  assert summary == {'requests': 5, 'answered': 4,
                     'errors': {'InvalidInputError': 1}, 'p50_ms': 2.0,
                     'p99_ms': 10.0, 'wall_seconds': 2.0}


def test_memory_is_read_from_proc():
  assert serving_faults.memory_kib(os.getpid()) > 0
  assert serving_faults.memory_kib(os.getpid(), 'VmHWM') >= (
      serving_faults.memory_kib(os.getpid()))
  assert serving_faults.memory_kib(2**22 + 12345) is None


def test_the_readme_lines_carry_every_figure():
  results = {
      'updated': '2026-12-05T00:00:00+00:00', 'source': 'out/recommender/7',
      'machine': {'cpu_cores': 2}, 'code': {'commit': 'abcdef1234', 'dirty': False},
      'load_during_swaps': {'requests': 100, 'answered': 100, 'errors': {},
                            'p50_ms': 3.1, 'p99_ms': 9.5, 'wall_seconds': 1,
                            'versions_pushed': 4, 'concurrency': 8,
                            'peak_rss_mib': 900.0, 'idle_rss_mib': 700.0},
      'large_batch': {'users': 1000, 'answered': 1000, 'seconds': 0.8,
                      'rss_before_mib': 800.0,
                      'rss_after_each_mib': [820.0, 821.0]}}
  text = serving_faults.render_markdown(results)
  assert 'code abcdef1;' in text
  assert '| requests (concurrency 8) | 100 |' in text
  assert '| versions pushed during the load | 4 |' in text
  assert '| errors | 0 |' in text
  assert '| p50 / p99 latency (ms) | 3.1 / 9.5 |' in text
  assert '| server RSS idle / peak (MiB) | 700.0 / 900.0 |' in text
  assert ('Requests of 1,000 users, 2 one after another (the fastest '
          'answered in 0.8 s): server RSS 800.0 MiB before, then 820.0, '
          '821.0 MiB after each.') in text
