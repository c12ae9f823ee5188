#!/usr/bin/env bash
# Merge gate without GitHub Actions: the CUDA items of every suite, JUnit XML,
# and a report against the committed baselines. Exits with pytest's status.
#   examples/ci/merge-gate.sh [extra pytest arguments]
# Environment: LLMPERF_OUT (default llmperf-results), LLMPERF_REPORT (default llmperf-report),
#   LLMPERF_SUITES (what to run, default suites).
set -uo pipefail

out=${LLMPERF_OUT:-llmperf-results}
report=${LLMPERF_REPORT:-llmperf-report}
read -r -a suites <<< "${LLMPERF_SUITES:-suites}"

# -m cuda items skip where CUDA is absent: refuse to "pass" on a machine without a GPU.
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device here')" || exit 2

pytest -m cuda "${suites[@]}" --llmperf-out "$out" --junitxml "$out/junit.xml" "$@"
status=$?

if [ -f "$out/results.json" ]; then
    llmperf report "$out" --baseline baselines --out "$report"
    echo "report: $report/report.html"
fi
exit $status
