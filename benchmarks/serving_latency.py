"""Serving latency and throughput over TF Serving's gRPC API on loopback.

    python -m benchmarks.serving_latency --serving-dir outputs/serving \
        --model recommender --requests 10000 --concurrency 1,8,32 \
        --output benchmarks/results/serving_latency.json

1. Anchor: the model's `serving_default` called in this process (the
   SavedModel loaded once, one user per call), at each concurrency, with
   the same inputs: what the model itself costs, without gRPC.
2. A server: by default the local server (`python -m serving.server`) in a
   subprocess on a free loopback port, as it runs for a user; or
   `--server inprocess` (a LocalServer in this process), or
   `--address HOST:PORT` for a server already running (real TF Serving).
3. For each concurrency C: C threads share one gRPC channel and send
   `--requests` Predict requests in total (one user each, users 1..943 in
   turn), after `--warmup-requests` unmeasured ones; each request's latency
   is the blocking Predict call, request proto built beforehand, response
   parsed by gRPC. Errors are counted by status code, never retried.
4. The gRPC floor (unless --no-floor): the same requests against an echo
   server in a subprocess that answers each with the model's response to
   the first one: gRPC and protobuf in Python, without the model.

Reported per level: p50, p90, p99, max and mean latency, throughput
(successful requests per wall-clock second), errors, and the CPU the
server process and this (client) process used, in cores: the evidence for
what limits throughput. Results go to a JSON file (machine, date, package
versions, load average) and to a table in `benchmarks/README.md` between
`<!-- results:serving_latency -->` and `<!-- /results:serving_latency -->`.
"""

from __future__ import annotations

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import argparse  # noqa: E402
import datetime  # noqa: E402
import itertools  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import (Any, Callable, Dict, List, Mapping, Optional,  # noqa: E402
                    Sequence, Tuple)

from benchmarks import common  # noqa: E402
from benchmarks import report  # noqa: E402
from benchmarks.common import REPO_ROOT, percentile  # noqa: E402

DEFAULT_OUTPUT = os.path.join('benchmarks', 'results',
                              'serving_latency.json')
DEFAULT_README = os.path.join(REPO_ROOT, 'benchmarks', 'README.md')
RESULTS_BEGIN = '<!-- results:serving_latency -->'
RESULTS_END = '<!-- /results:serving_latency -->'
SECTION_TITLE = '## Serving latency (`serving_latency.py`)'
SIGNATURE = 'serving_default'
# Ids sent in turn: ml-100k has users 1..943 and movies 1..1682.
NUM_USERS = 943
NUM_MOVIES = 1682
# Targets at concurrency 1 on 2 cores.
TARGET_P50_MS = 2.0
TARGET_P99_MS = 10.0
PACKAGES = ('tensorflow', 'tensorflow-serving-api', 'grpcio', 'protobuf',
            'numpy')


# --- The math (tested in tests/benchmarks/test_serving_latency.py) -----------


def summarise(latencies: Sequence[float], wall_seconds: float,
              errors: int = 0) -> Dict[str, Any]:
  """Latency percentiles (ms) and throughput of one measured run.

  Args:
    latencies: seconds, one per successful request.
    wall_seconds: from the first request sent to the last answer.
    errors: failed requests (not in `latencies`).

  Returns:
    requests, errors, p50/p90/p99/max/mean in ms, throughput in successful
    requests per second.
  """
  if wall_seconds <= 0:
    raise ValueError(f'wall_seconds must be > 0, got {wall_seconds}')
  ordered = sorted(latencies)
  summary = {'requests': len(ordered) + errors, 'errors': errors}
  for name, q in (('p50_ms', 50), ('p90_ms', 90), ('p99_ms', 99),
                  ('max_ms', 100)):
    summary[name] = (round(percentile(ordered, q) * 1e3, 3) if ordered
                     else None)
  summary['mean_ms'] = (round(sum(ordered) / len(ordered) * 1e3, 3)
                        if ordered else None)
  summary['throughput_rps'] = round(len(ordered) / wall_seconds, 1)
  return summary


def parse_concurrency(text: str) -> List[int]:
  """'1,8,32' -> [1, 8, 32]; each at least 1."""
  try:
    levels = [int(part) for part in text.split(',') if part.strip()]
  except ValueError as e:
    raise ValueError(f'--concurrency: integers separated by commas, got '
                     f'{text!r}') from e
  if not levels or min(levels) < 1:
    raise ValueError(f'--concurrency: each level must be >= 1, got {text!r}')
  return levels


