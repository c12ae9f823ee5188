#!/usr/bin/env bash
# Paired merge gate: the pull request's server (B) against main's (A), measured on this one machine in one
# pytest session, rounds interleaved A B B A (docs/paired-ab.md). Exits 1 when a metric REGRESSED.
#   examples/ci/paired-gate.sh MAIN_URL PR_URL [extra pytest arguments]
# Both servers must be up and serve the same model (e.g. `vllm serve` from main's and the pull request's
# checkouts, on two ports). Environment: LLMPERF_OUT (default llmperf-results), LLMPERF_SUITES (default
# suites/performance), LLMPERF_MARK (default cpu).
set -uo pipefail

main_url=${1:?usage: paired-gate.sh MAIN_URL PR_URL [pytest arguments]}
pr_url=${2:?usage: paired-gate.sh MAIN_URL PR_URL [pytest arguments]}
shift 2
out=${LLMPERF_OUT:-llmperf-results}
read -r -a suites <<< "${LLMPERF_SUITES:-suites/performance}"

pytest -m "${LLMPERF_MARK:-cpu}" "${suites[@]}" --llmperf-engine openai --llmperf-endpoint "$pr_url" \
    --llmperf-compare "endpoint=$main_url" --llmperf-out "$out" --junitxml "$out/junit.xml" "$@"
status=$?

# The verdict table again, offline, from the pairs results.json kept (the same verdicts).
if [ -f "$out/results.json" ]; then
    llmperf compare "$out" | tee "$out/compare.txt"
fi
exit $status
