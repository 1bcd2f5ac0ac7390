"""A client for the served models over TF Serving's gRPC API.

Works against real TF Serving and the local server (`serving.server`)
alike; it uses only `tensorflow-serving-api`'s `PredictionService`
(Predict, GetModelMetadata) and `ModelService` (GetModelStatus):

    from serving.client import ServingClient

    with ServingClient('127.0.0.1:8500', timeout=5) as client:
      for answer in client.recommend(['1', '2'], top_k=5):
        print(answer.user_id, [r.title for r in answer.items])
      client.rate(['1'], ['50'])             # [Rating(user_id='1', ...)]
      client.status('recommender')           # [VersionStatus(...)]
      client.metadata('recommender').signatures['serving_default']

Failures are raised as `ServingError` subclasses with a one-line message a
user can act on: `ServerUnreachableError`, `ModelNotFoundError`,
`ModelNotAvailableError`, `InvalidInputError`, `ServingTimeoutError`.

The command line at the end of this module is built on the same calls:
`python -m serving.client --help`.

Whether an id is known to a model is not part of the serving contracts, so
the client asks the model itself: our models answer every id they do not
know through one out-of-vocabulary path, the same as the empty id. A user
whose answer equals the empty id's (same movies, same scores) gets the
cold-start answer; a (user, movie) pair rated as (user, '') has a movie the
model does not know. The reference rows travel in the same Predict request,
so this works against any server with the contract, TF Serving included.
"""

import os
import sys

if __name__ == '__main__':
  # The command line: keep TensorFlow's start-up chatter (TensorFlow is
  # imported by the TF Serving protos; it runs nothing here) off the console.
  os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'
  import warnings
  warnings.simplefilter('ignore', FutureWarning)

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
from typing import (Dict, List, Mapping, Optional, Sequence,  # noqa: E402
                    Tuple)

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import get_model_metadata_pb2  # noqa: E402
from tensorflow_serving.apis import get_model_status_pb2  # noqa: E402
from tensorflow_serving.apis import model_pb2  # noqa: E402
from tensorflow_serving.apis import model_service_pb2_grpc  # noqa: E402
from tensorflow_serving.apis import predict_pb2  # noqa: E402
from tensorflow_serving.apis import prediction_service_pb2_grpc  # noqa: E402

DEFAULT_ADDRESS = '127.0.0.1:8500'
DEFAULT_TIMEOUT = 10.0  # Seconds per call.
DEFAULT_SIGNATURE = 'serving_default'
# The pushed models (`<output-dir>/serving/<name>/`), see serving/README.md.
RETRIEVAL = 'retrieval'
RANKING = 'ranking'
RECOMMENDER = 'recommender'
MODELS = (RETRIEVAL, RANKING, RECOMMENDER)
# Their serving contracts: input and output keys of `serving_default`.
USER_ID = 'user_id'
MOVIE_ID = 'movie_id'
MOVIE_IDS = 'movie_ids'
MOVIE_TITLES = 'movie_titles'
SCORES = 'scores'
RATINGS = 'ratings'  # Per movie, optional (the recommender has it).
RATING = 'rating'
# The id every model answers through its out-of-vocabulary path, as it
# answers any id it does not know.
UNKNOWN_ID = ''
# Answers within this of the unknown id's are that answer: the reference
# row is computed in the same batch, where only float rounding can differ.
_SAME_ANSWER = dict(rtol=1e-5, atol=1e-6)

_STATE_NAMES = dict(
    (v, k) for k, v in get_model_status_pb2.ModelVersionStatus.State.items())
_AVAILABLE = 'AVAILABLE'
_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
# TF Serving accepts messages up to 2 GiB; so does this client.
_CHANNEL_OPTIONS = (('grpc.max_receive_message_length', -1),
                    ('grpc.max_send_message_length', -1))


# --- Errors ------------------------------------------------------------------


class ServingError(Exception):
  """A serving call failed; `str(error)` is one line for the user."""

  def __init__(self, message: str,
               code: Optional[grpc.StatusCode] = None):
    super().__init__(' '.join(message.split()))
    self.code = code


class ServerUnreachableError(ServingError):
  """Nothing answers at the address (down, wrong host or port)."""


class ModelNotFoundError(ServingError):
  """The server does not know the model."""


class ModelNotAvailableError(ServingError):
  """The model is known but the version asked for is not being served
  (not loaded yet, failed to load, unloaded or never pushed)."""


class InvalidInputError(ServingError, ValueError):
  """The request does not fit the model's signature."""


