"""The index-scaling benchmark: parsing, percentiles, the synthetic and
grown catalogues, index sizes, a brute-force index against hand-computed
top K, a small end-to-end measurement (ScaNN skipped with its reason when
absent), merging and the README table."""

import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

from benchmarks import index_scaling as bench
from modules import retrieval_index

pytestmark = pytest.mark.integration

needs_scann = pytest.mark.skipif(
    not retrieval_index.scann_available(),
    reason=f'ScaNN not installed ({retrieval_index.SCANN_INSTALL})')


# ------------------------------------------------------------------ parsing


@pytest.mark.parametrize('text, sizes', [
    ('1682,60000,1000000', [1682, 60_000, 1_000_000]),
    ('1682, 60K ,1M', [1682, 60_000, 1_000_000]),
    ('1.5k', [1500]),
    ('5,', [5]),
])
def test_parse_sizes(text, sizes):
  assert bench.parse_sizes(text) == sizes


@pytest.mark.parametrize('text', ['', 'many', '0', '1.5', '1.0005K', ','])
def test_parse_sizes_rejects(text):
  with pytest.raises(ValueError, match='size'):
    bench.parse_sizes(text)


@pytest.mark.parametrize('size, label', [
    (1682, '1.7K'), (60_000, '60K'), (1_000_000, '1M'), (62_423, '62K'),
    (1500, '1.5K'), (999, '999')])
def test_size_label(size, label):
  assert bench.size_label(size) == label


def test_default_sizes_are_ml100k_ml25m_and_a_million_at_the_model_dimension():
  args = bench.parse_args([])

  assert args.sizes == [1682, 60_000, 1_000_000]
  assert args.dim == 64  # RetrievalHParams.embedding_dim
  assert bench.parse_args(['--sizes', '1682,60000']).sizes == [1682, 60_000]


def test_bad_flags_are_refused(capsys):
  with pytest.raises(SystemExit):
    bench.parse_args(['--sizes', 'lots'])
  with pytest.raises(SystemExit):
    bench.parse_args(['--k', '0'])
  assert '--k must be at least 1' in capsys.readouterr().err


# ----------------------------------------------------------------- the math


def test_latency_summary_in_milliseconds():
  # 100 calls of 1..100 ms: p50 50 ms, p99 99 ms, mean 50.5 ms.
  summary = bench.latency_summary([i / 1000 for i in range(100, 0, -1)])

  assert summary == pytest.approx({'p50_ms': 50., 'p99_ms': 99.,
                                   'mean_ms': 50.5, 'calls': 100})


def test_synthetic_embeddings_are_deterministic_unit_vectors():
  first = bench.synthetic_embeddings(500, 16, seed=3, stream=0)

  assert first.shape == (500, 16) and first.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1., rtol=1e-5)
  np.testing.assert_array_equal(
      first, bench.synthetic_embeddings(500, 16, seed=3, stream=0))
  assert not np.allclose(first[:10], bench.synthetic_embeddings(
      500, 16, seed=3, stream=1)[:10])
  assert not np.allclose(first[:10], bench.synthetic_embeddings(
      500, 16, seed=4, stream=0)[:10])


def test_synthetic_embeddings_are_clustered():
  # Uniform unit vectors in 64-d have cosines around 0 +- 0.125; with 80%
  # of them around 100 centres, a typical vector's nearest neighbour among
  # 2,000 is much closer than a uniform one's.
  clustered = bench.synthetic_embeddings(2000, 64, seed=0, stream=0)
  uniform = bench._unit(np.random.default_rng(0).standard_normal(
      (2000, 64)))

  def median_nearest(vectors):
    cosines = vectors @ vectors.T
    np.fill_diagonal(cosines, -1)
    return np.median(cosines.max(axis=1))

  assert median_nearest(clustered) > 0.6
  assert median_nearest(uniform) < 0.5


def test_grow_catalogue_keeps_the_real_rows_then_jittered_copies():
  real = np.array([[3., 0.], [0., 4.]], np.float32)

  grown = bench.grow_catalogue(real, 6, seed=0)

  assert grown.shape == (6, 2)
  np.testing.assert_array_equal(grown[:2], real)
  # Copies in turn (rows 2, 4 of row 0; 3, 5 of row 1), noise of scale
  # 0.1 x mean norm 3.5 / sqrt(2) = 0.25 per dimension.
  for row, source in ((2, 0), (3, 1), (4, 0), (5, 1)):
    assert np.linalg.norm(grown[row] - real[source]) < 1.5
    assert not np.array_equal(grown[row], real[source])
  np.testing.assert_array_equal(grown, bench.grow_catalogue(real, 6, seed=0))
  np.testing.assert_array_equal(bench.grow_catalogue(real, 1, seed=0),
                                real[:1])


def test_variables_bytes_counts_numbers_and_strings():
  variables = [tf.Variable(tf.zeros([3, 2], tf.float32)),
               tf.Variable([b'ab', b'c'])]

  # 6 floats x 4 bytes + 2 + 1 string bytes.
  assert bench.variables_bytes(variables) == 27


# --------------------------------------------------------------- measuring


# Scores q . c of five 2-d candidates:
#
#   query      c0   c1   c2   c3   c4   top 3
#   [1, 0]      3    0    2    1   -2   c0 c2 c3
#   [0, 1]      0    3    1   -1    2   c1 c4 c2
CANDIDATES = np.array([[3., 0.], [0., 3.], [2., 1.], [1., -1.], [-2., 2.]],
                      np.float32)
QUERIES = np.array([[1., 0.], [0., 1.]], np.float32)


