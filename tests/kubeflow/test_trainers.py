"""pipeline/trainers.py: the stock Trainer, or one that runs run_fn as a
Vertex AI Training job (custom_config merged with the Vertex keys)."""

import json

import pytest
from tfx import v1 as tfx
from tfx.types import standard_artifacts

from pipeline import configs, trainers

pytestmark = pytest.mark.unit

VERTEX = tfx.extensions.google_cloud_ai_platform
IMAGE = 'europe-west4-docker.pkg.dev/p/r/movielens-tfx:1'


def settings(**overrides):
  values = dict(project='p', region='europe-west4', image_uri=IMAGE)
  values.update(overrides)
  return trainers.vertex_training_settings(**values)


def make(vertex_training=None, custom_config=None):
  channel = tfx.dsl.Channel
  return trainers.make_trainer(
      'RetrievalTrainer', configs.RETRIEVAL_RUN_FN,
      examples=channel(type=standard_artifacts.Examples),
      transform_graph=channel(type=standard_artifacts.TransformGraph),
      schema=channel(type=standard_artifacts.Schema),
      custom_config=custom_config or {'hparams': {'epochs': 2}},
      vertex_training=vertex_training)


def test_without_vertex_training_the_stock_trainer():
  trainer = make()
  assert type(trainer) is tfx.components.Trainer  # pylint: disable=unidiomatic-typecheck
  assert trainer.id == 'RetrievalTrainer'
  assert trainer.exec_properties['run_fn'] == configs.RETRIEVAL_RUN_FN
  assert json.loads(trainer.exec_properties['custom_config']) == {
      'hparams': {'epochs': 2}}


def test_vertex_trainer_keeps_the_components_config():
  trainer = make(settings(machine_type='a2-highgpu-1g',
                          accelerator_type='NVIDIA_TESLA_A100',
                          accelerator_count=1, service_account='t@p.iam'))
  assert isinstance(trainer, VERTEX.Trainer)
  assert trainer.id == 'RetrievalTrainer'
  assert trainer.exec_properties['run_fn'] == configs.RETRIEVAL_RUN_FN
  assert json.loads(trainer.exec_properties['custom_config']) == {
      'hparams': {'epochs': 2},
      VERTEX.ENABLE_VERTEX_KEY: True,
      VERTEX.VERTEX_REGION_KEY: 'europe-west4',
      VERTEX.TRAINING_ARGS_KEY: {
          'project': 'p',
          'job_spec': {
              'worker_pool_specs': [{
                  'machine_spec': {'machine_type': 'a2-highgpu-1g',
                                   'accelerator_type': 'NVIDIA_TESLA_A100',
                                   'accelerator_count': 1},
                  'replica_count': 1,
                  'container_spec': {'image_uri': IMAGE},
              }],
              'service_account': 't@p.iam',
          },
      },
  }


def test_cpu_training_has_no_accelerator():
  config = trainers.vertex_custom_config(settings(), {})
  (pool,) = config[VERTEX.TRAINING_ARGS_KEY]['job_spec']['worker_pool_specs']
  assert pool['machine_spec'] == {'machine_type': 'n1-standard-4'}
  assert 'service_account' not in config[VERTEX.TRAINING_ARGS_KEY]['job_spec']


@pytest.mark.parametrize('overrides, message', [
    ({'project': ''}, r"vertex_training needs \['project'\]"),
    ({'accelerator_type': 'NVIDIA_TESLA_T4'},
     'needs an accelerator_count of at least 1'),
    ({'accelerator_count': 2}, 'needs an accelerator_type'),
])
def test_bad_settings(overrides, message):
  with pytest.raises(ValueError, match=message):
    settings(**overrides)


def test_unknown_settings_and_clashing_config():
  with pytest.raises(ValueError, match=r"Unknown vertex_training settings "
                     r"\['gpus'\]"):
    make({**settings(), 'gpus': 2})
  with pytest.raises(ValueError, match='custom_config already sets'):
    make(settings(), {VERTEX.VERTEX_REGION_KEY: 'us-east1'})
