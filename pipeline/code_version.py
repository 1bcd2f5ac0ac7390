"""A fingerprint of the module code that Transform and the Trainers run.

Module functions are referenced by import path
(`modules.retrieval_trainer.run_fn`), which TFX stores as a string: unlike
`module_file=`, an edit of the code would not change the components' inputs,
and the cache would reuse a model trained by the old code. `create_pipeline`
puts this fingerprint into each such component's `custom_config`, so an
edited module invalidates the cache of the components that run it, and of
everything downstream.
"""

import hashlib
import importlib.util
import os


def package_fingerprint(package: str = 'modules') -> str:
  """sha256 (hex, first 16 characters) of every .py file of a package,
  by relative path and content."""
  spec = importlib.util.find_spec(package)
  if spec is None or not spec.submodule_search_locations:
    raise ValueError(f'{package!r} is not an importable package')
  root = list(spec.submodule_search_locations)[0]
  digest = hashlib.sha256()
  for folder, dirs, files in os.walk(root):
    dirs[:] = sorted(d for d in dirs if d != '__pycache__')
    for name in sorted(f for f in files if f.endswith('.py')):
      path = os.path.join(folder, name)
      digest.update(os.path.relpath(path, root).encode() + b'\0')
      with open(path, 'rb') as f:
        digest.update(f.read() + b'\0')
  return digest.hexdigest()[:16]
