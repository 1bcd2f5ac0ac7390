"""The ranking side stands on its own: modules/ranking_*.py import nothing
from the retrieval modules, directly or through the modules both sides
share (training_data, refit_protocol, layers), so either model or trainer
can change without the other. Read from the source with `ast`, nothing
imported."""

import ast
import pathlib
from typing import FrozenSet, Set

import pytest

pytestmark = pytest.mark.unit

MODULES = pathlib.Path(__file__).resolve().parents[2] / 'modules'


def _imports(name: str) -> FrozenSet[str]:
  """The `modules` submodules that modules/<name>.py imports, anywhere in
  the file."""
  tree = ast.parse((MODULES / f'{name}.py').read_text())
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found.update(alias.name.split('.')[1] for alias in node.names
                   if alias.name.startswith('modules.'))
    elif isinstance(node, ast.ImportFrom) and node.module:
      if node.module == 'modules':
        found.update(alias.name for alias in node.names)
      elif node.module.startswith('modules.'):
        found.add(node.module.split('.')[1])
  return frozenset(found)


def _reachable(name: str) -> Set[str]:
  """The submodules that importing modules.<name> imports, transitively."""
  seen, todo = set(), [name]
  while todo:
    for imported in _imports(todo.pop()):
      if imported not in seen:
        seen.add(imported)
        todo.append(imported)
  return seen


@pytest.mark.parametrize('name', ['ranking_model', 'ranking_trainer'])
def test_ranking_modules_reach_no_retrieval_module(name):
  assert sorted(m for m in _imports(name) if m.startswith('retrieval')) == []
  assert sorted(m for m in _reachable(name) if m.startswith('retrieval')) == []


def test_the_walk_follows_the_shared_modules():
  # ranking_trainer -> refit_protocol -> ensemble, and -> ranking_model ->
  # layers: both reached only through another module.
  reached = _reachable('ranking_trainer')
  assert {'training_data', 'refit_protocol', 'ensemble', 'layers'} <= reached
  assert 'ensemble' not in _imports('ranking_trainer')
  # The walk does see a retrieval import where there is one.
  assert {'retrieval_model', 'layers'} <= _reachable('retrieval_trainer')
