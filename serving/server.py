"""A local stand-in for TF Serving: its gRPC API over SavedModels on disk.

    python -m serving.server --serving-dir outputs/serving --port 8500 \
        [--host 127.0.0.1] [--poll-seconds 1] [--num-versions 2] [--threads 8]
        [--max-request-bytes 4194304] [--max-batch 1000] [--max-id-bytes 256]

For development and tests on machines where `tensorflow_model_server`
cannot run (it ships as a Docker image, Google's apt repository or a Bazel
build). Production serves the same folders with real TF Serving: see
`serving/README.md`.

It implements TF Serving's own service definitions, with its messages and
status codes, so a client cannot tell the difference for what it covers:

- `PredictionService.Predict`: any signature (default `serving_default`),
  `output_filter`; inputs are checked against the signature (a missing,
  unexpected, wrongly typed or wrongly shaped input is INVALID_ARGUMENT,
  naming the input and what was expected); an unknown signature is
  FAILED_PRECONDITION; an unknown model or version is NOT_FOUND. A request
  over `--max-request-bytes` is RESOURCE_EXHAUSTED (gRPC's own check), one
  over `--max-batch` ids or with an id over `--max-id-bytes` is
  INVALID_ARGUMENT, each message naming the limit; a batch runs through the
  signature `--chunk-rows` rows at a time, so that its memory stays bounded.
  A TensorFlow error the inputs cause is INVALID_ARGUMENT, saying what the
  graph refused and what the signature takes; any other failure INTERNAL.
- `PredictionService.GetModelMetadata`: the `signature_def` field, a
  `SignatureDefMap` packed in an `Any`, as TF Serving sends it.
- `ModelService.GetModelStatus`: per version AVAILABLE, LOADING, or END
  with the last load error while it is retried.
  Classify, Regress, MultiInference and HandleReloadConfigRequest answer
  UNIMPLEMENTED.

Every sub-folder of the serving folder is a model (`<dir>/<model>/`), every
integer sub-folder of a model a version. The newest `--num-versions`
versions of each model are served (default 2, as `serving/models.config`
asks of TF Serving; 0 serves all): a request without a version gets the
newest, a request naming one of them gets that one. A thread polls the
folder: a new version is loaded fully (and warmed up, replaying its
`assets.extra/tf_serving_warmup_requests` like TF Serving) before it is
swapped in; a version that fails to load is logged, reported END with its
error, and retried with backoff (`--load-retry-seconds`, doubling up to
`--max-load-retry-seconds`, at once when its files change) until it loads or
its folder goes, while the previous one keeps serving; versions deleted
from disk or pushed out by newer ones are unloaded. A model folder without a version yet is not
served (NOT_FOUND) while the other models are; real TF Serving, given that
model in its config, opens no port until it has a version (see
`serving/README.md`).

Loading a version and converting its tensors are `serving.servables`; this
module holds the gRPC services, the versions served and the command line.
The command line is parsed before TensorFlow is imported, so `--help` and
usage errors answer at once.
"""

import argparse
import os
import sys
from typing import Optional, Sequence

