"""vLLM's log lines about its own shutdown, kept off the terminal.

When the session closes a vLLM engine, its processes report every step of stopping (about fifteen
INFO lines and a WARNING that a process was killed after its grace period). They say nothing about the
run, and they used to land after pytest's final line. ``EngineShutdownFilter`` drops them; everything
else vLLM logs, and any shutdown record at ERROR or above, still prints.

vLLM starts its engine core and workers with ``spawn``, so a filter added in this process would not
reach them: ``install`` also writes vLLM's own default logging configuration, with the filter added,
to a file that vLLM's processes read at import (``VLLM_LOGGING_CONFIG_PATH``). A user's own
``VLLM_LOGGING_CONFIG_PATH`` or ``VLLM_CONFIGURE_LOGGING=0`` is left alone.
"""

from __future__ import annotations

import atexit
import copy
import json
import logging
import os
import tempfile

FILTER_NAME = "llmperf_quiet_shutdown"
# Messages vLLM logs while it stops an engine we asked to stop (vllm 0.26 - 0.32): the "[shutdown]"
# steps of the client, engine core and executor, and the workers noticing that their parent left.
SHUTDOWN_PREFIX = "[shutdown]"
SHUTDOWN_MESSAGES = frozenset({"Parent process exited, terminating worker queues"})


class EngineShutdownFilter(logging.Filter):
    """Passes every record but vLLM's shutdown steps below ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        message = record.msg if isinstance(record.msg, str) else ""
        return not (message.startswith(SHUTDOWN_PREFIX) or message in SHUTDOWN_MESSAGES)


def quiet_config(default: dict, level: str, stream: str, formatter: str) -> dict:
    """vLLM's ``default`` logging configuration as vLLM itself fills it in (handler level, stream and
    formatter), with ``EngineShutdownFilter`` on its handlers."""
    config = copy.deepcopy(default)
    for values in config.get("formatters", {}).values():
        values["log_level"] = level
    config.setdefault("filters", {})[FILTER_NAME] = {"()": f"{__name__}.EngineShutdownFilter"}
    for name, handler in config.get("handlers", {}).items():
        if name == "vllm":
            handler.update(level=level, stream=stream, formatter=formatter)
        handler.setdefault("filters", []).append(FILTER_NAME)
    for logger in config.get("loggers", {}).values():
        if "vllm" in logger.get("handlers", []):
            logger["level"] = level
    return config


def install() -> None:
    """Filter vLLM's shutdown lines in this process and in the processes vLLM starts from now on."""
    import vllm.envs as envs
    import vllm.logger as vllm_logger

    quiet = EngineShutdownFilter()
    for handler in logging.getLogger("vllm").handlers:
        if not any(isinstance(f, EngineShutdownFilter) for f in handler.filters):
            handler.addFilter(quiet)
    if os.environ.get("VLLM_LOGGING_CONFIG_PATH") or not envs.VLLM_CONFIGURE_LOGGING:
        return
    default = getattr(vllm_logger, "DEFAULT_LOGGING_CONFIG", None)
    if not isinstance(default, dict):  # a vLLM laid out otherwise: its processes keep their lines
        return
    use_color = getattr(vllm_logger, "_use_color", lambda: False)()
    config = quiet_config(default, envs.VLLM_LOGGING_LEVEL, envs.VLLM_LOGGING_STREAM,
                          "vllm_color" if use_color else "vllm")
    handle, path = tempfile.mkstemp(prefix="llmperf-vllm-logging-", suffix=".json")
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        json.dump(config, file)
    os.environ["VLLM_LOGGING_CONFIG_PATH"] = path  # set once: a second engine finds it and stops above
    atexit.register(_remove, path)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