def query_ids(input_name: str, index: int) -> str:
  """The id sent as `input_name` in the index-th query."""
  if input_name == 'movie_id':
    return str(1 + (index * 7) % NUM_MOVIES)
  return str(1 + index % NUM_USERS)


# --- Environment -------------------------------------------------------------


def _cpu_seconds(pid: int) -> Optional[float]:
  """User + system CPU seconds of a process so far (Linux), else None."""
  try:
    with open(f'/proc/{pid}/stat', encoding='utf-8') as f:
      fields = f.read().rsplit(')', 1)[1].split()
  except OSError:
    return None
  # Fields after the command: state is [0]; utime, stime are [11], [12].
  return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


# --- Model and requests ------------------------------------------------------


def model_dir(serving_dir: str, model: str,
              version: Optional[int]) -> Tuple[str, int]:
  """The version folder to measure: `version`, or the newest."""
  base = os.path.join(serving_dir, model)
  versions = sorted(int(n) for n in (os.listdir(base) if os.path.isdir(base)
                                     else []) if n.isdigit())
  if not versions:
    raise ValueError(f'no version of model {model!r} under {base}')
  if version is None:
    version = versions[-1]
  elif version not in versions:
    raise ValueError(f'{base}: no version {version} (have {versions})')
  return os.path.join(base, str(version)), version


def input_names(signature) -> List[str]:
  """The signature's inputs, which must all be strings (ids)."""
  import tensorflow as tf
  specs = signature.structured_input_signature[1]
  other = [n for n, s in specs.items() if s.dtype != tf.string]
  if other:
    raise ValueError(f'inputs {other} are not strings: this benchmark sends '
                     'ids only')
  return sorted(specs)


def build_requests(model: str, names: Sequence[str], batch_size: int,
                   count: int) -> List[Any]:
  """`count` PredictRequests of `batch_size` ids each (users in turn)."""
  import tensorflow as tf
  from tensorflow_serving.apis import predict_pb2
  requests = []
  for i in range(count):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = SIGNATURE
    for name in names:
      request.inputs[name].CopyFrom(tf.make_tensor_proto(
          [query_ids(name, i * batch_size + j) for j in range(batch_size)]))
    requests.append(request)
  return requests


# --- Measuring ---------------------------------------------------------------


def run_level(call: Callable[[int], None], total: int, concurrency: int,
              warmup: int, cpu_pids: Mapping[str, int]) -> Dict[str, Any]:
  """Runs `call(i)` for i in 0..total-1 from `concurrency` threads.

  `call` raises on failure; the exception's `code()` (gRPC) or type names
  the error. Returns `summarise(...)` plus errors by kind and CPU cores used
  by each process in `cpu_pids` during the measured part.
  """
  for i in range(warmup):
    call(i)
  counter = itertools.count()
  latencies: List[List[float]] = [[] for _ in range(concurrency)]
  errors: Dict[str, int] = {}
  first_error: List[str] = []
  lock = threading.Lock()

  def worker(slot: int) -> None:
    mine = latencies[slot]
    clock = time.perf_counter
    while True:
      i = next(counter)  # Atomic under the GIL.
      if i >= total:
        return
      started = clock()
      try:
        call(i)
      except Exception as e:  # Counted, reported, never retried.
        kind = e.code().name if hasattr(e, 'code') else type(e).__name__
        with lock:
          errors[kind] = errors.get(kind, 0) + 1
          if not first_error:
            first_error.append(f'{kind}: {e}'.split('\n')[0][:300])
        continue
      mine.append(clock() - started)

  threads = [threading.Thread(target=worker, args=(s,))
             for s in range(concurrency)]
  cpu_before = {k: _cpu_seconds(pid) for k, pid in cpu_pids.items()}
  started = time.perf_counter()
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  wall = time.perf_counter() - started
  cpu_after = {k: _cpu_seconds(pid) for k, pid in cpu_pids.items()}
  summary = summarise([x for part in latencies for x in part], wall,
                      sum(errors.values()))
  summary.update(concurrency=concurrency, wall_seconds=round(wall, 2),
                 errors_by_code=errors,
                 first_error=first_error[0] if first_error else None)
  summary['cpu_cores'] = {
      k: (round((cpu_after[k] - cpu_before[k]) / wall, 2)
          if cpu_before[k] is not None and cpu_after[k] is not None
          else None)
      for k in cpu_pids}
  return summary


