"""Executor of RetrievalIndexer: reads history and catalogue, embeds the
catalogue with the candidate tower, saves the servable; with a ScaNN index,
measures its recall against brute force."""

import time
from typing import Any, Dict, List, Sequence, Tuple

from absl import logging
import numpy as np
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components import examples_io
from components.retrieval_indexer import spec
from modules import features, retrieval_export, retrieval_index

# Custom properties of the servable artifact (ML Metadata).
INDEX_PROPERTY = 'index'
INDEX_RECALL_PROPERTY = 'index_recall_at_k'
INDEX_RECALL_QUERIES_PROPERTY = 'index_recall_queries'
# Users whose queries measure a ScaNN index against brute force.
RECALL_QUERIES = 1000
# Serialized ratings per parsing step.
_READ_BATCH = 8192


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


def read_history(ratings: types.Artifact, movie_rows: Dict[bytes, int],
                 query_splits: Sequence[str] = ('train',)
                ) -> Tuple[List[bytes], List[bytes], List[List[int]],
                           List[List[int]]]:
  """Per user of the `query_splits`: ids, query Examples, and the catalogue
  rows they rated in train and in eval (`read_histories` for one set)."""
  return read_histories(ratings, movie_rows, [query_splits])[0]


def read_histories(ratings: types.Artifact, movie_rows: Dict[bytes, int],
                   query_split_sets: Sequence[Sequence[str]]
                  ) -> List[Tuple[List[bytes], List[bytes], List[List[int]],
                                  List[List[int]]]]:
  """For each set of `query_split_sets`, per user of those splits: ids,
  query Examples, and the catalogue rows they rated in train and in eval.
  The ratings are read once, whatever the number of sets.

  A user's query Example carries their features and the time of their
  latest rating in the set's splits (the time context of a serving
  request): the train split for a model trained on it, train and eval for
  one refit on both.

  Ratings are parsed a batch at a time (ids and time only, vectorised);
  only each user's latest record is kept whole and parsed at the end, so
  the cost per rating is a few dictionary operations, not a proto parse.
  """
  spec_ = {features.USER_ID: tf.io.FixedLenFeature([], tf.string),
           features.MOVIE_ID: tf.io.FixedLenFeature([], tf.string),
           features.TIMESTAMP: tf.io.FixedLenFeature([], tf.int64,
                                                     default_value=0)}
  sets = [tuple(splits) for splits in query_split_sets]
  latest: List[Dict[bytes, Tuple[int, bytes]]] = [{} for _ in sets]
  # Catalogue rows each user rated, per split: train (excluded everywhere)
  # and eval (excluded when serving), gathered in the same pass.
  seen: Dict[str, Dict[bytes, List[int]]] = {'train': {}, 'eval': {}}
  for split in sorted(set().union(*sets) | set(seen)):
    kept = [table for table, splits in zip(latest, sets) if split in splits]
    dataset = examples_io.records(ratings, split).batch(_READ_BATCH).map(
        lambda records: (records, tf.io.parse_example(records, spec_)))
    for records, batch in dataset.as_numpy_iterator():
      for record, user_id, movie_id, timestamp in zip(
          records, batch[features.USER_ID], batch[features.MOVIE_ID],
          batch[features.TIMESTAMP].tolist()):
        if split in seen:
          row = movie_rows.get(movie_id)
          if row is not None:
            seen[split].setdefault(user_id, []).append(row)
        for table in kept:
          previous = table.get(user_id)
          if previous is None or timestamp >= previous[0]:
            table[user_id] = (timestamp, record)
  results = []
  for table in latest:
    user_ids = sorted(table)
    examples = []
    for user_id in user_ids:
      example = tf.train.Example.FromString(table[user_id][1])
      examples.append(retrieval_export.user_example(user_id, {
          key: _value(example, key)
          for key in retrieval_export.QUERY_FEATURES}))
    results.append((user_ids, examples,
                    [sorted(set(seen['train'].get(u, []))) for u in user_ids],
                    [sorted(set(seen['eval'].get(u, []))) for u in user_ids]))
  return results


