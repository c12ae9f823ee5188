#!/usr/bin/env bash
# Nightly without GitHub Actions (cron, Jenkins, GitLab): every suite, then a
# report against the previous night with the trend over all kept nights.
# Each night goes to $LLMPERF_NIGHTLY_ROOT/<UTC stamp>/{results,report}/.
# Exits with the report's status: 0 fine, 1 regressed, 2 bad input.
#   examples/ci/nightly.sh [extra pytest arguments]
# Environment: LLMPERF_NIGHTLY_ROOT (default llmperf-nightly), LLMPERF_KEEP_NIGHTS (30),
#   LLMPERF_SUITES (what to run, default suites).
set -uo pipefail

root=${LLMPERF_NIGHTLY_ROOT:-llmperf-nightly}
keep=${LLMPERF_KEEP_NIGHTS:-30}
read -r -a suites <<< "${LLMPERF_SUITES:-suites}"
mkdir -p "$root"
previous=$(ls -1d "$root"/*/ 2>/dev/null | sort | tail -n 1)
tonight="$root/$(date -u +%Y%m%dT%H%M%SZ)"

pytest "${suites[@]}" --llmperf-out "$tonight/results" --junitxml "$tonight/results/junit.xml" "$@"

args=("$tonight/results" --out "$tonight/report" --history "$root")
if [ -n "$previous" ] && [ -f "${previous%/}/results/results.json" ]; then
    args+=(--baseline "${previous%/}/results")
fi
llmperf report "${args[@]}"
status=$?
echo "report: $tonight/report/report.html"

ls -1d "$root"/*/ | sort | head -n -"$keep" | xargs -r rm -rf
exit $status
