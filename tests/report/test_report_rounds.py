"""llmperf report on metrics measured in rounds: one judge for the session and the report.

Real pytest sessions (the plugin, ``llmperf_check``, ``gate_rounds``) measure plumbing rounds: a
plan file gives each metric's round values and calibration rates, and a meter reports the machine
quiet (a real neighbour on this shared machine would make the verdicts vary).  The first session
records ``baselines/`` (--llmperf-update-baselines); the next are judged against it.  Given those very
baselines, ``llmperf report`` must reach each metric's session verdict, which a single value at 0%
tolerance did not: -3.4% tokens/s read REGRESSED there, an INCONCLUSIVE one "improved".
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from pytest_llmperf.cli import main

REPO = Path(__file__).resolve().parents[2]

SUITE = '''
import json
from pathlib import Path

import pytest

from pytest_llmperf.gating.baselines import BaselineKey
from pytest_llmperf.gating.contention import ContentionMeter
from pytest_llmperf.gating.rounds import RoundMeasurer, RoundMetric, RoundSettings
from pytest_llmperf.gating.sequential import gate_rounds

KEY = BaselineKey("plumbing-model", "cpu", "plumbing", "float32")
PLAN = json.loads((Path(__file__).parent / "rounds.json").read_text())
SETTINGS = RoundSettings(rounds=4, max_rounds=6, source="test_rounds.py")


class QuietMeter(ContentionMeter):
    """Plumbing: every round had the machine to itself."""

    def start(self):
        pass

    def stop(self):
        return 0.0


@pytest.mark.parametrize("name", sorted(PLAN))
def test_rounds(llmperf_check, name):
    plan = PLAN[name]
    values, rates = iter(plan["values"]), iter(plan["calibration"])
    llmperf_check.bind(baseline_key=KEY, engine_key="plumbing-cpu")
    measurer = RoundMeasurer(lambda index: {name: next(values)}, lambda: next(rates), "plumbing-calibration",
                             QuietMeter())
    gate_rounds(llmperf_check, [RoundMetric(name, plan["unit"], plan["higher_is_better"])], measurer, SETTINGS,
                {"test": name, "threads": 1})
'''

# name: (unit, higher is better, baseline centre, this run's centre, relative noise of a round)
METRICS = {
    "offline.tokens_per_second": ("tokens/s", True, 1000.0, 966.0, 0.01),  # -3.4%: inside the 15% min effect
    "server.ttft_p50": ("s", False, 0.200, 0.2108, 0.02),  # +5.4%: inside the 30% min effect
    "decode.tokens_per_second": ("tokens/s", True, 40.0, 28.0, 0.02),  # -30%: a real slowdown
    "server.tpot_p50": ("ms", False, 50.0, 62.0, 0.25),  # +24% in rounds too noisy to tell
    "offline.samples_per_second": ("samples/s", True, None, 12.0, 0.01),  # never recorded: NO BASELINE
}
EXPECTED = {"offline.tokens_per_second": "pass", "server.ttft_p50": "pass", "decode.tokens_per_second": "fail",
            "server.tpot_p50": "inconclusive", "offline.samples_per_second": "no_baseline"}
RECORD = "pytest test_rounds.py::test_rounds --llmperf-update-baselines"


def plan(side: str, names=METRICS) -> dict:
    """Round values of ``side`` (``baseline`` or ``now``) for each metric that has that side."""
    found = {}
    for name in names:
        unit, higher, before, now, noise = METRICS[name]
        centre = before if side == "baseline" else now
        if centre is None:
            continue
        rng = random.Random(f"{name}-{side}")
        found[name] = {"unit": unit, "higher_is_better": higher,
                       "values": [centre * rng.lognormvariate(0, noise) for _ in range(8)],
                       "calibration": [1.0 + 0.004 * rng.uniform(-1, 1) for _ in range(9)]}
    return found


def session(folder: Path, rounds: dict, *args: str) -> Path:
    """A real pytest session of the suite in ``folder``; returns its results folder."""
    (folder / "rounds.json").write_text(json.dumps(rounds))
    out = folder / f"results-{len(list(folder.glob('results-*')))}"
    command = [sys.executable, "-m", "pytest", "test_rounds.py", "-q", "-p", "no:cacheprovider",
               "--llmperf-out", str(out), "--llmperf-baselines", str(folder / "baselines"), *args]
    env = {**os.environ, "LLMPERF_PROGRESS": "0", "PYTHONPATH": os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=600, env=env)
    assert (out / "results.json").is_file(), done.stdout[-3000:] + done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    """``recorded``: the session that wrote baselines/; ``judged``: every metric judged against them;
    ``passed``: the same without the slowdown (a run pytest passed)."""
    folder = tmp_path_factory.mktemp("rounds")
    (folder / "test_rounds.py").write_text(SUITE)
    recorded = session(folder, plan("baseline"), "--llmperf-update-baselines")
    judged = session(folder, plan("now"))
    passed = session(folder, plan("now", [n for n in METRICS if n != "decode.tokens_per_second"]))
    return {"folder": folder, "baselines": folder / "baselines", "recorded": recorded, "judged": judged,
            "passed": passed}


def llmperf(*argv) -> int:
    """The real ``llmperf`` entry point, limited to ``report``."""
    with mock.patch.dict(main.COMMANDS, {"report": main.COMMANDS["report"]}, clear=True):
        return main.main([str(arg) for arg in argv])


def results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def report(run: Path, baseline: Path, out: Path) -> tuple[int, dict]:
    status = llmperf("report", run, "--baseline", baseline, "--out", out)
    return status, json.loads((out / "diff.json").read_text())


def test_the_sessions_reached_the_verdicts_planned(sessions):
    assert {m["name"]: m["verdict"] for m in results(sessions["recorded"])["metrics"]} == {
        name: "new" for name in EXPECTED if name != "offline.samples_per_second"}
    assert {m["name"]: m["verdict"] for m in results(sessions["judged"])["metrics"]} == EXPECTED
    assert results(sessions["judged"])["run"]["status"] == "failed"
    assert results(sessions["passed"])["run"]["status"] == "passed"


def test_against_the_sessions_baselines_the_report_reaches_the_sessions_verdicts(sessions, tmp_path, capsys):
    status, diff = report(sessions["judged"], sessions["baselines"], tmp_path)
    session_verdicts = {m["name"]: m["verdict"] for m in results(sessions["judged"])["metrics"]}
    assert {m["name"]: m["comparison"]["verdict"] for m in diff["metrics"]} == session_verdicts
    # The same interval, not merely the same word.
    for metric in diff["metrics"]:
        if metric["comparison"]["rounds"] is not None:
            assert metric["comparison"]["rounds"]["interval"] == pytest.approx(metric["extra"]["interval"])
            assert metric["comparison"]["change"] == pytest.approx(metric["extra"]["change"], abs=1e-6)
    assert status == 1
    printed = capsys.readouterr().out
    assert "REGRESSED regressed against the baseline: plumbing-cpu/decode.tokens_per_second" in printed


def test_a_run_pytest_passed_passes_its_report_inconclusive_and_no_baseline_included(sessions, tmp_path, capsys):
    status, diff = report(sessions["passed"], sessions["baselines"], tmp_path)
    printed = capsys.readouterr().out
    assert status == 0 and diff["regressed"] is False and "REGRESSED" not in printed
    by_name = {m["name"]: m["comparison"] for m in diff["metrics"]}
    assert by_name["offline.tokens_per_second"]["status"] == "within"  # 0% tolerance called it REGRESSED
    assert by_name["offline.tokens_per_second"]["change"] == pytest.approx(-0.034, abs=0.01)
    assert by_name["server.ttft_p50"]["status"] == "within"
    assert by_name["server.tpot_p50"]["status"] == "inconclusive"  # not "improved", not "regressed"
    assert by_name["offline.samples_per_second"]["status"] == "no baseline"
    assert RECORD in by_name["offline.samples_per_second"]["note"]
    assert "INCONCLUSIVE plumbing-cpu/server.tpot_p50" in printed
    assert re.search(rf"NO BASELINE plumbing-cpu/offline.samples_per_second: [\d.]+ samples/s; no baseline in .*; "
                     rf"record one with: {RECORD}", printed)
    html = (tmp_path / "report.html").read_text()
    assert 'class="badge inconclusive"' in html and '<tr class="inconclusive">' in html
    assert ">INCONCLUSIVE</td>" in html and ">NO BASELINE</td>" in html
    assert "PASSED, INCONCLUSIVE" in (tmp_path / "summary.md").read_text()


def test_the_html_draws_each_interval_against_its_minimum_effect(sessions, tmp_path):
    report(sessions["judged"], sessions["baselines"], tmp_path)
    html = (tmp_path / "report.html").read_text()
    svg = re.search(r'<svg class="llmperf-plot".*?</svg>', html, re.S)[0]
    marks = dict((name, verdict) for verdict, name in re.findall(r'<g class="mark (\w+)" data-metric="([^"]+)">', svg))
    assert marks == {"plumbing-cpu/offline.tokens_per_second": "pass", "plumbing-cpu/server.ttft_p50": "pass",
                     "plumbing-cpu/decode.tokens_per_second": "fail", "plumbing-cpu/server.tpot_p50": "inconclusive"}
    assert "fail beyond -15%" in svg and "fail beyond +30%" in svg
    # Without --baseline the plot shows the session's own intervals.
    llmperf("report", sessions["judged"], "--out", tmp_path / "own")
    assert html.count('data-metric="') == (tmp_path / "own" / "report.html").read_text().count('data-metric="')


def test_against_the_run_whose_rounds_became_the_baselines_the_verdicts_are_the_same(sessions, tmp_path):
    _, against_folder = report(sessions["passed"], sessions["baselines"], tmp_path / "folder")
    status, against_run = report(sessions["passed"], sessions["recorded"], tmp_path / "run")
    assert against_run["baseline"]["kind"] == "run"
    # The one regression: decode was measured by the earlier run and not by this one (lost coverage).
    assert status == 1 and [r.split(":")[0] for r in against_run["reasons"]] == ["missing"]
    folder = {m["name"]: m["comparison"]["verdict"] for m in against_folder["metrics"]}
    run = {m["name"]: m["comparison"]["verdict"] for m in against_run["metrics"] if m["verdict"] != "missing"}
    assert run.pop("offline.samples_per_second") is None  # not in the earlier run: "new"
    folder.pop("offline.samples_per_second")
    assert run == folder


def test_compare_of_two_runs_reaches_the_reports_verdicts_against_the_earlier_run(sessions, tmp_path, capsys):
    _, against_run = report(sessions["judged"], sessions["recorded"], tmp_path / "run")
    capsys.readouterr()
    with mock.patch.dict(main.COMMANDS, {"compare": main.COMMANDS["compare"]}, clear=True):
        status = main.main(["compare", str(sessions["recorded"]), str(sessions["judged"])])
    printed = capsys.readouterr().out
    labels = {"pass": "PASS", "fail": "REGRESSED", "inconclusive": "INCONCLUSIVE", None: "NEW"}
    expected = {m["name"]: labels[m["comparison"]["verdict"]] for m in against_run["metrics"]}
    shown = {}
    for line in printed.splitlines():
        words = line.split()
        if words and words[0].startswith("plumbing-cpu/"):
            shown[words[0].split("/", 1)[1]] = words[-1]
    improved = {name for name, label in shown.items() if label == "IMPROVED"}
    assert {name: ("PASS" if name in improved else label) for name, label in shown.items()} == expected
    assert status == 1 and "REGRESSED plumbing-cpu/decode.tokens_per_second" in printed


def test_a_faster_baseline_makes_a_passed_run_regress(sessions, tmp_path, capsys):
    baselines = tmp_path / "baselines"
    shutil.copytree(sessions["baselines"], baselines)
    [path] = baselines.rglob("*.json")
    data = json.loads(path.read_text())
    rounds = data["metrics"]["offline.tokens_per_second"]["rounds"]
    for side in ("raw", "normalized"):  # the engine of the baseline was 1.5x as fast
        rounds[side] = [1.5 * value for value in rounds[side]]
    rounds["median"] *= 1.5
    path.write_text(json.dumps(data))
    status, diff = report(sessions["passed"], baselines, tmp_path / "out")
    assert status == 1
    [reason] = diff["reasons"]
    assert reason.startswith("regressed against the baseline: plumbing-cpu/offline.tokens_per_second")
    assert "fail beyond -15%" in reason and "test_rounds.py: performance.min_effect_throughput" in reason


def test_a_run_that_kept_no_rounds_is_judged_by_tolerance_and_says_so(sessions, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    data = results(sessions["passed"])
    for metric in data["metrics"]:  # as results.json files were before rounds were recorded
        for key in ("rounds", "round_settings", "interval", "change", "basis"):
            metric["extra"].pop(key, None)
    (old / "results.json").write_text(json.dumps(data))
    status, diff = report(old, sessions["baselines"], tmp_path / "out")
    row = next(m["comparison"] for m in diff["metrics"] if m["name"] == "offline.tokens_per_second")
    assert row["status"] == "within" and row["verdict"] == "pass" and row["rounds"] is None
    assert row["note"] == "this run recorded no rounds of it: judged on the value by tolerance 5%"
    assert status == (1 if diff["regressed"] else 0)


# -- in a browser -------------------------------------------------------------------------------------------

ACCURACY = [  # gated ROUGE and MMLU next to gen_len (INFO, 10,510 characters), which once hid their bars
    {"name": "rouge.rouge1", "value": 45.1, "unit": "points", "higher_is_better": True, "verdict": "pass",
     "baseline": 44.4312, "limit": ">= 43.99", "source": "mlperf-llama2-70b-99: 0.99 x 44.4312"},
    {"name": "mmlu.accuracy.argmax", "value": 30.2, "unit": "%", "higher_is_better": True, "verdict": "fail",
     "baseline": 45.8, "limit": ">= 45.8", "source": "embedded profile"},
    {"name": "rouge.gen_len", "value": 10510, "unit": "characters", "higher_is_better": None, "verdict": "info"},
]
MARK_COLORS = [(1.0, 0.0, 0.0), (0.0, 0.8, 0.0), (0.0, 0.0, 1.0), (1.0, 0.0, 1.0), (0.0, 0.8, 0.8), (1.0, 0.6, 0.0),
               (0.5, 0.0, 1.0), (0.4, 0.4, 0.0)]
MARK_PIXELS = 60
"""Fewer pixels of a mark's colour than this and it is not in the picture (a circle of radius 5 has 78)."""