class ServingTimeoutError(ServingError, TimeoutError):
  """No answer within the timeout."""


# --- Results -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Recommendation:
  movie_id: str
  title: str
  score: float  # What the list is ordered by.
  rating: Optional[float] = None  # Predicted rating, when the model has one.


@dataclasses.dataclass(frozen=True)
class UserRecommendations:
  """A user's recommendations, best first, and the version that made them.

  `cold_start`: the model does not know the user and gave the answer it
  gives every unknown user; None when the model cannot tell (it refuses
  the unknown id).
  """
  user_id: str
  items: List[Recommendation]
  model: str
  version: int
  cold_start: Optional[bool] = False


@dataclasses.dataclass(frozen=True)
class Rating:
  """A predicted rating; `unknown_user` / `unknown_movie`: the model does
  not know that id and rated it as any unknown one (None when the model
  cannot tell: it refuses the unknown id)."""
  user_id: str
  movie_id: str
  rating: float
  model: str
  version: int
  unknown_user: Optional[bool] = False
  unknown_movie: Optional[bool] = False


@dataclasses.dataclass(frozen=True)
class VersionStatus:
  """A version as GetModelStatus reports it."""
  version: int
  state: str  # AVAILABLE, LOADING, END, ...
  error_code: str = 'OK'
  error_message: str = ''


@dataclasses.dataclass(frozen=True)
class TensorInfo:
  dtype: str  # e.g. 'string', 'float32'
  shape: Optional[Tuple[Optional[int], ...]]  # None: unknown rank


@dataclasses.dataclass(frozen=True)
class SignatureInfo:
  name: str
  inputs: Dict[str, TensorInfo]
  outputs: Dict[str, TensorInfo]


@dataclasses.dataclass(frozen=True)
class ModelMetadata:
  model: str
  version: int
  signatures: Dict[str, SignatureInfo]  # TensorFlow's internal ones left out


@dataclasses.dataclass(frozen=True)
class Prediction:
  """A Predict answer: the output tensors and the version that computed
  them."""
  model: str
  version: int
  outputs: Dict[str, np.ndarray]  # strings as object arrays of bytes


def _tensor_info(info) -> TensorInfo:
  shape = None if info.tensor_shape.unknown_rank else tuple(
      None if d.size < 0 else d.size for d in info.tensor_shape.dim)
  return TensorInfo(tf.dtypes.as_dtype(info.dtype).name, shape)


def _text(value) -> str:
  return value.decode('utf-8', 'replace') if isinstance(value, bytes) else (
      str(value))


# --- The client --------------------------------------------------------------


