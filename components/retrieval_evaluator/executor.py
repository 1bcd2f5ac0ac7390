"""RetrievalEvaluator executor: reads the ratings and the catalogue, asks the
servable(s) for top-K lists, computes the metrics (`metrics`), decides the
blessing (`blessing`) and writes both outputs."""

import collections
import dataclasses
import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from absl import logging
import numpy as np
import tensorflow as tf
from tfx import types
from tfx.components.evaluator import constants
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import io_utils, json_utils, path_utils

from components import examples_io
from components.retrieval_evaluator import blessing, metrics, spec
from modules import features

# Users per call of the serving signature.
SERVING_BATCH_SIZE = 256
# Serialized examples parsed per step when reading the ratings.
# Slack when checking that scores are sorted best first.
_SCORE_ORDER_TOLERANCE = 1e-6


@dataclasses.dataclass
class EvaluationData:
  """What every ranker is evaluated on.

  Attributes:
    relevant: user -> the movies of the user's eval ratings (every eval
      rating counts, whatever its value); only users with eval ratings.
    seen: user -> the movies of the user's train ratings.
    train_counts: movie -> number of train ratings.
    catalog: every catalogue movie id, sorted.
    train_ratings: number of train ratings.
    eval_ratings: number of eval ratings.
  """

  relevant: Dict[str, Set[str]]
  seen: Dict[str, Set[str]]
  train_counts: Mapping[str, int]
  catalog: List[str]
  train_ratings: int
  eval_ratings: int

  @property
  def users(self) -> List[str]:
    """The evaluated users, sorted."""
    return sorted(self.relevant)

  def counts(self) -> Dict[str, int]:
    return {
        'users_evaluated': len(self.relevant),
        'eval_ratings': self.eval_ratings,
        'train_ratings': self.train_ratings,
        'catalog_size': len(self.catalog),
        # Users with eval but no train ratings: the servable's cold-start
        # path, and popularity excludes nothing for them.
        'cold_start_users': sum(1 for user in self.relevant
                                if user not in self.seen),
    }


@dataclasses.dataclass
class RankerResult:
  """One ranker's top-K lists and metrics."""

  rankings: Dict[str, List[str]]
  metrics: Dict[str, float]
  k: int
  # How many listed movies the user had rated in train; the servable
  # contract says 0 (seen movies are excluded), popularity is 0 by design.
  train_movies_in_top_k: int


