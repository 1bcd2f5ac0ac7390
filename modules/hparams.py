"""Hyper-parameters of the models, in one place.

The runner overrides any of them through the Trainer's `custom_config`
(`{'hparams': {'epochs': 3}}`), and `from_config` validates the overrides, so
a typo fails the run at once instead of being ignored.
"""

import dataclasses
from typing import Any, Mapping, Optional


@dataclasses.dataclass(frozen=True)
class RetrievalHParams:
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
    logq_correction: subtract log(sampling probability) of each in-batch
      candidate (popularity correction of the in-batch softmax).
    batch_size: training batch, also the number of in-batch negatives.
    learning_rate: Adam's learning rate.
    epochs: maximum epochs; early stopping may end training sooner.
    early_stopping_patience: epochs without improvement of the eval split's
      top-100 accuracy before training stops (best weights restored).
    seed: for weight initialisation and shuffling.
  """
  embedding_dim: int = 64
  id_embedding_dim: int = 64
  feature_embedding_dim: int = 8
  hidden_units: int = 128
  normalize: bool = True
  temperature: float = 0.1
  candidate_bias: bool = True
  logq_correction: bool = True
  batch_size: int = 512
  learning_rate: float = 0.003
  epochs: int = 30
  early_stopping_patience: int = 3
  seed: int = 42

  @classmethod
  def from_config(cls, overrides: Optional[Mapping[str, Any]] = None
                 ) -> 'RetrievalHParams':
    """Defaults with `overrides` applied, each cast to its field's type."""
    overrides = dict(overrides or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
      raise ValueError(f'Unknown retrieval hyper-parameters {unknown}; '
                       f'known: {sorted(fields)}')
    values = {}
    for name, value in overrides.items():
      kind = type(getattr(cls(), name))
      values[name] = _cast(name, value, kind)
    return dataclasses.replace(cls(), **values)


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