class ServingClient:
  """Queries TF Serving (or `serving.server`) over gRPC.

  Args:
    address: `host:port` of the gRPC endpoint.
    timeout: seconds each call may take.
    channel: an existing gRPC channel to use instead (then `address` only
      names it in messages); it is not closed by `close()`.
  """

  def __init__(self, address: str = DEFAULT_ADDRESS,
               timeout: float = DEFAULT_TIMEOUT,
               channel: Optional[grpc.Channel] = None):
    if timeout <= 0:
      raise ValueError(f'timeout must be > 0 seconds, got {timeout}')
    self.address = address
    self.timeout = timeout
    self._own_channel = channel is None
    self._channel = channel or grpc.insecure_channel(
        address, options=_CHANNEL_OPTIONS)
    self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(
        self._channel)
    self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

  def close(self) -> None:
    if self._own_channel:
      self._channel.close()

  def __enter__(self) -> 'ServingClient':
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()

  # --- The serving contracts ---

  def recommend(self, user_ids: Sequence[str], model: str = RECOMMENDER,
                version: Optional[int] = None,
                top_k: Optional[int] = None) -> List[UserRecommendations]:
    """Recommendations for each user, best first.

    Args:
      user_ids: the users; an unknown id gets the model's answer for new
        users (`cold_start`).
      model: a model with the recommender contract (`recommender`, or
        `retrieval` for its 100 candidates).
      version: a served version; default the newest.
      top_k: keep the first k of each list; default all the model returns.

    Returns:
      One UserRecommendations per user id, in order. Padding the model
      returns when fewer movies are left (empty ids) is dropped.

    Raises:
      InvalidInputError: top_k is more than the K movies the model returns
        per user (besides the errors of `predict`).
    """
    user_ids = self._ids(user_ids, 'user id')
    if top_k is not None and top_k < 1:
      raise InvalidInputError(f'top_k must be at least 1, got {top_k}')
    # The last row is the unknown user's answer, to compare with.
    answer, compared = self._predict_with_reference(
        model, {USER_ID: user_ids}, {USER_ID: [UNKNOWN_ID]}, version)
    ids, titles, scores = (self._output(answer, name, 2) for name in (
        MOVIE_IDS, MOVIE_TITLES, SCORES))
    ratings = answer.outputs.get(RATINGS)
    if ratings is not None and ratings.shape != scores.shape:
      ratings = None  # Not the per-movie ratings of this contract.
    if top_k is not None and top_k > ids.shape[1]:
      raise InvalidInputError(
          f'model {answer.model!r} version {answer.version} returns '
          f'{ids.shape[1]} movies per user, fewer than the {top_k} asked '
          'for')
    results = []
    for row, user_id in enumerate(user_ids):
      items = [
          Recommendation(_text(ids[row, i]), _text(titles[row, i]),
                         float(scores[row, i]),
                         None if ratings is None else float(ratings[row, i]))
          for i in range(ids.shape[1]) if ids[row, i]]
      cold_start = bool(np.array_equal(ids[row], ids[-1]) and np.allclose(
          scores[row], scores[-1], **_SAME_ANSWER)) if compared else None
      results.append(UserRecommendations(user_id, items[:top_k],
                                         answer.model, answer.version,
                                         cold_start))
    return results

  def rate(self, user_ids: Sequence[str], movie_ids: Sequence[str],
           model: str = RANKING,
           version: Optional[int] = None) -> List[Rating]:
    """Predicted ratings of (user_ids[i], movie_ids[i]) pairs.

    One user with several movies, or several users with one movie, are
    paired with each of the others. Each pair is also rated with the
    unknown id in place of the user, then of the movie, in the same
    request: a rating equal to one of those marks that id unknown.
    """
    user_ids = self._ids(user_ids, 'user id')
    movie_ids = self._ids(movie_ids, 'movie id')
    if len(user_ids) == 1:
      user_ids = user_ids * len(movie_ids)
    elif len(movie_ids) == 1:
      movie_ids = movie_ids * len(user_ids)
    if len(user_ids) != len(movie_ids):
      raise InvalidInputError(
          f'{len(user_ids)} user ids and {len(movie_ids)} movie ids: give '
          'one of each per pair, or one user (or movie) for all')
    n = len(user_ids)
    unknown = [UNKNOWN_ID] * n
    # Rows n to 2n: each user with the unknown movie; 2n to 3n: the
    # unknown user with each movie.
    answer, compared = self._predict_with_reference(
        model, {USER_ID: user_ids, MOVIE_ID: movie_ids},
        {USER_ID: user_ids + unknown, MOVIE_ID: unknown + movie_ids},
        version)
    ratings = self._output(answer, RATING, 1)
    if compared:
      as_unknown_movie = [bool(b) for b in np.isclose(
          ratings[:n], ratings[n:2 * n], **_SAME_ANSWER)]
      as_unknown_user = [bool(b) for b in np.isclose(
          ratings[:n], ratings[2 * n:], **_SAME_ANSWER)]
    else:
      as_unknown_movie = as_unknown_user = [None] * n
    return [Rating(u, m, float(r), answer.model, answer.version,
                   user_unknown, movie_unknown)
            for u, m, r, user_unknown, movie_unknown in zip(
                user_ids, movie_ids, ratings[:n], as_unknown_user,
                as_unknown_movie)]

  # --- The APIs ---

  def predict(self, model: str, inputs: Mapping[str, object],
              version: Optional[int] = None,
              signature: str = DEFAULT_SIGNATURE,
              output_filter: Sequence[str] = ()) -> Prediction:
    """Calls Predict with `inputs` (name -> values, numpy-convertible;
    strings for tf.string inputs)."""
    request = predict_pb2.PredictRequest(
        model_spec=self._model_spec(model, version, signature),
        output_filter=list(output_filter))
    for name, values in inputs.items():
      array = np.asarray(values)
      if array.dtype.kind == 'U':  # Python strings: TensorFlow's tf.string.
        array = array.astype(object)
      try:
        request.inputs[name].CopyFrom(tf.make_tensor_proto(array))
      except (TypeError, ValueError) as e:
        raise InvalidInputError(f'input {name!r}: cannot send {values!r} '
                                f'({e})') from e
    response = self._call(self._predictions.Predict, request, model,
                          version)
    return Prediction(
        response.model_spec.name or model, response.model_spec.version.value,
        {name: tf.make_ndarray(proto)
         for name, proto in response.outputs.items()})

  def status(self, model: str,
             version: Optional[int] = None) -> List[VersionStatus]:
    """The model's versions (or the one asked for) and their states."""
    request = get_model_status_pb2.GetModelStatusRequest(
        model_spec=self._model_spec(model, version))
    response = self._call(self._models.GetModelStatus, request, model,
                          version)
    return [VersionStatus(s.version, _STATE_NAMES.get(s.state, str(s.state)),
                          _CODE_NAMES.get(s.status.error_code,
                                          str(s.status.error_code)),
                          s.status.error_message)
            for s in response.model_version_status]

  def metadata(self, model: str,
               version: Optional[int] = None) -> ModelMetadata:
    """The signatures of the version serving `model` (or of `version`)."""
    request = get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=self._model_spec(model, version),
        metadata_field=['signature_def'])
    response = self._call(self._predictions.GetModelMetadata, request, model,
                          version)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    if not response.metadata['signature_def'].Unpack(signature_map):
      raise ServingError(f'{self.address} sent metadata of an unexpected '
                         f'type for model {model!r}')
    signatures = {
        name: SignatureInfo(
            name,
            {k: _tensor_info(v) for k, v in sorted(s.inputs.items())},
            {k: _tensor_info(v) for k, v in sorted(s.outputs.items())})
        for name, s in sorted(signature_map.signature_def.items())
        if not name.startswith('__')}  # e.g. __saved_model_init_op
    return ModelMetadata(response.model_spec.name or model,
                         response.model_spec.version.value, signatures)

  # --- Helpers ---

  def _predict_with_reference(self, model: str,
                              inputs: Mapping[str, List[str]],
                              reference: Mapping[str, List[str]],
                              version: Optional[int]
                             ) -> Tuple[Prediction, bool]:
    """Predict on `inputs` with the `reference` rows appended to each input
    (see the module doc), and whether they were: a model that refuses them
    is asked again without, so that its answer or its own error comes
    back."""
    try:
      return self.predict(model, {k: v + reference[k]
                                  for k, v in inputs.items()},
                          version=version), True
    except (ServerUnreachableError, ServingTimeoutError, ModelNotFoundError,
            ModelNotAvailableError):
      raise
    except ServingError:
      return self.predict(model, inputs, version=version), False

  @staticmethod
  def _ids(ids: Sequence[str], what: str) -> List[str]:
    if isinstance(ids, (str, bytes)):
      ids = [ids]
    ids = [_text(i) for i in ids]
    if not ids:
      raise InvalidInputError(f'no {what} given')
    return ids

  @staticmethod
  def _model_spec(model: str, version: Optional[int],
                  signature: str = '') -> model_pb2.ModelSpec:
    if not model:
      raise InvalidInputError('no model name given')
    spec = model_pb2.ModelSpec(name=model, signature_name=signature)
    if version is not None:
      if version < 0:
        raise InvalidInputError(f'version must be >= 0, got {version}')
      spec.version.value = version
    return spec

  def _output(self, answer: Prediction, name: str, rank: int) -> np.ndarray:
    value = answer.outputs.get(name)
    if value is None or value.ndim != rank:
      raise ServingError(
          f'model {answer.model!r} version {answer.version} on '
          f'{self.address} does not answer as expected: output {name!r} '
          f'of rank {rank} missing (it returned '
          f'{", ".join(sorted(answer.outputs)) or "nothing"}); wrong '
          '--model?')
    return value

  def _call(self, method, request, model: str, version: Optional[int]):
    try:
      return method(request, timeout=self.timeout)
    except grpc.RpcError as e:
      raise self._error(e, model, version) from None

  def _error(self, error: grpc.RpcError, model: str,
             version: Optional[int]) -> ServingError:
    """A gRPC failure as the ServingError a user understands."""
    code = error.code()
    details = ' '.join((error.details() or '').split())
    if code == grpc.StatusCode.UNAVAILABLE:
      return ServerUnreachableError(
          f'cannot reach TF Serving at {self.address} '
          f'({_unreachable_reason(details)})', code)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
      return ServingTimeoutError(
          f'TF Serving at {self.address} did not answer within '
          f'{self.timeout:g} s (model {model!r})', code)
    if code == grpc.StatusCode.NOT_FOUND:
      return self._not_found(model, version, code)
    if code in (grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.FAILED_PRECONDITION):
      return InvalidInputError(
          f'model {model!r} on {self.address} refused the request: '
          f'{details}', code)
    return ServingError(f'TF Serving at {self.address} failed ({code.name}) '
                        f'for model {model!r}: {details}', code)

  def _not_found(self, model: str, version: Optional[int],
                 code: grpc.StatusCode) -> ServingError:
    """Tells an unknown model from a version not (yet) served, by asking
    for the model's status."""
    request = get_model_status_pb2.GetModelStatusRequest(
        model_spec=self._model_spec(model, None))
    try:
      response = self._models.GetModelStatus(request, timeout=self.timeout)
    except grpc.RpcError:
      return ModelNotFoundError(
          f'model {model!r} not found on {self.address}', code)
    versions = [(s.version, _STATE_NAMES.get(s.state, str(s.state)))
                for s in response.model_version_status]
    available = sorted(v for v, state in versions if state == _AVAILABLE)
    what = f'model {model!r}' + (
        '' if version is None else f' version {version}')
    if version is not None and available:
      return ModelNotAvailableError(
          f'{what} not available on {self.address} (serving version(s) '
          f'{", ".join(map(str, available))})', code)
    states = ', '.join(f'version {v}: {state}' for v, state in versions)
    return ModelNotAvailableError(
        f'{what} not available on {self.address} '
        f'({states or "no version loaded yet"})', code)


