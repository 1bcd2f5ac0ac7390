"""benchmarks.retrieval_sweep: trial parsing and artifact lookup (the
training itself is what `retrieval_trainer` tests cover)."""

import pytest

from benchmarks import retrieval_sweep as sweep

pytestmark = pytest.mark.unit


def test_parse_trial_reads_comma_separated_overrides():
  assert sweep.parse_trial('negatives=in_batch, temperature=0.2') == {
      'negatives': 'in_batch', 'temperature': '0.2'}
  assert sweep.parse_trial('') == {}


@pytest.mark.parametrize('text', ['temperature', '=3', 'a=1,b'])
def test_parse_trial_refuses_items_without_a_value(text):
  with pytest.raises(ValueError, match='NAME=VALUE'):
    sweep.parse_trial(text)


def test_latest_artifact_dir_takes_the_newest_execution(tmp_path):
  for execution in ('9', '12', 'stale'):
    (tmp_path / 'pipeline' / 'movielens-tfx' / 'Transform' /
     'transform_graph' / execution).mkdir(parents=True)

  found = sweep.latest_artifact_dir(str(tmp_path), 'Transform',
                                    'transform_graph')

  assert found.endswith('transform_graph/12')


def test_latest_artifact_dir_without_a_run_says_what_to_do(tmp_path):
  with pytest.raises(FileNotFoundError, match='run benchmarks.retrieval_'):
    sweep.latest_artifact_dir(str(tmp_path), 'Transform', 'transform_graph')


def test_parse_args_defaults_to_one_trial_of_the_defaults():
  args = sweep.parse_args(['--protocol', 'tfrs'])

  assert args.trials == [{}]
  assert args.pipeline_output.endswith('tfrs/pipeline')
