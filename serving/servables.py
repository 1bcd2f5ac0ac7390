"""Loading a SavedModel version to serve it, and its tensors to and from protos.

What `serving.server` serves and what the pusher checks before a push, with
no gRPC service around it:

- `load_version` loads a version folder as TF Serving would: ScaNN's custom
  ops first when the retrieval servable holds a ScaNN index, then the
  SavedModel's `serve` graph, then its warm-up requests replayed (a failing
  one fails the load);
- `LoadedVersion.predict` answers a `PredictRequest` with TF Serving's
  checks and status codes (`ServingError`), within the server's
  `RequestLimits` (ids per request, bytes per id, rows per signature call),
  and turns TensorFlow's errors into messages about the request;
- `to_tensor` / `fill_tensor_proto` convert a request's `TensorProto` to a
  tensor and an output tensor back into the response;
- `check_warmup_requests` replays a version's warm-up file before it is
  pushed (`WarmupError` when TF Serving would refuse the version).
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import dataclasses  # noqa: E402
import functools  # noqa: E402
import logging  # noqa: E402
from typing import Dict, List, Mapping, Optional, Sequence, Tuple  # noqa: E402

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.framework import tensor_pb2  # noqa: E402
from tensorflow.core.framework import types_pb2  # noqa: E402
from tensorflow_serving.apis import get_model_metadata_pb2  # noqa: E402
from tensorflow_serving.apis import model_pb2  # noqa: E402
from tensorflow_serving.apis import predict_pb2  # noqa: E402

from modules import retrieval_index  # noqa: E402
from serving import warmup  # noqa: E402

DEFAULT_SIGNATURE = warmup.DEFAULT_SIGNATURE

_LOG = logging.getLogger(__name__)


class ServingError(Exception):
  """An error for the caller: a gRPC status code and a message."""

  def __init__(self, code: grpc.StatusCode, message: str):
    super().__init__(message)
    self.code = code
    self.message = message


@dataclasses.dataclass(frozen=True)
class RequestLimits:
  """What one Predict request may hold, and how much of it runs at once.

  None is no limit. The server sets all three (its flags, named in the
  messages); loading and warm-up checks run unbounded.

  Attributes:
    max_batch: rows (ids) per input, the size of its first dimension.
    max_id_bytes: bytes of the longest string value of an input.
    chunk_rows: rows per signature call: a larger batch is run in slices of
      this many rows and the outputs concatenated, so that the memory a
      request takes does not grow with its batch.
  """
  max_batch: Optional[int] = None
  max_id_bytes: Optional[int] = None
  chunk_rows: Optional[int] = None

  def __post_init__(self):
    for name in ('max_batch', 'max_id_bytes', 'chunk_rows'):
      value = getattr(self, name)
      if value is not None and value < 1:
        raise ValueError(f'{name} must be >= 1 (or None: no limit), got '
                         f'{value}')


NO_LIMITS = RequestLimits()



# --- One loaded version ------------------------------------------------------


def _shape_text(shape: tf.TensorShape) -> str:
  if shape.rank is None:
    return 'any shape'
  dims = ', '.join('None' if d is None else str(d) for d in shape.as_list())
  return f'shape [{dims}] (rank {shape.rank})'


def _dtype_name(enum: int) -> str:
  try:
    return tf.dtypes.as_dtype(enum).name
  except TypeError:
    return f'dtype {types_pb2.DataType.Name(enum)}' if enum in (
        types_pb2.DataType.values()) else f'dtype #{enum}'


def _compatible(expected: Optional[Tuple[Optional[int], ...]],
                dims: Optional[List[int]]) -> bool:
  """Whether dims (None: unknown rank) fit a signature's expected dims."""
  if expected is None or dims is None:
    return True
  return len(expected) == len(dims) and all(
      e is None or e == d for e, d in zip(expected, dims))


def _check_limits(name: str, proto: tensor_pb2.TensorProto,
                  dims: Optional[List[int]], limits: RequestLimits) -> None:
  """Refuses an input over the limits, from its proto alone.

  Raises:
    ServingError: INVALID_ARGUMENT naming the input, the limit and its flag.
  """
  if limits.max_batch is not None:
    if dims is None:  # Unknown rank: every string counts as a row.
      rows = len(proto.string_val)
    else:
      rows = dims[0] if dims else 1
    if rows > limits.max_batch:
      raise ServingError(
          grpc.StatusCode.INVALID_ARGUMENT,
          f'input {name!r} holds {rows} ids, more than the '
          f'{limits.max_batch} a request may hold (--max-batch); split '
          'the batch into several requests')
  if limits.max_id_bytes is not None and proto.string_val:
    longest = max(map(len, proto.string_val))
    if longest > limits.max_id_bytes:
      raise ServingError(
          grpc.StatusCode.INVALID_ARGUMENT,
          f'input {name!r} holds a value of {longest} bytes, more than the '
          f'{limits.max_id_bytes} bytes an id may have (--max-id-bytes)')