def index_recall(servable: retrieval_export.RetrievalServable,
                 user_examples: List[bytes], embeddings: np.ndarray,
                 queries: int = RECALL_QUERIES) -> Tuple[float, int]:
  """(recall@K of the servable's ScaNN index against brute force, number
  of queries): the query embeddings of up to `queries` users, evenly
  spread, over the whole catalogue, nothing excluded."""
  count = min(queries, len(user_examples))
  picked = np.unique(np.linspace(0, len(user_examples) - 1, count).astype(
      int))
  query = servable.towers.signatures['query_embedding'](
      examples=tf.constant([user_examples[i] for i in picked]))['embedding']
  _, found = servable.scann_index.top_k(query)
  k = int(found.shape[1])
  exact = [tf.math.top_k(tf.matmul(query[i:i + 64], embeddings,
                                   transpose_b=True), k=k).indices.numpy()
           for i in range(0, len(picked), 64)]
  return (retrieval_index.recall_at_k(found.numpy(), np.concatenate(exact)),
          len(picked))


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
    index = exec_properties.get(spec.INDEX_KEY) or retrieval_index.BRUTE_FORCE
    retrieval_index.check_index(index)
    if index == retrieval_index.SCANN:
      retrieval_index.scann_ops()  # Fails now, naming what to install.
    model = artifact_utils.get_single_instance(input_dict[spec.MODEL_KEY])
    ratings = artifact_utils.get_single_instance(input_dict[spec.RATINGS_KEY])
    movies = artifact_utils.get_single_instance(input_dict[spec.MOVIES_KEY])
    servable = artifact_utils.get_single_instance(
        output_dict[spec.SERVABLE_KEY])

    movie_examples, movie_ids, titles = read_catalogue(movies)
    movie_rows = {m: i for i, m in enumerate(movie_ids)}

    def build(towers_dir: str, history):
      towers = tf.saved_model.load(towers_dir)
      user_ids, user_examples, train_seen, eval_seen = history
      embeddings = retrieval_export.embed_catalogue(towers, movie_examples)
      return retrieval_export.RetrievalServable(
          towers, movie_ids, titles, embeddings, user_ids, user_examples,
          train_seen, eval_seen, top_k=top_k, exclude_seen=exclude_seen,
          index=index), user_examples, embeddings

    # With the early-stopped towers beside their refit on train + eval (the
    # pipeline's default), the servable gets both: the refit to serve, the
    # early-stopped one as the eval model for the RetrievalEvaluator, which
    # must measure towers that have not seen the eval split.
    eval_model = input_dict.get(spec.EVAL_MODEL_KEY)
    refit = bool(eval_model)
    if refit:
      served_history, evaluated_history = read_histories(
          ratings, movie_rows, [('train', 'eval'), ('train',)])
      evaluated, _, _ = build(
          path_utils.serving_model_path(
              artifact_utils.get_single_instance(eval_model).uri),
          evaluated_history)
      retrieval_export.save(evaluated,
                            path_utils.eval_model_dir(servable.uri))
      del evaluated, evaluated_history
    else:
      served_history = read_history(ratings, movie_rows)
    module, user_examples, embeddings = build(
        path_utils.serving_model_path(model.uri), served_history)
    servable.set_string_custom_property(INDEX_PROPERTY, index)
    recall_note = ''
    if index == retrieval_index.SCANN and user_examples:
      recall, queries = index_recall(module, user_examples, embeddings)
      servable.set_float_custom_property(INDEX_RECALL_PROPERTY, recall)
      servable.set_int_custom_property(INDEX_RECALL_QUERIES_PROPERTY,
                                       queries)
      recall_note = (f', recall@{min(top_k, len(movie_ids))} against brute '
                     f'force {recall:.4f} over {queries} users')
    export_dir = path_utils.serving_model_path(servable.uri)
    retrieval_export.save(module, export_dir)
    logging.info(
        'RetrievalIndexer: %d movies indexed (%s%s), %d users, top %d%s, '
        'saved to %s%s in %.1fs', len(movie_ids), index, recall_note,
        len(user_examples), min(top_k, len(movie_ids)),
        ', seen movies excluded' if exclude_seen else '', export_dir,
        ' (refit towers; the early-stopped ones as the eval model)'
        if refit else '', time.time() - started)
