"""A suite the interrupt tests run in a real pytest session (copied into a temporary folder): plumbing
engines behind the real LoadGen, so the signal paths are exercised in seconds.  $CUT_CASE picks what
the interrupted test does; each writes a marker file into $CUT_MARKERS when it is under way."""

import dataclasses
import os
import time
from pathlib import Path

import pytest
from plumbing import PacedEngine, PacedStaticEngine

from pytest_llmperf.gating.baselines import BaselineKey, Tolerance
from pytest_llmperf.gating.rounds import RoundMeasurer, RoundMetric, RoundSettings
from pytest_llmperf.gating.sequential import gate_rounds
from pytest_llmperf.loadgen import run_loadgen, run_settings

CASE = os.environ.get("CUT_CASE", "server")
MARKERS = Path(os.environ.get("CUT_MARKERS", "."))
KEY = BaselineKey.of("plumbing", "plumbing", "cpu", "plumbing", "float32")
PROMPTS = [[8, 1, 1]] * 64


def under_way(name: str) -> None:
    (MARKERS / name).write_text(str(time.time()))


def test_measured_first(llmperf_check):
    llmperf_check.info("plumbing.measured_first", 1.5, "s", False)
    # Staged under --llmperf-update-baselines; an interrupted run must never write it.
    llmperf_check.against_baseline("plumbing.staged", 2.0, "s", False, Tolerance(relative=0.5), key=KEY)


@pytest.fixture
def stuck_teardown():
    yield
    under_way("teardown")
    time.sleep(120)  # a teardown that would hang: only a second signal gets past it


def test_cut(llmperf_session, llmperf_check, request):
    if CASE == "second":
        request.getfixturevalue("stuck_teardown")
    folder = llmperf_session.test_dir(request.node.nodeid)
    if CASE in ("server", "second"):
        settings = dataclasses.replace(run_settings(llmperf_session.profile, "Server", "PerformanceOnly"),
                                       target_qps=2.0, min_duration_ms=120_000, min_query_count=64)
        run_loadgen(PacedEngine(0.05), PROMPTS, "Server", "PerformanceOnly", settings, folder)
    elif CASE == "offline":
        settings = dataclasses.replace(run_settings(llmperf_session.profile, "Offline", "PerformanceOnly"),
                                       min_duration_ms=0, min_query_count=1)
        run_loadgen(PacedStaticEngine(0.5), [[64, 1, 1]] * 4, "Offline", "PerformanceOnly", settings, folder)
    elif CASE == "rounds":
        def measure(index):
            if index > 0:
                under_way("round-1")
                time.sleep(120)
            return {"plumbing.rate": 10.0}

        gate_rounds(llmperf_check, [RoundMetric("plumbing.rate", "1/s", True)], RoundMeasurer(measure, lambda: 1.0, "none"),
                    RoundSettings(rounds=3, max_rounds=3), {}, key=KEY)
    pytest.fail("the session was not interrupted")


def test_never_reached(llmperf_check):
    llmperf_check.info("plumbing.after", 1.0, "s", False)