# Output dtypes (DataType enums) whose TensorProto.tensor_content is the
# numpy buffer as is.
_RAW_DTYPES = frozenset(tf.dtypes.as_dtype(d).as_datatype_enum for d in (
    'float16', 'float32', 'float64', 'int8', 'int16', 'int32', 'int64',
    'uint8', 'uint16', 'uint32', 'uint64', 'bool', 'complex64',
    'complex128'))


def to_tensor(proto: tensor_pb2.TensorProto) -> tf.Tensor:
  """A request's TensorProto as an eager tensor.

  The common case, a vector of strings (ids, serialized Examples) sent as
  `string_val`, goes straight to `tf.constant`, three times cheaper than
  through numpy; everything else through `tf.make_ndarray`.

  Raises:
    ValueError, TypeError: the proto is inconsistent (values vs shape).
  """
  dims = proto.tensor_shape.dim
  if (proto.dtype == types_pb2.DT_STRING and not proto.tensor_content and
      len(dims) == 1 and dims[0].size == len(proto.string_val)):
    return tf.constant(list(proto.string_val), dtype=tf.string)
  return tf.constant(tf.make_ndarray(proto))


def fill_tensor_proto(proto: tensor_pb2.TensorProto,
                      tensor: tf.Tensor) -> None:
  """Writes an output tensor into an (empty) response TensorProto in place.

  Strings go to `string_val` and numbers to `tensor_content`, as
  `tf.make_tensor_proto` writes them, without its per-element Python loop
  (a fifth of its cost for the retrieval model's 3 x 100 outputs), and
  without copying the proto into the response afterwards.
  """
  # The dtype as its enum and the shape from numpy: comparing DTypes and
  # building a TensorShape cost more than the copy for small outputs.
  dtype = tensor.dtype.as_datatype_enum
  value = tensor.numpy()
  if dtype == types_pb2.DT_STRING:
    proto.dtype = dtype
    if isinstance(value, bytes):  # A scalar.
      proto.string_val.append(value)
    else:
      proto.string_val.extend(value.ravel().tolist())
  elif dtype in _RAW_DTYPES:
    proto.dtype = dtype
    proto.tensor_content = np.ascontiguousarray(value).tobytes()
  else:
    proto.CopyFrom(tf.make_tensor_proto(value))
    return
  for size in np.shape(value):
    proto.tensor_shape.dim.add(size=size)


# The signature call without its Python wrapping. A loaded signature,
# `function(**inputs)`, binds the keyword arguments, flattens them and maps
# each of the function's captured inputs (63 for the retrieval model)
# through a distribution-strategy check, on every call: 0.35 ms of Python,
# holding the GIL, of a 1 ms call. `ConcreteFunction._call_flat(function,
# flat_inputs, captured_inputs)` runs the same function on the same tensors
# and returns the same structured outputs. It is private TensorFlow API
# (TensorFlow is pinned in requirements.lock), so it is used only when
# present and, per signature, only after giving the same answer as the
# public call at load (`LoadedVersion.check_fast_calls`).
try:
  from tensorflow.python.eager.polymorphic_function import (  # noqa: E402
      concrete_function as _concrete_function)
  _CALL_FLAT = _concrete_function.ConcreteFunction._call_flat
except (ImportError, AttributeError):  # Another TensorFlow: public path.
  _CALL_FLAT = None


def _flat_call_order(function, input_names: Sequence[str]
                    ) -> Tuple[Optional[Tuple[str, ...]], List]:
  """(input names in the function's flat argument order, its captured
  inputs), or (None, []) when the fast call does not apply."""
  if _CALL_FLAT is None:
    return None, []
  try:
    captured = list(function.captured_inputs)
    placeholders = function.inputs[:len(function.inputs) - len(captured)]
    order = tuple(t.name.split(':')[0] for t in placeholders)
  except (AttributeError, TypeError):
    return None, []
  if sorted(order) != sorted(input_names):
    return None, []
  return order, captured


