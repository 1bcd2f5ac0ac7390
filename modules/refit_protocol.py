"""The refit protocol that both trainers follow: after the early-stopped
Trainer (`run_fn`), a refit Trainer (`refit_fn`) fits fresh models on train
+ eval for the best epoch count the first one found, or serves the first
one's model unchanged when the eval split is too small a share to be worth
it.

The two Trainers talk through a training summary beside the model (its
best epoch), and share the refit's hyper-parameters (`refit_extra_epochs`,
`refit_min_epochs`, `refit_min_eval_share`, `ensemble_size`), which are
checked when the hyper-parameters are read, not after training.
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import json  # noqa: E402
from typing import Dict, List, Mapping, Optional  # noqa: E402

from absl import logging  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
from tfx.utils import io_utils  # noqa: E402

from modules import ensemble  # noqa: E402
from modules import training_data  # noqa: E402
from modules import training_log  # noqa: E402


def read_hparams(fn_args, hparams_class):
  """The Trainer's hyper-parameters (`custom_config['hparams']` over the
  defaults of `hparams_class`), the refit's checked now, not after
  training."""
  hparams = hparams_class.from_config(
      (fn_args.custom_config or {}).get('hparams'))
  check_refit(hparams.refit_extra_epochs, hparams.refit_min_eval_share,
              hparams.ensemble_size, hparams.refit_min_epochs)
  logging.info('%s hyper-parameters: %s', hparams_class.KIND, hparams)
  return hparams


def plan_refit(fn_args, hparams) -> Optional[int]:
  """The refit's epoch count (the base model's best epoch + the extra
  ones), or None when the refit is skipped (`skip_refit`): the base model
  has then been copied to the serving folder."""
  epochs = refit_epochs(read_best_epoch(fn_args.base_model),
                        hparams.refit_extra_epochs, hparams.refit_min_epochs)
  reason = skip_refit(fn_args, hparams.refit_min_eval_share)
  if reason:
    copy_base_model(fn_args, reason)
    return None
  return epochs


# Written beside the Trainer's Format-Serving folder (in the Model
# artifact): the early-stopped run's best epoch and its eval metrics, which
# the refit Trainer reads through its `base_model` input.
TRAINING_SUMMARY = 'training_summary.json'


def write_summary(serving_model_dir: str, metrics: Mapping[str, float]
                 ) -> None:
  """Writes `metrics` (with 'best_epoch') as the model's training summary."""
  path = os.path.join(os.path.dirname(serving_model_dir.rstrip('/')),
                      TRAINING_SUMMARY)
  with tf.io.gfile.GFile(path, 'w') as f:
    json.dump(dict(metrics), f, indent=2, sort_keys=True)


def read_best_epoch(base_model_dir: Optional[str]) -> int:
  """The best epoch of the early-stopped model whose serving SavedModel is
  at `base_model_dir` (the refit Trainer's `fn_args.base_model`)."""
  if not base_model_dir:
    raise ValueError('The refit Trainer needs the early-stopped Trainer\'s '
                     'model as its base_model input.')
  path = os.path.join(os.path.dirname(base_model_dir.rstrip('/')),
                      TRAINING_SUMMARY)
  try:
    with tf.io.gfile.GFile(path) as f:
      summary = json.load(f)
  except tf.errors.NotFoundError:
    raise FileNotFoundError(
        f'{path}: no training summary; the base_model must come from a '
        'Trainer running modules.*_trainer.run_fn') from None
  best = summary.get('best_epoch')
  if not isinstance(best, int) or best < 1:
    raise ValueError(f'{path}: best_epoch must be a positive integer, got '
                     f'{best!r}')
  return best


def eval_share(train_files: List[str], eval_files: List[str]) -> float:
  """The eval split's share of the examples, from the files' sizes (same
  encoding in both splits, so bytes are proportional to examples; no file
  is read)."""
  def size(patterns):
    return sum(tf.io.gfile.stat(name).length for pattern in patterns
               for name in tf.io.gfile.glob(pattern))
  train, evaluation = size(train_files), size(eval_files)
  return evaluation / max(train + evaluation, 1)


def skip_refit(fn_args, min_eval_share: float) -> Optional[str]:
  """Why the refit is not worth its cost here (None: refit).

  The refit trains again on train + eval; when eval is a small share of the
  data (ml-25m: about 1M of 25M ratings, `--max-eval-ratings`), that doubles
  the training time for a few percent more data. The refit Trainer then
  serves the early-stopped model unchanged (`copy_base_model`).
  """
  share = eval_share(fn_args.train_files, fn_args.eval_files)
  if share < min_eval_share:
    return (f'the eval split holds {share:.1%} of the examples, under '
            f'refit_min_eval_share {min_eval_share:.0%}')
  return None


