"""The import graph of the serving code, read from the sources: no cycle,
and the pusher reaches nothing of the development server."""

import ast
import os
from typing import Dict, List, Set

import pytest

pytestmark = pytest.mark.unit

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
# Where the graph starts; it follows every project module they import.
ROOTS = ('serving', os.path.join('components', 'atomic_pusher'))


def _module_file(name: str) -> str:
  """The file of a project module, or '' for anything else."""
  base = os.path.join(REPO_ROOT, *name.split('.'))
  for path in (base + '.py', os.path.join(base, '__init__.py')):
    if os.path.isfile(path):
      return path
  return ''


def _imports(name: str) -> Set[str]:
  """Project modules that a module imports anywhere in its file (at the
  top, in functions, under `if __name__ == '__main__'`)."""
  with open(_module_file(name)) as f:
    tree = ast.parse(f.read())
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      # `from package import module` imports that module; `from module
      # import name`, the module.
      submodules = {f'{node.module}.{alias.name}' for alias in node.names}
      submodules = {n for n in submodules if _module_file(n)}
      found.update(submodules or {node.module})
  return {n for n in found if _module_file(n) and n != name}


def _graph() -> Dict[str, Set[str]]:
  todo = [f'{root.replace(os.sep, ".")}.{file[:-3]}'
          for root in ROOTS for file in sorted(os.listdir(
              os.path.join(REPO_ROOT, root))) if file.endswith('.py')]
  graph = {}
  while todo:
    name = todo.pop().replace('.__init__', '')
    if name not in graph:
      graph[name] = _imports(name)
      todo.extend(graph[name])
  return graph


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
  """One cycle per strongly connected knot, found by depth-first search."""
  cycles, done = [], set()

  def visit(name, path):
    if name in path:
      cycles.append(path[path.index(name):] + [name])
      return
    if name in done:
      return
    for child in sorted(graph.get(name, ())):
      visit(child, path + [name])
    done.add(name)

  for name in sorted(graph):
    visit(name, [])
  return cycles


def _reachable(graph: Dict[str, Set[str]], start: str) -> Set[str]:
  seen, todo = set(), [start]
  while todo:
    name = todo.pop()
    if name not in seen:
      seen.add(name)
      todo.extend(graph.get(name, ()))
  return seen


def test_the_graph_is_read_from_the_sources():
  graph = _graph()

  assert graph['serving.server'] >= {'serving.servables'}
  assert graph['serving.servables'] >= {'serving.warmup',
                                        'modules.retrieval_index'}
  assert 'serving.cli' not in graph  # One entry point: serving.client.


def test_no_import_cycle():
  assert _cycles(_graph()) == []


def test_a_cycle_would_be_found():
  assert _cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [
      ['a', 'b', 'c', 'a']]


def test_the_pusher_reaches_nothing_of_the_server_or_the_client():
  reached = _reachable(_graph(), 'components.atomic_pusher.executor')

  assert {'serving.warmup', 'serving.servables'} <= reached
  assert not reached & {'serving.server', 'serving.client'}
