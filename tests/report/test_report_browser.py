"""End to end, as a new user would: run the decode suite twice, report, look at it in a browser.

Both sessions are real (the embedded model on the transformers engine) and
record baselines into a temporary folder (--llmperf-update-baselines), so each
passes whatever this machine's speed is.  The report is rendered in headless
Chromium (Debian package ``chromium``) to a screenshot whose pixels are checked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from browser import pixels_near, non_white_fraction, screenshot

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "suites" / "performance" / "test_decode.py"
DECODE = "transformers-cpu/decode.tokens_per_second"
BADGE_RED = (0xC6 / 255, 0x28 / 255, 0x28 / 255)


def llmperf(*argv) -> int:
    """The real ``llmperf`` entry point, limited to the subcommands under test."""
    from pytest_llmperf.cli import main

    mine = {name: main.COMMANDS[name] for name in ("report", "baselines")}
    with mock.patch.dict(main.COMMANDS, mine, clear=True):
        return main.main([str(arg) for arg in argv])


def run_suite(out: Path, baselines: Path) -> None:
    command = [sys.executable, "-m", "pytest", str(SUITE), "-m", "cpu", "-q", "-p", "no:cacheprovider",
               "--benchmark-disable", "--llmperf-out", str(out), "--llmperf-baselines", str(baselines),
               "--llmperf-update-baselines"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "LLMPERF_PROGRESS": "0"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("nightly")
    run_suite(root / "history" / "night-1", root / "baselines")
    run_suite(root / "night-2", root / "baselines")
    return root


def test_two_nights_compared_in_a_browser(two_runs, tmp_path):
    out = tmp_path / "report"
    status = llmperf("report", two_runs / "night-2", "--baseline", two_runs / "history" / "night-1",
                     "--history", two_runs / "history", "--out", out)
    diff = json.loads((out / "diff.json").read_text())
    assert status == (1 if diff["regressed"] else 0)
    assert diff["baseline"]["kind"] == "run" and len(diff["history"]) == 1
    metric = next(m for m in diff["metrics"] if m["id"] == DECODE)  # decode also records MFU/MBU (n/a on CPU)
    assert metric["comparison"]["baseline_value"] is not None
    html = (out / "report.html").read_text()
    assert diff["baseline"]["label"] in html and html.count("data:image/png;base64,") == 2  # speed and trend
    assert f'data-metric="{DECODE}"' in html  # its rounds' interval, judged against night-1's rounds
    pixels = screenshot(out / "report.html", tmp_path / "report.png")
    assert non_white_fraction(pixels) > 0.02, "the rendered report is (nearly) blank"


def test_raised_baseline_exits_1_and_shows_red(two_runs, tmp_path):
    baselines = tmp_path / "baselines"
    shutil.copytree(two_runs / "baselines", baselines)
    assert llmperf("report", two_runs / "night-2", "--baseline", baselines, "--out", tmp_path / "fresh") == 0
    for path in baselines.rglob("*.json"):
        data = json.loads(path.read_text())
        for entry in data["metrics"].values():  # a baseline engine 3x as fast: its value and its rounds
            entry["value"] *= 3
            rounds = entry.get("rounds") or {}
            for side in ("raw", "normalized"):
                rounds[side] = [3 * value for value in rounds.get(side, [])]
            if "median" in rounds:
                rounds["median"] *= 3
        path.write_text(json.dumps(data))
    out = tmp_path / "raised"
    assert llmperf("report", two_runs / "night-2", "--baseline", baselines, "--out", out) == 1
    assert json.loads((out / "diff.json").read_text())["metrics"][0]["comparison"]["status"] == "regressed"
    pixels = screenshot(out / "report.html", tmp_path / "raised.png")
    assert pixels_near(pixels[:200], BADGE_RED) > 500, "no red REGRESSED badge at the top of the page"
