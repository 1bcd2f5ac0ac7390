"""Training curves from the trainers' log lines and history.json files."""

import json
import os

import pytest

from report import logs

pytestmark = pytest.mark.unit

LOG = """\
2026-12-05 18:41:47,412 INFO absl: ranking hyper-parameters: RankingHParams(epochs=40)
2026-12-05 18:41:52,078 INFO absl: ranking epoch 1: 4.1s loss 8.7441 rmse 1.0819 val rmse 1.0412 val mae 0.8296 val relevance auc 0.7395
2026-12-05 18:41:53,445 INFO absl: ranking epoch 2: 1.4s loss 8.1997 rmse 0.9620 val rmse 0.9957 val mae 0.7974 val relevance auc 0.7610
2026-12-05 18:41:53,500 INFO absl: ranking: best epoch 2 of 2, val RMSE 0.9957, val MAE 0.7974
2026-12-05 18:42:31,458 INFO absl: retrieval epoch 1: 6.0s loss 2869.11 val top-10 0.0180 val top-100 0.2189
2026-12-05 18:42:46,100 INFO absl: ranking refit (3 members) on train + eval for 2 epoch(s), seeds 42, 43, 44
2026-12-05 18:42:55,178 INFO absl: ranking refit (3 members) epoch 1: 9.0s loss 26.0571 rmse 1.0637
2026-12-05 18:42:58,900 INFO absl: ranking refit (3 members) epoch 2: 3.7s loss 24.7126 rmse 0.9593
2026-12-05 18:43:10,000 INFO absl: retrieval refit epoch 1: 2.0s loss 13.2878
"""


def test_metric_words_become_underscored_keys():
  assert logs.parse_metrics(
      'loss 7.97 rmse 0.94 val rmse 0.98 val top-10 0.02') == {
          'loss': 7.97, 'rmse': 0.94, 'val_rmse': 0.98, 'val_top_10': 0.02}


def test_log_lines_give_one_curve_per_model_and_kind_with_the_best_epoch():
  histories = logs.parse_log_lines(LOG.splitlines(), 'run.log')
  assert [(h.model, h.kind, len(h.epochs), h.best_epoch, h.members)
          for h in histories] == [
              ('ranking', logs.EARLY_STOPPED, 2, 2, None),
              ('retrieval', logs.EARLY_STOPPED, 1, None, None),
              ('ranking', logs.REFIT, 2, None, 3),
              ('retrieval', logs.REFIT, 1, None, None)]
  assert histories[0].epochs[1] == {
      'epoch': 2, 'seconds': 1.4, 'loss': 8.1997, 'rmse': 0.962,
      'val_rmse': 0.9957, 'val_mae': 0.7974, 'val_relevance_auc': 0.761}
  assert histories[1].epochs[0]['val_top_100'] == 0.2189
  assert histories[2].label == 'ranking refit (3 members)'
  assert histories[2].epochs[1]['loss'] == 24.7126
  assert histories[3].label == 'retrieval refit'


def test_a_time_window_keeps_only_the_lines_of_one_execution():
  lines = LOG.splitlines()
  start = logs._timestamp('2026-12-05 18:42:50,000')
  end = logs._timestamp('2026-12-05 18:43:00,000')
  histories = logs.parse_log_lines(lines, 'run.log', (start, end))
  assert [(h.model, h.kind, len(h.epochs)) for h in histories] == [
      ('ranking', logs.REFIT, 2)]


def test_epoch_numbers_starting_again_start_a_new_curve():
  lines = [
      '2026-12-05 10:00:00,000 INFO absl: ranking epoch 1: 1.0s loss 3.0',
      '2026-12-05 10:00:01,000 INFO absl: ranking epoch 2: 1.0s loss 2.0',
      '2026-12-05 10:00:02,000 INFO absl: ranking epoch 1: 1.0s loss 5.0']
  histories = logs.parse_log_lines(lines)
  assert [[row['loss'] for row in h.epochs] for h in histories] == [
      [3.0, 2.0], [5.0]]


def test_history_json_files_are_found_under_the_model_run_folder(tmp_path):
  folder = tmp_path / 'model_run' / 'member-0'
  folder.mkdir(parents=True)
  content = {'model': 'ranking', 'kind': 'refit', 'best_epoch': None,
             'epochs': [{'epoch': 1, 'loss': 7.5}, {'epoch': 2,
                                                    'loss': 7.25}]}
  (folder / 'history.json').write_text(json.dumps(content))
  (found,) = logs.find_history_json(str(tmp_path / 'model_run'))
  assert (found.model, found.kind, found.best_epoch) == ('ranking', 'refit',
                                                         None)
  assert found.epochs == content['epochs']
  assert found.source == os.path.join(str(folder), 'history.json')


def test_the_newest_log_with_matching_lines_wins(tmp_path):
  log_dir = tmp_path / 'logs'
  log_dir.mkdir()
  (log_dir / 'run-20261205-100000.log').write_text(
      '2026-12-05 10:00:05,000 INFO absl: retrieval epoch 1: 1.0s loss 9.5\n')
  # A rerun with every component cached logs no epochs.
  (log_dir / 'run-20261205-110000.log').write_text(
      '2026-12-05 11:00:00,000 INFO absl: Component RetrievalTrainer is '
      'finished.\n')
  window = (logs._timestamp('2026-12-05 10:00:00,000'),
            logs._timestamp('2026-12-05 10:00:10,000'))
  (found,) = logs.histories_from_logs(str(tmp_path), 'retrieval',
                                      logs.EARLY_STOPPED, window)
  assert found.source == 'run-20261205-100000.log'
  assert found.epochs == [{'epoch': 1, 'seconds': 1.0, 'loss': 9.5}]
