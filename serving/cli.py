"""Command line of the serving client.

    python -m serving.client recommend --user 1 --user 2 [--top 10]
    python -m serving.client rate --user 1 --movie 50 [--movie 172 ...]
    python -m serving.client status [--model recommender]
    python -m serving.client metadata [--model recommender]

Every command takes `--address HOST:PORT` (default 127.0.0.1:8500),
`--model NAME`, `--version N` (default: the newest served), `--timeout S`
and `--json` (machine-readable output). A failure prints one line,
`error: ...`, on stderr and exits 1 (2 for a bad command line); `status`
also exits 1 when no version of the model is AVAILABLE, so scripts can wait
for a model with it.
"""

import os
import sys

if __name__ == '__main__':  # As in serving/client.py: a quiet console.
  os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'
  import warnings
  warnings.simplefilter('ignore', FutureWarning)

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
from typing import List, Optional, Sequence  # noqa: E402

from serving import client as serving_client  # noqa: E402

_DEFAULT_MODELS = {'recommend': serving_client.RECOMMENDER,
                   'rate': serving_client.RANKING,
                   'status': serving_client.RECOMMENDER,
                   'metadata': serving_client.RECOMMENDER}


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
  common.add_argument('--address', default=serving_client.DEFAULT_ADDRESS,
                      help='TF Serving gRPC endpoint, HOST:PORT (default '
                      '%(default)s)')
  common.add_argument('--model', default=None,
                      help='model name (default: recommender; ranking for '
                      'rate)')
  common.add_argument('--version', type=_non_negative_int, default=None,
                      help='model version (default: the newest served)')
  common.add_argument('--timeout', type=_positive_float,
                      default=serving_client.DEFAULT_TIMEOUT,
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
  recommend.add_argument('--top', type=_positive_int, default=10,
                         help='movies per user (default %(default)s)')
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


def _print_recommendations(answers: List[serving_client.UserRecommendations]
                          ) -> None:
  for i, answer in enumerate(answers):
    if i:
      print()
    print(f'user {answer.user_id} ({answer.model} version {answer.version}):')
    if not answer.items:
      print('  (no movie left to recommend)')
    id_width = max([len(r.movie_id) for r in answer.items] + [1])
    title_width = min(max([len(r.title) for r in answer.items] + [1]), 60)
    for rank, item in enumerate(answer.items, 1):
      print(f'  {rank:>3}. {item.movie_id:<{id_width}}  '
            f'{item.title[:title_width]:<{title_width}}  {item.score:.4f}')


def _print_ratings(ratings: List[serving_client.Rating]) -> None:
  for r in ratings:
    print(f'user {r.user_id}  movie {r.movie_id}  {r.rating:.3f}  '
          f'({r.model} version {r.version})')


def _print_status(model: str,
                  statuses: List[serving_client.VersionStatus]) -> None:
  for s in statuses:
    error = (f' ({s.error_code}: {s.error_message})'
             if s.error_code != 'OK' or s.error_message else '')
    print(f'{model} version {s.version}: {s.state}{error}')


def _print_metadata(metadata: serving_client.ModelMetadata) -> None:
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
  with serving_client.ServingClient(args.address, args.timeout) as client:
    if args.command == 'recommend':
      result = client.recommend(args.user, model, args.version, args.top)
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
  except serving_client.ServingError as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    return 130


if __name__ == '__main__':
  sys.exit(main())
