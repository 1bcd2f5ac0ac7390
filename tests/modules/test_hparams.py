"""RetrievalHParams.from_config: defaults, overrides cast to each field's type,
and clear errors for unknown names and values of the wrong type."""

import dataclasses

import pytest

from modules.hparams import RetrievalHParams

pytestmark = pytest.mark.unit


def test_defaults_without_overrides():
  expected = {
      'embedding_dim': 64, 'id_embedding_dim': 64, 'feature_embedding_dim': 8,
      'hidden_units': 0, 'normalize': True, 'temperature': 0.1,
      'candidate_bias': True, 'negatives': 'in_batch',
      'logq_correction': True, 'batch_size': 512, 'learning_rate': 0.003,
      'optimizer': 'auto', 'epochs': 30, 'early_stopping_patience': 3,
      'validation_examples': 100_000, 'user_history': True,
      'history_max': 200, 'refit_extra_epochs': 1,
      'refit_min_epochs': 3, 'refit_min_eval_share': 0.1, 'ensemble_size': 3,
      'seed': 42,
  }

  assert dataclasses.asdict(RetrievalHParams.from_config()) == expected
  assert dataclasses.asdict(RetrievalHParams.from_config(None)) == expected
  assert dataclasses.asdict(RetrievalHParams.from_config({})) == expected


def test_overrides_are_cast_to_the_fields_type():
  hparams = RetrievalHParams.from_config({
      'epochs': '3', 'normalize': 'false', 'temperature': '0.25',
      'logq_correction': 'TRUE', 'learning_rate': 1})

  assert hparams.epochs == 3 and type(hparams.epochs) is int
  assert hparams.normalize is False
  assert hparams.logq_correction is True
  assert hparams.temperature == 0.25 and type(hparams.temperature) is float
  # An int given for a float field becomes a float.
  assert hparams.learning_rate == 1.0 and type(hparams.learning_rate) is float
  # Fields not overridden keep their defaults.
  assert hparams.batch_size == 512
  assert hparams.embedding_dim == 64


@pytest.mark.parametrize('value, expected', [
    ('true', True), (' Yes ', True), ('1', True), ('false', False),
    ('no', False), ('0', False), (True, True), (False, False), (0, False),
    (1, True)])
def test_boolean_spellings(value, expected):
  assert RetrievalHParams.from_config({'normalize': value}).normalize is (
      expected)


def test_overrides_do_not_change_the_defaults_of_other_instances():
  RetrievalHParams.from_config({'epochs': 1})

  assert RetrievalHParams().epochs == 30
  with pytest.raises(dataclasses.FrozenInstanceError):
    RetrievalHParams().epochs = 1  # type: ignore[misc]


def test_unknown_key_is_named_in_the_error():
  with pytest.raises(ValueError) as raised:
    RetrievalHParams.from_config({'epochs': 2, 'epoch': 3, 'lr': 0.1})

  message = str(raised.value)
  # Unknown names sorted, then the known ones listed for the reader.
  assert message.startswith(
      "Unknown retrieval hyper-parameters ['epoch', 'lr']; known: [")
  assert "'epochs'" in message and "'learning_rate'" in message


@pytest.mark.parametrize('name, value, kind', [
    ('epochs', 'three', 'int'),
    ('epochs', None, 'int'),
    ('epochs', '2.5', 'int'),
    ('temperature', 'warm', 'float'),
    ('batch_size', [512], 'int'),
])
def test_value_of_the_wrong_type_raises(name, value, kind):
  with pytest.raises(ValueError) as raised:
    RetrievalHParams.from_config({name: value})

  assert str(raised.value) == (
      f'Hyper-parameter {name}: expected {kind}, got {value!r}')


@pytest.mark.parametrize('value', ['ture', 'enabled', ''])
def test_misspelt_boolean_raises(value):
  with pytest.raises(ValueError, match='normalize'):
    RetrievalHParams.from_config({'normalize': value})


@pytest.mark.parametrize('name, value', [('epochs', 2.5),
                                         ('hidden_units', 0.5)])
def test_fractional_value_for_an_int_field_raises(name, value):
  with pytest.raises(ValueError, match=name):
    RetrievalHParams.from_config({name: value})


def test_ranking_defaults_and_overrides():
  from modules.hparams import RankingHParams  # pylint: disable=g-import-not-at-top
  hparams = RankingHParams.from_config({'architecture': 'dcn',
                                        'hidden_units': '128, 32',
                                        'relevance_weight': '0'})
  assert RankingHParams().architecture == 'mlp'
  assert hparams.architecture == 'dcn'
  assert hparams.deep_units == (128, 32)
  assert hparams.relevance_weight == 0.0
  assert RankingHParams().refit_extra_epochs == 0
  assert RankingHParams().ensemble_size == 3
  with pytest.raises(ValueError, match='Unknown ranking hyper-parameters'):
    RankingHParams.from_config({'temperature': 1})


@pytest.mark.parametrize('units', ['a,b', '64,0'])
def test_ranking_hidden_units_must_be_positive_integers(units):
  from modules.hparams import RankingHParams  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match='hidden_units'):
    RankingHParams(hidden_units=units).deep_units
