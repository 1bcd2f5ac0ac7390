"""Command-line helpers shared by every runner (no TensorFlow import)."""

import argparse
from typing import Any, Dict, List, Optional


def hparam_overrides(parser: argparse.ArgumentParser, flag: str,
                     items: List[str], epochs: Optional[int],
                     hparams_class) -> Dict[str, Any]:
  """NAME=VALUE items (and an epochs flag) as overrides checked against
  `hparams_class.from_config`; a bad one stops with argparse's error."""
  overrides = {}
  for item in items:
    name, sep, value = item.partition('=')
    if not sep or not name:
      parser.error(f'{flag} takes NAME=VALUE, got {item!r}')
    overrides[name.strip()] = value.strip()
  if epochs is not None:
    overrides['epochs'] = epochs
  try:
    hparams_class.from_config(overrides)
  except ValueError as e:
    parser.error(f'{flag}: {e}')
  return overrides
