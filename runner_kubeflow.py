"""Compiles the pipeline for open-source Kubeflow Pipelines (KFP v2 YAML)
and, with --submit, runs it.

  python runner_kubeflow.py --output movielens-tfx.yaml \\
      --pipeline-root gs://BUCKET/movielens-tfx \\
      --data-dir gs://BUCKET/data/ml-100k --image IMAGE_URI
  python runner_kubeflow.py --submit --host https://KFP_HOST ...

The pipeline is runner_local.py's (`create_pipeline`), compiled by TFX's
KubeflowV2DagRunner (`pipeline.kubeflow`) and written as the bare KFP v2
PipelineSpec YAML that the KFP UI, `kfp.Client` and `kfp run create` take,
with the pipeline root as its `defaultPipelineRoot`. --output needs no
network and no credentials; --submit reads the raw files' sizes and times
(the cache key of ingestion), submits a run with `kfp.Client` and prints its
link. Step-by-step guide: docs/kubeflow_vertex.md.
"""

import os

# TFRS and tensorflow-transform need Keras 2; must precede any TF import.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import argparse  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from typing import Any, Callable, List, Optional  # noqa: E402

from pipeline import configs, kubeflow  # noqa: E402  (light: no TensorFlow)

# kfp.Client's own variable for the endpoint.
HOST_ENV = 'KF_PIPELINES_ENDPOINT'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      description='Compile the MovieLens TFX pipeline to KFP v2 YAML for '
      'Kubeflow Pipelines; optionally submit it.',
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  kubeflow.add_flags(parser)
  kfp_group = parser.add_argument_group('Kubeflow Pipelines')
  kfp_group.add_argument(
      '--host', default=os.environ.get(HOST_ENV),
      help=f'KFP API endpoint, e.g. http://localhost:8080 [${HOST_ENV}]')
  kfp_group.add_argument('--namespace', default=None,
                         help='Kubernetes namespace (multi-user KFP)')
  kfp_group.add_argument('--experiment', default=configs.PIPELINE_NAME,
                         help='KFP experiment of the run')
  kfp_group.add_argument('--run-name', default=None,
                         help="run name; default: KFP's (name and time)")
  kfp_group.add_argument('--service-account', default=None,
                         help='Kubernetes service account of the pods')
  return kubeflow.parse_args(parser, argv)


def check(args: argparse.Namespace) -> None:
  """kubeflow.check, plus the endpoint a submission needs."""
  kubeflow.check(args)
  if args.submit and not args.host:
    raise kubeflow.ConfigError(
        f'--host is required for --submit: the KFP API endpoint, e.g. '
        f'http://localhost:8080 after `kubectl port-forward` (or set '
        f'${HOST_ENV}).')


def submit(args: argparse.Namespace, package_path: str, fingerprint: str,
           client_factory: Callable[..., Any]) -> str:
  """Submits the compiled package; returns the run's link.

  Args:
    args: checked flags.
    package_path: the compiled PipelineSpec YAML.
    fingerprint: `kubeflow.data_fingerprint` of --data-dir.
    client_factory: `kfp.Client` (a fake in tests).
  """
  client = client_factory(host=args.host, namespace=args.namespace)
  run = client.create_run_from_pipeline_package(
      package_path,
      arguments={kubeflow.FINGERPRINT_PARAMETER: fingerprint},
      run_name=args.run_name,
      experiment_name=args.experiment,
      namespace=args.namespace,
      pipeline_root=args.pipeline_root,
      enable_caching=not args.no_cache,
      service_account=args.service_account,
  )
  return f'{args.host.rstrip("/")}/#/runs/details/{run.run_id}'


def main(argv: Optional[List[str]] = None,
         client_factory: Optional[Callable[..., Any]] = None) -> int:
  """Runs the command line; `client_factory` replaces kfp.Client in tests."""
  args = parse_args(argv)
  try:
    check(args)
    fingerprint = (kubeflow.data_fingerprint(args.data_dir)
                   if args.submit else None)
  except kubeflow.ConfigError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  # Google client libraries warn at import about Python 3.10, which is all
  # TFX 1.16 supports.
  warnings.filterwarnings('ignore', category=FutureWarning,
                          module=r'google\.')
  try:
    job = kubeflow.compile_pipeline(args)
  except kubeflow.IncompatibleComponentError as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  path = kubeflow.write_compiled(kubeflow.kfp_pipeline_spec(job), args.output,
                                 'yaml')
  print(f'Compiled {kubeflow.describe(job)} to {path}')
  if not args.submit:
    return 0
  if client_factory is None:
    import kfp  # pylint: disable=g-import-not-at-top
    client_factory = kfp.Client
  print(f'Submitted to Kubeflow Pipelines: '
        f'{submit(args, path, fingerprint, client_factory)}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
