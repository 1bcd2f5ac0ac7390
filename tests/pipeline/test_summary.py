"""pipeline.summary's push lines, from ML Metadata shaped as LocalDagRunner
records it: a node context per component, an execution per run (CACHED
when reused, its output the earlier run's PushedModel), a PushedModel with
`pushed` and `pushed_destination`."""

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline import summary

pytestmark = pytest.mark.unit

COMPLETE = metadata_store_pb2.Execution.COMPLETE
CACHED = metadata_store_pb2.Execution.CACHED
FAILED = metadata_store_pb2.Execution.FAILED
SERVING = '/out/serving/retrieval'


class Pipeline:
  """A store in tmp_path holding a pusher's runs."""

  def __init__(self, path, pusher='RetrievalPusher'):
    self.path = str(path / 'metadata.sqlite')
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = self.path
    self.store = metadata_store.MetadataStore(config)
    self.node = metadata_store_pb2.Context(
        type_id=self.store.put_context_type(
            metadata_store_pb2.ContextType(name='node')),
        name=f'movielens-tfx.{pusher}')
    self.node.id = self.store.put_contexts([self.node])[0]
    self.execution_type = self.store.put_execution_type(
        metadata_store_pb2.ExecutionType(
            name='components.atomic_pusher.component.AtomicPusher'))
    self.artifact_type = self.store.put_artifact_type(
        metadata_store_pb2.ArtifactType(name='PushedModel'))

  def run(self, state, pushed=True, version=None, reuse=None):
    """Records one run of the pusher; returns its PushedModel's id.

    `reuse`: the id of an earlier run's PushedModel, output again (as a
    cached execution's is).
    """
    if reuse is None:
      artifact = metadata_store_pb2.Artifact(type_id=self.artifact_type,
                                             uri='/out/pipeline/x')
      artifact.custom_properties['pushed'].int_value = int(pushed)
      if pushed:
        artifact.custom_properties['pushed_destination'].string_value = (
            f'{SERVING}/{version}')
        artifact.custom_properties['pushed_version'].string_value = version
    else:
      artifact = self.store.get_artifacts_by_id([reuse])[0]
    event = metadata_store_pb2.Event(type=metadata_store_pb2.Event.OUTPUT)
    _, (artifact_id,), _ = self.store.put_execution(
        metadata_store_pb2.Execution(type_id=self.execution_type,
                                     last_known_state=state),
        [(artifact, event)], [self.node])
    return artifact_id

  def line(self):
    return summary.push_line(
        summary.latest_push(self.store, 'RetrievalPusher'),
        'Retrieval servable')


@pytest.fixture
def pipeline(tmp_path):
  return Pipeline(tmp_path)


def test_a_new_push_names_its_folder(pipeline):
  pipeline.run(COMPLETE, version='1796496331')

  assert pipeline.line() == (
      'Retrieval servable pushed to: /out/serving/retrieval/1796496331')


def test_a_rerun_reused_from_the_cache_says_unchanged(pipeline):
  first = pipeline.run(COMPLETE, version='1796496331')
  pipeline.run(CACHED, reuse=first)

  assert pipeline.line() == (
      'Retrieval servable unchanged, already serving version 1796496331')


def test_a_rerun_finding_the_same_model_pushed_says_unchanged(pipeline):
  pipeline.run(COMPLETE, version='1796496331')
  # The pusher ran, found the same SavedModel in the newest version folder
  # and recorded it as pushed there.
  pipeline.run(COMPLETE, version='1796496331')

  assert pipeline.line() == (
      'Retrieval servable unchanged, already serving version 1796496331')


def test_a_rerun_pushing_a_new_model_names_the_new_folder(pipeline):
  pipeline.run(COMPLETE, version='1796496331')
  pipeline.run(COMPLETE, version='1796499999')

  assert pipeline.line() == (
      'Retrieval servable pushed to: /out/serving/retrieval/1796499999')


def test_a_model_pushed_again_after_another_says_unchanged(pipeline):
  # 1 pushed, 2 pushed, then 2 found again in the newest folder.
  pipeline.run(COMPLETE, version='1')
  pipeline.run(COMPLETE, version='2')
  pipeline.run(COMPLETE, version='2')

  assert pipeline.line() == (
      'Retrieval servable unchanged, already serving version 2')


def test_not_blessed_is_not_pushed_even_after_earlier_pushes(pipeline):
  pipeline.run(COMPLETE, version='1796496331')
  pipeline.run(COMPLETE, pushed=False)

  assert pipeline.line() == 'Retrieval servable: not pushed (not blessed).'


def test_a_failed_run_is_not_the_latest_push(pipeline):
  pipeline.run(COMPLETE, version='1796496331')
  pipeline.run(FAILED, pushed=False)

  assert pipeline.line() == (
      'Retrieval servable pushed to: /out/serving/retrieval/1796496331')


def test_a_pusher_that_never_ran_has_pushed_nothing(tmp_path):
  pipeline = Pipeline(tmp_path, pusher='RankingPusher')
  pipeline.run(COMPLETE, version='1')

  assert pipeline.line() == 'Retrieval servable: not pushed (not blessed).'


def test_the_retrieval_report_ends_with_its_push_line(pipeline):
  first = pipeline.run(COMPLETE, version='1796496331')
  pipeline.run(CACHED, reuse=first)

  report = summary.retrieval_report(pipeline.path)

  assert report.splitlines()[-1] == (
      'Retrieval servable unchanged, already serving version 1796496331')
