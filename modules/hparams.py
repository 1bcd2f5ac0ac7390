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
    l2: weight decay on the embeddings' rows in use.
    logq_correction: subtract log(sampling probability) of each in-batch
      candidate (popularity correction of the in-batch softmax).
    batch_size: training batch, also the number of in-batch negatives.
    learning_rate: Adam's learning rate.
    epochs: maximum epochs; early stopping may end training sooner.
    early_stopping_patience: epochs without improvement of the eval split's
      top-100 accuracy before training stops (best weights restored).
    top_k: candidates the exported servable returns per user.
    seed: for weight initialisation and shuffling.
  """
  embedding_dim: int = 64
  id_embedding_dim: int = 64
  feature_embedding_dim: int = 8
  hidden_units: int = 128
  normalize: bool = True
  temperature: float = 0.05
  l2: float = 0.0
  logq_correction: bool = True
  batch_size: int = 512
  learning_rate: float = 0.003
  epochs: int = 30
  early_stopping_patience: int = 3
  top_k: int = 100
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
      if kind is bool and isinstance(value, str):
        value = value.strip().lower() in ('1', 'true', 'yes')
      try:
        values[name] = kind(value)
      except (TypeError, ValueError):
        raise ValueError(f'Hyper-parameter {name}: expected {kind.__name__}, '
                         f'got {value!r}') from None
    return dataclasses.replace(cls(), **values)
