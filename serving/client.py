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

The command line on top of it: `python -m serving.client --help` (see
`serving/cli.py`).
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

import dataclasses  # noqa: E402
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
RATING = 'rating'

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
  score: float


@dataclasses.dataclass(frozen=True)
class UserRecommendations:
  """A user's recommendations, best first, and the version that made them."""
  user_id: str
  items: List[Recommendation]
  model: str
  version: int


@dataclasses.dataclass(frozen=True)
class Rating:
  user_id: str
  movie_id: str
  rating: float
  model: str
  version: int


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
        users.
      model: a model with the recommender contract (`recommender`, or
        `retrieval` for its 100 candidates).
      version: a served version; default the newest.
      top_k: keep the first k of each list; default all the model returns.

    Returns:
      One UserRecommendations per user id, in order. Padding the model
      returns when fewer movies are left (empty ids) is dropped.
    """
    user_ids = self._ids(user_ids, 'user id')
    if top_k is not None and top_k < 1:
      raise InvalidInputError(f'top_k must be at least 1, got {top_k}')
    answer = self.predict(model, {USER_ID: user_ids}, version=version)
    ids, titles, scores = (self._output(answer, name, 2) for name in (
        MOVIE_IDS, MOVIE_TITLES, SCORES))
    results = []
    for row, user_id in enumerate(user_ids):
      items = [Recommendation(_text(m), _text(t), float(s))
               for m, t, s in zip(ids[row], titles[row], scores[row]) if m]
      results.append(UserRecommendations(user_id, items[:top_k],
                                         answer.model, answer.version))
    return results

  def rate(self, user_ids: Sequence[str], movie_ids: Sequence[str],
           model: str = RANKING,
           version: Optional[int] = None) -> List[Rating]:
    """Predicted ratings of (user_ids[i], movie_ids[i]) pairs.

    One user with several movies, or several users with one movie, are
    paired with each of the others.
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
    answer = self.predict(model, {USER_ID: user_ids, MOVIE_ID: movie_ids},
                          version=version)
    ratings = self._output(answer, RATING, 1)
    return [Rating(u, m, float(r), answer.model, answer.version)
            for u, m, r in zip(user_ids, movie_ids, ratings)]

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


if __name__ == '__main__':
  from serving import cli
  sys.exit(cli.main())