DEFAULT_HOST = '127.0.0.1'
DEFAULT_PORT = 8500
DEFAULT_POLL_SECONDS = 1.0
DEFAULT_NUM_VERSIONS = 2
# gRPC worker threads. Each request holds the GIL only to convert protos
# and dispatch the TF function, and releases it while TensorFlow computes,
# so a few threads per core keep both busy (see benchmarks/README.md).
DEFAULT_THREADS = 8
# TensorFlow's thread pools, for the whole process (see main()). 0 is
# TensorFlow's default, one thread per core. Intra-op: one thread, so each
# kernel runs in the thread that runs it. A request's kernels are small (the
# recommender's largest, the ranking MLP over 100 pairs, is 100 x 139 x 256);
# splitting them over the cores' pool costs a hand-off per kernel and, on a
# loaded machine, waits for a core: the recommender's in-process call went
# from p50 1.31-1.53 ms to 0.94-1.01 ms (benchmarks/README.md). Concurrent
# requests still use every core through the inter-op pool.
DEFAULT_INTER_OP_THREADS = 0
DEFAULT_INTRA_OP_THREADS = 1
# What one request may hold. 4 MiB is gRPC's own default: about 100,000
# ids, far above --max-batch. Unbounded, one 64 MiB id took 6.6 GB more
# (the recommender repeats the id for each candidate) and a batch of 10,000
# users 5 GB.
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_BATCH = 1000
DEFAULT_MAX_ID_BYTES = 256
# Rows per signature call: a batch's intermediate tensors (the recommender
# ranks 100 candidates per user) grow with the rows run together, so a
# batch runs in slices and its peak memory is that of one slice.
DEFAULT_CHUNK_ROWS = 100
# A version that failed to load is retried after this delay, doubled after
# each failure up to the maximum (TF Serving retries failed loads too).
DEFAULT_LOAD_RETRY_SECONDS = 1.0
DEFAULT_MAX_LOAD_RETRY_SECONDS = 30.0


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog='python -m serving.server',
      description='A local server with TF Serving\'s gRPC API '
      '(PredictionService, ModelService) over the SavedModels of a serving '
      'folder, for development and tests. Production: real TF Serving, see '
      'serving/README.md.',
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--serving-dir', required=True,
                      help='folder of <model>/<version>/ SavedModels, e.g. '
                      'outputs/serving')
  parser.add_argument('--port', type=int, default=DEFAULT_PORT,
                      help='gRPC port (0: any free port)')
  parser.add_argument('--host', default=DEFAULT_HOST,
                      help='address to bind (0.0.0.0 exposes the server to '
                      'the network)')
  parser.add_argument('--poll-seconds', type=float,
                      default=DEFAULT_POLL_SECONDS,
                      help='how often to look for new versions')
  parser.add_argument('--num-versions', type=int,
                      default=DEFAULT_NUM_VERSIONS,
                      help='newest versions served per model (0: all)')
  parser.add_argument('--threads', type=int, default=DEFAULT_THREADS,
                      help='gRPC worker threads')
  parser.add_argument('--inter-op-threads', type=int,
                      default=DEFAULT_INTER_OP_THREADS,
                      help='TensorFlow inter-op threads (0: one per core); '
                      "TF Serving's --tensorflow_inter_op_parallelism")
  parser.add_argument('--intra-op-threads', type=int,
                      default=DEFAULT_INTRA_OP_THREADS,
                      help='TensorFlow intra-op threads (0: one per core; '
                      'default 1: kernels run in the calling thread); '
                      "TF Serving's --tensorflow_intra_op_parallelism")
  parser.add_argument('--max-request-bytes', type=int,
                      default=DEFAULT_MAX_REQUEST_BYTES,
                      help='largest request accepted, in bytes (gRPC\'s '
                      'max_receive_message_length; larger: RESOURCE_EXHAUSTED)')
  parser.add_argument('--max-batch', type=int, default=DEFAULT_MAX_BATCH,
                      help='most ids (rows) per input of a request')
  parser.add_argument('--max-id-bytes', type=int,
                      default=DEFAULT_MAX_ID_BYTES,
                      help='longest string value (id) accepted, in bytes')
  parser.add_argument('--chunk-rows', type=int, default=DEFAULT_CHUNK_ROWS,
                      help='rows run through a signature at once; a larger '
                      'batch runs in slices')
  parser.add_argument('--load-retry-seconds', type=float,
                      default=DEFAULT_LOAD_RETRY_SECONDS,
                      help='first delay before a failed version is loaded '
                      'again (doubled after each failure)')
  parser.add_argument('--max-load-retry-seconds', type=float,
                      default=DEFAULT_MAX_LOAD_RETRY_SECONDS,
                      help='longest delay between two loads of a failed '
                      'version')
  args = parser.parse_args(argv)
  if not 0 <= args.port <= 65535:
    parser.error(f'--port must be 0..65535, got {args.port}')
  if args.poll_seconds <= 0:
    parser.error('--poll-seconds must be > 0')
  if args.num_versions < 0:
    parser.error('--num-versions must be >= 0')
  if args.threads < 1:
    parser.error('--threads must be >= 1')
  if args.inter_op_threads < 0 or args.intra_op_threads < 0:
    parser.error('--inter-op-threads and --intra-op-threads must be >= 0')
  for name in ('max_request_bytes', 'max_batch', 'max_id_bytes',
               'chunk_rows'):
    if getattr(args, name) < 1:
      parser.error(f'--{name.replace("_", "-")} must be >= 1')
  if not 0 < args.load_retry_seconds <= args.max_load_retry_seconds:
    parser.error('need 0 < --load-retry-seconds <= --max-load-retry-seconds')
  return args


