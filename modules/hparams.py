"""Hyper-parameters of the models, in one place.

The runner overrides any of them through the Trainer's `custom_config`
(`{'hparams': {'epochs': 3}}`), and `from_config` checks the overrides: an
unknown name, a value of the wrong type or one out of its field's range
(`ALLOWED`) fails the run at once, in the runner's argument parsing and
again in the Trainer, instead of minutes later inside TensorFlow.

Plain Python with no TensorFlow import, so the runners can check flags in
well under a second. How the defaults were measured:
docs/hparams_history.md.
"""

import dataclasses
import math
from typing import Any, Callable, ClassVar, Dict, Mapping, Optional, Tuple

# Choices of the enumerated fields. OPTIMIZERS is modules/optimizers.py's
# (which imports TensorFlow); tests/modules/test_hparams.py keeps them equal.
OPTIMIZERS = ('auto', 'adam', 'lazy_adam')
NEGATIVES = ('in_batch', 'catalogue')
ARCHITECTURES = ('mlp', 'dcn')
RELEVANCE_NEGATIVES_BY = ('uniform', 'popularity')


@dataclasses.dataclass(frozen=True)
class Allowed:
  """The values a field accepts: `test(value)`, described by `text`."""
  test: Callable[[Any], bool]
  text: str


def _one_of(choices: Tuple[str, ...]) -> Allowed:
  return Allowed(lambda value: value in choices,
                 'one of ' + ', '.join(repr(c) for c in choices))


def _at_least(low: int) -> Allowed:
  return Allowed(lambda value: _finite(value) and value >= low, f'>= {low}')


def _above(low: float) -> Allowed:
  return Allowed(lambda value: _finite(value) and value > low, f'> {low}')


def _within(low: float, high: float, high_included: bool) -> Allowed:
  """[low, high] or [low, high)."""
  def test(value):
    return _finite(value) and low <= value and (
        value <= high if high_included else value < high)
  return Allowed(test, f'in [{low}, {high}{"]" if high_included else ")"}')


def _finite(value) -> bool:
  return not isinstance(value, float) or math.isfinite(value)


def _unit_widths(text: str) -> Optional[Tuple[int, ...]]:
  """'256,64' -> (256, 64); None unless positive integers."""
  try:
    units = tuple(int(u) for u in text.split(',') if u.strip())
  except ValueError:
    return None
  return units if all(u >= 1 for u in units) else None


_POSITIVE = _at_least(1)
_UNIT_WIDTHS = Allowed(lambda text: _unit_widths(text) is not None,
                       "comma-separated positive integers, e.g. '256,64'")
_NON_NEGATIVE = _at_least(0)
_DAY_WINDOWS = Allowed(lambda text: not text.strip() or
                       _unit_widths(text) is not None,
                       "comma-separated positive days, e.g. '7,28', or '' "
                       'for none')
# np.random.seed takes [0, 2**32), and the refit ensemble's members use
# seed + 1, ...: [0, 2**31) leaves them room.
_SEED = _within(0, 2**31 - 1, high_included=True)
# The training fields both models have; the refit's as
# modules/refit_protocol.check_refit checks them.
_TRAINING = {
    'batch_size': _POSITIVE,
    'learning_rate': _above(0.0),
    'optimizer': _one_of(OPTIMIZERS),
    'epochs': _POSITIVE,
    'early_stopping_patience': _NON_NEGATIVE,
    'validation_examples': _NON_NEGATIVE,
    'refit_extra_epochs': _NON_NEGATIVE,
    'refit_min_epochs': _NON_NEGATIVE,
    'refit_min_eval_share': _within(0.0, 1.0, high_included=True),
    'ensemble_size': _POSITIVE,
    'seed': _SEED,
}


