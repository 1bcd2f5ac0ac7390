"""RetrievalHParams / RankingHParams.from_config: defaults, overrides cast
to each field's type, and clear errors for unknown names, values of the
wrong type and values out of their field's range."""

import dataclasses

import pytest

from modules import hparams as hparams_lib
from modules.hparams import RankingHParams, RetrievalHParams

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
      'trend_windows': '', 'trend_calibration_days': 28, 'seed': 42,
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
  with pytest.raises(ValueError, match='hidden_units'):
    RankingHParams(hidden_units=units).deep_units


HPARAMS_CLASSES = [RetrievalHParams, RankingHParams]


@pytest.mark.parametrize('hparams_class', HPARAMS_CLASSES)
def test_every_field_but_the_booleans_has_a_range(hparams_class):
  fields = {f.name for f in dataclasses.fields(hparams_class)
            if not isinstance(getattr(hparams_class(), f.name), bool)}

  assert set(hparams_class.ALLOWED) == fields


@pytest.mark.parametrize('hparams_class', HPARAMS_CLASSES)
def test_the_defaults_are_in_range(hparams_class):
  hparams_class().check()


def test_the_optimizer_choices_are_the_optimizers_module_ones():
  from modules import optimizers  # pylint: disable=g-import-not-at-top
  assert hparams_lib.OPTIMIZERS == optimizers.OPTIMIZERS


# (class, field, bad value, the error after 'Hyper-parameter FIELD: ').
OUT_OF_RANGE = [
    (RetrievalHParams, 'embedding_dim', 0, 'expected >= 1, got 0'),
    (RetrievalHParams, 'id_embedding_dim', -8, 'expected >= 1, got -8'),
    (RetrievalHParams, 'feature_embedding_dim', 0, 'expected >= 1, got 0'),
    (RetrievalHParams, 'hidden_units', -1, 'expected >= 0, got -1'),
    (RetrievalHParams, 'temperature', 0, 'expected > 0.0, got 0.0'),
    (RetrievalHParams, 'temperature', 'inf', 'expected > 0.0, got inf'),
    (RetrievalHParams, 'negatives', 'sampled',
     "expected one of 'in_batch', 'catalogue', got 'sampled'"),
    (RetrievalHParams, 'batch_size', 0, 'expected >= 1, got 0'),
    (RetrievalHParams, 'learning_rate', -1, 'expected > 0.0, got -1.0'),
    (RetrievalHParams, 'learning_rate', 'nan', 'expected > 0.0, got nan'),
    (RetrievalHParams, 'optimizer', 'sgdx',
     "expected one of 'auto', 'adam', 'lazy_adam', got 'sgdx'"),
    (RetrievalHParams, 'epochs', 0, 'expected >= 1, got 0'),
    (RetrievalHParams, 'early_stopping_patience', -1,
     'expected >= 0, got -1'),
    (RetrievalHParams, 'validation_examples', -1, 'expected >= 0, got -1'),
    (RetrievalHParams, 'history_max', -5, 'expected >= 0, got -5'),
    (RetrievalHParams, 'refit_extra_epochs', -1, 'expected >= 0, got -1'),
    (RetrievalHParams, 'refit_min_epochs', -1, 'expected >= 0, got -1'),
    (RetrievalHParams, 'refit_min_eval_share', 1.5,
     'expected in [0.0, 1.0], got 1.5'),
    (RetrievalHParams, 'refit_min_eval_share', -0.1,
     'expected in [0.0, 1.0], got -0.1'),
    (RetrievalHParams, 'ensemble_size', 0, 'expected >= 1, got 0'),
    (RetrievalHParams, 'seed', -1, 'expected in [0, 2147483647], got -1'),
    (RetrievalHParams, 'seed', 2**31, 'expected in [0, 2147483647], got '
     '2147483648'),
    (RetrievalHParams, 'trend_calibration_days', -1, 'expected >= 0, got -1'),
    (RetrievalHParams, 'trend_windows', '28,-7',
     "expected comma-separated positive days, e.g. '7,28', or '' for none, "
     "got '28,-7'"),
    (RankingHParams, 'architecture', 'foo',
     "expected one of 'mlp', 'dcn', got 'foo'"),
    (RankingHParams, 'id_embedding_dim', 0, 'expected >= 1, got 0'),
    (RankingHParams, 'feature_embedding_dim', 0, 'expected >= 1, got 0'),
    (RankingHParams, 'cross_layers', -1, 'expected >= 0, got -1'),
    (RankingHParams, 'cross_projection_dim', -1, 'expected >= 0, got -1'),
    (RankingHParams, 'hidden_units', '64,0',
     "expected comma-separated positive integers, e.g. '256,64', got "
     "'64,0'"),
    (RankingHParams, 'hidden_units', 'wide',
     "expected comma-separated positive integers, e.g. '256,64', got "
     "'wide'"),
    (RankingHParams, 'dropout', 1, 'expected in [0.0, 1.0), got 1.0'),
    (RankingHParams, 'dropout', -0.2, 'expected in [0.0, 1.0), got -0.2'),
    (RankingHParams, 'id_l2', -0.001, 'expected >= 0, got -0.001'),
    (RankingHParams, 'id_l2_per_rating', -1, 'expected >= 0, got -1.0'),
    (RankingHParams, 'relevance_weight', -1, 'expected >= 0, got -1.0'),
    (RankingHParams, 'relevance_negatives', 0, 'expected >= 1, got 0'),
    (RankingHParams, 'relevance_negatives_by', 'hard',
     "expected one of 'uniform', 'popularity', got 'hard'"),
    (RankingHParams, 'batch_size', 0, 'expected >= 1, got 0'),
    (RankingHParams, 'learning_rate', -1, 'expected > 0.0, got -1.0'),
    (RankingHParams, 'optimizer', 'sgdx',
     "expected one of 'auto', 'adam', 'lazy_adam', got 'sgdx'"),
    (RankingHParams, 'epochs', 0, 'expected >= 1, got 0'),
    (RankingHParams, 'early_stopping_patience', -1, 'expected >= 0, got -1'),
    (RankingHParams, 'validation_examples', -1, 'expected >= 0, got -1'),
    (RankingHParams, 'refit_extra_epochs', -1, 'expected >= 0, got -1'),
    (RankingHParams, 'refit_min_epochs', -2, 'expected >= 0, got -2'),
    (RankingHParams, 'refit_min_eval_share', 2,
     'expected in [0.0, 1.0], got 2.0'),
    (RankingHParams, 'ensemble_size', 0, 'expected >= 1, got 0'),
    (RankingHParams, 'seed', -1, 'expected in [0, 2147483647], got -1'),
    (RankingHParams, 'trend_windows', '7,0',
     "expected comma-separated positive days, e.g. '7,28', or '' for none, "
     "got '7,0'"),
]


