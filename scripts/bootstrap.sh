#!/usr/bin/env bash
# Creates (or reuses) the project's virtual environment and installs the
# pinned requirements and the project itself into it. Idempotent.
#
#   scripts/bootstrap.sh [VENV_DIR]      (default: .venv)
#
# TFX 1.16 supports Python 3.9-3.10 only, so the venv is built from a 3.10
# interpreter: `python3.10` on PATH if it runs, else pyenv's newest 3.10.
set -euo pipefail

venv=${1:-.venv}
here=$(cd "$(dirname "$0")/.." && pwd)
pip_version=24.3.1

find_python310() {
  local candidate root
  # A pyenv shim is on PATH even when its version is not selected; running
  # it is the only reliable test.
  if candidate=$(command -v python3.10) && "$candidate" -c 'import sys' 2>/dev/null; then
    echo "$candidate"; return 0
  fi
  for root in "${PYENV_ROOT:-}" "$(pyenv root 2>/dev/null || true)" "$HOME/.pyenv"; do
    [ -n "$root" ] && [ -d "$root/versions" ] || continue
    for candidate in $(ls -d "$root"/versions/3.10*/bin/python3.10 2>/dev/null | sort -V -r); do
      if "$candidate" -c 'import sys' 2>/dev/null; then echo "$candidate"; return 0; fi
    done
  done
  return 1
}

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
  echo "bootstrap: reusing $venv ($("$venv/bin/python" --version))"
else
  if ! python=$(find_python310); then
    cat >&2 <<'MSG'
bootstrap: no Python 3.10 interpreter found.
TFX 1.16 (this project's stack) supports Python 3.9-3.10 only. Install one, e.g.
  pyenv install 3.10      (https://github.com/pyenv/pyenv)
  apt-get install python3.10 python3.10-venv   (where your distribution has it)
then run the make target again.
MSG
    exit 1
  fi
  echo "bootstrap: creating $venv with $python ($("$python" --version))"
  rm -rf "$venv"
  "$python" -m venv "$venv"
fi

"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "pip==$pip_version"
echo "bootstrap: installing pinned requirements (requirements.lock); the first install downloads about 2 GB"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.lock"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e "$here"
echo "bootstrap: $venv is ready"
