"""Hyper-parameters of the models, in one place.

The runner overrides any of them through the Trainer's `custom_config`
(`{'hparams': {'epochs': 3}}`), and `from_config` validates the overrides, so
a typo fails the run at once instead of being ignored.
"""

import dataclasses
from typing import Any, Mapping, Optional, Tuple


class _FromConfig:
  """`from_config`: the defaults with validated, type-cast overrides."""

  @classmethod
  def from_config(cls, overrides: Optional[Mapping[str, Any]] = None):
    """Defaults with `overrides` applied, each cast to its field's type."""
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
    return dataclasses.replace(cls(), **values)


@dataclasses.dataclass(frozen=True)
class RetrievalHParams(_FromConfig):
  """Two-tower retrieval model and its training.

  Defaults were chosen by measurement on ML-100K (benchmarks/README.md).

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
      movies are pushed down for appearing as negatives in many batches:
      MS Recommenders nDCG@10 on ML-100K fell from 0.426 to 0.078
      (`benchmarks.retrieval_sweep --trial logq_correction=false`).
    batch_size: training batch (with in-batch negatives, also their number).
      MS Recommenders nDCG@10 on ML-100K (benchmarks/results/
      retrieval_sweep_5.json): 64 / 128 / 256 gave 0.438 / 0.440 / 0.435
      against 0.426 for 512 at seed 42, but 128 gave 0.419 / 0.415 at
      seeds 1 / 2 (512: 0.429 / 0.407): a mean of 0.425 against 0.421,
      within the seed-to-seed noise, so 512 stays (fewer, cheaper steps).
    learning_rate: Adam's learning rate.
    optimizer: 'lazy_adam' (Adam, but a step updates only the embedding
      rows its batch looked up: its cost follows the batch, not the
      vocabulary), 'adam' (Keras' Adam: every row of every table at every
      step) or 'auto' (Adam below 20,000 users, lazy from there; see
      modules/optimizers.py for the figures).
    epochs: maximum epochs; early stopping may end training sooner. On
      ML-100K the best epoch is the 2nd, and the model then overfits fast:
      kept to the last epoch of 3 / 5 / 8 / 12, nDCG@10 0.423 / 0.398 /
      0.319 / 0.181 (benchmarks/README.md, "Where the gap to 0.48 is").
    early_stopping_patience: epochs without improvement of the eval split's
      top-100 accuracy before training stops (best weights restored).
    validation_examples: early stopping scores the first this many
      examples of the eval split (whole batches of 4,096; 0 for all):
      every one is scored against the whole catalogue at every epoch.
    user_history: give the query tower the mean embedding of the user's
      training movies (leave-one-out in training; see
      `retrieval_model.UserHistory`). With it, a linear tower
      (`hidden_units=0`) measured best: MS Recommenders nDCG@10 0.426 /
      0.429 / 0.407 for seeds 42 / 1 / 2, against 0.3985 for the previous
      default (hidden layer of 128, no history) and 0.382 / 0.411 for a
      linear tower without history (benchmarks/results/retrieval_sweep_*).
      On the pipeline's own time split the linear towers score lower
      (validation top-100 0.216-0.219 against 0.238-0.241 with a hidden
      layer): for next-movie quality set hidden_units=128 (README).
    history_max: the user history keeps each user's newest `history_max`
      training movies (0: all). A training step costs in proportion to its
      examples' summed history lengths, and heavy raters are also sampled
      in proportion to their ratings: on synthetic 1M the mean history
      seen per training example is 431 movies uncapped (162 on ML-100K),
      and 157 with a cap of 200, which took the retrieval Trainer from
      2,965 to 10,689 examples/s there (benchmarks/training_throughput.py).
      ml-25m's heaviest users have thousands of ratings. On ML-100K the cap
      changed nothing measurable: MS Recommenders nDCG@10 0.4262 with it,
      as without (benchmarks.retrieval_quality, seed 42).
    refit_extra_epochs: the refit (`RetrievalRefit`, `refit_fn`: a fresh
      model, same seed, fitted on train + eval after early stopping has
      picked the epoch count on eval) trains this many epochs beyond the
      best one; its data is larger by the eval split. See README, "What is
      evaluated and what is served". MS Recommenders nDCG@10 of retrieval
      alone on ML-100K, extra epochs 0 / 1 / 2: seed 42 0.429 / 0.455 /
      0.434, seed 1 0.4388 / 0.4393 / 0.4286, seed 2 (best epoch 1) 0.4097
      / 0.4427 / 0.4437; means 0.426 / 0.446 / 0.435
      (benchmarks/results/retrieval_sweep_6.json).
    refit_min_epochs: the refit trains at least this many epochs. On
      ML-100K the early-stopped run's best epoch is the 1st or the 2nd,
      decided by differences of top-100 accuracy (0.003) within its
      standard error, and the refit's quality follows: MS Recommenders
      nDCG@10 of retrieval alone, a best epoch of 1 at seed 42, refit for
      2 / 3 epochs: 0.4507 / 0.4705; three refit epochs measured best or
      level at every seed tried (docs/decisions.md, "Speed"). 0 for no
      floor; larger releases stop later and never meet it.
    refit_min_eval_share: the refit is skipped, and the early-stopped model
      served as it is, when the eval split holds less than this share of
      the ratings (by the files' sizes). At ml-25m the eval split is bounded
      to about 1M of 25M ratings (4%, `--max-eval-ratings`): a refit would
      double the training time (the RetrievalTrainer's 1,678 s per epoch,
      README "Scale") for 4% more data. ML-100K and ml-1m hold out 20%.
    ensemble_size: the refit trains this many models, with seeds `seed`,
      `seed + 1`, ..., and serves them as one two-tower model: their
      embeddings side by side, each scaled by 1/sqrt(n), so the score is
      the mean of the members' scores and there is still one index
      (`retrieval_model.TowerEnsemble`; the index's dimension is n times
      a member's). 1 serves the refit model alone. Seeds are the largest
      source of variance on ML-100K (MS Recommenders nDCG@10 of retrieval
      alone, single refit: 0.4520 / 0.4393 / 0.4427 at seeds 42 / 1 / 2);
      averaging removes much of it and lifts the mean: with 3 members,
      0.4764 / 0.4753 / 0.4687 (full pipeline runs; two-stage figures under
      the ranking model's `ensemble_size`). Cost: the refit's training
      time times n (ML-100K: RetrievalRefit 91 s for 3 members).
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
  seed: int = 42

  KIND = 'retrieval'


@dataclasses.dataclass(frozen=True)
class RankingHParams(_FromConfig):
  """The ranking model (rating prediction + relevance) and its training.

  Attributes:
    architecture: 'mlp' (a deep MLP over the embeddings) or 'dcn' (a deep
      & cross network, DCN-v2: explicit feature crosses before the MLP).
      Measured on ML-100K (benchmarks/README.md): MLP RMSE 0.939 and
      two-stage nDCG@10 0.442, DCN 0.945 and 0.439, so MLP is the default;
      with the rating biases, dot term, id_l2, dropout and no context
      features below: MLP 0.918 and 0.450, DCN 0.927 and 0.448.
    id_embedding_dim: size of the user-id and movie-id embeddings.
    feature_embedding_dim: size of the other categoricals' embeddings.
    cross_layers: DCN cross layers (stacked on the embeddings).
    cross_projection_dim: low-rank size of each cross layer's weight; 0 for
      full rank.
    hidden_units: widths of the deep layers, comma-separated ('256,64').
    dropout: dropout rate after each deep layer. 0.2 with the settings
      below: test RMSE 0.9174 against 0.9221 without (see the figures after
      `id_l2`).
    context_features: embed the rating's context (hour of day, day of week,
      timestamp). Off: test RMSE 0.9238 against 0.9326 with them (same
      other settings), and the eval split's relevance AUC 0.766 against
      0.743. A served pair gets the user's latest rating's context, not the
      time of the rating asked about, and the model used the timestamp to
      fit the training ratings (train RMSE fell to 0.80, eval rose).
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
      embeddings and the rating biases; 0 for none.
      Measured on the `tfrs` split (benchmarks/README.md; test RMSE of the
      served rating, the pipeline's own eval split for early stopping),
      changing one thing at a time from the former defaults (MLP, dropout
      0, context on; 0.9382):
        rating_biases                                   0.9377
        + id_l2 1e-5 / 1e-4 / 1e-3 / 1e-2    0.9377 / 0.9361 / 0.9340 / 0.9491
        + rating_dot (id_l2 1e-3)                       0.9326
        + context_features off                          0.9238
        + id_l2 3e-3                                    0.9221
        + dropout 0.2 (the defaults)                    0.9174
      The biases and the dot term alone were within noise (-0.0005 and
      -0.0014); the L2, the context and dropout carry the gain. The full
      ranking_quality.py run with these defaults: RMSE 0.9178 (MLP) and
      0.9266 (DCN); two-stage nDCG@10 0.4503 (MLP) and 0.4478 (DCN).
    optimizer: as the retrieval model's ('auto': Adam below 20,000 users,
      LazyAdam from there; modules/optimizers.py).
    id_l2_per_rating: with LazyAdam, `id_l2` (a penalty on whole tables,
      whose gradient touches every row at every step) is replaced by this
      weight times the mean squared norm of the rows each rating looks up
      (user and movie embeddings and biases). Measured on the `tfrs` split
      with LazyAdam: 0.01 / 0.03 / 0.1 / 0.3 / 1 / 3 gave test RMSE
      0.9283 / 0.9268 / 0.9266 / 0.9255 / 0.9259 / 0.9279 (with Adam and
      `id_l2`: 0.9174).
    relevance_weight: weight of the relevance task beside the rating task
      (0 trains a rating-only model). The relevance head learns whether a
      user rates a movie at all: positives are the ratings, negatives are
      catalogue movies drawn uniformly, `relevance_negatives` per rating.
      It orders the two-stage recommender's top K (see
      modules/ranking_model.py for why a predicted rating alone does not).
      A heavier relevance task helps both heads (the shared network learns
      more from the "which movies" signal than from the ratings alone).
      Measured on ML-100K (test RMSE on the `tfrs` split; MS Recommenders
      nDCG@10 of the two-stage top 10 with retrieval_weight 5 / 10, the
      same retrieval model, nDCG@10 0.4262 alone):
        weight 1 (former default)   RMSE 0.9174   nDCG 0.4417 / 0.4489
        weight 4                    RMSE 0.9130   nDCG 0.4477 / 0.4516
        weight 10                   RMSE 0.9157   nDCG 0.4567 / 0.4538
        weight 20 (default)         RMSE 0.9135   nDCG 0.4603 / 0.4570
        weight 50                   RMSE 0.9270   nDCG 0.4542 / 0.4540
      Ordered by the relevance head alone, the top 10 went from nDCG@10
      0.349 (weight 1) to 0.427 (weight 20), as good as retrieval alone.
      With weight 20, none of these helped (nDCG@10 at retrieval_weight 5 /
      10): 8 negatives 0.4550 / 0.4518; id embeddings of 64 0.4536 /
      0.4569; hidden units 512,128 0.4517 / 0.4521. Nor did giving the
      network the user's history (mean of the rated movies' embeddings:
      0.4449 / 0.4496 at weight 1; target attention over it, as in DIN:
      0.4446 / 0.4481), at 3-15x the training time; nor adding the
      predicted rating to the ranking score (any weight lowered nDCG).
    relevance_negatives: negatives per rating for the relevance task.
    relevance_negatives_by: 'uniform' (every catalogue movie alike) or
      'popularity' (in proportion to its ratings: harder negatives, closer
      to the retrieval model's candidates).
    batch_size, learning_rate: Adam on the summed losses.
    epochs: maximum epochs; early stopping on the eval split's RMSE may end
      training sooner (best weights restored). With relevance_weight 20,
      ML-100K's best epoch was the 18th-21st, so 40, not 20.
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
      MS Recommenders nDCG@10 of the two-stage top 10 on ML-100K, both
      models' refits single / ensembles of 3, full pipeline runs at seeds
      42 / 1 / 2: 0.4821 / 0.4711 / 0.4684 against 0.4925 / 0.4870 /
      0.4826. Averaged offline from three single-model runs, the ensemble of
      three retrieval models alone gave a mean of 0.483, of three ranking
      models alone 0.482, of both 0.4934 (benchmarks/README.md, "Built
      (seventh round)"). Cost: RankingRefit 286 s for 3 members on ML-100K,
      about 3 times the single refit.
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
  seed: int = 42

  @property
  def deep_units(self) -> Tuple[int, ...]:
    """`hidden_units` as integers."""
    try:
      units = tuple(int(u) for u in self.hidden_units.split(',') if u.strip())
    except ValueError:
      raise ValueError(f'hidden_units: expected comma-separated integers, '
                       f'got {self.hidden_units!r}') from None
    if any(u < 1 for u in units):
      raise ValueError(f'hidden_units must be positive, got '
                       f'{self.hidden_units!r}')
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