def _args(**overrides):
  values = dict(k=3, latency_queries=4, warmup=1, batch=1, dim=8, queries=20,
                seed=0, embeddings_from=None)
  values.update(overrides)
  return bench.argparse.Namespace(**values)


def test_brute_force_answers_the_hand_computed_top_k():
  result, rows = bench.measure_index(
      'brute_force',
      lambda: tfrs.layers.factorized_top_k.BruteForce(k=3).index(
          tf.constant(CANDIDATES)),
      QUERIES, _args())

  assert rows.tolist() == [[0, 2, 3], [1, 4, 2]]
  assert result['index'] == 'brute_force'
  # Candidates 5 x 2 float32 + 5 int32 identifiers.
  assert result['index_bytes'] == 5 * 2 * 4 + 5 * 4
  assert result['calls'] == 4 and result['p50_ms'] > 0


def test_measure_size_without_scann_records_why(monkeypatch):
  monkeypatch.setattr(retrieval_index, 'scann_available', lambda: False)

  run = bench.measure_size(300, _args(), real=None)

  assert [i['index'] for i in run['indexes']] == ['brute_force']
  assert run['indexes'][0]['recall_at_k'] == 1.0
  assert "pip install 'scann==1.3.2'" in run['scann_skipped']
  assert (run['size'], run['dim'], run['k'], run['queries']) == (300, 8, 3,
                                                                  20)


@needs_scann
def test_measure_size_with_scann_reports_its_recall_and_configuration():
  run = bench.measure_size(400, _args(k=10), real=None)

  brute_force, scann = run['indexes']
  assert (brute_force['index'], scann['index']) == ('brute_force', 'scann')
  # 400 movies: 20 leaves; 100 x 10 candidates > 400: all searched.
  assert scann['params']['num_leaves'] == 20
  assert scann['params']['num_leaves_to_search'] == 20
  assert scann['params']['num_reordering_candidates'] == 200
  assert 0.9 <= scann['recall_at_k'] <= 1.0


@needs_scann
def test_tiny_catalogue_skips_scann_with_the_reason():
  run = bench.measure_size(100, _args(), real=None)

  assert [i['index'] for i in run['indexes']] == ['brute_force']
  assert 'under 256 movies' in run['scann_skipped']


def test_real_embeddings_are_grown_to_the_size():
  real = (CANDIDATES, QUERIES)

  run = bench.measure_size(12, _args(), real=real)

  assert run['embeddings'] == 'real'
  assert (run['size'], run['dim'], run['queries']) == (12, 2, 2)


# ------------------------------------------------------------ results, README


def _run(embeddings, size, recall=1.0):
  index = {'index': 'brute_force', 'build_seconds': 0.01,
           'index_bytes': 2**20, 'p50_ms': 1.234, 'p99_ms': 5.0,
           'recall_at_k': recall}
  return {'embeddings': embeddings, 'size': size, 'dim': 64,
          'queries': 1000, 'indexes': [index]}


def test_merge_results_replaces_the_same_key_and_sorts():
  previous = {'runs': [_run('synthetic', 60000), _run('real', 1682),
                       _run('synthetic', 1682, recall=0.5)]}

  merged = bench.merge_results(previous, [_run('synthetic', 1682)])

  assert [(r['embeddings'], r['size']) for r in merged['runs']] == [
      ('synthetic', 1682), ('synthetic', 60000), ('real', 1682)]
  assert merged['runs'][0]['indexes'][0]['recall_at_k'] == 1.0
  assert merged['benchmark'] == 'index_scaling'
  assert 'tensorflow' in merged['packages'] and 'scann' in merged['packages']


def test_render_markdown_has_a_row_per_index_and_skipped_scann():
  scann = dict(_run('synthetic', 60000)['indexes'][0], index='scann',
               recall_at_k=0.95, params={'num_leaves': 245,
                                         'num_leaves_to_search': 41,
                                         'num_reordering_candidates': 2000})
  run = dict(_run('synthetic', 60000), load_average_before=0.5,
             load_average_after=2.04)
  run['indexes'].append(scann)
  skipped = dict(_run('synthetic', 1682), scann_skipped='ScaNN not '
                 'installed')
  results = bench.merge_results(None, [run, skipped])

  table = bench.render_markdown(results)

  assert ('| synthetic | 60,000 | 64 | scann | 0.0 | 1.0 | 1.23 | 5.00 | '
          '0.950 | 1000 | 245 (41) / 2000 |') in table
  assert '| synthetic | 1,682 | 64 | brute_force |' in table
  assert 'skipped: ScaNN not installed' in table
  assert 'Load average (1 min) 0.5–2.0 during the runs' in table


def test_main_writes_results_and_the_readme_section(tmp_path, monkeypatch):
  readme = tmp_path / 'README.md'
  readme.write_text(f'# B\n{bench.RESULTS_BEGIN}\nold\n{bench.RESULTS_END}\n'
                    'after\n', encoding='utf-8')
  monkeypatch.setattr(bench, 'README_PATHS', (str(readme),))
  output = tmp_path / 'results.json'

  code = bench.main(['--sizes', '50,60', '--dim', '4', '--k', '5',
                     '--queries', '10', '--latency-queries', '3',
                     '--output', str(output)])

  assert code == 0
  results = json.loads(output.read_text(encoding='utf-8'))
  assert [r['size'] for r in results['runs']] == [50, 60]
  text = readme.read_text(encoding='utf-8')
  assert 'old' not in text and text.endswith('after\n')
  assert '| synthetic | 60 | 4 | brute_force |' in text
