#!/usr/bin/env bash
# Set up .venv and run every test: unit and physics tests, the notebooks under papermill (smoke preset)
# and nbval on the executed notebooks. Extra arguments go to pytest (e.g. -k spectral).
# The test files are shared among PRKD_TEST_WORKERS pytest-xdist workers (default 2; 1 runs them in this process),
# each with its share of the cores (tests/conftest.py); a file's tests stay on one worker (--dist loadfile), and
# the files start in the order tests/conftest.py gives them (its longest first).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/scripts/setup.sh"
cd "$repo"
set +e
workers="${PRKD_TEST_WORKERS:-2}"
if [[ "$workers" == 1 ]]; then
    python -m pytest "$@"
else
    python -m pytest -n "$workers" --dist loadfile --no-loadscope-reorder "$@"
fi
status=$?
set -e
if [[ $status -eq 5 ]]; then
    echo "prkd: pytest collected no tests" >&2
    exit 1
fi
exit $status
