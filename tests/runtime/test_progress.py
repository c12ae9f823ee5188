"""progress: bars only on a terminal, never under xdist workers or LLMPERF_PROGRESS=0."""

from __future__ import annotations

import io

import pytest

from pytest_llmperf.runtime import progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal(monkeypatch):
    """Makes stdout and stderr look like a terminal; no xdist worker; no switch.

    Call it in the test body: pytest's output capture re-installs its own
    streams between setup and call, undoing a patch made in a fixture.
    """
    monkeypatch.delenv(progress.XDIST_WORKER_ENV, raising=False)
    monkeypatch.delenv(progress.ENV_SWITCH, raising=False)
    monkeypatch.setattr(progress, "DELAY_S", 0.0)

    def install() -> FakeTerminal:
        stderr = FakeTerminal()
        monkeypatch.setattr("sys.stdout", FakeTerminal())
        monkeypatch.setattr("sys.stderr", stderr)
        return stderr

    return install


def test_draws_on_a_terminal(terminal):
    terminal = terminal()
    assert progress.enabled()
    with progress.bar(3, "generate", unit="prompt") as handle:
        handle.update(3)
    assert "generate" in terminal.getvalue()


@pytest.mark.parametrize("env", [{"PYTEST_XDIST_WORKER": "gw1"}, {"LLMPERF_PROGRESS": "0"},
                                 {"PYTEST_XDIST_WORKER": "gw0", "LLMPERF_PROGRESS": "1"}])
def test_quiet_under_xdist_or_switched_off(terminal, monkeypatch, env):
    terminal = terminal()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert not progress.enabled()
    with progress.bar(3, "generate") as handle:
        handle.update(3)
    assert terminal.getvalue() == ""


def test_quiet_when_not_a_terminal(terminal, monkeypatch):
    terminal()
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    assert not progress.enabled()
    assert list(progress.track([1, 2, 3], "score")) == [1, 2, 3]
    assert pipe.getvalue() == ""


def test_forced_on_for_a_pipe(terminal, monkeypatch):
    terminal()
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    monkeypatch.setenv(progress.ENV_SWITCH, "1")
    assert list(progress.track(range(4), "score ROUGE", unit="sample")) == [0, 1, 2, 3]
    assert "score ROUGE" in pipe.getvalue()


def test_token_counter_counts_each_token():
    handle = progress.SilentBar()
    on_token = progress.token_counter(handle)
    for index in range(5):
        on_token(index % 2, 100 + index, 0.0)
    assert handle.n == 5


def test_track_takes_generators_without_a_length(terminal):
    terminal()
    assert list(progress.track((x for x in range(3)), "loadgen")) == [0, 1, 2]
