"""retrieval_trainer's own reader of the transformed examples: the user
history, on the small hand-written file of test_training_data."""

import json
import os
import types

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import pytest  # noqa: E402

from modules import retrieval_trainer  # noqa: E402
from tests.modules.test_training_data import (  # noqa: E402
    SPEC, scanned, write_ratings)

pytestmark = pytest.mark.unit


def test_training_history_keeps_each_users_newest_movies(tmp_path):
  path = write_ratings(tmp_path)
  # User 0 rated b (t=3, and t=1) and a (t=2); user 1 a (t=1), b (t=2);
  # user 2 c. With a cap of 1: user 0 -> b, user 1 -> b, user 2 -> c.
  ratings = scanned(path, retrieval_trainer.RatingColumns(SPEC))
  values, row_splits = ratings.history(4, 1)
  assert values.tolist() == [2, 2, 3]
  assert row_splits.tolist() == [0, 1, 2, 3, 3]
  values, row_splits = ratings.history(4)
  assert values.tolist() == [1, 2, 1, 2, 3]
  assert row_splits.tolist() == [0, 2, 4, 5, 5]


def test_the_training_summary_carries_the_best_epoch_to_the_refit(tmp_path):
  serving = str(tmp_path / 'model' / 'Format-Serving')
  os.makedirs(serving)
  retrieval_trainer.write_summary(serving, {'best_epoch': 3, 'loss': 1.5})

  assert retrieval_trainer.read_best_epoch(serving) == 3
  assert retrieval_trainer.read_best_epoch(serving + '/') == 3


def test_the_refit_names_a_missing_or_bad_training_summary(tmp_path):
  serving = str(tmp_path / 'model' / 'Format-Serving')
  os.makedirs(serving)
  with pytest.raises(ValueError, match='needs the early-stopped'):
    retrieval_trainer.read_best_epoch(None)
  with pytest.raises(FileNotFoundError, match='training_summary.json: no '
                     'training summary'):
    retrieval_trainer.read_best_epoch(serving)
  # A refit's own summary has no best epoch: it cannot be a base model.
  retrieval_trainer.write_summary(serving, {'refit_epochs': 3})
  with pytest.raises(ValueError, match='best_epoch must be a positive '
                     'integer, got None'):
    retrieval_trainer.read_best_epoch(serving)


def _refit_args(tmp_path, train_bytes, eval_bytes):
  """fn_args of a refit Trainer: split files of the given sizes and a base
  model (a SavedModel folder with a variables/ sub-folder)."""
  for split, size in (('train', train_bytes), ('eval', eval_bytes)):
    (tmp_path / split).mkdir()
    (tmp_path / split / 'part-0.gz').write_bytes(b'x' * size)
  base = tmp_path / 'base' / 'Format-Serving'
  (base / 'variables').mkdir(parents=True)
  (base / 'saved_model.pb').write_bytes(b'graph')
  (base / 'variables' / 'variables.index').write_bytes(b'index')
  return types.SimpleNamespace(
      train_files=[str(tmp_path / 'train' / '*')],
      eval_files=[str(tmp_path / 'eval' / '*')], base_model=str(base),
      serving_model_dir=str(tmp_path / 'refit' / 'Format-Serving'))


def test_the_refit_is_skipped_when_eval_is_a_small_share(tmp_path, capsys):
  # ml-25m's case: about 1M eval ratings of 25M (4%).
  args = _refit_args(tmp_path, train_bytes=960, eval_bytes=40)

  assert retrieval_trainer.eval_share(args.train_files,
                                      args.eval_files) == 0.04
  reason = retrieval_trainer.skip_refit(args, 0.1)
  assert reason == ('the eval split holds 4.0% of the examples, under '
                    'refit_min_eval_share 10%')
  retrieval_trainer.copy_base_model(args, reason)

  # The early-stopped SavedModel, copied whole, is served.
  refit = tmp_path / 'refit' / 'Format-Serving'
  assert (refit / 'saved_model.pb').read_bytes() == b'graph'
  assert (refit / 'variables' / 'variables.index').read_bytes() == b'index'
  summary = json.loads((tmp_path / 'refit' /
                        'training_summary.json').read_text())
  assert summary == {'refit_epochs': 0, 'skipped': reason}
  assert 'no refit, the early-stopped model is served' in (
      capsys.readouterr().out)


def test_the_refit_runs_when_eval_is_a_fifth(tmp_path):
  args = _refit_args(tmp_path, train_bytes=800, eval_bytes=200)

  assert retrieval_trainer.skip_refit(args, 0.1) is None
  assert retrieval_trainer.skip_refit(args, 0.25) is not None


@pytest.mark.parametrize('extra, share, size, message', [
    (-1, 0.1, 1, 'refit_extra_epochs must be >= 0, got -1'),
    (0, 1.5, 1, r'refit_min_eval_share must be in \[0, 1\], got 1.5'),
    (0, 0.1, 0, 'ensemble_size must be >= 1, got 0')])
def test_bad_refit_hyper_parameters_are_named(extra, share, size, message):
  with pytest.raises(ValueError, match=message):
    retrieval_trainer.check_refit(extra, share, size)


def test_the_refit_plan_is_the_best_epoch_plus_the_extra_ones(tmp_path):
  from modules.hparams import RankingHParams, RetrievalHParams  # pylint: disable=g-import-not-at-top
  args = _refit_args(tmp_path, train_bytes=800, eval_bytes=200)
  retrieval_trainer.write_summary(args.base_model, {'best_epoch': 2})

  assert retrieval_trainer.plan_refit(args, RetrievalHParams()) == 3
  assert retrieval_trainer.plan_refit(args, RankingHParams()) == 2
  # Skipped: nothing to train, the base model is served.
  assert retrieval_trainer.plan_refit(args, RetrievalHParams(
      refit_min_eval_share=0.5)) is None
  assert (tmp_path / 'refit' / 'Format-Serving' / 'saved_model.pb').exists()
