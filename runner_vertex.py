"""Compiles the pipeline for Vertex AI Pipelines and, with --submit, runs it.

  python runner_vertex.py --output movielens-tfx.json \\
      --pipeline-root gs://BUCKET/movielens-tfx \\
      --data-dir gs://BUCKET/data/ml-100k \\
      --image REGION-docker.pkg.dev/PROJECT/REPO/movielens-tfx:TAG
  python runner_vertex.py --submit --project PROJECT --region REGION ...

The pipeline is runner_local.py's (`create_pipeline`), compiled by TFX's
KubeflowV2DagRunner into a PipelineJob JSON (`pipeline.kubeflow`). --output
needs no network and no credentials; --submit reads the raw files' sizes and
times (the cache key of ingestion), submits the job with
google-cloud-aiplatform and prints its console link. Step-by-step guide:
docs/kubeflow_vertex.md.
"""

import os

# TFRS and tensorflow-transform need Keras 2; must precede any TF import.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import argparse  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from typing import Any, List, Optional  # noqa: E402

from pipeline import configs, kubeflow  # noqa: E402  (light: no TensorFlow)

CONSOLE_RUN_URL = ('https://console.cloud.google.com/vertex-ai/locations/'
                   '{location}/pipelines/runs/{job_id}?project={project}')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      description='Compile the MovieLens TFX pipeline for Vertex AI '
      'Pipelines; optionally submit it.',
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  kubeflow.add_flags(parser)
  vertex = parser.add_argument_group('Vertex AI Pipelines')
  vertex.add_argument(
      '--service-account', default=os.environ.get('MOVIELENS_SERVICE_ACCOUNT'),
      help="service account the run's steps use; default: the project's "
      'Compute Engine default account [$MOVIELENS_SERVICE_ACCOUNT]')
  vertex.add_argument('--display-name', default=configs.PIPELINE_NAME,
                      help='name of the run in the console')
  return kubeflow.parse_args(parser, argv)


def check(args: argparse.Namespace) -> None:
  """kubeflow.check, plus the project and region a submission needs."""
  kubeflow.check(args)
  if args.submit:
    kubeflow.require_gcp(args, '--submit')


def console_link(resource_name: str) -> str:
  """Console page of a job named projects/P/locations/L/pipelineJobs/ID."""
  parts = resource_name.split('/')
  if len(parts) != 6 or parts[0] != 'projects' or parts[4] != 'pipelineJobs':
    raise ValueError(f'Not a pipeline job resource name: {resource_name!r}')
  return CONSOLE_RUN_URL.format(project=parts[1], location=parts[3],
                                job_id=parts[5])


def submit(args: argparse.Namespace, template_path: str, fingerprint: str,
           aiplatform: Any) -> str:
  """Submits the compiled job; returns its console link.

  Args:
    args: checked flags.
    template_path: the compiled PipelineJob JSON.
    fingerprint: `kubeflow.data_fingerprint` of --data-dir.
    aiplatform: the `google.cloud.aiplatform` module (a fake in tests).
  """
  job = aiplatform.PipelineJob(
      display_name=args.display_name,
      template_path=template_path,
      pipeline_root=args.pipeline_root,
      project=args.project,
      location=args.region,
      enable_caching=not args.no_cache,
      parameter_values={kubeflow.FINGERPRINT_PARAMETER: fingerprint},
  )
  job.submit(service_account=args.service_account)
  return console_link(job.resource_name)


def main(argv: Optional[List[str]] = None, aiplatform: Any = None) -> int:
  """Runs the command line; `aiplatform` replaces the real module in tests."""
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
  path = kubeflow.write_compiled(job, args.output, 'json')
  print(f'Compiled {kubeflow.describe(job)} to {path}')
  if not args.submit:
    return 0
  if aiplatform is None:
    from google.cloud import aiplatform  # pylint: disable=g-import-not-at-top
  print(f'Submitted to Vertex AI Pipelines: '
        f'{submit(args, path, fingerprint, aiplatform)}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