if __name__ == '__main__':
  # `python -m serving.server`: the imports below load TensorFlow (seconds,
  # and its log lines); --help and a bad command line need none of it.
  _ARGS = parse_args()

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import dataclasses  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from concurrent import futures  # noqa: E402
from typing import Callable, Dict, List, Tuple  # noqa: E402

import grpc  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import get_model_metadata_pb2  # noqa: E402
from tensorflow_serving.apis import get_model_status_pb2  # noqa: E402
from tensorflow_serving.apis import model_pb2  # noqa: E402
from tensorflow_serving.apis import model_service_pb2_grpc  # noqa: E402
from tensorflow_serving.apis import prediction_service_pb2_grpc  # noqa: E402

from serving import memory  # noqa: E402
from serving.servables import LoadedVersion  # noqa: E402
from serving.servables import RequestLimits  # noqa: E402
from serving.servables import ServingError  # noqa: E402
from serving.servables import load_version  # noqa: E402

SIGNATURE_DEF_FIELD = 'signature_def'
DEFAULT_LIMITS = RequestLimits(max_batch=DEFAULT_MAX_BATCH,
                               max_id_bytes=DEFAULT_MAX_ID_BYTES,
                               chunk_rows=DEFAULT_CHUNK_ROWS)

_State = get_model_status_pb2.ModelVersionStatus.State

_LOG = logging.getLogger('serving.server')  # Not __main__ under -m.


# --- The served models -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class VersionState:
  """What GetModelStatus reports for one version."""
  state: int  # A ModelVersionStatus.State.
  error_code: grpc.StatusCode = grpc.StatusCode.OK
  error_message: str = ''


def _version_folders(model_dir: str) -> List[int]:
  """Integer sub-folders holding a SavedModel, newest first."""
  versions = []
  for name in os.listdir(model_dir):
    path = os.path.join(model_dir, name)
    if name.isdigit() and (
        os.path.isfile(os.path.join(path, 'saved_model.pb')) or
        os.path.isfile(os.path.join(path, 'saved_model.pbtxt'))):
      versions.append(int(name))
  return sorted(versions, reverse=True)


def _model_folders(serving_dir: str) -> List[str]:
  return sorted(n for n in os.listdir(serving_dir)
                if not n.startswith('.') and
                os.path.isdir(os.path.join(serving_dir, n)))


def _folder_stamp(path: str) -> Tuple[Tuple[str, int, int], ...]:
  """Every file of a version folder with its size and modification time: a
  folder still being copied (graph first, variables later) changes it."""
  stamp = []
  for root, _, files in os.walk(path):
    for name in files:
      full = os.path.join(root, name)
      try:
        info = os.stat(full)
      except OSError:  # Removed while we look: the stamp changes anyway.
        continue
      stamp.append((os.path.relpath(full, path), info.st_size,
                    info.st_mtime_ns))
  return tuple(sorted(stamp))


@dataclasses.dataclass(frozen=True)
class _Failure:
  """A version that failed to load, and when to try it again."""
  stamp: Tuple[Tuple[str, int, int], ...]  # _folder_stamp before the load.
  attempts: int
  delay: float  # Seconds from the last failure to the next attempt.
  retry_at: float  # On the registry's clock.


