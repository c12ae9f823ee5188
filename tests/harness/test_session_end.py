"""How a session ends: engines stop before the summary, vLLM's shutdown steps do not print, and the
summary's closing lines come once, with pytest's own line last."""

import importlib.util
import logging
import logging.config
from pathlib import Path

import pytest

from pytest_llmperf.engines.vllm_logs import EngineShutdownFilter, quiet_config

SUITE = Path(__file__).resolve().parents[2] / "suites" / "accuracy"


def _record(message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("vllm.v1.engine.core", level, "core.py", 1, message, (), None)


@pytest.mark.parametrize("message", [
    "[shutdown] MPClient: start timeout=%s",
    "[shutdown] Process manager: force killing remaining process %s pid %d",
    "Parent process exited, terminating worker queues",
])
def test_shutdown_steps_are_dropped(message):
    assert not EngineShutdownFilter().filter(_record(message))
    assert not EngineShutdownFilter().filter(_record(message, logging.WARNING))


def test_other_lines_and_shutdown_errors_still_print():
    quiet = EngineShutdownFilter()
    assert quiet.filter(_record("Initializing a V1 LLM engine with config: %s"))
    assert quiet.filter(_record("AsyncLLM output_handler failed.", logging.WARNING))
    assert quiet.filter(_record("[shutdown] EngineCore did not exit", logging.ERROR))


def test_quiet_config_keeps_vllms_settings_and_adds_the_filter():
    default = {
        "version": 1,
        "formatters": {"vllm": {"format": "%(message)s", "log_level": "INFO"}},
        "handlers": {"vllm": {"class": "logging.StreamHandler", "formatter": "vllm", "level": "INFO",
                              "stream": "ext://sys.stdout"}},
        "loggers": {"vllm": {"handlers": ["vllm"], "level": "INFO", "propagate": False}},
    }
    config = quiet_config(default, "DEBUG", "ext://sys.stderr", "vllm")
    handler = config["handlers"]["vllm"]
    assert (handler["level"], handler["stream"]) == ("DEBUG", "ext://sys.stderr")
    assert config["loggers"]["vllm"]["level"] == "DEBUG"
    assert config["formatters"]["vllm"]["log_level"] == "DEBUG"
    [name] = handler["filters"]
    assert config["filters"][name] == {"()": "pytest_llmperf.engines.vllm_logs.EngineShutdownFilter"}
    assert "filters" not in default["handlers"]["vllm"]  # vLLM's own default is left as it was

    logging.config.dictConfig({**config, "loggers": {"llmperf-test-quiet": config["loggers"]["vllm"]}})
    logger = logging.getLogger("llmperf-test-quiet")
    assert any(isinstance(f, EngineShutdownFilter) for h in logger.handlers for f in h.filters)


@pytest.mark.slow
def test_vllm_session_ends_with_pytests_line(pytester):
    """A real vLLM session (the CPU build, the embedded model): nothing of its shutdown after pytest's
    final line, nor anywhere else; the summary's last lines once each."""
    if importlib.util.find_spec("vllm") is None:  # not imported here: the session's own process does
        pytest.skip("vllm is not installed")
    for name in ("test_logits.py", "logits_prompts.py"):
        pytester.path.joinpath(name).write_text(SUITE.joinpath(name).read_text())
    result = pytester.runpytest_subprocess(
        "-m", "cpu", "--llmperf-engine", "vllm", "-k", "test_logits_match_baseline", "-p", "no:randomly",
        "--llmperf-baselines", str(pytester.path / "baselines"), "--llmperf-out", str(pytester.path / "out"))
    result.assert_outcomes(passed=1)
    lines = [line for line in result.outlines if line.strip()]
    assert lines[-1].startswith("=") and "1 passed" in lines[-1], lines[-5:]
    text = "\n".join(result.outlines + result.errlines)
    assert "[shutdown]" not in text and "Parent process exited" not in text
    for start in ("time: ", "results: "):
        assert sum(line.startswith(start) for line in result.outlines) == 1, start