def echo_server(response_path: str, threads: int) -> None:
  """A PredictionService answering every Predict with the response saved
  in `response_path`: the gRPC floor, everything but the model and its
  Python glue, with the same thread pool and message sizes. Prints the
  same ready line as the local server, then serves until killed."""
  from concurrent import futures

  import grpc
  from tensorflow_serving.apis import predict_pb2
  from tensorflow_serving.apis import prediction_service_pb2_grpc

  with open(response_path, 'rb') as f:
    response = predict_pb2.PredictResponse.FromString(f.read())

  class Echo(prediction_service_pb2_grpc.PredictionServiceServicer):

    def Predict(self, request, context):
      return response

  server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads))
  prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
      Echo(), server)
  port = server.add_insecure_port('127.0.0.1:0')
  server.start()
  print(f'Serving echo on 127.0.0.1:{port}', flush=True)
  server.wait_for_termination()


def _start_echo_server(response: bytes, threads: int, work_dir: str
                      ) -> Tuple[subprocess.Popen, str]:
  path = os.path.join(work_dir, 'response.pb')
  with open(path, 'wb') as f:
    f.write(response)
  process = subprocess.Popen(
      [sys.executable, '-c', 'from benchmarks.serving_latency import '
       f'echo_server; echo_server({path!r}, {threads})'],
      cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
      text=True)
  line = process.stdout.readline()
  if ' on ' not in line:
    process.kill()
    raise RuntimeError('the echo server did not start')
  return process, line.split(' on ', 1)[1].split()[0]


def _grpc_levels(address: str, requests: Sequence[Any],
                 args: argparse.Namespace, pids: Mapping[str, int],
                 label: str) -> List[Dict[str, Any]]:
  """Every concurrency level of Predict calls against one server."""
  import grpc
  from tensorflow_serving.apis import prediction_service_pb2_grpc

  results = []
  with grpc.insecure_channel(address) as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    timeout = args.timeout

    def over_grpc(i: int) -> None:
      stub.Predict(requests[i % len(requests)], timeout=timeout)

    for level in args.concurrency:
      summary = run_level(over_grpc, args.requests, level,
                          args.warmup_requests, pids)
      _progress(label, summary)
      results.append(summary)
  return results


def _progress(label: str, summary: Mapping[str, Any]) -> None:
  cores = ', '.join(f'{k} {v} cores' for k, v in
                    summary.get('cpu_cores', {}).items() if v is not None)
  print(f'{label:<28} c={summary["concurrency"]:<3} '
        f'p50 {summary["p50_ms"]} ms  p99 {summary["p99_ms"]} ms  '
        f'{summary["throughput_rps"]} req/s  errors {summary["errors"]}'
        f'{"  (" + cores + ")" if cores else ""}', flush=True)