class ModelRegistry:
  """The versions served per model, refreshed from disk by `poll()`.

  Request threads only read `_served` and `_states`, dicts that `poll()`
  replaces whole and never mutates, so serving takes no lock.
  """

  def __init__(self, serving_dir: str,
               num_versions: int = DEFAULT_NUM_VERSIONS,
               load_retry_seconds: float = DEFAULT_LOAD_RETRY_SECONDS,
               max_load_retry_seconds: float = DEFAULT_MAX_LOAD_RETRY_SECONDS,
               clock: Callable[[], float] = time.monotonic):
    if num_versions < 0:
      raise ValueError(f'num_versions must be >= 0 (0: all), got '
                       f'{num_versions}')
    if not 0 < load_retry_seconds <= max_load_retry_seconds:
      raise ValueError(
          f'need 0 < load_retry_seconds <= max_load_retry_seconds, got '
          f'{load_retry_seconds} and {max_load_retry_seconds}')
    self.serving_dir = serving_dir
    self.num_versions = num_versions
    self.load_retry_seconds = load_retry_seconds
    self.max_load_retry_seconds = max_load_retry_seconds
    self._clock = clock
    # model -> (version -> LoadedVersion, newest LoadedVersion)
    self._served: Dict[str, Tuple[Dict[int, LoadedVersion],
                                  LoadedVersion]] = {}
    # model -> version -> VersionState
    self._states: Dict[str, Dict[int, VersionState]] = {}
    self._failed: Dict[str, _Failure] = {}  # version path -> its failure
    self._poll_lock = threading.Lock()

  def get(self, model_spec: model_pb2.ModelSpec) -> LoadedVersion:
    """The version a request asks for.

    Raises:
      ServingError: INVALID_ARGUMENT without a model name or with a version
        label (none are configured), NOT_FOUND for an unknown model or a
        version not served, with TF Serving's messages.
    """
    name = model_spec.name
    if not name:
      raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                         'Missing ModelSpec name')
    if model_spec.version_label:
      raise ServingError(
          grpc.StatusCode.INVALID_ARGUMENT,
          f'Unrecognized servable version label: '
          f'{model_spec.version_label} (no labels are configured)')
    served = self._served.get(name)
    if model_spec.HasField('version'):
      version = model_spec.version.value
      loaded = served[0].get(version) if served else None
      if loaded is None:
        raise ServingError(
            grpc.StatusCode.NOT_FOUND,
            f'Servable not found for request: Specific({name}, {version})')
      return loaded
    if served is None:
      raise ServingError(grpc.StatusCode.NOT_FOUND,
                         f'Servable not found for request: Latest({name})')
    return served[1]

  def status(self, model_spec: model_pb2.ModelSpec
            ) -> List[Tuple[int, VersionState]]:
    """(version, state) of the model's known versions, newest first.

    Raises:
      ServingError: NOT_FOUND for an unknown model or version.
    """
    name = model_spec.name
    if not name:
      raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                         'Missing ModelSpec name')
    states = self._states.get(name, {})
    if model_spec.HasField('version'):
      version = model_spec.version.value
      if version not in states:
        raise ServingError(
            grpc.StatusCode.NOT_FOUND,
            f'Could not find version {version} of model {name}')
      return [(version, states[version])]
    if not states:
      raise ServingError(grpc.StatusCode.NOT_FOUND,
                         f'Could not find any versions of model {name}')
    return sorted(states.items(), reverse=True)

  def served_versions(self) -> Dict[str, List[int]]:
    """Model -> the versions it serves, newest first."""
    return {name: sorted(versions, reverse=True)
            for name, (versions, _) in self._served.items()}

  def poll(self) -> None:
    """Loads new versions and failed ones due for a retry, then swaps them
    in and unloads old ones."""
    with self._poll_lock:
      before = self._loaded()
      models = _model_folders(self.serving_dir)
      served = dict(self._served)
      for name in models:
        self._poll_model(name, served)
      for name in set(served) - set(models):
        _LOG.info('Unloaded model %s: its folder is gone', name)
        del served[name]
        self._set_states(name, {})
      for name in set(self._states) - set(models):
        self._set_states(name, {})
      for path in list(self._failed):
        if os.path.dirname(path) not in {
            os.path.join(self.serving_dir, m) for m in models}:
          del self._failed[path]
      self._served = dict(served)
      changed = {id(v) for v in before} != {id(v) for v in self._loaded()}
      del before  # Holding them kept their ids unique; now let them go.
      if changed:
        # Unloaded versions are no longer in `_served`, and a load leaves
        # garbage of its own: free both now (serving/memory.py). A request
        # still running on an unloaded version keeps it until it ends; the
        # next change collects it.
        memory.release()

  def _loaded(self) -> List[LoadedVersion]:
    """The versions requests can reach."""
    return [loaded for versions, _ in self._served.values()
            for loaded in versions.values()]

  def _waiting(self, path: str, now: float) -> bool:
    """Whether a version that failed to load waits for its retry; a folder
    whose files changed since is tried again at once."""
    failure = self._failed.get(path)
    if failure is None:
      return False
    if _folder_stamp(path) != failure.stamp:
      del self._failed[path]
      return False
    return now < failure.retry_at

  def _record_failure(self, path: str, stamp) -> _Failure:
    previous = self._failed.get(path)
    delay = (self.load_retry_seconds if previous is None else
             min(previous.delay * 2, self.max_load_retry_seconds))
    failure = _Failure(stamp, (previous.attempts if previous else 0) + 1,
                       delay, self._clock() + delay)
    self._failed[path] = failure
    return failure

  def _poll_model(self, name: str, served: Dict[str, Tuple[
      Dict[int, LoadedVersion], LoadedVersion]]) -> None:
    model_dir = os.path.join(self.serving_dir, name)
    current = dict(served[name][0]) if name in served else {}
    # Loaded versions, and failed ones (END, with their error) while their
    # folder is still there.
    states = {v: s for v, s in self._states.get(name, {}).items()
              if v in current or s.state == _State.END}
    while True:
      on_disk = _version_folders(model_dir)
      now = self._clock()
      waiting = {v for v in on_disk
                 if self._waiting(os.path.join(model_dir, str(v)), now)}
      candidates = [v for v in on_disk if v not in waiting]
      wanted = (candidates[:self.num_versions] if self.num_versions else
                candidates)
      to_load = [v for v in wanted if v not in current]
      if not to_load:
        break
      version = to_load[0]
      path = os.path.join(model_dir, str(version))
      if version not in states or states[version].state != _State.END:
        # A retry keeps reporting the last error until it succeeds.
        states[version] = VersionState(_State.LOADING)
        self._set_states(name, states)
      stamp = _folder_stamp(path)
      started = time.monotonic()
      try:
        loaded = load_version(path, name, version)
      except Exception as e:  # Any failure: log it, keep serving the rest.
        message = e.message if isinstance(e, ServingError) else (
            f'{type(e).__name__}: {e}'.split('\n')[0])
        failure = self._record_failure(path, stamp)
        retry = (f'attempt {failure.attempts} failed; next in '
                 f'{failure.delay:g} s, or as soon as its files change')
        states[version] = VersionState(
            _State.END, getattr(e, 'code', grpc.StatusCode.UNKNOWN),
            f'{message} ({retry})')
        self._set_states(name, states)
        serving = sorted(current, reverse=True)
        _LOG.error('Could not load %s version %d from %s: %s; %s; %s', name,
                   version, path, message, retry,
                   f'still serving version(s) {serving}' if serving else
                   'no version of it is served')
        continue
      self._failed.pop(path, None)
      current[version] = loaded
      states[version] = VersionState(_State.AVAILABLE)
      warmed = (f', replayed {loaded.warmup_requests} warm-up request(s)'
                if loaded.warmup_requests else '')
      _LOG.info('Loaded %s version %d from %s in %.1fs (signatures: %s%s)',
                name, version, path, time.monotonic() - started,
                ', '.join(sorted(loaded.signatures)), warmed)
      # Swapped in at once, and what it pushes out unloaded, so that new
      # versions arriving faster than they load neither wait for the loop
      # to end nor pile up in memory.
      self._unload(name, current, states, on_disk, [
          v for v in current if self.num_versions and len(
              [u for u in current if u > v]) >= self.num_versions])
      self._publish(name, current, served)
      self._set_states(name, states)
    self._unload(name, current, states, on_disk, set(current) - set(wanted))
    for version in list(states):
      if states[version].state == _State.END and version not in on_disk:
        del states[version]
        self._failed.pop(os.path.join(model_dir, str(version)), None)
        _LOG.info('Gave up loading %s version %d: its folder is gone', name,
                  version)
    self._publish(name, current, served)
    self._set_states(name, states)

  def _unload(self, name: str, current: Dict[int, LoadedVersion],
              states: Dict[int, VersionState], on_disk: List[int],
              versions) -> None:
    """Drops `versions` and those gone from disk from `current`."""
    for version in sorted(set(versions) | (set(current) - set(on_disk))):
      del current[version]
      states.pop(version, None)
      why = ('its folder is gone' if version not in on_disk else
             f'not among the newest {self.num_versions}')
      _LOG.info('Unloaded %s version %d: %s', name, version, why)

  def _publish(self, name: str, current: Dict[int, LoadedVersion],
               served: Dict[str, Tuple[Dict[int, LoadedVersion],
                                       LoadedVersion]]) -> None:
    """Makes `current` the versions requests for `name` see."""
    if current:
      served[name] = (dict(current), current[max(current)])
    else:
      served.pop(name, None)
    self._served = dict(served)

  def _set_states(self, name: str, states: Dict[int, VersionState]) -> None:
    all_states = dict(self._states)
    if states:
      all_states[name] = dict(states)
    else:
      all_states.pop(name, None)
    self._states = all_states


