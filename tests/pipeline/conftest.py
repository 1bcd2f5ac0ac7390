"""Shared by the tests of `create_pipeline`'s wiring."""

import pytest

from pipeline import configs
from pipeline import pipeline as pipeline_lib


def components_by_id(**kwargs):
  """create_pipeline's components by id, with ranking and placeholder paths;
  `kwargs` override create_pipeline's arguments."""
  pipeline = pipeline_lib.create_pipeline(
      'p', '/tmp/root', '/tmp/data', configs.SCHEMA_PATH,
      configs.PREPROCESSING_FN, configs.RETRIEVAL_RUN_FN, '/tmp/serving',
      **{'ranking_run_fn': configs.RANKING_RUN_FN, **kwargs})
  return {c.id: c for c in pipeline.components}


@pytest.fixture
def pipeline_components():
  return components_by_id