def measure(args: argparse.Namespace) -> Dict[str, Any]:
  """Runs the anchor and the gRPC levels; returns the results."""
  import grpc
  import tensorflow as tf
  from tensorflow_serving.apis import prediction_service_pb2_grpc

  # The anchor runs with the server's TensorFlow thread pools (set before
  # the first op of this process).
  tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
  tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
  path, version = model_dir(args.serving_dir, args.model, args.version)
  results: Dict[str, Any] = {
      'benchmark': 'serving_latency',
      'date': datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec='seconds'),
      'machine': report.machine_info(),
      'packages': report.package_versions(PACKAGES),
      'load_average_before': common.load_average(),
      'config': {'serving_dir': os.path.abspath(args.serving_dir),
                 'model': args.model, 'version': version, 'model_dir': path,
                 'requests': args.requests, 'concurrency': args.concurrency,
                 'batch_size': args.batch_size,
                 'warmup_requests': args.warmup_requests,
                 'server': 'address' if args.address else args.server,
                 'address': args.address,
                 'server_threads': args.server_threads,
                 'inter_op_threads': args.inter_op_threads,
                 'intra_op_threads': args.intra_op_threads,
                 'output': args.output},
      'targets': {'concurrency': 1, 'p50_ms': TARGET_P50_MS,
                  'p99_ms': TARGET_P99_MS},
  }

  signature = tf.saved_model.load(path).signatures[SIGNATURE]
  names = input_names(signature)
  requests = build_requests(args.model, names, args.batch_size,
                            NUM_USERS)
  tensors = [{name: tf.constant(tf.make_ndarray(r.inputs[name]))
              for name in names} for r in requests]

  def in_process(i: int) -> None:
    outputs = signature(**tensors[i % len(tensors)])
    for value in outputs.values():
      value.numpy()

  me = {'this process': os.getpid()}
  results['in_process'] = []
  for level in args.concurrency:
    summary = run_level(in_process, args.requests, level,
                        args.warmup_requests, me)
    _progress('in-process (anchor)', summary)
    results['in_process'].append(summary)

  process = None
  address = args.address
  server = None
  try:
    if address:
      pids = {'client': os.getpid()}
    elif args.server == 'inprocess':
      from serving import server as serving_server
      server = serving_server.LocalServer(
          args.serving_dir, port=0, threads=args.server_threads).start()
      address = server.address
      pids = {'client + server': os.getpid()}
    else:
      process, address = common.start_local_server(
          args.serving_dir, args.server_threads,
          [f'--inter-op-threads={args.inter_op_threads}',
           f'--intra-op-threads={args.intra_op_threads}'])
      pids = {'server': process.pid, 'client': os.getpid()}
    results['config']['address'] = address
    results['grpc'] = _grpc_levels(address, requests, args, pids, 'gRPC')
    with grpc.insecure_channel(address) as channel:
      response = prediction_service_pb2_grpc.PredictionServiceStub(
          channel).Predict(requests[0], timeout=args.timeout)
  finally:
    if server is not None:
      server.stop()
    if process is not None:
      process.terminate()
      process.wait(timeout=60)

  results['grpc_floor'] = []
  if args.floor:
    with tempfile.TemporaryDirectory() as work_dir:
      process, address = _start_echo_server(response.SerializeToString(),
                                            args.server_threads, work_dir)
      try:
        results['grpc_floor'] = _grpc_levels(
            address, requests, args,
            {'server': process.pid, 'client': os.getpid()},
            'gRPC floor (echo)')
      finally:
        process.terminate()
        process.wait(timeout=60)
  results['load_average_after'] = common.load_average()
  first = results['grpc'][0]
  results['meets_targets'] = (
      first['concurrency'] == 1 and first['errors'] == 0 and
      first['p50_ms'] is not None and first['p50_ms'] <= TARGET_P50_MS and
      first['p99_ms'] <= TARGET_P99_MS)
  return results


# --- Report ------------------------------------------------------------------


def _ms(value: Optional[float]) -> str:
  return '–' if value is None else f'{value:.2f}'


def _cores(summary: Mapping[str, Any], key: str) -> str:
  value = summary.get('cpu_cores', {}).get(key)
  return '–' if value is None else f'{value:.2f}'


def render_markdown(results: Mapping[str, Any]) -> str:
  """The README's results: one table, anchor and gRPC rows per level."""
  config, machine = results['config'], results['machine']
  server = {'subprocess': 'local server (`serving.server`) in a subprocess',
            'inprocess': 'local server in the benchmark\'s process',
            'address': f'server at {config["address"]}'}[config['server']]
  cpu_keys = sorted({k for s in results['grpc'] for k in s['cpu_cores']})
  lines = [
      f'Run of {results["date"]} on {machine["cpu_model"]} '
      f'({machine["cpu_cores"]} cores), tensorflow '
      f'{results["packages"]["tensorflow"]}, grpcio '
      f'{results["packages"]["grpcio"]}; model `{config["model"]}` version '
      f'{config["version"]}, {config["batch_size"]} user(s) per request, '
      f'{config["requests"]} measured requests per row, {server} with '
      f'{config["server_threads"]} threads; load average (1, 5, 15 min) '
      f'{results["load_average_before"]} before, '
      f'{results.get("load_average_after")} after. Full results: '
      f'`{config["output"]}`.',
      '',
      '| Path | Concurrency | Requests | Errors | p50 ms | p90 ms | p99 ms '
      '| Throughput req/s | CPU cores: ' + ', '.join(
          ['this process'] if not cpu_keys else cpu_keys) + ' |',
      '|---|---|---|---|---|---|---|---|---|',
  ]
  labelled = (('in-process call (anchor)', results['in_process']),
              ('gRPC Predict', results['grpc']),
              ('gRPC floor: echo server, no model',
               results.get('grpc_floor', [])))
  rows = sorted(((s['concurrency'], order, label, s)
                 for order, (label, runs) in enumerate(labelled)
                 for s in runs), key=lambda row: row[:2])
  for _, _, label, s in rows:
    keys = ['this process'] if label.startswith('in-process') else cpu_keys
    lines.append(
        f'| {label} | {s["concurrency"]} | {s["requests"]} | {s["errors"]} '
        f'| {_ms(s["p50_ms"])} | {_ms(s["p90_ms"])} | {_ms(s["p99_ms"])} '
        f'| {s["throughput_rps"]:.0f} | '
        + ' / '.join(_cores(s, k) for k in keys) + ' |')
  first = results['grpc'][0]
  lines += ['', f'Targets at concurrency 1: p50 ≤ {TARGET_P50_MS:g} ms, p99 '
            f'≤ {TARGET_P99_MS:g} ms: '
            f'{"met" if results["meets_targets"] else "NOT met"} '
            f'(p50 {_ms(first["p50_ms"])} ms, p99 {_ms(first["p99_ms"])} '
            'ms).']
  return '\n'.join(lines)