# --- gRPC services -----------------------------------------------------------


def _rows(request) -> int:
  """The largest first dimension among a request's inputs (0 if none)."""
  return max((t.tensor_shape.dim[0].size for t in request.inputs.values()
              if t.tensor_shape.dim), default=0)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
  """TF Serving's PredictionService: Predict and GetModelMetadata."""

  def __init__(self, registry: ModelRegistry,
               limits: RequestLimits = DEFAULT_LIMITS):
    self._registry = registry
    self._limits = limits

  def Predict(self, request, context):
    try:
      return self._registry.get(request.model_spec).predict(request,
                                                            self._limits)
    except ServingError as e:
      context.abort(e.code, e.message)
    except Exception as e:  # A bug or an unexpected model failure.
      _LOG.exception('Predict failed for %s', request.model_spec.name)
      first_line = str(e).strip().split('\n')[0][:500]
      context.abort(grpc.StatusCode.INTERNAL,
                    f'Predict failed for model '
                    f'{request.model_spec.name!r}: {type(e).__name__}: '
                    f'{first_line}')
    finally:
      if _rows(request) > (self._limits.chunk_rows or DEFAULT_CHUNK_ROWS):
        # A batch larger than one chunk: what its chunks allocated goes
        # back to the system, not into malloc's arenas (serving/memory.py).
        memory.trim()

  def GetModelMetadata(self, request, context):
    try:
      if not request.metadata_field:
        raise ServingError(
            grpc.StatusCode.INVALID_ARGUMENT,
            'GetModelMetadataRequest must specify at least one '
            'metadata_field')
      unsupported = [f for f in request.metadata_field
                     if f != SIGNATURE_DEF_FIELD]
      if unsupported:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           f'Metadata field {unsupported[0]} is not '
                           f'supported (only {SIGNATURE_DEF_FIELD})')
      loaded = self._registry.get(request.model_spec)
    except ServingError as e:
      context.abort(e.code, e.message)
    response = get_model_metadata_pb2.GetModelMetadataResponse(
        model_spec=loaded.model_spec())
    response.metadata[SIGNATURE_DEF_FIELD].Pack(loaded.signature_def_map)
    return response


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
  """TF Serving's ModelService: GetModelStatus."""

  def __init__(self, registry: ModelRegistry):
    self._registry = registry

  def GetModelStatus(self, request, context):
    try:
      states = self._registry.status(request.model_spec)
    except ServingError as e:
      context.abort(e.code, e.message)
    response = get_model_status_pb2.GetModelStatusResponse()
    for version, state in states:
      status = response.model_version_status.add(version=version,
                                                 state=state.state)
      status.status.error_code = state.error_code.value[0]
      status.status.error_message = state.error_message
    return response