def copy_base_model(fn_args, reason: str) -> None:
  """Serves the early-stopped model as it is: its SavedModel is copied to
  the refit Trainer's serving folder (summary: `refit_epochs` 0)."""
  training_log.write(f'{reason}: no refit, the early-stopped model is '
                     'served')
  io_utils.copy_dir(fn_args.base_model, fn_args.serving_model_dir)
  write_summary(fn_args.serving_model_dir,
                {'refit_epochs': 0, 'skipped': reason})


def check_refit(extra_epochs: int, min_eval_share: float,
                ensemble_size: int, min_epochs: int = 0) -> None:
  """Raises ValueError naming a bad refit hyper-parameter."""
  refit_epochs(1, extra_epochs, min_epochs)
  if ensemble_size < 1:
    raise ValueError(f'ensemble_size must be >= 1, got {ensemble_size}')
  if not 0 <= min_eval_share <= 1:
    raise ValueError(f'refit_min_eval_share must be in [0, 1], got '
                     f'{min_eval_share}')


def refit_epochs(best_epoch: int, extra_epochs: int,
                 min_epochs: int = 0) -> int:
  """Epochs of the refit: the early-stopped run's best epoch + extra, and
  at least `min_epochs` (`refit_min_epochs`)."""
  if extra_epochs < 0:
    raise ValueError(f'refit_extra_epochs must be >= 0, got {extra_epochs}')
  if min_epochs < 0:
    raise ValueError(f'refit_min_epochs must be >= 0, got {min_epochs}')
  return max(int(best_epoch) + extra_epochs, min_epochs)


def fit_members(kind: str, files: List[str],
                tft_output: tft.TFTransformOutput, hparams, epochs: int,
                build, epoch_metrics,
                log_dir: Optional[str] = None,
                before: Optional[int] = None) -> List[tf.keras.Model]:
  """The refit's `ensemble_size` models, trained together.

  Each member is built by `build()` under its own seed (`member_seeds`:
  its initial weights); all are fitted on `files` (with `before`, their
  examples earlier than that time) for `epochs` epochs in one Keras loop
  (`ensemble.MemberStack`: one input pipeline shuffled by `seed`, each
  batch steps every member), progress logged as '<kind> refit' with
  `epoch_metrics` (the loss is the members' sum), and TensorBoard logs and
  `history.json` in `log_dir` when given.
  """
  seeds = member_seeds(hparams)
  members = []
  for seed in seeds:
    tf.keras.utils.set_random_seed(seed)
    members.append(build())
  tf.keras.utils.set_random_seed(hparams.seed)
  model = members[0] if len(members) == 1 else ensemble.MemberStack(members)
  if model is not members[0]:
    # The members' own optimizer settings (each was compiled by `build`
    # and none has stepped yet); Adam's state is per variable.
    model.compile(optimizer=members[0].optimizer)
  dataset = training_data.make_dataset(
      files, tft_output.transformed_feature_spec(), hparams.batch_size,
      shuffle=True, seed=hparams.seed, before=before)
  name = refit_name(kind, len(members))
  data = 'train + eval' + ('' if before is None else ' before ' +
                           training_log.utc_day(before))
  training_log.write(f'{name} on {data} for {epochs} epoch(s), '
                     f'seeds {", ".join(str(s) for s in seeds)}')
  model.fit(dataset, epochs=epochs, verbose=0, callbacks=[
      training_log.TrainingLog(name, hparams.batch_size, epoch_metrics)
  ] + training_log.run_callbacks(log_dir, kind, 'refit'))
  return members


def refit_summary(epochs: int, hparams) -> Dict[str, object]:
  """The refit's training summary: its epochs and its members' seeds."""
  return {'refit_epochs': epochs, 'ensemble_seeds': member_seeds(hparams)}


def member_seeds(hparams) -> List[int]:
  """The refit ensemble's seeds: `seed`, `seed + 1`, ... (`ensemble_size`
  of them); the first member is the early-stopped model's twin."""
  return [hparams.seed + i for i in range(hparams.ensemble_size)]


def refit_name(kind: str, size: int) -> str:
  """'retrieval refit' or, for an ensemble, 'retrieval refit (3 members)'."""
  return f'{kind} refit' if size == 1 else f'{kind} refit ({size} members)'
