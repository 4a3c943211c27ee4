#!/usr/bin/env bash
# Installs what opsdash needs on a fresh Debian 12 machine: uv, Debian packages, the venv.
# Safe to run again: each step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || need_pkgs+=(postgresql-15)
command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
# The browser tests drive Debian's Chromium (never a downloaded browser build).
if [ "${1:-}" = "--test" ]; then
  [ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "[install] apt-get install ${need_pkgs[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
  # Debian starts its own cluster/redis on the default ports; ours use other ports, so leave them.
fi

if ! command -v uv >/dev/null 2>&1 && [ ! -x "$HOME/.local/bin/uv" ]; then
  echo "[install] installing uv from PyPI"
  python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
fi
UV=$(command -v uv || echo "$HOME/.local/bin/uv")

# Bytecode is compiled at install time: where PYTHONDONTWRITEBYTECODE is set (it is on these
# machines) nothing would ever cache it, and every process (each Dagster run, sensor tick, dbt
# call, test) would recompile dagster, pandas and the rest from source, e.g. `import dagster`
# 17 s instead of 8 s on a busy machine. `.compiled` marks a virtualenv synced that way.
if [ ! -f .venv/.synced ] || [ ! -f .venv/.compiled ] || [ uv.lock -nt .venv/.synced ] \
  || [ pyproject.toml -nt .venv/.synced ]; then
  echo "[install] uv sync (virtualenv from uv.lock, bytecode compiled)"
  "$UV" sync --frozen --python 3.11 --quiet --compile-bytecode
  touch .venv/.synced .venv/.compiled
fi