class Executor(base_executor.BaseExecutor):
  """Evaluates the retrieval servable and writes evaluation and blessing."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    """Evaluates `model` (and `baseline_model`) against popularity.

    Args:
      input_dict: MODEL_KEY, EXAMPLES_KEY, MOVIES_KEY -> one artifact each;
        BASELINE_MODEL_KEY -> zero or one Model (absent or empty on the first
        run).
      output_dict: EVALUATION_KEY -> one ModelEvaluation, BLESSING_KEY -> one
        ModelBlessing.
      exec_properties: METRIC_NAMES_KEY (JSON list), BLESSING_METRIC_KEY,
        MIN_LIFT_OVER_POPULARITY_KEY, MIN_VALUE_KEY, MAX_REGRESSION_KEY; each
        optional (unset takes the default).

    Raises:
      ValueError: an exec property is invalid; an input lacks a split or a
        feature; a servable breaks its contract or returns fewer than the
        deepest metric's k movies per user.
      FileNotFoundError: a split has no files, or a model no SavedModel.
    """
    self._log_startup(input_dict, output_dict, exec_properties)
    specs = metrics.parse_metric_names(_metric_names(exec_properties))
    names = [metric_spec.name for metric_spec in specs]
    thresholds = blessing.validate_thresholds(
        names,
        exec_properties.get(spec.BLESSING_METRIC_KEY),
        exec_properties.get(spec.MIN_LIFT_OVER_POPULARITY_KEY),
        exec_properties.get(spec.MIN_VALUE_KEY),
        exec_properties.get(spec.MAX_REGRESSION_KEY))
    depth = metrics.max_depth(specs)

    model = artifact_utils.get_single_instance(input_dict[spec.MODEL_KEY])
    baseline_model = _optional_single(input_dict.get(spec.BASELINE_MODEL_KEY))
    data = load_evaluation_data(
        artifact_utils.get_single_instance(input_dict[spec.EXAMPLES_KEY]),
        artifact_utils.get_single_instance(input_dict[spec.MOVIES_KEY]))
    if not data.relevant:
      raise ValueError('The eval split has no ratings, so there is nothing to '
                       'evaluate.')
    logging.info('RetrievalEvaluator: %d users, %d eval ratings, %d movies.',
                 len(data.relevant), data.eval_ratings, len(data.catalog))

    model_result = evaluate_servable(model, data, specs, 'model')
    popularity_result = evaluate_popularity(data, specs)
    baseline_result = (
        evaluate_servable(baseline_model, data, specs, 'baseline model')
        if baseline_model is not None else None)

    decision = blessing.decide(
        model_result.metrics, popularity_result.metrics, thresholds,
        baseline_result.metrics if baseline_result else None)
    report = build_report(data, names, thresholds, decision, model,
                          model_result, popularity_result, baseline_model,
                          baseline_result)

    evaluation = artifact_utils.get_single_instance(
        output_dict[spec.EVALUATION_KEY])
    io_utils.write_string_file(
        os.path.join(evaluation.uri, spec.METRICS_FILE_NAME),
        json.dumps(report, indent=2))
    blessing_artifact = artifact_utils.get_single_instance(
        output_dict[spec.BLESSING_KEY])
    write_blessing(blessing_artifact, decision, model, baseline_model,
                   exec_properties.get('current_component_id'))

    summary = format_summary(report)
    logging.info('%s', summary)
    # Printed too: the local runner shows it at the end of a run.
    print(summary)


# ------------------------------------------------------------------- inputs


def _metric_names(exec_properties: Mapping[str, Any]) -> List[str]:
  """Decodes METRIC_NAMES_KEY; unset or 'null' gives the defaults."""
  value = exec_properties.get(spec.METRIC_NAMES_KEY)
  if value is None:
    return list(metrics.DEFAULT_METRIC_NAMES)
  try:
    names = json_utils.loads(value)
  except (TypeError, ValueError) as error:
    raise ValueError(
        f'Exec property {spec.METRIC_NAMES_KEY!r} must be a JSON-encoded '
        f'list of metric names, got {value!r}.') from error
  return list(metrics.DEFAULT_METRIC_NAMES) if names is None else names


def _optional_single(
    artifacts: Optional[Sequence[types.Artifact]]) -> Optional[types.Artifact]:
  """The one artifact of an optional channel; None when absent or empty."""
  if not artifacts:
    return None
  if len(artifacts) > 1:
    raise ValueError(
        f'There can be only one baseline model, got {len(artifacts)}.')
  return artifacts[0]


def load_evaluation_data(examples: types.Artifact,
                         movies: types.Artifact) -> EvaluationData:
  """Reads the train and eval ratings and the catalogue."""
  keys = (features.USER_ID, features.MOVIE_ID)
  # Folded a batch at a time; a movie id string is kept once (interned),
  # however many users rated the movie.
  movie_ids: Dict[str, str] = {}
  seen = collections.defaultdict(set)
  train_counts = collections.Counter()
  train_ratings = 0
  for batch in examples_io.iter_string_features(examples, spec.TRAIN_SPLIT,
                                                keys):
    for user, movie in zip(batch[features.USER_ID], batch[features.MOVIE_ID]):
      seen[user].add(movie_ids.setdefault(movie, movie))
    train_counts.update(batch[features.MOVIE_ID])
    train_ratings += len(batch[features.MOVIE_ID])

  relevant = collections.defaultdict(set)
  eval_ratings = 0
  for batch in examples_io.iter_string_features(examples, spec.EVAL_SPLIT,
                                                keys):
    for user, movie in zip(batch[features.USER_ID], batch[features.MOVIE_ID]):
      relevant[user].add(movie_ids.setdefault(movie, movie))
    eval_ratings += len(batch[features.MOVIE_ID])

  catalog = examples_io.read_string_features(movies, spec.CATALOG_SPLIT,
                                 (features.MOVIE_ID,))[features.MOVIE_ID]
  return EvaluationData(
      relevant=dict(relevant), seen=dict(seen), train_counts=train_counts,
      catalog=sorted(set(catalog)),
      train_ratings=train_ratings, eval_ratings=eval_ratings)


# ------------------------------------------------------------------ rankers


def load_servable(model: types.Artifact) -> Tuple[Any, Any]:
  """Loads the model's eval SavedModel and checks its signature.

  The eval model (`Format-TFMA`, which the RetrievalIndexer builds from
  the early-stopped towers when the served ones were refit on train + eval)
  has not seen the eval split; without one, the serving model
  (`Format-Serving`) is evaluated (`tfx.utils.path_utils.eval_model_path`).

  Returns:
    (the loaded object, which must stay referenced while the signature is
    used; its 'evaluation' concrete function if it has one, else
    'serving_default').

  Raises:
    FileNotFoundError: no SavedModel at the model's serving path.
    ValueError: the signature, its 'user_id' input or its 'movie_ids'
      output is missing.
  """
  path = path_utils.eval_model_path(
      model.uri, path_utils.is_old_model_artifact(model))
  if not fileio.exists(os.path.join(path, 'saved_model.pb')):
    raise FileNotFoundError(
        f'No SavedModel at {path}: RetrievalEvaluator expects the retrieval '
        'servable in the Model artifact\'s Format-TFMA (eval model) or '
        'Format-Serving directory.')
  loaded = tf.saved_model.load(path)
  name = (spec.EVALUATION_SIGNATURE
          if spec.EVALUATION_SIGNATURE in loaded.signatures
          else spec.SERVING_SIGNATURE)
  if name not in loaded.signatures:
    raise ValueError(
        f'The SavedModel at {path} has signatures '
        f'{sorted(loaded.signatures)}, not {spec.SERVING_SIGNATURE!r}.')
  signature = loaded.signatures[name]
  inputs = signature.structured_input_signature[1]
  outputs = signature.structured_outputs
  if spec.USER_ID_INPUT not in inputs or spec.MOVIE_IDS_OUTPUT not in outputs:
    raise ValueError(
        f'The {spec.SERVING_SIGNATURE!r} signature of {path} takes '
        f'{sorted(inputs)} and returns {sorted(outputs)}; the retrieval '
        f'contract is input {spec.USER_ID_INPUT!r} (tf.string [batch]) and '
        f'outputs {spec.MOVIE_IDS_OUTPUT!r}, \'movie_titles\', '
        f'{spec.SCORES_OUTPUT!r} ([batch, K]).')
  return loaded, signature


def rank_with_servable(signature: Any, users: Sequence[str], depth: int,
                       label: str = 'model') -> Tuple[Dict[str, List[str]],
                                                      int]:
  """Asks the serving signature for every user's top K, in batches.

  Args:
    signature: the 'serving_default' concrete function.
    users: the users to rank for.
    depth: the deepest metric's k; lists are cut to it.
    label: names the ranker in messages.

  Returns:
    (user -> movie ids, best first, at most `depth`; the servable's K).

  Raises:
    ValueError: the output is not [batch, K], or K < depth.
  """
  rankings = {}
  k = None
  unsorted_rows = 0
  for start in range(0, len(users), SERVING_BATCH_SIZE):
    batch = list(users[start:start + SERVING_BATCH_SIZE])
    outputs = signature(**{spec.USER_ID_INPUT: tf.constant(batch)})
    movie_ids = outputs[spec.MOVIE_IDS_OUTPUT].numpy()
    if movie_ids.ndim != 2 or movie_ids.shape[0] != len(batch):
      raise ValueError(
          f'The {label} returned {spec.MOVIE_IDS_OUTPUT!r} of shape '
          f'{list(movie_ids.shape)} for {len(batch)} users; the contract is '
          '[batch, K].')
    k = movie_ids.shape[1]
    if k < depth:
      raise ValueError(
          f'The {label} returns top-{k} lists, but the deepest metric needs '
          f'top-{depth}. Export the servable with K >= {depth}, or pass '
          f'metric_names whose depths are at most {k}.')
    if spec.SCORES_OUTPUT in outputs:
      scores = outputs[spec.SCORES_OUTPUT].numpy()[:, :depth]
      # Padding slots score -inf (and -inf - -inf is NaN): compare only
      # finite neighbours.
      finite = np.isfinite(scores)
      with np.errstate(invalid='ignore'):
        rises = np.diff(scores, axis=1) > _SCORE_ORDER_TOLERANCE
      rises &= finite[:, 1:] & finite[:, :-1]
      unsorted_rows += int(np.sum(np.any(rises, axis=1)))
    for user, row in zip(batch, movie_ids[:, :depth]):
      # Empty ids would be padding; they are never relevant.
      rankings[user] = [movie.decode('utf-8') for movie in row if movie]
  if unsorted_rows:
    logging.warning(
        'The %s returned %d of %d lists not sorted by score (best first); '
        'the metrics use the order of %r as returned.', label, unsorted_rows,
        len(users), spec.MOVIE_IDS_OUTPUT)
  return rankings, k if k is not None else 0


def _train_movies_in_top_k(rankings: Mapping[str, Sequence[str]],
                           seen: Mapping[str, Set[str]]) -> int:
  return sum(sum(1 for movie in ranked if movie in seen.get(user, ()))
             for user, ranked in rankings.items())


def evaluate_servable(model: types.Artifact, data: EvaluationData,
                      specs: Sequence[metrics.MetricSpec],
                      label: str) -> RankerResult:
  """Ranks every evaluated user with a servable and computes the metrics."""
  loaded, signature = load_servable(model)
  depth = metrics.max_depth(specs)
  rankings, k = rank_with_servable(signature, data.users, depth, label)
  del loaded, signature  # Frees the model before the next one loads.
  in_train = _train_movies_in_top_k(rankings, data.seen)
  if in_train:
    logging.warning(
        'The %s recommends %d movies that users rated in train; the '
        'contract says they are excluded, so its metrics are understated.',
        label, in_train)
  return RankerResult(
      rankings=rankings,
      metrics=metrics.evaluate(rankings, data.relevant, data.catalog, specs),
      k=k, train_movies_in_top_k=in_train)


def evaluate_popularity(data: EvaluationData,
                        specs: Sequence[metrics.MetricSpec]) -> RankerResult:
  """The most-popular baseline, with the same users, depth and metrics."""
  depth = metrics.max_depth(specs)
  order = metrics.popularity_order(data.train_counts, data.catalog)
  rankings = metrics.most_popular(order, data.seen, data.users, depth)
  return RankerResult(
      rankings=rankings,
      metrics=metrics.evaluate(rankings, data.relevant, data.catalog, specs),
      k=depth, train_movies_in_top_k=0)


# ------------------------------------------------------------------ outputs


def build_report(data: EvaluationData, metric_names: Sequence[str],
                 thresholds: blessing.Thresholds,
                 decision: blessing.Decision, model: types.Artifact,
                 model_result: RankerResult, popularity_result: RankerResult,
                 baseline_model: Optional[types.Artifact] = None,
                 baseline_result: Optional[RankerResult] = None
                 ) -> Dict[str, Any]:
  """The content of metrics.json (see the component's docs for the layout)."""

  def servable_entry(artifact: types.Artifact,
                     result: RankerResult) -> Dict[str, Any]:
    return {
        'uri': artifact.uri,
        'id': artifact.id,
        'k': result.k,
        'train_movies_in_top_k': result.train_movies_in_top_k,
        'metrics': result.metrics,
    }

  return {
      'metric_names': list(metric_names),
      'counts': data.counts(),
      'model': servable_entry(model, model_result),
      'popularity': {'k': popularity_result.k,
                     'metrics': popularity_result.metrics},
      'baseline_model': (servable_entry(baseline_model, baseline_result)
                         if baseline_result is not None else None),
      'lift_over_popularity': {
          name: metrics.relative_lift(model_result.metrics[name],
                                      popularity_result.metrics[name])
          for name in metric_names
      },
      'change_from_baseline_model': ({
          name: model_result.metrics[name] - baseline_result.metrics[name]
          for name in metric_names
      } if baseline_result is not None else None),
      'thresholds': thresholds.as_dict(),
      'decision': decision.as_dict(),
  }


def write_blessing(artifact: types.Artifact, decision: blessing.Decision,
                   model: types.Artifact,
                   baseline_model: Optional[types.Artifact] = None,
                   component_id: Optional[str] = None) -> None:
  """Writes the blessing exactly as TFX's Evaluator does.

  An empty BLESSED or NOT_BLESSED file in the artifact's directory, and the
  custom properties 'blessed' (1 or 0: Pusher checks it, and
  LatestBlessedModelStrategy with 'current_model_id' finds the latest
  blessed model), 'current_model', 'current_model_id', 'baseline_model' and
  'baseline_model_id' (when there was one), plus 'blessing_message' with the
  reasons.
  """
  artifact.set_string_custom_property(
      constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY, model.uri)
  artifact.set_int_custom_property(
      constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
  if baseline_model is not None:
    artifact.set_string_custom_property(
        constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY, baseline_model.uri)
    artifact.set_int_custom_property(
        constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY, baseline_model.id)
  if component_id:
    artifact.set_string_custom_property('component_id', component_id)
  artifact.set_string_custom_property(
      constants.ARTIFACT_PROPERTY_BLESSING_MESSAGE_KEY, decision.message())
  if decision.blessed:
    file_name, value = constants.BLESSED_FILE_NAME, constants.BLESSED_VALUE
  else:
    file_name, value = (constants.NOT_BLESSED_FILE_NAME,
                        constants.NOT_BLESSED_VALUE)
  io_utils.write_string_file(os.path.join(artifact.uri, file_name), '')
  artifact.set_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY,
                                   value)
  logging.info('Blessing result %s written to %s.', decision.blessed,
               artifact.uri)


def format_summary(report: Mapping[str, Any]) -> str:
  """A readable table of model vs popularity (vs baseline model), then the
  decision with its reasons."""
  counts = report['counts']
  has_baseline = report['baseline_model'] is not None
  lines = [
      f"RetrievalEvaluator: {counts['users_evaluated']} users with "
      f"{counts['eval_ratings']} eval ratings, catalogue of "
      f"{counts['catalog_size']} movies.",
  ]
  header = ['metric', 'model', 'popularity', 'lift']
  if has_baseline:
    header += ['baseline', 'change']
  rows = [header]
  for name in report['metric_names']:
    lift = report['lift_over_popularity'][name]
    row = [
        name,
        f"{report['model']['metrics'][name]:.4f}",
        f"{report['popularity']['metrics'][name]:.4f}",
        'n/a' if lift is None else f'{lift:+.1%}',
    ]
    if has_baseline:
      row += [f"{report['baseline_model']['metrics'][name]:.4f}",
              f"{report['change_from_baseline_model'][name]:+.4f}"]
    rows.append(row)
  widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
  for row in rows:
    lines.append('  '.join(
        [row[0].ljust(widths[0])] +
        [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
    ).rstrip())
  decision = report['decision']
  lines.append(
      f"Decision on {report['thresholds']['blessing_metric']}: "
      f"{'BLESSED' if decision['blessed'] else 'NOT BLESSED'}")
  lines.extend(f'  {reason}' for reason in decision['reasons'])
  return '\n'.join(lines)
