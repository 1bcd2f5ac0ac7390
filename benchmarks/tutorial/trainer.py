"""Trainer of the tutorial pipeline: the TFRS two-tower retrieval model on
ids only, as in the TFX/TFRS "recommenders" tutorial.

Each tower is a StringLookup over Transform's vocabulary and a 32-d
Embedding (one extra row for unknown ids). The task is
`tfrs.tasks.Retrieval` (in-batch softmax) with FactorizedTopK metrics over
every movie title of the vocabulary, computed on the eval split each epoch
(not on the training batches, which the notebooks also do at about twice
the step's cost). Adagrad, learning rate 0.1, batches of 4096.

The export is the tutorial's: a BruteForce index over the titles, called
once so that Keras traces it, saved with one signature:

  serving_default
    input   user_id       tf.string  [None]
    outputs scores        tf.float32 [None, 10]  dot products, descending
            movie_titles  tf.string  [None, 10]
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

from typing import Dict, List  # noqa: E402

import tensorflow as tf  # noqa: E402
import tensorflow_recommenders as tfrs  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
from tfx import v1 as tfx  # noqa: E402
from tfx_bsl.public import tfxio  # noqa: E402

from benchmarks.tutorial import features  # noqa: E402
# The same tracing fix as the pipeline's models, so the anchor pays no cost
# that ours does not (modules/keras_tracing.py).
from modules import keras_tracing  # noqa: E402,F401

EMBEDDING_DIMENSION = 32
LEARNING_RATE = 0.1
BATCH_SIZE = 4096
# The export's answers per user (BruteForce's default).
TOP_K = 10
# Custom config key of the number of epochs (set by the pipeline).
EPOCHS_KEY = 'epochs'
SEED = 42


def _tower(vocabulary: List[str]) -> tf.keras.Model:
  """String ids [batch] -> embeddings [batch, EMBEDDING_DIMENSION]."""
  return tf.keras.Sequential([
      tf.keras.layers.StringLookup(vocabulary=vocabulary, mask_token=None),
      tf.keras.layers.Embedding(len(vocabulary) + 1, EMBEDDING_DIMENSION),
  ])


class TwoTowerModel(tfrs.Model):
  """User tower, movie-title tower, retrieval task."""

  def __init__(self, user_ids: List[str], movie_titles: List[str]):
    """Builds the towers over the vocabularies; `movie_titles` are also the
    candidates of the FactorizedTopK metrics."""
    super().__init__()
    self.user_model = _tower(user_ids)
    self.movie_model = _tower(movie_titles)
    candidates = tf.data.Dataset.from_tensor_slices(movie_titles).batch(128)
    self.task = tfrs.tasks.Retrieval(metrics=tfrs.metrics.FactorizedTopK(
        candidates=candidates.map(self.movie_model)))

  def compute_loss(self, inputs: Dict[str, tf.Tensor],
                   training: bool = False) -> tf.Tensor:
    # Transform's outputs are [batch, 1]; the towers take [batch].
    user_embeddings = self.user_model(tf.reshape(inputs[features.USER_ID],
                                                 [-1]))
    movie_embeddings = self.movie_model(
        tf.reshape(inputs[features.MOVIE_TITLE], [-1]))
    # The top-K metrics are the evaluation's (the tutorials also compute
    # them on every training batch, which would double the anchor's step
    # time and flatter the ratio).
    return self.task(user_embeddings, movie_embeddings,
                     compute_metrics=not training)


def _vocabulary(transform_output: tft.TFTransformOutput,
                key: str) -> List[str]:
  return [value.decode() for value in transform_output.vocabulary_by_name(
      features.vocabulary_name(key))]


def _dataset(file_pattern: List[str],
             data_accessor: tfx.components.DataAccessor,
             transform_output: tft.TFTransformOutput) -> tf.data.Dataset:
  """One pass over transformed examples, shuffled, in batches of
  BATCH_SIZE."""
  return data_accessor.tf_dataset_factory(
      file_pattern,
      tfxio.TensorFlowDatasetOptions(batch_size=BATCH_SIZE, num_epochs=1,
                                     shuffle_seed=SEED),
      transform_output.transformed_metadata.schema)


def export(model: TwoTowerModel, movie_titles: List[str],
           serving_dir: str) -> None:
  """Saves a BruteForce index over `movie_titles` with a `serving_default`
  signature (user ids -> top TOP_K titles and scores)."""
  titles = tf.data.Dataset.from_tensor_slices(movie_titles).batch(100)
  index = tfrs.layers.factorized_top_k.BruteForce(model.user_model, k=TOP_K)
  index.index_from_dataset(tf.data.Dataset.zip(
      (titles, titles.map(model.movie_model))))
  # Called once, as the tutorial does, so that Keras builds the layer.
  index(tf.constant(['1']))

  @tf.function(input_signature=[
      tf.TensorSpec([None], tf.string, name=features.USER_ID)])
  def serve(user_ids):
    scores, top_titles = index(user_ids)
    return {'scores': scores, 'movie_titles': top_titles}

  index.save(serving_dir, save_format='tf',
             signatures={'serving_default': serve})


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  """Trains for `custom_config['epochs']` epochs, evaluating on the eval
  split after each, and exports the index to `fn_args.serving_model_dir`."""
  tf.keras.utils.set_random_seed(SEED)
  transform_output = tft.TFTransformOutput(fn_args.transform_output)
  user_ids = _vocabulary(transform_output, features.USER_ID)
  movie_titles = _vocabulary(transform_output, features.MOVIE_TITLE)
  train = _dataset(fn_args.train_files, fn_args.data_accessor,
                   transform_output)
  evaluation = _dataset(fn_args.eval_files, fn_args.data_accessor,
                        transform_output)
  model = TwoTowerModel(user_ids, movie_titles)
  model.compile(optimizer=tf.keras.optimizers.Adagrad(
      learning_rate=LEARNING_RATE))
  model.fit(train, epochs=int(fn_args.custom_config[EPOCHS_KEY]),
            validation_data=evaluation, verbose=2)
  export(model, movie_titles, fn_args.serving_model_dir)
