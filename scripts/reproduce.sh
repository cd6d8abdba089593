#!/usr/bin/env bash
# Set up .venv and reproduce the paper headlessly: notebooks 01 -> NN with papermill.
# Usage: bash scripts/reproduce.sh [smoke|quick|paper] [extra `python -m prkd reproduce` options]
# Executed notebooks go to outputs/notebooks/<preset>/. Interrupt and re-run to continue where it stopped.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/scripts/setup.sh"
preset="${1:-quick}"
shift || true
cd "$repo"
exec python -m prkd reproduce --preset "$preset" "$@"