def _unreachable_reason(details: str) -> str:
  """The gist of gRPC's connection error, e.g. 'connection refused'."""
  lowered = details.lower()
  for needle, reason in (('connection refused', 'connection refused'),
                         ('dns resolution failed', 'unknown host'),
                         ('name or service not known', 'unknown host'),
                         ('no route to host', 'no route to host'),
                         ('connection reset', 'connection reset'),
                         ('timed out', 'connection timed out'),
                         ('socket closed', 'connection closed'),
                         ('failed to connect', 'cannot connect')):
    if needle in lowered:
      return reason
  return re.sub(r'\s+', ' ', details)[:200] or 'unavailable'


# --- Command line ------------------------------------------------------------
#
#     python -m serving.client recommend --user 1 --user 2 [--top 10]
#     python -m serving.client rate --user 1 --movie 50 [--movie 172 ...]
#     python -m serving.client status [--model recommender]
#     python -m serving.client metadata [--model recommender]
#
# Exit codes: 0; 1 for a failure (one line, `error: ...`, on stderr) and for
# `status` when no version of the model is AVAILABLE, so scripts can wait
# for a model with it; 2 for a bad command line (argparse's usage error);
# 130 on Ctrl-C.

# Movies per user that `recommend` shows without --top.
DEFAULT_TOP = 10
_DEFAULT_MODELS = {'recommend': RECOMMENDER,
                   'rate': RANKING,
                   'status': RECOMMENDER,
                   'metadata': RECOMMENDER}