def isolating_style(colors: dict[str, tuple[float, float, float]]) -> str:
    """Only the plots' marks shown, each metric's in its own colour; the layout of the figures is kept."""
    rules = ["body > :not(figure), figure > :not(svg) { display: none !important; }",
             "svg.llmperf-plot * { visibility: hidden; }",
             "svg.llmperf-plot g.mark, svg.llmperf-plot g.mark * { visibility: visible; }"]
    for metric, color in colors.items():
        css = "rgb({:.0f}, {:.0f}, {:.0f})".format(*(255 * c for c in color))
        rules.append(f'g.mark[data-metric="{metric}"] * {{ fill: {css} !important; stroke: {css} !important; }}')
    return "<style>" + "\n".join(rules) + "</style>"


def marks_missing(html: str, colors: dict, folder: Path) -> dict[str, int]:
    """Metric -> pixels of its colour, for each metric whose mark Chromium did not draw visibly."""
    from browser import pixels_near, screenshot

    page = folder / "marks.html"
    page.write_text(html.replace("</head>", isolating_style(colors) + "</head>"))
    pixels = screenshot(page, folder / "marks.png", "1280,1400")
    counts = {metric: pixels_near(pixels, color, within=0.05) for metric, color in colors.items()}
    return {metric: count for metric, count in counts.items() if count < MARK_PIXELS}


