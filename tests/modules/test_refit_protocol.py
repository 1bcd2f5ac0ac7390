"""The refit protocol of both trainers: the training summary that carries
the best epoch from the early-stopped Trainer to the refit, the refit's
plan (epochs, or serving the base model when eval is a small share), its
hyper-parameters' checks and its ensemble's seeds and names."""

import json
import os
import types

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import pytest  # noqa: E402

from modules import refit_protocol  # noqa: E402
from modules.hparams import RankingHParams, RetrievalHParams  # noqa: E402

pytestmark = pytest.mark.unit


def test_the_training_summary_carries_the_best_epoch_to_the_refit(tmp_path):
  serving = str(tmp_path / 'model' / 'Format-Serving')
  os.makedirs(serving)
  refit_protocol.write_summary(serving, {'best_epoch': 3, 'loss': 1.5})

  assert refit_protocol.read_best_epoch(serving) == 3
  assert refit_protocol.read_best_epoch(serving + '/') == 3


def test_the_refit_names_a_missing_or_bad_training_summary(tmp_path):
  serving = str(tmp_path / 'model' / 'Format-Serving')
  os.makedirs(serving)
  with pytest.raises(ValueError, match='needs the early-stopped'):
    refit_protocol.read_best_epoch(None)
  with pytest.raises(FileNotFoundError, match='training_summary.json: no '
                     'training summary'):
    refit_protocol.read_best_epoch(serving)
  # A refit's own summary has no best epoch: it cannot be a base model.
  refit_protocol.write_summary(serving, {'refit_epochs': 3})
  with pytest.raises(ValueError, match='best_epoch must be a positive '
                     'integer, got None'):
    refit_protocol.read_best_epoch(serving)


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

  assert refit_protocol.eval_share(args.train_files,
                                      args.eval_files) == 0.04
  reason = refit_protocol.skip_refit(args, 0.1)
  assert reason == ('the eval split holds 4.0% of the examples, under '
                    'refit_min_eval_share 10%')
  refit_protocol.copy_base_model(args, reason)

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

  assert refit_protocol.skip_refit(args, 0.1) is None
  assert refit_protocol.skip_refit(args, 0.25) is not None


@pytest.mark.parametrize('extra, share, size, message', [
    (-1, 0.1, 1, 'refit_extra_epochs must be >= 0, got -1'),
    (0, 1.5, 1, r'refit_min_eval_share must be in \[0, 1\], got 1.5'),
    (0, 0.1, 0, 'ensemble_size must be >= 1, got 0')])
def test_bad_refit_hyper_parameters_are_named(extra, share, size, message):
  with pytest.raises(ValueError, match=message):
    refit_protocol.check_refit(extra, share, size)


def test_the_refit_plan_is_the_best_epoch_plus_the_extra_ones(tmp_path):
  args = _refit_args(tmp_path, train_bytes=800, eval_bytes=200)
  refit_protocol.write_summary(args.base_model, {'best_epoch': 2})

  assert refit_protocol.plan_refit(args, RetrievalHParams()) == 3
  assert refit_protocol.plan_refit(args, RankingHParams()) == 2
  # Skipped: nothing to train, the base model is served.
  assert refit_protocol.plan_refit(args, RetrievalHParams(
      refit_min_eval_share=0.5)) is None
  assert (tmp_path / 'refit' / 'Format-Serving' / 'saved_model.pb').exists()


def test_refit_epochs_are_the_best_epoch_plus_the_extra_ones():
  assert refit_protocol.refit_epochs(2, 1) == 3
  assert refit_protocol.refit_epochs(21, 0) == 21
  with pytest.raises(ValueError, match='refit_extra_epochs must be >= 0'):
    refit_protocol.refit_epochs(2, -1)


def test_the_refit_ensembles_seeds_follow_the_base_seed():
  assert refit_protocol.member_seeds(RetrievalHParams()) == [42, 43, 44]
  assert refit_protocol.member_seeds(
      RankingHParams(seed=7, ensemble_size=1)) == [7]
  assert refit_protocol.refit_summary(3, RetrievalHParams(seed=1)) == {
      'refit_epochs': 3, 'ensemble_seeds': [1, 2, 3]}
  assert (refit_protocol.refit_name('ranking', 3) ==
          'ranking refit (3 members)')
  assert refit_protocol.refit_name('ranking', 1) == 'ranking refit'


def test_the_refit_trains_at_least_refit_min_epochs():
  # Best epoch 1 + 1 extra = 2, raised to the floor of 3; 5 + 1 is above it.
  assert refit_protocol.refit_epochs(1, 1, min_epochs=3) == 3
  assert refit_protocol.refit_epochs(5, 1, min_epochs=3) == 6
  assert RetrievalHParams().refit_min_epochs == 3
  with pytest.raises(ValueError, match='refit_min_epochs must be >= 0'):
    refit_protocol.check_refit(1, 0.1, 3, min_epochs=-1)
