"""Pipeline configuration: names and defaults in one place.

Runners read these as defaults for their flags and pass explicit values to
`pipeline.create_pipeline`, which reads no globals.
"""

import os

PIPELINE_NAME = 'movielens-tfx'

# Module code is referenced by import path from the installed package, so
# Kubeflow/Vertex containers need no local module file.
PREPROCESSING_FN = 'modules.preprocessing.preprocessing_fn'
RETRIEVAL_RUN_FN = 'modules.retrieval_trainer.run_fn'
RANKING_RUN_FN = 'modules.ranking_trainer.run_fn'
RETRIEVAL_REFIT_FN = 'modules.retrieval_trainer.refit_fn'
RANKING_REFIT_FN = 'modules.ranking_trainer.refit_fn'

# The curated schema of the ratings examples (see pipeline/schema/README.md),
# one per raw layout (`movielens.layout`): releases differ in demographics,
# rating scale, occupations and genres. SCHEMA_PATH is ml-100k's.
SCHEMA_DIR = os.path.join(os.path.dirname(__file__), 'schema')
SCHEMA_PATH = os.path.join(SCHEMA_DIR, 'schema.pbtxt')
SCHEMA_FILES = {
    'ml-100k': 'schema.pbtxt',
    'ml-1m': 'schema.ml-1m.pbtxt',
    'ml-25m': 'schema.ml-25m.pbtxt',  # ml-20m, ml-25m, ml-latest
}


def schema_path(data_dir: str) -> str:
  """The curated schema for the raw release in `data_dir`, by its layout.

  A folder without a known layout gets ml-100k's: the ExampleGen then
  stops the run with a message naming the files it looked for.
  """
  from movielens import layout  # pylint: disable=g-import-not-at-top
  try:
    name = layout.detect_layout(data_dir).name
  except layout.RawDataError:
    return SCHEMA_PATH
  return os.path.join(SCHEMA_DIR, SCHEMA_FILES[name])

DEFAULT_DATA_DIR = 'data/ml-100k'
DEFAULT_OUTPUT_DIR = 'outputs'
EVAL_FRACTION = 0.2
# Eval is held out for a sample of users beyond this many ratings (0: all
# users always); see components/movielens_example_gen/ingest.py.
MAX_EVAL_RATINGS = 1_000_000
RETRIEVAL_TOP_K = 100
# The retrieval servable's index (modules/retrieval_index.py): exact brute
# force, or approximate ScaNN (optional dependency; needs ScaNN's ops where
# the servable is loaded).
RETRIEVAL_INDEX = 'brute_force'
RETRIEVAL_INDEXES = ('brute_force', 'scann')
# Blessing of the retrieval model (recall@100 on the eval split).
MIN_LIFT_OVER_POPULARITY = 0.0
MAX_REGRESSION = 0.01
# Blessing of the ranking model (TFMA, RMSE on the eval split). A constant
# prediction of the mean rating has an RMSE of about 1.13 on ML-100K.
MAX_RMSE = 1.1
MAX_RMSE_INCREASE = 0.01
RECOMMENDER_TOP_K = 10


def pipeline_root(output_dir: str) -> str:
  """Where TFX writes artifacts: <output-dir>/pipeline/<name>."""
  return os.path.join(output_dir, 'pipeline', PIPELINE_NAME)


def metadata_path(output_dir: str) -> str:
  """The SQLite ML Metadata store of local runs."""
  return os.path.join(output_dir, 'metadata', f'{PIPELINE_NAME}.sqlite')


def serving_dir(output_dir: str) -> str:
  """Where blessed servables are pushed: <output-dir>/serving/<model>/<v>/."""
  return os.path.join(output_dir, 'serving')
