"""The serving latency benchmark's math: the summary of a run, the concurrency flag, the ids sent, and the README
section it maintains. No server and no TensorFlow here."""

import pytest

from benchmarks import serving_latency

pytestmark = pytest.mark.unit


def test_summarise_in_milliseconds_and_requests_per_second():
  # Four successes of 1, 2, 3 and 10 ms (given unsorted), one error, in
  # 0.5 s of wall-clock time.
  latencies = [0.003, 0.001, 0.010, 0.002]

  summary = serving_latency.summarise(latencies, wall_seconds=0.5, errors=1)

  # Sorted 1, 2, 3, 10 ms: p50 = 2nd (ceil 2.0), p90 = 4th (ceil 3.6),
  # p99 = 4th, mean = 16 / 4 = 4 ms; throughput = 4 successes / 0.5 s = 8.
  assert summary == {'requests': 5, 'errors': 1, 'p50_ms': 2.0,
                     'p90_ms': 10.0, 'p99_ms': 10.0, 'max_ms': 10.0,
                     'mean_ms': 4.0, 'throughput_rps': 8.0}


def test_summarise_when_every_request_failed():
  summary = serving_latency.summarise([], wall_seconds=2.0, errors=3)

  assert summary == {'requests': 3, 'errors': 3, 'p50_ms': None,
                     'p90_ms': None, 'p99_ms': None, 'max_ms': None,
                     'mean_ms': None, 'throughput_rps': 0.0}
  with pytest.raises(ValueError):
    serving_latency.summarise([0.001], wall_seconds=0)


def test_concurrency_levels():
  assert serving_latency.parse_concurrency('1,8,32') == [1, 8, 32]
  assert serving_latency.parse_concurrency(' 4 ') == [4]
  for bad in ('', '0', '1,x', '-2'):
    with pytest.raises(ValueError, match='--concurrency'):
      serving_latency.parse_concurrency(bad)


def test_ids_cycle_through_the_ml100k_users_and_movies():
  assert [serving_latency.query_ids('user_id', i) for i in (0, 1, 942, 943)
         ] == ['1', '2', '943', '1']
  # Movies step by 7 so that a user is not always paired with one movie.
  assert [serving_latency.query_ids('movie_id', i) for i in (0, 1, 240)
         ] == ['1', '8', '1681']


def test_the_readme_section_is_appended_then_replaced(tmp_path):
  readme = tmp_path / 'README.md'
  readme.write_text('# Benchmarks\n\n<!-- results:other -->\nkeep\n'
                    '<!-- /results -->\n', encoding='utf-8')

  serving_latency.update_readme(str(readme), 'first table')
  serving_latency.update_readme(str(readme), 'second table')

  assert readme.read_text(encoding='utf-8') == (
      '# Benchmarks\n\n<!-- results:other -->\nkeep\n<!-- /results -->\n\n'
      '## Serving latency (`serving_latency.py`)\n\n'
      '<!-- results:serving_latency -->\nsecond table\n'
      '<!-- /results:serving_latency -->\n')