def update_readme(path: str, table: str) -> None:
  """Replaces the text between this benchmark's markers; appends a section
  with the markers at the end of the file when they are missing."""
  report.replace_section(path, RESULTS_BEGIN, RESULTS_END, table,
                         heading=SECTION_TITLE)


# --- Entry point -------------------------------------------------------------


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog='python -m benchmarks.serving_latency',
      description='Latency and throughput of a served model over gRPC on '
      'loopback, with the in-process call as anchor.',
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--serving-dir', default='outputs/serving',
                      help='folder of <model>/<version>/ SavedModels')
  parser.add_argument('--model', default='recommender',
                      help='model name (a folder of --serving-dir)')
  parser.add_argument('--version', type=int, default=None,
                      help='version to measure (default: the newest)')
  parser.add_argument('--requests', type=int, default=10000,
                      help='measured requests per concurrency level')
  parser.add_argument('--concurrency', default='1,8,32',
                      help='comma-separated numbers of concurrent clients')
  parser.add_argument('--batch-size', type=int, default=1,
                      help='users per request')
  parser.add_argument('--warmup-requests', type=int, default=200,
                      help='unmeasured requests before each level')
  parser.add_argument('--server', choices=('subprocess', 'inprocess'),
                      default='subprocess',
                      help='where the local server runs')
  parser.add_argument('--address', default=None,
                      help='measure a server already running at HOST:PORT '
                      '(e.g. real TF Serving serving --serving-dir) instead')
  parser.add_argument('--server-threads', type=int, default=None,
                      help='gRPC threads of the local server (default: its '
                      'own default)')
  parser.add_argument('--inter-op-threads', type=int, default=None,
                      help='TensorFlow inter-op threads of the anchor and of '
                      'the local server (default: the server\'s default)')
  parser.add_argument('--intra-op-threads', type=int, default=None,
                      help='TensorFlow intra-op threads, likewise')
  parser.add_argument('--no-floor', dest='floor', action='store_false',
                      help='skip the gRPC floor: an echo server answering '
                      'the same response without any model')
  parser.add_argument('--timeout', type=float, default=10.0,
                      help='seconds per request before it counts as an error')
  parser.add_argument('--output', default=DEFAULT_OUTPUT,
                      help='where the JSON results go')
  parser.add_argument('--readme', default=DEFAULT_README,
                      help="Markdown file whose results section is "
                      "regenerated; '' to leave it alone")
  args = parser.parse_args(argv)
  try:
    args.concurrency = parse_concurrency(args.concurrency)
  except ValueError as e:
    parser.error(str(e))
  for name in ('requests', 'batch_size'):
    if getattr(args, name) < 1:
      parser.error(f'--{name.replace("_", "-")} must be at least 1')
  if args.warmup_requests < 0:
    parser.error('--warmup-requests must be >= 0')
  from serving import server as serving_server
  if args.server_threads is None:
    args.server_threads = serving_server.DEFAULT_THREADS
  if args.inter_op_threads is None:
    args.inter_op_threads = serving_server.DEFAULT_INTER_OP_THREADS
  if args.intra_op_threads is None:
    args.intra_op_threads = serving_server.DEFAULT_INTRA_OP_THREADS
  if min(args.server_threads, 1 + args.inter_op_threads,
         1 + args.intra_op_threads) < 1:
    parser.error('thread counts must be >= 0 (--server-threads >= 1)')
  return args


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  try:
    results = measure(args)
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  common.write_json(args.output, results)
  print(f'Results: {args.output}', flush=True)
  if args.readme:
    update_readme(args.readme, render_markdown(results))
    print(f'Table: {args.readme}', flush=True)
  errors = sum(s['errors'] for s in results['grpc'] + results['in_process'])
  return 1 if errors else 0


if __name__ == '__main__':
  sys.exit(main())
