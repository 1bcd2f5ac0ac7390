"""Warm-up requests that TF Serving replays when it loads a model version.

The first call of a freshly loaded SavedModel is slow (TensorFlow optimises
each function's graph on its first run: about 100 ms for the retrieval
model, against 1 ms afterwards). TF Serving avoids making a user pay for it:
when it loads a version it replays the requests found in
`<version>/assets.extra/tf_serving_warmup_requests`, a TFRecord file of
`PredictionLog`s, before the version answers any request (see
https://www.tensorflow.org/tfx/serving/saved_model_warmup). A warm-up
request that fails makes the whole version fail to load, so the pusher
replays them (`serving.servables.check_warmup_requests`) before a version
is pushed.

The requests are derived from the model's signature alone, so one function
serves every model we push: each input gets a batch of `len(string_values)`
values; string inputs get an id that exists in MovieLens (`'1'`) and the
empty string, the out-of-vocabulary path our models answer for unknown ids;
numbers get zeros, booleans False.

Plain TensorFlow and TF Serving protos, no TFX, and nothing that loads a
model: writing and reading the requests needs only `saved_model.pb`.
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

from typing import Dict, List, Optional, Sequence  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.protobuf import meta_graph_pb2  # noqa: E402
from tensorflow.core.protobuf import saved_model_pb2  # noqa: E402
from tensorflow_serving.apis import predict_pb2  # noqa: E402
from tensorflow_serving.apis import prediction_log_pb2  # noqa: E402

# Where TF Serving looks for them, relative to the version folder.
WARMUP_FILE = os.path.join('assets.extra', 'tf_serving_warmup_requests')
DEFAULT_SIGNATURE = 'serving_default'
SERVE_TAG = 'serve'
# A MovieLens id (user 1 and movie 1 exist in ml-100k) and the empty string,
# which our models answer through their out-of-vocabulary path.
DEFAULT_STRING_VALUES = (b'1', b'')


def read_signature_defs(saved_model_dir: str
                       ) -> Dict[str, meta_graph_pb2.SignatureDef]:
  """The signatures of the `serve` graph, read from `saved_model.pb`.

  Args:
    saved_model_dir: a SavedModel folder (`saved_model.pb` inside).

  Returns:
    Signature name -> SignatureDef, as TF Serving reports them in
    GetModelMetadata (including TensorFlow's `__saved_model_init_op`).

  Raises:
    ValueError: no readable `saved_model.pb`, or no `serve` graph.
  """
  path = os.path.join(saved_model_dir, 'saved_model.pb')
  saved_model = saved_model_pb2.SavedModel()
  try:
    with open(path, 'rb') as f:
      saved_model.ParseFromString(f.read())
  except Exception as e:  # OSError or protobuf's DecodeError.
    raise ValueError(f'{path}: not a readable SavedModel ({e})') from e
  for meta_graph in saved_model.meta_graphs:
    if SERVE_TAG in meta_graph.meta_info_def.tags:
      return dict(meta_graph.signature_def)
  raise ValueError(f'{path}: no graph tagged {SERVE_TAG!r}, which TF Serving '
                   'loads')


def _example_values(tensor_info: meta_graph_pb2.TensorInfo,
                    string_values: Sequence[bytes]) -> np.ndarray:
  """Plausible values for one input: an unknown first dim is the batch,
  other unknown dims are 1, an unknown rank is a batch vector."""
  batch = len(string_values)
  shape_proto = tensor_info.tensor_shape
  if shape_proto.unknown_rank:
    shape = [batch]
  else:  # A scalar stays a scalar.
    shape = [d.size if d.size >= 0 else 1 for d in shape_proto.dim]
    if shape and shape_proto.dim[0].size < 0:
      shape[0] = batch
  dtype = tf.dtypes.as_dtype(tensor_info.dtype)
  count = int(np.prod(shape))
  if dtype == tf.string:
    values = [string_values[i % batch] for i in range(count)]
    return np.array(values, dtype=object).reshape(shape)
  return np.zeros(shape, dtype=dtype.as_numpy_dtype)


def requests_for_signature(
    signature_def: meta_graph_pb2.SignatureDef, model_name: str,
    signature_name: str = DEFAULT_SIGNATURE,
    string_values: Sequence[bytes] = DEFAULT_STRING_VALUES
) -> List[predict_pb2.PredictRequest]:
  """Predict requests that exercise one signature (see the module doc).

  Args:
    signature_def: the signature, as in `read_signature_defs`.
    model_name: the model name TF Serving serves it under.
    signature_name: its key in the SavedModel.
    string_values: the batch given to every string input.

  Returns:
    One PredictRequest: a batch of `len(string_values)` rows.
  """
  if not string_values:
    raise ValueError('string_values: at least one value is needed')
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model_name
  request.model_spec.signature_name = signature_name
  for name, tensor_info in sorted(signature_def.inputs.items()):
    request.inputs[name].CopyFrom(tf.make_tensor_proto(
        _example_values(tensor_info, string_values),
        dtype=tf.dtypes.as_dtype(tensor_info.dtype)))
  return [request]


def build_warmup_requests(
    saved_model_dir: str, model_name: str,
    signature_name: str = DEFAULT_SIGNATURE,
    string_values: Sequence[bytes] = DEFAULT_STRING_VALUES
) -> List[predict_pb2.PredictRequest]:
  """`requests_for_signature` for a SavedModel folder's signature.

  Raises:
    ValueError: the SavedModel is unreadable or lacks the signature.
  """
  signatures = read_signature_defs(saved_model_dir)
  if signature_name not in signatures:
    raise ValueError(
        f'{saved_model_dir}: no signature {signature_name!r} to warm up '
        f'(signatures: {", ".join(sorted(signatures)) or "none"})')
  return requests_for_signature(signatures[signature_name], model_name,
                                signature_name, string_values)


def write_warmup_requests(
    saved_model_dir: str, model_name: str,
    signature_name: str = DEFAULT_SIGNATURE,
    requests: Optional[Sequence[predict_pb2.PredictRequest]] = None) -> str:
  """Writes `<saved_model_dir>/assets.extra/tf_serving_warmup_requests`.

  Args:
    saved_model_dir: the SavedModel version folder to warm up.
    model_name: the name TF Serving serves it under (e.g. 'retrieval').
    signature_name: the signature to warm up.
    requests: the requests to write; by default `build_warmup_requests`.

  Returns:
    The path written (an existing file is replaced).
  """
  if requests is None:
    requests = build_warmup_requests(saved_model_dir, model_name,
                                     signature_name)
  path = os.path.join(saved_model_dir, WARMUP_FILE)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tf.io.TFRecordWriter(path) as writer:
    for request in requests:
      log = prediction_log_pb2.PredictionLog(
          predict_log=prediction_log_pb2.PredictLog(request=request))
      writer.write(log.SerializeToString())
  return path


def read_warmup_requests(saved_model_dir: str
                        ) -> List[predict_pb2.PredictRequest]:
  """The Predict requests of a version's warm-up file ([] when none)."""
  path = os.path.join(saved_model_dir, WARMUP_FILE)
  if not os.path.exists(path):
    return []
  requests = []
  for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
    log = prediction_log_pb2.PredictionLog.FromString(record)
    if log.WhichOneof('log_type') != 'predict_log':
      raise ValueError(f'{path}: only Predict warm-up requests are '
                       f'supported, got {log.WhichOneof("log_type")}')
    requests.append(log.predict_log.request)
  return requests
