#!/usr/bin/env bash
# Set up .venv and run every test: unit and physics tests, the notebooks under papermill (smoke preset)
# and nbval on the executed notebooks. Extra arguments go to pytest (e.g. -k spectral).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/scripts/setup.sh"
cd "$repo"
set +e
python -m pytest "$@"
status=$?
set -e
if [[ $status -eq 5 ]]; then
    echo "prkd: pytest collected no tests" >&2
    exit 1
fi
exit $status
