"""The evaluators' regression baseline: the latest blessed model that is not
the candidate itself.

TFX's LatestBlessedModelStrategy returns the latest blessed model, whichever
it is. On a rerun with nothing changed the cached Trainer hands the
evaluator the very model the first run blessed, and the resolver now names
that model as its own baseline: the evaluator's inputs differ from the first
run's, so it misses the cache, scores the model against itself, blesses it
again, and the builder and pushers downstream run again for nothing.
Comparing a model with itself proves nothing; the meaningful baseline is
the model that served before this one. With it, a rerun resolves the same
inputs as the run before and every component is reused from the cache.

KFP v2 compiles only TFX's own strategy (and the Kubeflow runner drops the
baseline resolvers: pipeline/kubeflow.py), so `create_pipeline` uses this
one on the local runner only.
"""

from typing import Dict, List, Optional

from tfx import types
from tfx.dsl.input_resolution.strategies import latest_blessed_model_strategy

import ml_metadata as mlmd

# Resolver input holding the model under evaluation in this run.
CANDIDATE_KEY = 'candidate'
MODEL_KEY = 'model'
BLESSING_KEY = 'model_blessing'


class PreviousBlessedModelStrategy(
    latest_blessed_model_strategy.LatestBlessedModelStrategy):
  """The latest blessed `model` other than the `candidate`.

  Inputs: `model` (every model of the producer), `model_blessing` (every
  blessing of the evaluator) and `candidate` (this run's model). Outputs
  the same keys; `model` and `model_blessing` are empty when no other
  model was ever blessed.
  """

  def resolve_artifacts(
      self, store: mlmd.MetadataStore,
      input_dict: Dict[str, List[types.Artifact]]
  ) -> Optional[Dict[str, List[types.Artifact]]]:
    candidate_ids = {a.id for a in input_dict.get(CANDIDATE_KEY, [])}
    models = [m for m in input_dict.get(MODEL_KEY, [])
              if m.id not in candidate_ids]
    result = self._resolve(
        {MODEL_KEY: models,
         BLESSING_KEY: list(input_dict.get(BLESSING_KEY, []))},
        MODEL_KEY, BLESSING_KEY)
    result[CANDIDATE_KEY] = list(input_dict.get(CANDIDATE_KEY, []))
    return result
