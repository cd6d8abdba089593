#!/usr/bin/env bash
# Regenerate the committed results of the study (notebook 07, preset study), the ladder (09) and the unrolled
# experiment (10, both preset ladder) in a fresh output folder, from their committed records (--report-only:
# nothing is trained), then compare each with docs/results/<experiment> (python -m prkd check-results).
# Usage: bash scripts/check_committed.sh [OUTPUT_DIR] [study|ladder ...]   Exit status: 1 if any differ.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh >/dev/null
out="${1:-$(mktemp -d)}"
shift || true
presets=("${@:-study ladder}")
export PRKD_OUTPUT_DIR="$out"
status=0
for preset in ${presets[*]}; do
  start=$(date +%s)
  python -m prkd reproduce --preset "$preset" --report-only
  echo "preset $preset: notebooks executed in $(( $(date +%s) - start )) s"
  folders=$([ "$preset" = study ] && echo study || echo "ladder unrolled")
  for experiment in $folders; do
    python -m prkd check-results --committed "docs/results/$experiment" --fresh "$out/figures/$experiment" \
      || status=1
  done
done
exit $status