class LocalServer:
  """The gRPC server, its registry and the thread polling the folder.

  Use as a context manager, or `start()` then `stop()`:

      with LocalServer('outputs/serving', port=0) as server:
        ...  # server.address, e.g. '127.0.0.1:40123'
  """

  def __init__(self, serving_dir: str, host: str = DEFAULT_HOST,
               port: int = DEFAULT_PORT,
               poll_seconds: float = DEFAULT_POLL_SECONDS,
               num_versions: int = DEFAULT_NUM_VERSIONS,
               threads: int = DEFAULT_THREADS,
               max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
               limits: RequestLimits = DEFAULT_LIMITS,
               load_retry_seconds: float = DEFAULT_LOAD_RETRY_SECONDS,
               max_load_retry_seconds: float = DEFAULT_MAX_LOAD_RETRY_SECONDS):
    if not os.path.isdir(serving_dir):
      raise ValueError(f'serving folder {serving_dir} does not exist (push '
                       'a model first: make run)')
    if poll_seconds <= 0:
      raise ValueError(f'poll_seconds must be > 0, got {poll_seconds}')
    if threads < 1:
      raise ValueError(f'threads must be >= 1, got {threads}')
    if max_request_bytes < 1:
      raise ValueError(f'max_request_bytes must be >= 1, got '
                       f'{max_request_bytes}')
    self.registry = ModelRegistry(serving_dir, num_versions,
                                  load_retry_seconds, max_load_retry_seconds)
    self.max_request_bytes = max_request_bytes
    self.limits = limits
    self.host = host
    self.port = port
    self.poll_seconds = poll_seconds
    self.threads = threads
    self._server: Optional[grpc.Server] = None
    self._stopping = threading.Event()
    self._poller: Optional[threading.Thread] = None

  @property
  def address(self) -> str:
    host = f'[{self.host}]' if ':' in self.host else self.host
    return f'{host}:{self.port}'

  def start(self) -> 'LocalServer':
    """Loads what is on disk, then listens; `port=0` picks a free port.

    Raises:
      OSError: the address cannot be bound.
    """
    self.registry.poll()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=self.threads,
                                   thread_name_prefix='grpc'),
        # gRPC refuses a larger request itself, before it is parsed:
        # RESOURCE_EXHAUSTED 'Received message larger than max (N vs. M)'.
        options=(('grpc.max_receive_message_length', self.max_request_bytes),
                 ('grpc.max_send_message_length', -1),
                 ('grpc.so_reuseport', 0)))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(self.registry, self.limits), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        ModelServicer(self.registry), server)
    try:
      port = server.add_insecure_port(self.address)
    except RuntimeError:  # grpcio raises where older versions returned 0.
      port = 0
    if not port:
      raise OSError(f'cannot listen on {self.address} (port in use?)')
    self.port = port
    server.start()
    self._server = server
    self._stopping.clear()
    self._poller = threading.Thread(target=self._poll_forever,
                                    name='serving-poller', daemon=True)
    self._poller.start()
    return self

  def stop(self, grace: Optional[float] = 1.0) -> None:
    self._stopping.set()
    if self._poller is not None:
      self._poller.join()
    if self._server is not None:
      self._server.stop(grace).wait()
      self._server = None

  def wait(self) -> None:
    """Blocks until the server stops."""
    if self._server is not None:
      self._server.wait_for_termination()

  def __enter__(self) -> 'LocalServer':
    return self.start()

  def __exit__(self, *exc_info) -> None:
    self.stop()

  def _poll_forever(self) -> None:
    while not self._stopping.wait(self.poll_seconds):
      try:
        self.registry.poll()
      except Exception:  # e.g. the folder vanished; try again next time.
        _LOG.exception('Polling %s failed', self.registry.serving_dir)


