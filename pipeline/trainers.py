"""Trainer components: the stock local Trainer, or Vertex AI Training.

`create_pipeline` builds every Trainer through `make_trainer`, so a runner
chooses where training happens (this machine / the orchestrator's pod, or a
Vertex AI Training job) without the pipeline wiring being copied.
"""

from typing import Any, Dict, Optional

from tfx import v1 as tfx


def make_trainer(component_id: str, run_fn: str, examples, transform_graph,
                 schema, custom_config: Dict[str, Any],
                 vertex_training: Optional[Dict[str, Any]] = None):
  """A Trainer component with id `component_id`.

  Args:
    component_id: the node id (e.g. 'RetrievalTrainer').
    run_fn: import path of the module's run_fn.
    examples / transform_graph / schema: the Trainer's input channels.
    custom_config: passed to run_fn as `fn_args.custom_config`.
    vertex_training: None trains with the stock Trainer; otherwise the
      settings of a Vertex AI Training job (see runner_vertex.py).
  """
  if vertex_training:
    raise NotImplementedError('Vertex AI Training is not wired yet')
  return tfx.components.Trainer(
      run_fn=run_fn,
      examples=examples,
      transform_graph=transform_graph,
      schema=schema,
      custom_config=custom_config,
  ).with_id(component_id)
