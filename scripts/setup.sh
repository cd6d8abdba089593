#!/usr/bin/env bash
# Create (or update) the project's virtual environment .venv with the pinned dependencies of pyproject.toml.
# Idempotent: does nothing when .venv already matches pyproject.toml. Needs python3.11 (or python3 >= 3.11).
# Source it (". scripts/setup.sh") to also get PRKD_DATA_DIR defaulted to ../shared/data/fashion-mnist when
# that folder exists beside the repository (the lab's offline copy); otherwise the loader searches as usual.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PRKD_VENV:-$repo/.venv}"
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
stamp="$venv/.prkd-installed"
# Keep the bytecode of what is imported: with PYTHONDONTWRITEBYTECODE set (as in this machine's sessions) and the
# --no-compile install below, every process would compile torch's modules anew (`import torch` 3.9 s instead of
# 1.9 s, measured here; the tests start many processes and kernels).
unset PYTHONDONTWRITEBYTECODE
want="$(sha256sum "$repo/pyproject.toml" | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "prkd: setting up $venv (first time: a few minutes; torch is large)" >&2
    "$python" -m venv "$venv"
    # --no-compile: Python compiles the modules it imports on first use and keeps their bytecode (see above);
    # pip's compiling every file of torch and the rest up front took half the set-up (155 s with it, 76 s
    # without on a 2-core Intel Xeon, 2026-12-07).
    "$venv/bin/python" -m pip install --quiet --progress-bar off --no-compile -e "$repo[test,bench,scale]" 2>&1 \
        | grep -v "^WARNING: Location" >&2 || true
    "$venv/bin/python" -c "import prkd, torch, torchvision, papermill, nbval, deepinv, playwright, distributed" \
        || { echo "prkd: installation failed (see the pip messages above)" >&2; exit 1; }
    echo "$want" > "$stamp"
fi
shared_data="$(cd "$repo/.." && pwd)/shared/data/fashion-mnist"
if [[ -z "${PRKD_DATA_DIR:-}" && -d "$shared_data" ]]; then
    export PRKD_DATA_DIR="$shared_data"
fi
export PATH="$venv/bin:$PATH"
# glibc malloc settings that make large per-step temporaries cheap (prkd/utils/allocator.py); empty if already set.
eval "$("$venv/bin/python" -m prkd.utils.allocator)"
