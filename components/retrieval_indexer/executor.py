"""Executor of RetrievalIndexer: reads history and catalogue, embeds the
catalogue with the candidate tower, saves the servable."""

import time
from typing import Any, Dict, List, Tuple

from absl import logging
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components import examples_io
from components.retrieval_indexer import spec
from modules import features, retrieval_export


def _value(example: tf.train.Example, key: str):
  feature = example.features.feature.get(key)
  if feature is None:
    return None
  kind = feature.WhichOneof('kind')
  values = getattr(feature, kind).value if kind else []
  return values[0] if values else None


def read_catalogue(movies: types.Artifact) -> Tuple[List[bytes], List[bytes],
                                                    List[bytes]]:
  """(serialized examples, ids, titles) of every movie in the catalogue."""
  serialized, ids, titles = [], [], []
  for record in examples_io.records(movies, 'catalog').as_numpy_iterator():
    example = tf.train.Example.FromString(record)
    serialized.append(record)
    ids.append(_value(example, features.MOVIE_ID))
    titles.append(_value(example, features.TITLE) or b'')
  return serialized, ids, titles


def _seen(ratings: types.Artifact, split: str, movie_rows: Dict[bytes, int]
         ) -> Dict[bytes, List[int]]:
  """User id -> catalogue rows of the movies they rated in `split`."""
  columns = examples_io.read_string_features(
      ratings, split, (features.USER_ID, features.MOVIE_ID))
  seen: Dict[bytes, List[int]] = {}
  for user, movie in zip(columns[features.USER_ID],
                         columns[features.MOVIE_ID]):
    row = movie_rows.get(movie.encode('utf-8'))
    if row is not None:
      seen.setdefault(user.encode('utf-8'), []).append(row)
  return seen


def read_history(ratings: types.Artifact, movie_rows: Dict[bytes, int]
                ) -> Tuple[List[bytes], List[bytes], List[List[int]],
                           List[List[int]]]:
  """Per user in the train split: ids, query Examples, and the catalogue
  rows they rated in train and in eval.

  A user's query Example carries their features and the time of their
  latest training rating (the time context of a serving request).
  """
  latest: Dict[bytes, Tuple[int, Dict[str, object]]] = {}
  seen: Dict[bytes, List[int]] = {}
  for record in examples_io.records(ratings, 'train').as_numpy_iterator():
    example = tf.train.Example.FromString(record)
    user_id = _value(example, features.USER_ID)
    movie_id = _value(example, features.MOVIE_ID)
    timestamp = _value(example, features.TIMESTAMP) or 0
    if movie_id in movie_rows:
      seen.setdefault(user_id, []).append(movie_rows[movie_id])
    if user_id not in latest or timestamp >= latest[user_id][0]:
      latest[user_id] = (timestamp, {
          key: _value(example, key)
          for key in retrieval_export.QUERY_FEATURES})
  user_ids = sorted(latest)
  examples = [retrieval_export.user_example(u, latest[u][1])
              for u in user_ids]
  eval_seen = _seen(ratings, 'eval', movie_rows)
  return (user_ids, examples,
          [sorted(set(seen.get(u, []))) for u in user_ids],
          [sorted(set(eval_seen.get(u, []))) for u in user_ids])


class Executor(base_executor.BaseExecutor):
  """Builds and saves the retrieval servable."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    started = time.time()
    top_k = exec_properties.get(spec.TOP_K_KEY)
    if top_k is None:
      top_k = spec.DEFAULT_TOP_K
    exclude_seen = exec_properties.get(spec.EXCLUDE_SEEN_KEY)
    exclude_seen = True if exclude_seen is None else bool(exclude_seen)
    if top_k < 1:
      raise ValueError(f'{spec.TOP_K_KEY} must be at least 1, got {top_k}')
    model = artifact_utils.get_single_instance(input_dict[spec.MODEL_KEY])
    ratings = artifact_utils.get_single_instance(input_dict[spec.RATINGS_KEY])
    movies = artifact_utils.get_single_instance(input_dict[spec.MOVIES_KEY])
    servable = artifact_utils.get_single_instance(
        output_dict[spec.SERVABLE_KEY])

    towers = tf.saved_model.load(path_utils.serving_model_path(model.uri))
    movie_examples, movie_ids, titles = read_catalogue(movies)
    movie_rows = {m: i for i, m in enumerate(movie_ids)}
    user_ids, user_examples, train_seen, eval_seen = read_history(
        ratings, movie_rows)
    embeddings = retrieval_export.embed_catalogue(towers, movie_examples)
    module = retrieval_export.RetrievalServable(
        towers, movie_ids, titles, embeddings, user_ids, user_examples,
        train_seen, eval_seen, top_k=top_k, exclude_seen=exclude_seen)
    export_dir = path_utils.serving_model_path(servable.uri)
    retrieval_export.save(module, export_dir)
    logging.info(
        'RetrievalIndexer: %d movies indexed, %d users, top %d%s, saved to '
        '%s in %.1fs', len(movie_ids), len(user_ids), min(top_k,
                                                          len(movie_ids)),
        ', seen movies excluded' if exclude_seen else '', export_dir,
        time.time() - started)
