"""MovieLensExampleGen: raw MovieLens files to validated tf.Examples."""

from typing import Optional

from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx import types
from tfx.types import standard_artifacts

from components.movielens_example_gen import driver, executor, spec


class MovieLensExampleGen(base_beam_component.BaseBeamComponent):
  """Reads a raw MovieLens release and emits two Examples channels.

  Outputs:
    ratings: one example per rating, with the user's and the movie's features
      joined on (see `modules.features`), split 'train'/'eval' per user by
      time (the newest `eval_fraction` of each user's ratings are 'eval').
    movies: the whole catalogue, one example per movie, split 'catalog'.

  Runs on Beam (set `beam_pipeline_args` on the pipeline), so the same
  component scales out on Dataflow, Flink or Spark. Any bad raw line (wrong
  field count, rating outside the release's scale, unknown movie or user,
  wrong encoding) fails the run with a report naming file, line number and
  field, and nothing is published.

  Reads every layout of `movielens.layout`, detected from the folder's
  files: ml-100k, ml-1m and the CSV layout of ml-20m/ml-25m. Features a
  release lacks (demographics in ml-20m/25m) are absent from the examples.
  """

  SPEC_CLASS = spec.MovieLensExampleGenSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
  DRIVER_CLASS = driver.Driver

  def __init__(self, input_base: str,
               eval_fraction: Optional[float] = None,
               max_eval_ratings: Optional[int] = None):
    """Constructs the component.

    Args:
      input_base: folder (local or any filesystem TFX reads, e.g. gs://)
        holding one raw MovieLens release, e.g. the ml-100k files u.data,
        u.item and u.user, or ml-25m's ratings.csv and movies.csv.
      eval_fraction: share of each user's newest ratings held out for eval,
        in (0, 1); default 0.2.
      max_eval_ratings: bound on the eval split's size (0: none; default
        1,000,000): where the newest `eval_fraction` of every user's ratings
        would be more, only a hash-chosen sample of users is held out, so
        that eval has about this many ratings, and the other users' ratings
        all go to train.
    """
    if eval_fraction is not None and not 0.0 < eval_fraction < 1.0:
      raise ValueError(
          f'eval_fraction must be in (0, 1), got {eval_fraction!r}')
    if max_eval_ratings is not None and max_eval_ratings < 0:
      raise ValueError(f'max_eval_ratings must be >= 0 (0 for no bound), got '
                       f'{max_eval_ratings!r}')
    super().__init__(spec.MovieLensExampleGenSpec(
        input_base=input_base,
        eval_fraction=eval_fraction,
        max_eval_ratings=max_eval_ratings,
        ratings=types.Channel(type=standard_artifacts.Examples),
        movies=types.Channel(type=standard_artifacts.Examples)))