# --- Running it ------------------------------------------------------------


def _log_to_stderr() -> None:
  handler = logging.StreamHandler(sys.stderr)
  handler.setFormatter(logging.Formatter(
      '%(asctime)s %(levelname)s %(message)s', '%Y-%m-%d %H:%M:%S'))
  logger = logging.getLogger('serving')
  logger.handlers[:] = [handler]
  logger.setLevel(logging.INFO)
  logger.propagate = False


def _interrupt(signum, frame):
  raise KeyboardInterrupt


def main(argv: Optional[Sequence[str]] = None,
         args: Optional[argparse.Namespace] = None) -> int:
  """Runs the server until Ctrl-C or SIGTERM; `args` is `argv` parsed."""
  if args is None:
    args = parse_args(argv)
  _log_to_stderr()
  # Before anything runs a TensorFlow op; 0 keeps TensorFlow's default.
  tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
  tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
  try:
    server = LocalServer(
        args.serving_dir, args.host, args.port, args.poll_seconds,
        args.num_versions, args.threads, args.max_request_bytes,
        RequestLimits(max_batch=args.max_batch,
                      max_id_bytes=args.max_id_bytes,
                      chunk_rows=args.chunk_rows),
        args.load_retry_seconds, args.max_load_retry_seconds)
    server.start()
  except (ValueError, OSError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  served = server.registry.served_versions()
  if not served:
    _LOG.warning('No model version under %s yet; polling every %gs',
                 args.serving_dir, args.poll_seconds)
  # One line on stdout that scripts (benchmarks, tests) wait for.
  print(f'Serving {len(served)} model(s) on {server.address} (local '
        'development server, not TF Serving)', flush=True)
  signal.signal(signal.SIGTERM, _interrupt)  # docker stop, kill: as Ctrl-C.
  try:
    server.wait()
  except KeyboardInterrupt:
    _LOG.info('Stopping')
    server.stop()
  return 0


if __name__ == '__main__':
  sys.exit(main(args=_ARGS))
