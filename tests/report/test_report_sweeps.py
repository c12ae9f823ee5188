"""Sweeps in the report: the latency-throughput curve with the limits and the Pareto front,
as figures and a table; rendered in headless Chromium where it is installed."""

from __future__ import annotations

import json

import pytest

from pytest_llmperf.errors import InputError
from pytest_llmperf.loadgen.query_times import QueryTiming, Slo, query_stats
from pytest_llmperf.loadgen.sweep import SweepPoint, write_sweep
from pytest_llmperf.loadgen.settings import run_settings
from pytest_llmperf.config.profiles import load_profile
from pytest_llmperf.report import build_report, write_report
from pytest_llmperf.report.plots import FAIL_COLOR
from pytest_llmperf.runtime.results import ResultsStore

LIMITS = Slo(ttft_ms=2000.0, tpot_ms=500.0)


def point(qps: float, ttft: float, tpot: float, result: str) -> SweepPoint:
    queries = [QueryTiming(0, i / qps, tuple(i / qps + ttft + k * tpot for k in range(16)), 16) for i in range(40)]
    return SweepPoint("qps", qps, query_stats(queries, LIMITS), {"result": result}, f"qps-{qps:g}")


def results_folder(tmp_path, with_sweep: bool = True):
    store = ResultsStore(tmp_path, {"command": "llmperf sweep", "profile": "embedded-capacity"})
    store.finish("passed")
    if with_sweep:
        base = run_settings(load_profile("embedded-capacity"), "Server", "PerformanceOnly")
        points = [point(1, 0.05, 0.03, "VALID"), point(2, 0.08, 0.05, "VALID"), point(3, 0.1, 0.15, "VALID"),
                  point(4, 0.4, 0.12, "VALID"), point(8, 6.0, 0.35, "INVALID")]
        write_sweep(tmp_path / "sweep" / "vllm-Server", points, load_profile("embedded-capacity"), base)
    return tmp_path


def test_report_draws_the_curve_the_front_and_the_table(tmp_path):
    report = build_report(results_folder(tmp_path / "run"))
    files = write_report(report, tmp_path / "out")
    html = files.html.read_text()
    assert "Latency against throughput: vllm-Server" in html and "Pareto front: vllm-Server" in html
    assert "<h2>Sweeps</h2>" in html and "Limits: TTFT 2000.0 ms, TPOT 500.0 ms" in html
    assert html.count('<tr class="fail">') == 1  # the INVALID point
    data = json.loads((tmp_path / "run" / "sweep" / "vllm-Server" / "sweep.json").read_text())
    # 3 qps is slower per user than 4 qps (TPOT 150 vs 120 ms) and gives less per device: off the front;
    # so is 8 qps, whose 6 s TTFT stretches the run (fewer tokens/s than 4 qps).
    assert [p["pareto"] for p in data["points"]] == [True, True, False, True, False]


def test_a_broken_sweep_file_is_named(tmp_path):
    folder = results_folder(tmp_path, with_sweep=False)
    (folder / "sweep" / "x").mkdir(parents=True)
    (folder / "sweep" / "x" / "sweep.json").write_text("{not json")
    with pytest.raises(InputError, match="sweep.json: is not a sweep written by llmperf sweep"):
        build_report(folder)


def test_sweep_report_in_a_browser(tmp_path):
    from test_report_browser import non_white_fraction, pixels_near, screenshot

    with_sweep = write_report(build_report(results_folder(tmp_path / "a")), tmp_path / "ra")
    without = write_report(build_report(results_folder(tmp_path / "b", with_sweep=False)), tmp_path / "rb")
    pixels = screenshot(with_sweep.html, tmp_path / "sweep.png")
    bare = screenshot(without.html, tmp_path / "bare.png")
    red = tuple(int(FAIL_COLOR[i:i + 2], 16) / 255 for i in (1, 3, 5))
    assert pixels_near(pixels, red) > 200  # the dotted limit lines, the INVALID label, its table row
    assert pixels_near(bare, red) < 50
    assert non_white_fraction(pixels) > 2 * non_white_fraction(bare) + 0.02  # two figures and a table more


def test_a_sweep_of_another_schema_is_named_with_the_fix(tmp_path):
    folder = results_folder(tmp_path, with_sweep=False)
    (folder / "sweep" / "x").mkdir(parents=True)
    (folder / "sweep" / "x" / "sweep.json").write_text(json.dumps({"schema": 99, "points": []}))
    with pytest.raises(InputError, match="has sweep schema 99; this version reads schema 1"):
        build_report(folder)
