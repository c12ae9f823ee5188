"""llmperf report on results of real runs: tables, escaping, exit codes, plots.

``test_report_data/`` holds what two real sessions of
``pytest suites/performance/test_decode.py -m cpu`` wrote, with the terminal
summary each printed: ``decode-a`` recorded ``baselines/`` (passed, verdict
NEW); ``decode-b`` was then judged against it on a busy machine and failed
(-43%).  Only argv, host and temporary paths were made machine-neutral.
End-to-end runs and the browser live in test_report_browser.py.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmperf.report.build import build_report, write_report
from pytest_llmperf.report.plots import limit_bounds
from pytest_llmperf.report.table import metric_row, text_table

DATA = Path(__file__).parents[1] / "test_report_data"
RUN_PASSED, RUN_FAILED, BASELINES = DATA / "decode-a", DATA / "decode-b", DATA / "baselines"
DECODE = "transformers-cpu/decode.tokens_per_second"


def llmperf(*argv) -> int:
    """The real ``llmperf`` entry point, limited to the subcommands under test
    (so these tests do not depend on the other subcommands' modules)."""
    from pytest_llmperf.cli import main

    mine = {name: main.COMMANDS[name] for name in ("report", "baselines")}
    with mock.patch.dict(main.COMMANDS, mine, clear=True):
        return main.main([str(arg) for arg in argv])


def copy_run(source: Path, target: Path, edit=None) -> Path:
    data = json.loads((source / "results.json").read_text())
    if edit:
        edit(data)
    target.mkdir(parents=True, exist_ok=True)
    (target / "results.json").write_text(json.dumps(data))
    return target


def scale_baseline(root: Path, factor: float) -> None:
    for path in root.rglob("*.json"):
        data = json.loads(path.read_text())
        for entry in data["metrics"].values():
            entry["value"] *= factor
        path.write_text(json.dumps(data))


def test_report_against_baselines_folder_passes(tmp_path, capsys):
    assert llmperf("report", RUN_PASSED, "--baseline", BASELINES, "--out", tmp_path) == 0
    printed = capsys.readouterr().out
    assert "decode.tokens_per_second" in printed and "REGRESSED" not in printed
    diff = json.loads((tmp_path / "diff.json").read_text())
    assert diff["regressed"] is False and diff["baseline"]["kind"] == "baselines"
    [metric] = diff["metrics"]
    assert metric["id"] == DECODE and metric["comparison"]["status"] == "within"
    html = (tmp_path / "report.html").read_text()
    assert "PASSED" in html and "data:image/png;base64," in html
    assert "## llmperf report: PASSED" in (tmp_path / "summary.md").read_text()


def test_raised_baseline_exits_1_and_the_report_marks_it(tmp_path, capsys):
    baselines = tmp_path / "baselines"
    shutil.copytree(BASELINES, baselines)
    scale_baseline(baselines, 3.0)
    assert llmperf("report", RUN_PASSED, "--baseline", baselines, "--out", tmp_path / "out") == 1
    assert f"REGRESSED regressed against the baseline: {DECODE}" in capsys.readouterr().out
    diff = json.loads((tmp_path / "out" / "diff.json").read_text())
    assert diff["regressed"] and diff["metrics"][0]["comparison"]["status"] == "regressed"
    html = (tmp_path / "out" / "report.html").read_text()
    assert 'class="badge regressed"' in html and '<tr class="regressed">' in html
    assert "REGRESSED" in (tmp_path / "out" / "summary.md").read_text()


def test_run_to_run_regression_uses_the_recorded_tolerance(tmp_path):
    value = json.loads((RUN_PASSED / "results.json").read_text())["metrics"][0]["value"]

    def faster_before(data):  # the earlier run was 2x faster: beyond the 35% tolerance
        data["metrics"][0]["value"] = 2 * value

    def slightly_faster_before(data):  # 10% faster: within it
        data["metrics"][0]["value"] = 1.1 * value

    assert llmperf("report", RUN_PASSED, "--baseline", copy_run(RUN_PASSED, tmp_path / "fast", faster_before),
                   "--out", tmp_path / "r1") == 1
    assert llmperf("report", RUN_PASSED, "--baseline", copy_run(RUN_PASSED, tmp_path / "near", slightly_faster_before),
                   "--out", tmp_path / "r2") == 0
    comparison = json.loads((tmp_path / "r2" / "diff.json").read_text())["metrics"][0]["comparison"]
    assert comparison["allowed"].startswith(">=") and "tolerance 35%" in comparison["source"]


def test_a_metric_measured_before_but_not_now_exits_1(tmp_path):
    def one_more(data):
        data["metrics"].append({**data["metrics"][0], "name": "decode.samples_per_second", "unit": "samples/s"})

    before = copy_run(RUN_PASSED, tmp_path / "before", one_more)
    assert llmperf("report", RUN_PASSED, "--baseline", before, "--out", tmp_path / "out") == 1
    diff = json.loads((tmp_path / "out" / "diff.json").read_text())
    assert diff["reasons"] == [f"missing: transformers-cpu/decode.samples_per_second: measured in the baseline "
                               f"({diff['metrics'][1]['comparison']['baseline_value']:.4g} samples/s) but not in this run"]
    assert diff["metrics"][1]["verdict"] == "missing"


def test_the_real_failed_run_exits_1_and_says_why(tmp_path, capsys):
    assert llmperf("report", RUN_FAILED, "--baseline", RUN_PASSED, "--out", tmp_path) == 1
    reasons = json.loads((tmp_path / "diff.json").read_text())["reasons"]
    assert reasons[0].startswith(f"{DECODE}: 1.287 tokens/s failed its gate >= 1.467")
    assert any(reason.startswith("regressed against the baseline") for reason in reasons)
    html = (tmp_path / "report.html").read_text()
    assert '<tr class="fail">' in html and "see --llmperf-update-baselines" in html


def test_a_run_that_never_finished_exits_1(tmp_path):
    def crashed(data):
        data["run"].update(status="running", finished=None)

    assert llmperf("report", copy_run(RUN_PASSED, tmp_path / "run", crashed), "--out", tmp_path / "out") == 1
    assert "did not finish" in json.loads((tmp_path / "out" / "diff.json").read_text())["reasons"][0]


@pytest.mark.parametrize("problem", ["missing", "not-json", "wrong-schema", "empty-baseline-folder"])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, problem):
    results, baseline = tmp_path / "run", None
    if problem == "not-json":
        results.mkdir()
        (results / "results.json").write_text("{not json")
    elif problem == "wrong-schema":
        results.mkdir()
        (results / "results.json").write_text('{"schema": 99}')
    elif problem == "empty-baseline-folder":
        results = RUN_PASSED
        baseline = tmp_path / "empty"
        baseline.mkdir()
    args = ["report", results, "--out", tmp_path / "out"] + (["--baseline", baseline] if baseline else [])
    assert llmperf(*args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("llmperf report: error: ")
    assert "Traceback" not in err


def test_model_text_is_escaped(tmp_path):
    attack = '<script>alert("owned")</script><img src=x onerror=alert(1)>'

    def inject(data):
        data["metrics"][0]["extra"]["examples"] = [{"prompt": "say hi", "output": attack}]
        data["metrics"][0]["source"] = attack
        data["tests"][0]["message"] = f"output was {attack}"
        data["run"]["argv"].append(attack)

    run = copy_run(RUN_PASSED, tmp_path / "run", inject)
    llmperf("report", run, "--out", tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<script" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;" in html
    markdown = (tmp_path / "out" / "summary.md").read_text()
    assert "<script" not in markdown


def test_html_is_self_contained(tmp_path):
    llmperf("report", RUN_PASSED, "--baseline", RUN_FAILED, "--history", DATA, "--out", tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.IGNORECASE)
    assert "<link" not in html and "<script" not in html and "default-src 'none'" in html


@pytest.mark.parametrize("run", [RUN_PASSED, RUN_FAILED], ids=["passed", "failed"])
def test_report_table_matches_the_terminal_summary(run, tmp_path, capsys):
    printed_by_pytest = (run / "terminal-summary.txt").read_text().splitlines()
    llmperf("report", run, "--out", tmp_path)
    printed_by_report = capsys.readouterr().out.splitlines()
    assert printed_by_report[:len(printed_by_pytest)] == printed_by_pytest
    markdown_row = next(line for line in (tmp_path / "summary.md").read_text().splitlines()
                        if line.startswith("| decode."))
    cells = [cell.strip().replace("&gt;", ">") for cell in markdown_row.strip("|").split("|")]
    assert [cell for cell in cells if cell] == re.split(r"\s{2,}", printed_by_pytest[2].strip())


def test_report_table_is_the_recorders_table(tmp_path):
    from pytest_llmperf.config.options import Settings
    from pytest_llmperf.harness.recording import SessionRecorder

    settings = Settings(engines=("transformers",), model=None, device="cpu", out=tmp_path / "session",
                        baselines=tmp_path / "baselines", update_baselines=False, profile="embedded",
                        endpoint=None, samples=None, rootdir=tmp_path)
    recorder = SessionRecorder(settings, "embedded", [])
    metrics = [*build_report(RUN_PASSED).current.metrics.values(), *build_report(RUN_FAILED).current.metrics.values()]
    for metric in metrics:
        recorder.store.add_metric(metric)
    table = text_table([metric_row(m) for m in metrics])
    assert recorder.summary_lines()[:len(table)] == table


def test_history_trend_and_every_plot_kind(tmp_path):
    """Plot plumbing: ROUGE, MMLU and TTFT/TPOT metrics added to a real run's results."""
    def add_metrics(data):
        base = {"test": "t", "engine": "transformers-cpu", "extra": {}, "source": "profile"}
        data["metrics"] += [
            {**base, "name": "rouge.rouge1", "value": 45.1, "unit": "points", "higher_is_better": True,
             "verdict": "pass", "baseline": 44.4312, "limit": ">= 43.99"},
            {**base, "name": "mmlu.accuracy.argmax", "value": 30.2, "unit": "%", "higher_is_better": True,
             "verdict": "fail", "baseline": 45.8, "limit": ">= 45.8"},
            {**base, "name": "rouge.gen_len", "value": 10510, "unit": "characters", "higher_is_better": None,
             "verdict": "info", "baseline": None, "limit": None},
            {**base, "name": "server.ttft_p99", "value": 0.8, "unit": "s", "higher_is_better": False,
             "verdict": "pass", "baseline": 2.0, "limit": "<= 2"},
            {**base, "name": "server.tpot", "value": 0.05, "unit": "s", "higher_is_better": False,
             "verdict": "info", "baseline": None, "limit": None,
             "extra": {"percentiles": {"p50": 0.03, "p90": 0.04, "p99": 0.05}}},
        ]

    history = tmp_path / "history"
    for index in range(3):
        copy_run(RUN_PASSED, history / f"night-{index}", add_metrics)
    run = copy_run(RUN_FAILED, tmp_path / "run", add_metrics)
    report = build_report(run, RUN_PASSED, history)
    assert len(report.history) == 3
    from pytest_llmperf.report.history import trends
    from pytest_llmperf.report.build import build_plots

    series = trends(report.history, report.current)
    assert len(series[DECODE]) == 4 and series[DECODE][-1].current
    titles = [plot.title for plot in build_plots(report.current.metrics, report.comparisons, series)]
    assert titles == ["Throughput and latency against baseline", "TTFT / TPOT percentiles",
                      "ROUGE / MMLU against targets", "Trend over the history"]
    assert report.regressed
    write_report(report, tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and html.count('<svg class="llmperf-plot"') == 1


def test_accuracy_is_plotted_as_measured_over_threshold_without_info_metrics():
    """gen_len (10,510 characters, INFO) once hid the ROUGE and MMLU bars on a shared linear axis."""
    from pytest_llmperf.report.plots import ACCURACY_NAME, gated_metrics
    from pytest_llmperf.report.svgplots import accuracy_plot
    from pytest_llmperf.runtime.results import Metric

    metrics = {m.name: m for m in (
        Metric("rouge.rouge1", 45.1, "points", True, "pass", 44.4312, ">= 43.99"),
        Metric("mmlu.accuracy.argmax", 30.2, "%", True, "fail", 45.8, ">= 45.8"),
        Metric("rouge.gen_len", 10510.0, "characters", None, "info"))}
    plot = accuracy_plot(gated_metrics(metrics, []), ACCURACY_NAME)
    assert set(re.findall(r'data-metric="([^"]+)"', plot.svg)) == {"rouge.rouge1", "mmlu.accuracy.argmax"}
    widths = {name: float(width) for _, name, width in
              re.findall(r'<g class="mark (\w+)" data-metric="([^"]+)">.*?<rect x="[\d.]+" y="[\d.]+" width="([\d.]+)"',
                         plot.svg)}
    ratio_width = widths["rouge.rouge1"] / widths["mmlu.accuracy.argmax"]
    assert ratio_width == pytest.approx((45.1 / 43.99) / (30.2 / 45.8), rel=0.01)
    assert 'class="mark fail" data-metric="mmlu.accuracy.argmax"' in plot.svg and "1.025" in plot.svg


@pytest.mark.parametrize("text, bounds", [(">= 28.87", (28.87, None)), ("<= 2", (None, 2.0)),
                                          ("within 265..323.9", (265.0, 323.9)), ("within -1e+05..1e+05",
                                                                                 (-1e5, 1e5)), ("any value", (None, None))])
def test_limit_text_parses_back(text, bounds):
    assert limit_bounds(text) == bounds


finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_subnormal=False)


@given(low=st.none() | finite, high=st.none() | finite)
def test_every_described_limit_parses_back(low, high):
    from pytest_llmperf.gating.limits import Limit

    described = Limit(low, high, None, "test", "--flag").describe()
    parsed = limit_bounds(described)
    for original, back in zip((low, high), parsed):
        assert (original is None) == (back is None)
        if original is not None:
            assert back == pytest.approx(original, rel=1e-3, abs=1e-300)