def _positive_float(text: str) -> float:
  value = float(text)
  if value <= 0:
    raise argparse.ArgumentTypeError(f'must be > 0, got {text}')
  return value


def _non_negative_int(text: str) -> int:
  value = int(text)
  if value < 0:
    raise argparse.ArgumentTypeError(f'must be >= 0, got {text}')
  return value


def _positive_int(text: str) -> int:
  value = int(text)
  if value < 1:
    raise argparse.ArgumentTypeError(f'must be >= 1, got {text}')
  return value


def build_parser() -> argparse.ArgumentParser:
  common = argparse.ArgumentParser(add_help=False)
  common.add_argument('--address', default=DEFAULT_ADDRESS,
                      help='TF Serving gRPC endpoint, HOST:PORT (default '
                      '%(default)s)')
  common.add_argument('--model', default=None,
                      help='model name (default: recommender; ranking for '
                      'rate)')
  common.add_argument('--version', type=_non_negative_int, default=None,
                      help='model version (default: the newest served)')
  common.add_argument('--timeout', type=_positive_float,
                      default=DEFAULT_TIMEOUT,
                      help='seconds per call (default %(default)s)')
  common.add_argument('--json', action='store_true',
                      help='print JSON instead of text')

  parser = argparse.ArgumentParser(
      prog='python -m serving.client',
      description='Query the served MovieLens models over TF Serving\'s '
      'gRPC API (real TF Serving or python -m serving.server).')
  commands = parser.add_subparsers(dest='command', required=True,
                                   metavar='COMMAND')
  recommend = commands.add_parser(
      'recommend', parents=[common],
      help='top movies for one or more users')
  recommend.add_argument('--user', action='append', required=True,
                         metavar='USER_ID', help='a user id (repeatable)')
  recommend.add_argument('--top', type=_positive_int, default=None,
                         help=f'movies per user (default {DEFAULT_TOP}, or '
                         'all the model returns if fewer; more than it '
                         'returns is an error)')
  rate = commands.add_parser(
      'rate', parents=[common],
      help='predicted rating of (user, movie) pairs')
  rate.add_argument('--user', action='append', required=True,
                    metavar='USER_ID',
                    help='a user id (repeatable; one user is paired with '
                    'every movie)')
  rate.add_argument('--movie', action='append', required=True,
                    metavar='MOVIE_ID',
                    help='a movie id (repeatable; one movie is paired with '
                    'every user)')
  commands.add_parser('status', parents=[common],
                      help='versions of a model and their states')
  commands.add_parser('metadata', parents=[common],
                      help='signatures (inputs, outputs) of a model')
  return parser