@pytest.mark.parametrize(
    'hparams_class, name, value, error', OUT_OF_RANGE,
    ids=[f'{c.KIND}-{n}={v}' for c, n, v, _ in OUT_OF_RANGE])
def test_a_value_out_of_range_is_refused_naming_field_value_and_range(
    hparams_class, name, value, error):
  with pytest.raises(ValueError) as raised:
    hparams_class.from_config({name: value})

  assert str(raised.value) == f'Hyper-parameter {name}: {error}'


def test_every_range_is_tested():
  tested = {(c.KIND, name) for c, name, _, _ in OUT_OF_RANGE}
  assert tested == {(c.KIND, name) for c in HPARAMS_CLASSES
                    for name in c.ALLOWED}


@pytest.mark.parametrize('hparams_class, overrides', [
    # The edges of each kind of range are inside it.
    (RetrievalHParams, {'hidden_units': 0, 'early_stopping_patience': 0,
                        'validation_examples': 0, 'history_max': 0,
                        'refit_extra_epochs': 0, 'refit_min_epochs': 0,
                        'refit_min_eval_share': 0, 'ensemble_size': 1,
                        'seed': 0, 'negatives': 'catalogue',
                        'optimizer': 'lazy_adam', 'batch_size': 1}),
    (RetrievalHParams, {'refit_min_eval_share': 1, 'seed': 2**31 - 1}),
    (RankingHParams, {'architecture': 'dcn', 'cross_layers': 0,
                      'cross_projection_dim': 0, 'hidden_units': '',
                      'dropout': 0, 'id_l2': 0, 'id_l2_per_rating': 0,
                      'relevance_weight': 0, 'relevance_negatives': 1,
                      'relevance_negatives_by': 'popularity',
                      'optimizer': 'adam'}),
    (RankingHParams, {'dropout': 0.99, 'hidden_units': '8'}),
])
def test_values_at_the_edges_of_their_range_are_accepted(hparams_class,
                                                          overrides):
  hparams = hparams_class.from_config(overrides)

  for name, value in overrides.items():
    assert getattr(hparams, name) == value


def test_the_trainers_read_their_hparams_through_the_same_check():
  from modules import refit_protocol  # pylint: disable=g-import-not-at-top

  class FnArgs:
    custom_config = {'hparams': {'architecture': 'foo'}}

  with pytest.raises(ValueError, match=r"^Hyper-parameter architecture: "
                     r"expected one of 'mlp', 'dcn', got 'foo'$"):
    refit_protocol.read_hparams(FnArgs(), RankingHParams)


@pytest.mark.parametrize('text, days', [('', ()), ('7', (7,)),
                                        ('7, 28', (7, 28))])
def test_trend_windows_are_days(text, days):
  assert RankingHParams.from_config({'trend_windows': text}).trend_days == (
      days)
