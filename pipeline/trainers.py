"""Trainer components: the stock local Trainer, or Vertex AI Training.

`create_pipeline` builds every Trainer through `make_trainer`, so a runner
chooses where training happens (this machine / the orchestrator's pod, or a
Vertex AI Training job) without the pipeline wiring being copied.

With Vertex AI Training the Trainer step only submits a Vertex CustomJob and
waits for it; the job runs the same `run_fn` (by import path) in the image
named by `image_uri`, so that image must hold this project (see Dockerfile).
"""

from typing import Any, Dict, Optional

from tfx import v1 as tfx

# Keys of the `vertex_training` settings (see `vertex_training_settings`).
PROJECT = 'project'
REGION = 'region'
IMAGE_URI = 'image_uri'
MACHINE_TYPE = 'machine_type'
ACCELERATOR_TYPE = 'accelerator_type'
ACCELERATOR_COUNT = 'accelerator_count'
SERVICE_ACCOUNT = 'service_account'
_REQUIRED = (PROJECT, REGION, IMAGE_URI)
_KNOWN = _REQUIRED + (MACHINE_TYPE, ACCELERATOR_TYPE, ACCELERATOR_COUNT,
                      SERVICE_ACCOUNT)

DEFAULT_MACHINE_TYPE = 'n1-standard-4'

_vertex = tfx.extensions.google_cloud_ai_platform


def vertex_training_settings(
    project: str,
    region: str,
    image_uri: str,
    machine_type: str = DEFAULT_MACHINE_TYPE,
    accelerator_type: Optional[str] = None,
    accelerator_count: int = 0,
    service_account: Optional[str] = None) -> Dict[str, Any]:
  """The `vertex_training` argument of `create_pipeline`, checked.

  Args:
    project: GCP project the training jobs run in.
    region: Vertex AI region, e.g. 'europe-west4'.
    image_uri: the container that runs `run_fn` (this project's image).
    machine_type: Compute Engine machine type of the single worker.
    accelerator_type: e.g. 'NVIDIA_TESLA_T4'; None trains on CPU.
    accelerator_count: accelerators attached to the worker (>= 1 when
      accelerator_type is set; 0 without one).
    service_account: the job's service account; None uses Vertex's default.

  Returns:
    A plain dict (it travels through `create_pipeline` unchanged).

  Raises:
    ValueError: a setting is missing or inconsistent.
  """
  settings = {
      PROJECT: project,
      REGION: region,
      IMAGE_URI: image_uri,
      MACHINE_TYPE: machine_type,
      ACCELERATOR_TYPE: accelerator_type,
      ACCELERATOR_COUNT: accelerator_count,
      SERVICE_ACCOUNT: service_account,
  }
  _check(settings)
  return settings


def _check(settings: Dict[str, Any]) -> None:
  unknown = sorted(set(settings) - set(_KNOWN))
  if unknown:
    raise ValueError(f'Unknown vertex_training settings {unknown}; known: '
                     f'{sorted(_KNOWN)}.')
  missing = [key for key in _REQUIRED if not settings.get(key)]
  if missing:
    raise ValueError(f'vertex_training needs {missing}: the project and '
                     'region of the job and the image that runs run_fn.')
  accelerator_type = settings.get(ACCELERATOR_TYPE)
  count = settings.get(ACCELERATOR_COUNT) or 0
  if accelerator_type and count < 1:
    raise ValueError(f'accelerator_type {accelerator_type!r} needs an '
                     f'accelerator_count of at least 1, got {count}.')
  if count and not accelerator_type:
    raise ValueError(f'accelerator_count {count} needs an accelerator_type '
                     "(e.g. 'NVIDIA_TESLA_T4').")


def vertex_custom_config(vertex_training: Dict[str, Any],
                         custom_config: Dict[str, Any]) -> Dict[str, Any]:
  """The Trainer's custom_config with the Vertex AI Training job added.

  The component's own keys (e.g. {'hparams': {...}}) are kept: TFX's Vertex
  Trainer passes the whole custom_config on to run_fn, which reads only its
  own keys.

  Args:
    vertex_training: settings from `vertex_training_settings`.
    custom_config: the component's custom_config.

  Returns:
    custom_config plus ENABLE_VERTEX_KEY, VERTEX_REGION_KEY and
    TRAINING_ARGS_KEY (the project and a CustomJob spec with one worker pool:
    machine, accelerator, image).

  Raises:
    ValueError: the settings are incomplete, or custom_config already uses
      one of the Vertex keys.
  """
  _check(vertex_training)
  clash = sorted({_vertex.ENABLE_VERTEX_KEY, _vertex.VERTEX_REGION_KEY,
                  _vertex.TRAINING_ARGS_KEY} & set(custom_config))
  if clash:
    raise ValueError(f'custom_config already sets {clash}, which Vertex AI '
                     'Training uses.')
  machine_spec = {'machine_type': vertex_training.get(MACHINE_TYPE) or
                                  DEFAULT_MACHINE_TYPE}
  if vertex_training.get(ACCELERATOR_TYPE):
    machine_spec['accelerator_type'] = vertex_training[ACCELERATOR_TYPE]
    machine_spec['accelerator_count'] = vertex_training[ACCELERATOR_COUNT]
  job_spec = {
      'worker_pool_specs': [{
          'machine_spec': machine_spec,
          'replica_count': 1,
          'container_spec': {'image_uri': vertex_training[IMAGE_URI]},
      }],
  }
  if vertex_training.get(SERVICE_ACCOUNT):
    job_spec['service_account'] = vertex_training[SERVICE_ACCOUNT]
  return {
      **custom_config,
      _vertex.ENABLE_VERTEX_KEY: True,
      _vertex.VERTEX_REGION_KEY: vertex_training[REGION],
      _vertex.TRAINING_ARGS_KEY: {
          'project': vertex_training[PROJECT],
          'job_spec': job_spec,
      },
  }


def make_trainer(component_id: str, run_fn: str, examples, transform_graph,
                 schema, custom_config: Dict[str, Any],
                 vertex_training: Optional[Dict[str, Any]] = None,
                 base_model=None):
  """A Trainer component with id `component_id`.

  Args:
    component_id: the node id (e.g. 'RetrievalTrainer').
    run_fn: import path of the module's run_fn.
    examples / transform_graph / schema / base_model: the Trainer's input
      channels (base_model optional: the refit Trainers read the
      early-stopped model's best epoch from it).
    custom_config: passed to run_fn as `fn_args.custom_config`.
    vertex_training: None trains with the stock Trainer; otherwise settings
      from `vertex_training_settings`, and the Trainer runs `run_fn` as a
      Vertex AI Training job.

  Raises:
    ValueError: vertex_training is incomplete or inconsistent.
  """
  if vertex_training:
    trainer_class = _vertex.Trainer
    custom_config = vertex_custom_config(vertex_training, custom_config)
  else:
    trainer_class = tfx.components.Trainer
  return trainer_class(
      run_fn=run_fn,
      examples=examples,
      transform_graph=transform_graph,
      schema=schema,
      base_model=base_model,
      custom_config=custom_config,
  ).with_id(component_id)