def test_every_gated_metric_has_its_mark_in_the_rendered_plots(sessions, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    data = results(sessions["judged"])
    data["metrics"] += [{**metric, "engine": "plumbing-cpu", "test": "t", "extra": {}} for metric in ACCURACY]
    (run / "results.json").write_text(json.dumps(data))
    _, diff = report(run, sessions["baselines"], tmp_path / "out")
    # What must be drawn, from the results, not from the picture: each metric judged in rounds
    # against the baseline, and each gated accuracy metric.
    expected = [m["id"] for m in diff["metrics"] if (m["comparison"] or {}).get("rounds")]
    expected += [f"plumbing-cpu/{m['name']}" for m in ACCURACY if m["verdict"] != "info"]
    assert len(expected) == 6
    colors = dict(zip(expected, MARK_COLORS))
    html = (tmp_path / "out" / "report.html").read_text()
    assert 'data-metric="plumbing-cpu/rouge.gen_len"' not in html
    assert marks_missing(html, colors, tmp_path) == {}
    # The check sees a mark that is not drawn: take one out of the page.
    gone = "plumbing-cpu/offline.tokens_per_second"
    without = re.sub(rf'<g class="mark \w+" data-metric="{re.escape(gone)}">.*?</g>', "", html, flags=re.S)
    assert without != html
    (tmp_path / "again").mkdir()
    assert list(marks_missing(without, colors, tmp_path / "again")) == [gone]
