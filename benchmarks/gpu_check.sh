#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py; its --help says what it measures).
#   bash benchmarks/gpu_check.sh                     # the paper's shapes, on cuda when present
#   bash benchmarks/gpu_check.sh --preset smoke --device cpu --steps 2 --warmup 1
# Runs in the project's .venv, sourcing scripts/setup.sh (the venv, PRKD_DATA_DIR, prkd's allocator settings)
# unless that was done already in this shell (the venv's python first on PATH and the allocator's settings
# evaluated); without a .venv, the python on PATH.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PRKD_VENV:-$repo/.venv}"
if [[ -d "$venv" ]]; then
    set_up=no
    if [[ "$(command -v python || true)" == "$venv/bin/python" \
          && ( -n "${GLIBC_TUNABLES:-}" || -n "${PRKD_ALLOCATOR:-}" ) ]]; then
        set_up=yes
    fi
    [[ $set_up == yes ]] || source "$repo/scripts/setup.sh"
fi
exec "$(command -v python || command -v python3)" "$repo/benchmarks/gpu_check.py" "$@"
