"""runner_local's flags: hyper-parameter overrides are validated before any
pipeline work, and reach the Trainer's custom config."""

import pytest

import runner_local

pytestmark = pytest.mark.unit


def test_hparam_overrides_and_epochs_are_collected():
  args = runner_local.parse_args(['--hparam', 'temperature=0.2', '--hparam',
                                  'normalize=false', '--epochs', '4'])
  assert args.hparams == {'temperature': '0.2', 'normalize': 'false',
                          'epochs': 4}


def test_no_overrides_by_default():
  assert runner_local.parse_args([]).hparams == {}


@pytest.mark.parametrize('flag, message', [
    ('temprature=0.2', 'Unknown retrieval hyper-parameters'),
    ('epochs=2.5', 'expected int'),
    ('temperature', 'NAME=VALUE'),
])
def test_bad_overrides_stop_before_the_pipeline(flag, message, capsys):
  with pytest.raises(SystemExit) as exit_info:
    runner_local.parse_args(['--hparam', flag])
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err


@pytest.mark.parametrize('argv', [['--epochs', '0'], ['--top-k', '0'],
                                  ['--eval-fraction', '1.5'],
                                  ['--max-eval-ratings', '-1'],
                                  ['--beam-workers', '0']])
def test_out_of_range_flags_are_refused(argv):
  with pytest.raises(SystemExit):
    runner_local.parse_args(argv)


def test_ranking_hparams_and_epochs_are_collected():
  args = runner_local.parse_args(['--ranking-hparam', 'architecture=mlp',
                                  '--ranking-epochs', '4'])
  assert args.ranking_hparams == {'architecture': 'mlp', 'epochs': 4}
  assert args.hparams == {}
  assert runner_local.parse_args([]).ranking_hparams == {}


@pytest.mark.parametrize('argv, message', [
    (['--ranking-hparam', 'depth=3'], 'Unknown ranking hyper-parameters'),
    (['--ranking-epochs', '0'], '--ranking-epochs must be at least 1'),
    (['--recommender-top-k', '101'], '--recommender-top-k must be between'),
    (['--top-k', '5', '--recommender-top-k', '10'],
     '--recommender-top-k must be between 1 and --top-k'),
])
def test_bad_ranking_flags_are_refused(argv, message, capsys):
  with pytest.raises(SystemExit):
    runner_local.parse_args(argv)
  assert message in capsys.readouterr().err


def test_retrieval_index_defaults_to_brute_force():
  assert runner_local.parse_args([]).retrieval_index == 'brute_force'


def test_retrieval_index_scann_is_accepted_when_scann_is_installed(
    monkeypatch):
  monkeypatch.setattr(runner_local.importlib.util, 'find_spec',
                      lambda name: object())

  args = runner_local.parse_args(['--retrieval-index', 'scann'])

  assert args.retrieval_index == 'scann'


def test_retrieval_index_scann_without_scann_says_what_to_install(
    monkeypatch, capsys):
  from modules import retrieval_index  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(runner_local.importlib.util, 'find_spec',
                      lambda name: None)

  with pytest.raises(SystemExit) as exit_info:
    runner_local.parse_args(['--retrieval-index', 'scann'])

  assert exit_info.value.code == 2
  err = capsys.readouterr().err
  assert '--retrieval-index scann needs ScaNN' in err
  assert f"pip install '{retrieval_index.SCANN_REQUIREMENT}'" in err


def test_an_unknown_retrieval_index_is_refused(capsys):
  with pytest.raises(SystemExit):
    runner_local.parse_args(['--retrieval-index', 'annoy'])
  assert "invalid choice: 'annoy'" in capsys.readouterr().err


# A value out of its field's range: the error line after '<prog>: error: '.
OUT_OF_RANGE = [
    (['--ranking-hparam', 'architecture=foo'],
     "--ranking-hparam: Hyper-parameter architecture: expected one of "
     "'mlp', 'dcn', got 'foo'"),
    (['--ranking-hparam', 'optimizer=sgdx'],
     "--ranking-hparam: Hyper-parameter optimizer: expected one of 'auto', "
     "'adam', 'lazy_adam', got 'sgdx'"),
    (['--ranking-hparam', 'batch_size=0'],
     '--ranking-hparam: Hyper-parameter batch_size: expected >= 1, got 0'),
    (['--ranking-hparam', 'learning_rate=-1'],
     '--ranking-hparam: Hyper-parameter learning_rate: expected > 0.0, got '
     '-1.0'),
    (['--ranking-hparam', 'ensemble_size=0'],
     '--ranking-hparam: Hyper-parameter ensemble_size: expected >= 1, got 0'),
    (['--hparam', 'negatives=sampled'],
     "--hparam: Hyper-parameter negatives: expected one of 'in_batch', "
     "'catalogue', got 'sampled'"),
    (['--hparam', 'dropout=0.5'],
     "--hparam: Unknown retrieval hyper-parameters ['dropout']; known: "
     "['batch_size', 'candidate_bias', 'early_stopping_patience', "
     "'embedding_dim', 'ensemble_size', 'epochs', 'feature_embedding_dim', "
     "'hidden_units', 'history_max', 'id_embedding_dim', 'learning_rate', "
     "'logq_correction', 'negatives', 'normalize', 'optimizer', "
     "'refit_extra_epochs', 'refit_min_epochs', 'refit_min_eval_share', "
     "'seed', 'temperature', 'trend_calibration_days', 'trend_windows', "
     "'user_history', 'validation_examples']"),
]


@pytest.mark.parametrize('argv, line', OUT_OF_RANGE)
def test_a_bad_hparam_stops_the_runner_with_one_line_and_status_2(
    argv, line, capsys):
  with pytest.raises(SystemExit) as exit_info:
    runner_local.parse_args(argv)

  assert exit_info.value.code == 2
  err = capsys.readouterr().err
  assert err.endswith(f': error: {line}\n')
  assert len(err.splitlines()) == 1