def _shape(shape) -> str:
  if shape is None:
    return '[unknown rank]'
  return '[' + ', '.join('None' if d is None else str(d) for d in shape) + ']'


def _print_recommendations(answers: List[UserRecommendations]
                          ) -> None:
  for i, answer in enumerate(answers):
    if i:
      print()
    cold_start = ', unknown user: cold-start answer' if (
        answer.cold_start) else ''
    print(f'user {answer.user_id} ({answer.model} version '
          f'{answer.version}{cold_start}):')
    if not answer.items:
      print('  (no movie left to recommend)')
    id_width = max([len(r.movie_id) for r in answer.items] + [1])
    title_width = min(max([len(r.title) for r in answer.items] + [1]), 60)
    for rank, item in enumerate(answer.items, 1):
      rating = '' if item.rating is None else f'rating {item.rating:.2f}  '
      print(f'  {rank:>3}. {item.movie_id:<{id_width}}  '
            f'{item.title[:title_width]:<{title_width}}  {rating}'
            f'score {item.score:.4f}')


def _print_ratings(ratings: List[Rating]) -> None:
  for r in ratings:
    unknown = [what for what, is_unknown in (
        ('unknown user: cold start', r.unknown_user),
        ('unknown movie', r.unknown_movie)) if is_unknown]
    note = f'  [{", ".join(unknown)}]' if unknown else ''
    print(f'user {r.user_id}  movie {r.movie_id}  {r.rating:.3f}  '
          f'({r.model} version {r.version}){note}')


def _print_status(model: str,
                  statuses: List[VersionStatus]) -> None:
  for s in statuses:
    error = (f' ({s.error_code}: {s.error_message})'
             if s.error_code != 'OK' or s.error_message else '')
    print(f'{model} version {s.version}: {s.state}{error}')


def _print_metadata(metadata: ModelMetadata) -> None:
  print(f'{metadata.model} version {metadata.version}')
  for signature in metadata.signatures.values():
    print(f'  signature {signature.name}')
    for label, tensors in (('inputs', signature.inputs),
                           ('outputs', signature.outputs)):
      print(f'    {label}:')
      for name, info in tensors.items():
        print(f'      {name}: {info.dtype} {_shape(info.shape)}')


def _print_json(value) -> None:
  if isinstance(value, list):
    value = [dataclasses.asdict(v) for v in value]
  else:
    value = dataclasses.asdict(value)
  print(json.dumps(value, indent=2, ensure_ascii=False))


def run(args: argparse.Namespace) -> int:
  """Runs one parsed command; ServingError propagates."""
  model = args.model or _DEFAULT_MODELS[args.command]
  with ServingClient(args.address, args.timeout) as client:
    if args.command == 'recommend':
      result = client.recommend(args.user, model, args.version, args.top)
      if args.top is None:
        result = [dataclasses.replace(r, items=r.items[:DEFAULT_TOP])
                  for r in result]
      show = _print_recommendations
    elif args.command == 'rate':
      result = client.rate(args.user, args.movie, model, args.version)
      show = _print_ratings
    elif args.command == 'status':
      result = client.status(model, args.version)
      show = lambda statuses: _print_status(model, statuses)  # noqa: E731
    else:
      result = client.metadata(model, args.version)
      show = _print_metadata
  if args.json:
    _print_json(result)
  else:
    show(result)
  if args.command == 'status' and not any(
      s.state == 'AVAILABLE' for s in result):
    return 1
  return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = build_parser().parse_args(argv)
  try:
    return run(args)
  except ServingError as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    return 130


if __name__ == '__main__':
  sys.exit(main())