class _FromConfig:
  """`from_config`: the defaults with checked, type-cast overrides."""

  @classmethod
  def from_config(cls, overrides: Optional[Mapping[str, Any]] = None):
    """Defaults with `overrides` applied, each cast to its field's type.

    Raises:
      ValueError: an unknown name, or a value that is not of its field's
        type or not in its `ALLOWED` range, as one line naming the field,
        the value and what is allowed.
    """
    overrides = dict(overrides or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
      raise ValueError(f'Unknown {cls.KIND} hyper-parameters {unknown}; '
                       f'known: {sorted(fields)}')
    values = {}
    for name, value in overrides.items():
      kind = type(getattr(cls(), name))
      values[name] = _cast(name, value, kind)
    hparams = dataclasses.replace(cls(), **values)
    hparams.check()
    return hparams

  def check(self) -> None:
    """Raises ValueError naming the first field out of its `ALLOWED`
    range; booleans need no check beyond their type."""
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      allowed = self.ALLOWED.get(field.name)
      if allowed is not None and not allowed.test(value):
        raise ValueError(f'Hyper-parameter {field.name}: expected '
                         f'{allowed.text}, got {value!r}')


class _TrendWindows:
  """The `trend_windows` field of both models, read as days."""

  @property
  def trend_days(self) -> Tuple[int, ...]:
    """`trend_windows` as integers (empty: no trend term or features)."""
    return _unit_widths(self.trend_windows) or ()


@dataclasses.dataclass(frozen=True)
class RetrievalHParams(_FromConfig, _TrendWindows):
  """Two-tower retrieval model and its training.

  Defaults were chosen by measurement on ML-100K (benchmarks/README.md,
  docs/hparams_history.md).

  Attributes:
    embedding_dim: size of the query and candidate embeddings (dot product).
    id_embedding_dim: size of the user-id and movie-id embeddings.
    feature_embedding_dim: size of the embeddings of other categoricals.
    hidden_units: width of each tower's hidden layer; 0 for none.
    normalize: L2-normalise both towers' outputs (cosine scores).
    temperature: logits are divided by it; with normalised embeddings a
      small value sharpens the softmax.
    candidate_bias: give each movie a learned scalar bias, added to the dot
      product through an extra dimension (the query's is a constant 1).
      Normalised embeddings cannot encode popularity in their norm; the
      bias can, and with the logQ correction it learns it unbiasedly.
    negatives: 'catalogue' (softmax over every movie of the training data:
      the exact objective, one candidate-tower pass over the catalogue per
      step) or 'in_batch' (softmax over the batch's candidates: sampled,
      scales to any catalogue size).
    logq_correction: subtract log(sampling probability) of each in-batch
      candidate (popularity correction of the in-batch softmax; unused with
      catalogue negatives, which are not sampled). Without it, popular
      movies are pushed down for appearing as negatives in many batches,
      and nDCG@10 collapses.
    batch_size: training batch (with in-batch negatives, also their number).
      Smaller batches measured within the seed-to-seed noise of 512, which
      takes fewer, cheaper steps.
    learning_rate: Adam's learning rate.
    optimizer: 'lazy_adam' (Adam, but a step updates only the embedding
      rows its batch looked up: its cost follows the batch, not the
      vocabulary), 'adam' (Keras' Adam: every row of every table at every
      step) or 'auto' (Adam below 20,000 users, lazy from there; see
      modules/optimizers.py for the figures).
    epochs: maximum epochs; early stopping may end training sooner. On
      ML-100K the best epoch is the 1st or 2nd and the model then overfits
      fast, so the bound matters only for larger releases.
    early_stopping_patience: epochs without improvement of the eval split's
      top-100 accuracy before training stops (best weights restored).
    validation_examples: early stopping scores the first this many
      examples of the eval split (whole batches of 4,096; 0 for all):
      every one is scored against the whole catalogue at every epoch.
    user_history: give the query tower the mean embedding of the user's
      training movies (leave-one-out in training; see
      `retrieval_model.UserHistory`). With it a linear tower
      (`hidden_units=0`) measures best on the MS Recommenders protocol;
      for next-movie quality on the pipeline's time split, set
      hidden_units=128 (README).
    history_max: the user history keeps each user's newest `history_max`
      training movies (0: all). A step costs in proportion to its examples'
      summed history lengths and heavy raters are sampled most, so the cap
      bounds the cost at scale (3.6x the Trainer's throughput on synthetic
      1M); on ML-100K it changes nothing measurable.
    refit_extra_epochs: the refit (`RetrievalRefit`, `refit_fn`: a fresh
      model, same seed, fitted on train + eval after early stopping has
      picked the epoch count on eval) trains this many epochs beyond the
      best one, its data being larger by the eval split; 1 measured best.
      See README, "What is evaluated and what is served".
    refit_min_epochs: the refit trains at least this many epochs (0 for no
      floor). On ML-100K the best epoch (1st or 2nd) is decided within the
      noise of top-100 accuracy, and three refit epochs measured best or
      level at every seed; larger releases stop later and never meet it.
    refit_min_eval_share: the refit is skipped, and the early-stopped model
      served as it is, when the eval split holds less than this share of
      the ratings (by the files' sizes): at ml-25m the eval split is bounded
      to about 4% of the ratings (`--max-eval-ratings`), and a refit would
      double the training time for 4% more data.
    ensemble_size: the refit trains this many models, with seeds `seed`,
      `seed + 1`, ..., and serves them as one two-tower model: their
      embeddings side by side, each scaled by 1/sqrt(n), so the score is
      the mean of the members' scores and there is still one index
      (`retrieval_model.TowerEnsemble`; the index's dimension is n times
      a member's). 1 serves the refit model alone. Seeds are the largest
      source of variance on ML-100K; averaging three removes much of it
      and lifts the mean, for n times the refit's training time.
    trend_windows: add to every (query, candidate) logit a learned score
      of the candidate's ratings in these trailing windows of days
      ('7,28'; '' for none), counted at the query's time in training and at
      now when served, as extra dimensions of both towers
      (`modules/trend.py`, `retrieval_model.TrendQuery`).
    trend_calibration_days: with `trend_windows`, the refit also fits one
      model on its ratings before the last this many days, and chooses the
      addition to the term's weights that ranks those days best (nDCG@10);
      the served model gets it (`modules/trend_calibration.py`). Training
      learns too small a weight: the id embeddings fit each movie's
      popularity over the whole training period, the weeks after each
      rating included. 0: none.
    seed: for weight initialisation and shuffling.
  """
  embedding_dim: int = 64
  id_embedding_dim: int = 64
  feature_embedding_dim: int = 8
  hidden_units: int = 0
  normalize: bool = True
  temperature: float = 0.1
  candidate_bias: bool = True
  negatives: str = 'in_batch'
  logq_correction: bool = True
  batch_size: int = 512
  learning_rate: float = 0.003
  optimizer: str = 'auto'
  epochs: int = 30
  early_stopping_patience: int = 3
  validation_examples: int = 100_000
  user_history: bool = True
  history_max: int = 200
  refit_extra_epochs: int = 1
  refit_min_epochs: int = 3
  refit_min_eval_share: float = 0.1
  ensemble_size: int = 3
  trend_windows: str = ''
  trend_calibration_days: int = 28
  seed: int = 42

  KIND = 'retrieval'
  # What `check` accepts, for every field but the booleans.
  ALLOWED: ClassVar[Dict[str, Allowed]] = {
      'embedding_dim': _POSITIVE,
      'id_embedding_dim': _POSITIVE,
      'feature_embedding_dim': _POSITIVE,
      'hidden_units': _NON_NEGATIVE,
      'temperature': _above(0.0),
      'negatives': _one_of(NEGATIVES),
      'history_max': _NON_NEGATIVE,
      'trend_windows': _DAY_WINDOWS,
      'trend_calibration_days': _NON_NEGATIVE,
      **_TRAINING,
  }


@dataclasses.dataclass(frozen=True)
class RankingHParams(_FromConfig, _TrendWindows):
  """The ranking model (rating prediction + relevance) and its training.

  Defaults were chosen by measurement on ML-100K (benchmarks/README.md,
  docs/hparams_history.md).

  Attributes:
    architecture: 'mlp' (a deep MLP over the embeddings) or 'dcn' (a deep
      & cross network, DCN-v2: explicit feature crosses before the MLP).
      DCN-v2 measured worse on ML-100K: RMSE 0.8955 against 0.8917 for the
      MLP, two-stage nDCG@10 0.4835 against 0.4925 (README), so MLP is the
      default.
    id_embedding_dim: size of the user-id and movie-id embeddings.
    feature_embedding_dim: size of the other categoricals' embeddings.
    cross_layers: DCN cross layers (stacked on the embeddings).
    cross_projection_dim: low-rank size of each cross layer's weight; 0 for
      full rank.
    hidden_units: widths of the deep layers, comma-separated ('256,64').
    dropout: dropout rate after each deep layer, in [0, 1); 0.2 lowered the
      test RMSE.
    context_features: embed the rating's context (hour of day, day of week,
      timestamp). Off: a served pair gets the user's latest rating's
      context, not the time of the rating asked about, and the model used
      the timestamp to fit the training ratings; without them the test
      RMSE and the relevance AUC are better.
    rating_biases: add a learned bias of the user and one of the movie to
      the predicted rating: rating = 3 + network (whose output layer's bias
      learns the offset to the global mean) + user bias + movie bias
      [+ the dot product below], clipped to 1-5. Both start at 0.
    rating_dot: add the dot product of the user-id and movie-id embeddings
      (the ones the network also reads) to the predicted rating: a matrix
      factorisation term beside the network. Neither term touches the
      relevance head.
    id_l2: L2 penalty (weight times the sum of squares of the whole table,
      added to the training loss every step) on the user-id and movie-id
      embeddings and the rating biases; 0 for none. With the biases, the
      dot term, no context and dropout, 3e-3 measured best.
    optimizer: as the retrieval model's ('auto': Adam below 20,000 users,
      LazyAdam from there; modules/optimizers.py).
    id_l2_per_rating: with LazyAdam, `id_l2` (a penalty on whole tables,
      whose gradient touches every row at every step) is replaced by this
      weight times the mean squared norm of the rows each rating looks up
      (user and movie embeddings and biases); 0.3 measured best.
    relevance_weight: weight of the relevance task beside the rating task
      (0 trains a rating-only model). The relevance head learns whether a
      user rates a movie at all: positives are the ratings, negatives are
      catalogue movies drawn uniformly, `relevance_negatives` per rating.
      It orders the two-stage recommender's top K (see
      modules/ranking_model.py for why a predicted rating alone does not).
      A heavy relevance task helps both heads (the shared network learns
      more from the "which movies" signal than from the ratings alone): 20
      measured best for the two-stage nDCG@10.
    relevance_negatives: negatives per rating for the relevance task.
    relevance_negatives_by: 'uniform' (every catalogue movie alike) or
      'popularity' (in proportion to its ratings: harder negatives, closer
      to the retrieval model's candidates).
    batch_size, learning_rate: Adam on the summed losses.
    epochs: maximum epochs; early stopping on the eval split's RMSE may end
      training sooner (best weights restored). With relevance_weight 20,
      ML-100K's best epoch is about the 20th, so 40.
    early_stopping_patience: epochs without RMSE improvement before it stops.
    validation_examples: early stopping scores the eval split's first this
      many examples (whole batches of 4,096; 0 for all), as the retrieval
      model's: each is scored with its relevance negatives every epoch.
    refit_extra_epochs: as the retrieval model's: epochs the refit
      (`RankingRefit`) trains beyond the best epoch of early stopping.
    refit_min_epochs: as the retrieval model's (0: the best epoch alone).
    refit_min_eval_share: as the retrieval model's: no refit (the
      early-stopped model is served) below this eval share of the ratings.
    ensemble_size: as the retrieval model's: the refit trains this many
      models (seeds `seed`, `seed + 1`, ...) and serves the mean of their
      outputs, rating and relevance (`ranking_model.RankingEnsemble`).
      With both models' refits ensembles of 3, the two-stage nDCG@10 on
      ML-100K is 0.4925 / 0.4870 / 0.4826 at seeds 42 / 1 / 2 (README),
      for about 3 times the single refit's training time.
    trend_windows: the movie's recent popularity as features of its
      part: its ratings in each trailing window of this many days before
      the rating's day, comma-separated ('7,28'; '' for none). Relevance
      negatives get their counts at their rating's time; a served pair
      gets them now (the day after the last training rating) and
      `serving_examples` at each example's `timestamp` (`modules/trend.py`).
    seed: weight initialisation, shuffling and negative sampling.
  """
  KIND = 'ranking'
  architecture: str = 'mlp'
  id_embedding_dim: int = 32
  feature_embedding_dim: int = 8
  cross_layers: int = 2
  cross_projection_dim: int = 0
  hidden_units: str = '256,64'
  dropout: float = 0.2
  context_features: bool = False
  rating_biases: bool = True
  rating_dot: bool = True
  id_l2: float = 0.003
  id_l2_per_rating: float = 0.3
  relevance_weight: float = 20.0
  relevance_negatives: int = 4
  relevance_negatives_by: str = 'uniform'
  batch_size: int = 1024
  learning_rate: float = 0.002
  optimizer: str = 'auto'
  epochs: int = 40
  early_stopping_patience: int = 3
  validation_examples: int = 100_000
  refit_extra_epochs: int = 0
  refit_min_epochs: int = 0
  refit_min_eval_share: float = 0.1
  ensemble_size: int = 3
  trend_windows: str = ''
  seed: int = 42

  # What `check` accepts, for every field but the booleans.
  ALLOWED: ClassVar[Dict[str, Allowed]] = {
      'architecture': _one_of(ARCHITECTURES),
      'trend_windows': _DAY_WINDOWS,
      'id_embedding_dim': _POSITIVE,
      'feature_embedding_dim': _POSITIVE,
      'cross_layers': _NON_NEGATIVE,
      'cross_projection_dim': _NON_NEGATIVE,
      'hidden_units': _UNIT_WIDTHS,
      'dropout': _within(0.0, 1.0, high_included=False),
      'id_l2': _NON_NEGATIVE,
      'id_l2_per_rating': _NON_NEGATIVE,
      'relevance_weight': _NON_NEGATIVE,
      'relevance_negatives': _POSITIVE,
      'relevance_negatives_by': _one_of(RELEVANCE_NEGATIVES_BY),
      **_TRAINING,
  }

  @property
  def deep_units(self) -> Tuple[int, ...]:
    """`hidden_units` as integers."""
    units = _unit_widths(self.hidden_units)
    if units is None:
      raise ValueError(f'Hyper-parameter hidden_units: expected '
                       f'{_UNIT_WIDTHS.text}, got {self.hidden_units!r}')
    return units


def _cast(name: str, value: Any, kind: type) -> Any:
  """`value` as `kind`, refusing lossy or ambiguous conversions."""
  error = ValueError(f'Hyper-parameter {name}: expected {kind.__name__}, '
                     f'got {value!r}')
  if kind is bool:
    if isinstance(value, str):
      text = value.strip().lower()
      if text in ('1', 'true', 'yes'):
        return True
      if text in ('0', 'false', 'no'):
        return False
      raise error
    if value in (0, 1):
      return bool(value)
    raise error
  if kind is int:
    try:
      number = float(value)
    except (TypeError, ValueError):
      raise error from None
    if not number.is_integer():
      raise error
    return int(number)
  try:
    return kind(value)
  except (TypeError, ValueError):
    raise error from None