@dataclasses.dataclass(frozen=True)
class Signature:
  """One signature of a loaded version, ready to call."""
  name: str
  function: tf.types.experimental.ConcreteFunction
  inputs: Mapping[str, tf.TensorSpec]
  output_names: Tuple[str, ...]
  # See _CALL_FLAT: the flat argument order and captured inputs of the fast
  # call; None: call `function(**arguments)`.
  flat_order: Optional[Tuple[str, ...]] = None
  captured: List = dataclasses.field(default_factory=list)

  @classmethod
  def of(cls, name: str, function) -> 'Signature':
    inputs = dict(function.structured_input_signature[1])
    order, captured = _flat_call_order(function, list(inputs))
    return cls(name, function, inputs,
               tuple(sorted(function.structured_outputs)), order, captured)

  def call(self, arguments: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Runs the signature: output name -> tensor."""
    if self.flat_order is not None:
      return _CALL_FLAT(self.function,
                        [arguments[n] for n in self.flat_order],
                        self.captured)
    return self.function(**arguments)

  def arguments(self, inputs: Mapping[str, tensor_pb2.TensorProto],
                limits: RequestLimits = NO_LIMITS) -> Dict[str, tf.Tensor]:
    """The request's input tensors, checked against the signature and the
    limits before any tensor is built.

    Raises:
      ServingError: INVALID_ARGUMENT, naming the input and what it expects,
        or the limit exceeded and its value.
    """
    missing = sorted(set(self.inputs) - set(inputs))
    extra = sorted(set(inputs) - set(self.inputs))
    if missing or extra:
      problems = ([f'missing input(s) {", ".join(missing)}'] if missing
                  else []) + ([f'unexpected input(s) {", ".join(extra)}']
                              if extra else [])
      raise ServingError(
          grpc.StatusCode.INVALID_ARGUMENT,
          f'{"; ".join(problems)}: signature {self.name!r} takes '
          f'{self.describe_inputs()}')
    arguments = {}
    for name, spec in self.inputs.items():
      proto = inputs[name]
      if proto.dtype != spec.dtype.as_datatype_enum:
        raise ServingError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f'input {name!r} must be {spec.dtype.name}, got '
            f'{_dtype_name(proto.dtype)}')
      dims = (None if proto.tensor_shape.unknown_rank else
              [d.size for d in proto.tensor_shape.dim])
      if not _compatible(self.input_dims[name], dims):
        raise ServingError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f'input {name!r} must have {_shape_text(spec.shape)}, got '
            f'{_shape_text(tf.TensorShape(dims))}')
      _check_limits(name, proto, dims, limits)
      try:
        arguments[name] = to_tensor(proto)
      except (ValueError, TypeError) as e:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           f'input {name!r} is malformed: {e}') from e
    return arguments

  @functools.cached_property
  def input_dims(self) -> Dict[str, Optional[Tuple[Optional[int], ...]]]:
    """Input name -> its dims (None unknown), or None for any shape."""
    return {name: (None if spec.shape.rank is None else
                   tuple(spec.shape.as_list()))
            for name, spec in self.inputs.items()}

  @functools.cached_property
  def batch_major(self) -> bool:
    """Whether every input and output has rows along a first dimension of
    any size, so that running slices of rows and concatenating the outputs
    answers as one call does."""
    outputs = self.function.structured_outputs
    specs = list(self.inputs.values()) + [
        outputs[n] for n in self.output_names]
    return bool(self.inputs) and all(
        getattr(spec, 'shape', None) is not None and spec.shape.rank and
        spec.shape[0] is None for spec in specs)

  def call_in_chunks(self, arguments: Mapping[str, tf.Tensor],
                     output_names: Sequence[str],
                     chunk_rows: Optional[int]) -> Dict[str, tf.Tensor]:
    """`call`, on at most `chunk_rows` rows at a time when the signature is
    batch-major and every input has the same number of rows: the chunks'
    outputs (those in `output_names`) concatenated along the rows."""
    rows = {t.shape[0] if t.shape.rank else None
            for t in arguments.values()}
    if (chunk_rows is None or len(rows) != 1 or None in rows or
        not self.batch_major or next(iter(rows)) <= chunk_rows):
      return self.call(arguments)
    total = rows.pop()
    parts = [self.call({n: t[start:start + chunk_rows]
                        for n, t in arguments.items()})
             for start in range(0, total, chunk_rows)]
    return {n: tf.concat([part[n] for part in parts], axis=0)
            for n in output_names}

  def describe_inputs(self) -> str:
    """'user_id (string, shape [None] (rank 1)), ...', sorted by name."""
    return ', '.join(f'{name} ({spec.dtype.name}, {_shape_text(spec.shape)})'
                     for name, spec in sorted(self.inputs.items()))


class LoadedVersion:
  """One version of a model, loaded once, its signatures ready to call."""

  def __init__(self, model_name: str, version: int, path: str,
               saved_model, signature_defs: Mapping[str, object]):
    self.model_name = model_name
    self.version = version
    self.path = path
    self._saved_model = saved_model  # Keeps the variables alive.
    self.signatures = {name: Signature.of(name, function)
                       for name, function in saved_model.signatures.items()}
    self.signature_def_map = get_model_metadata_pb2.SignatureDefMap()
    for name, signature_def in signature_defs.items():
      self.signature_def_map.signature_def[name].CopyFrom(signature_def)
    self.warmup_requests = 0

  def check_fast_calls(self) -> None:
    """Keeps a signature's fast call only if it answers a request derived
    from the signature exactly as the public call does (which also warms
    every signature up)."""
    for name, signature in list(self.signatures.items()):
      if signature.flat_order is None:
        continue
      same = False
      if name in self.signature_def_map.signature_def:
        [request] = warmup.requests_for_signature(
            self.signature_def_map.signature_def[name], self.model_name, name)
        # Different values per input, so that swapped inputs would show.
        for i, key in enumerate(sorted(request.inputs)):
          values = request.inputs[key].string_val
          if i % 2 and len(values) > 1:
            values[:] = list(values)[::-1]
        try:
          arguments = signature.arguments(request.inputs)
          expected = signature.function(**arguments)
          got = signature.call(arguments)
          same = sorted(got) == sorted(expected) and all(
              np.array_equal(got[k].numpy(), expected[k].numpy())
              for k in expected)
        except Exception:  # Unverifiable: keep the public call.
          same = False
      if not same:
        self.signatures[name] = dataclasses.replace(signature,
                                                    flat_order=None)

  def model_spec(self, signature_name: str = '') -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=self.model_name,
                               signature_name=signature_name)
    spec.version.value = self.version
    return spec

  def predict(self, request: predict_pb2.PredictRequest,
              limits: RequestLimits = NO_LIMITS
             ) -> predict_pb2.PredictResponse:
    """Runs a signature on the request's inputs, within `limits`.

    Raises:
      ServingError: FAILED_PRECONDITION for an unknown signature (as TF
        Serving), INVALID_ARGUMENT for bad inputs, inputs over the limits,
        a bad output_filter or inputs the graph refuses (`graph_error`),
        INTERNAL or RESOURCE_EXHAUSTED when the model itself fails.
    """
    name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    signature = self.signatures.get(name)
    if signature is None:
      raise ServingError(
          grpc.StatusCode.FAILED_PRECONDITION,
          f'Serving signature key "{name}" not found (model '
          f'{self.model_name!r} version {self.version} has: '
          f'{", ".join(sorted(self.signatures))})')
    output_names = signature.output_names
    if request.output_filter:
      output_names = tuple(request.output_filter)
      duplicates = sorted({n for n in output_names
                           if output_names.count(n) > 1})
      if duplicates:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           f'duplicate output tensor alias: {duplicates[0]}')
      unknown = [n for n in output_names if n not in signature.output_names]
      if unknown:
        raise ServingError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f'output_filter: no output {", ".join(map(repr, unknown))} in '
            f'signature {name!r} (outputs: '
            f'{", ".join(signature.output_names)})')
    arguments = signature.arguments(request.inputs, limits)
    try:
      outputs = signature.call_in_chunks(arguments, output_names,
                                         limits.chunk_rows)
    except tf.errors.OpError as e:
      raise graph_error(e, signature, arguments, self.model_name,
                        self.version) from e
    response = predict_pb2.PredictResponse()
    response.model_spec.name = self.model_name
    response.model_spec.version.value = self.version
    response.model_spec.signature_name = name
    for output in output_names:
      fill_tensor_proto(response.outputs[output], outputs[output])
    return response


# TensorFlow's graph errors that a request's values cause, e.g. a string
# that does not parse as a number, an index out of a table: the caller's
# to fix, so INVALID_ARGUMENT. Any other is the model's or the server's.
_REQUEST_ERRORS = frozenset((tf.errors.INVALID_ARGUMENT,
                             tf.errors.OUT_OF_RANGE))


def graph_error_text(message: str) -> Tuple[str, Optional[str]]:
  """(what went wrong, the node that raised it or None) from a TensorFlow
  error message.

  A signature's error reads 'Graph execution error:', then 'Detected at
  node X defined at ...' and its stack, then the kernel's own message, then
  '[[{{node X}}]] [Op:__inference_...]': only the kernel's message and the
  node say anything to the caller.
  """
  node = None
  kept = []
  for line in message.split('\n'):
    stripped = line.strip()
    if stripped.startswith('Detected at node'):
      node = node or stripped.split()[3].strip("'")
      continue
    if (not stripped or stripped == 'Graph execution error:' or
        stripped == '<stack traces unavailable>' or line[:1].isspace() or
        stripped.startswith('[[')):
      continue
    kept.append(stripped)
  if node is None and '{{node ' in message:
    node = message.split('{{node ', 1)[1].split('}}', 1)[0]
  text = kept[-1] if kept else message.strip().split('\n')[0]
  return text.split(' [Op:', 1)[0].strip(), node


def graph_error(error: tf.errors.OpError, signature: Signature,
                arguments: Mapping[str, tf.Tensor], model_name: str,
                version: int) -> ServingError:
  """A TensorFlow error raised while running a signature, as one line for
  the caller.

  INVALID_ARGUMENT for errors the request's values cause (`_REQUEST_ERRORS`)
  saying what the graph refused, the inputs given and what the signature
  takes; RESOURCE_EXHAUSTED for memory; INTERNAL for the rest.
  """
  text, node = graph_error_text(error.message)
  where = f' (at node {node})' if node else ''
  if error.error_code in _REQUEST_ERRORS:
    given = ', '.join(
        f'{n} ({t.dtype.name}, {int(tf.size(t))} value(s))'
        for n, t in sorted(arguments.items()))
    return ServingError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f'signature {signature.name!r} of model {model_name!r} could not '
        f'process the inputs {given}: {text}{where}. It takes '
        f'{signature.describe_inputs()}')
  code = (grpc.StatusCode.RESOURCE_EXHAUSTED
          if error.error_code == tf.errors.RESOURCE_EXHAUSTED else
          grpc.StatusCode.INTERNAL)
  return ServingError(
      code, f'model {model_name!r} version {version} failed running '
      f'signature {signature.name!r}: {type(error).__name__}: {text}{where}')


def load_version(path: str, model_name: str, version: int) -> LoadedVersion:
  """Loads a SavedModel version folder and warms it up.

  The warm-up file (`serving.warmup.WARMUP_FILE`), when present, is
  replayed as TF Serving does, and a failing request fails the load. When
  absent, requests derived from `serving_default` are replayed instead; if
  those fail, only a warning is logged.

  Raises:
    ServingError, ValueError, tf.errors.OpError...: the version cannot load.
  """
  signature_defs = warmup.read_signature_defs(path)
  # A retrieval servable with a ScaNN index needs ScaNN's custom ops.
  retrieval_index.load_custom_ops(path)
  loaded = LoadedVersion(model_name, version, path,
                         tf.saved_model.load(path, tags=[warmup.SERVE_TAG]),
                         signature_defs)
  loaded.check_fast_calls()
  requests = warmup.read_warmup_requests(path)
  if requests:
    for i, request in enumerate(requests):
      try:
        loaded.predict(request)
      except ServingError as e:
        raise ServingError(
            e.code, f'warm-up request {i + 1} of {warmup.WARMUP_FILE} '
            f'failed: {e.message}') from e
    loaded.warmup_requests = len(requests)
  elif DEFAULT_SIGNATURE in signature_defs:
    try:
      for request in warmup.requests_for_signature(
          signature_defs[DEFAULT_SIGNATURE], model_name):
        loaded.predict(request)
    except Exception as e:  # Optional: the version serves all the same.
      _LOG.warning('%s version %d: could not warm up %s: %s', model_name,
                   version, DEFAULT_SIGNATURE,
                   getattr(e, 'message', None) or e)
  return loaded


class WarmupError(RuntimeError):
  """The model cannot answer its own warm-up requests."""


def check_warmup_requests(saved_model_dir: str, model_name: str) -> int:
  """Loads the SavedModel and replays its warm-up file, as TF Serving would.

  Returns:
    The number of requests replayed.

  Raises:
    WarmupError: the model cannot be loaded or fails a warm-up request
      (TF Serving would refuse to load this version).
  """
  try:
    loaded = load_version(saved_model_dir, model_name, version=0)
  except Exception as e:
    raise WarmupError(f'{saved_model_dir}: TF Serving could not load this '
                      f'model: {e}') from e
  return loaded.warmup_requests
