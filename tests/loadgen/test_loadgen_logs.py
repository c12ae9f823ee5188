"""Parsing LoadGen's summary and detail logs, on logs generated in LoadGen's layout."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmperf.errors import InputError
from pytest_llmperf.loadgen.detail import parse_detail, read_detail
from pytest_llmperf.loadgen.summary import parse_summary, read_summary

PCTS = (50.0, 90.0, 95.0, 97.0, 99.0, 99.9)
latency = st.integers(min_value=0, max_value=10**13)
rate = st.floats(min_value=0.0, max_value=1e6, allow_nan=False).map(lambda v: round(v, 4))


def summary_text(scenario, valid, constraints, samples, tokens, lat, ttft, tpot, warnings, errors, recommendations):
    """A summary in the layout LoadGen 6 writes (results.cc / logging.cc)."""
    lines = ["=" * 48, "MLPerf Results Summary", "=" * 48, "SUT name : PySUT", f"Scenario : {scenario}",
             "Mode     : PerformanceOnly"]
    if scenario == "Offline":
        lines += [f"Samples per second: {samples}", f"Tokens per second: {tokens}"]
    else:
        lines += [f"Completed samples per second    : {samples:.2f}", f"Completed tokens per second: {tokens:.2f}"]
    lines.append(f"Result is : {'VALID' if valid else 'INVALID'}")
    names = ["Min duration satisfied", "Min queries satisfied", "Early stopping satisfied"]
    if scenario != "Offline":
        names.insert(0, "Performance constraints satisfied")
    for name, met in zip(names, constraints):
        sep = ": " if name.startswith("Early") else " : "
        lines.append(f"  {name}{sep}{'Yes' if met else 'NO'}")
    if recommendations:
        lines.append("Recommendations:")
        lines += [f" * {text}" for text in recommendations]
    if scenario != "Offline":
        lines += ["TTFT Early Stopping Result:", " * Run successful.", "TPOT Early Stopping Result:",
                  " * Run unsuccessful.", " * Processed 21 queries."]
    lines += ["", "=" * 48, "Additional Stats", "=" * 48]
    lines += [f"Min latency (ns)                : {min(lat)}", f"Max latency (ns)                : {max(lat)}"]
    lines += [f"{p:.2f} percentile latency (ns)   : {v}" for p, v in zip(PCTS, lat)]
    if scenario != "Offline":
        lines += ["", f"Completed tokens per second                 : {tokens:.2f}",
                  f"Mean First Token latency (ns)               : {ttft[0]}"]
        lines += [f"{p:.2f} percentile first token latency (ns)   : {v}" for p, v in zip(PCTS, ttft)]
        lines += ["", f"Max Time per Output Token (ns)                : {tpot[-1]}"]
        lines += [f"{p:.2f} percentile time to output token (ns)   : {v}" for p, v in zip(PCTS, tpot)]
    lines += ["", "=" * 48, "Test Parameters Used", "=" * 48, "samples_per_query : 1", "ttft_latency (ns): 2000000000"]
    lines.append("\nNo warnings encountered during test." if not warnings else f"\n{warnings} warnings encountered. See detailed log.")
    if not errors:
        lines.append("\nNo errors encountered during test.")
    else:
        lines.append(f"\n{errors} ERROR{'S' if errors > 1 else ''} encountered. See detailed log.")
    return "\n".join(lines) + "\n"


@given(
    scenario=st.sampled_from(["Offline", "Server"]),
    valid=st.booleans(),
    constraints=st.lists(st.booleans(), min_size=4, max_size=4),
    samples=rate, tokens=rate,
    lat=st.lists(latency, min_size=6, max_size=6), ttft=st.lists(latency, min_size=6, max_size=6),
    tpot=st.lists(latency, min_size=6, max_size=6),
    warnings=st.integers(0, 5), errors=st.integers(0, 5),
    recommendations=st.lists(st.sampled_from(["Reduce target QPS to improve latency.",
                                              "Increase expected QPS so the loadgen pre-generates a larger (coalesced) query."]),
                             max_size=2),
)
def test_summary_round_trip(scenario, valid, constraints, samples, tokens, lat, ttft, tpot, warnings, errors,
                            recommendations):
    text = summary_text(scenario, valid, constraints, samples, tokens, lat, ttft, tpot, warnings, errors,
                        recommendations)
    summary = parse_summary(text)
    assert summary.scenario == scenario
    assert summary.valid is valid
    expected = constraints if scenario != "Offline" else constraints[:3]
    assert list(summary.constraints.values()) == expected
    assert summary.samples_per_second == pytest.approx(samples if scenario == "Offline" else round(samples, 2))
    assert summary.tokens_per_second == pytest.approx(tokens if scenario == "Offline" else round(tokens, 2))
    assert summary.latency_ns == dict(zip(PCTS, lat))
    assert summary.latency_stats == {"min": min(lat), "max": max(lat)}
    assert (summary.warnings, summary.errors) == (warnings, errors)
    assert summary.recommendations == tuple(recommendations)
    if scenario == "Offline":
        assert summary.ttft_ns == {} and summary.tpot_ns == {}
    else:
        assert summary.ttft_ns == dict(zip(PCTS, ttft))
        assert summary.tpot_ns == dict(zip(PCTS, tpot))
        assert summary.percentile("ttft", 99) == ttft[4]
        assert summary.ttft_stats == {"mean": ttft[0]}
        assert summary.tpot_stats == {"max": tpot[-1]}
        assert summary.early_stopping == {"ttft": "Run successful.", "tpot": "Run unsuccessful. Processed 21 queries."}
    assert summary.parameters["ttft_latency (ns)"] == "2000000000"


def test_summary_of_an_unfinished_run(tmp_path):
    (tmp_path / "mlperf_log_summary.txt").write_text("")
    with pytest.raises(InputError, match="not a LoadGen summary"):
        read_summary(tmp_path)
    (tmp_path / "mlperf_log_summary.txt").write_text("MLPerf Results Summary\nScenario : Offline\n")
    with pytest.raises(InputError, match="no 'Result is' line"):
        read_summary(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        read_summary(tmp_path / "elsewhere")


def mllog(key, value, error=False, warning=False):
    record = {"key": key, "value": value, "time_ms": 1.5, "namespace": "mlperf::logging",
              "event_type": "POINT_IN_TIME", "metadata": {"is_error": error, "is_warning": warning, "file": "x.cc"}}
    return ":::MLLOG " + json.dumps(record)


keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789.", min_size=1, max_size=30)
values = st.one_of(st.integers(-(2**62), 2**62), st.booleans(), st.text(max_size=40),
                   st.floats(allow_nan=False, allow_infinity=False))


@given(st.lists(st.tuples(keys, values, st.booleans(), st.booleans()), min_size=1, max_size=30))
def test_detail_round_trip(records):
    text = "\n".join(mllog(k, v, e, w) for k, v, e, w in records) + "\n"
    detail = parse_detail(text)
    assert [(r.key, r.value) for r in detail.records] == [(k, v) for k, v, _, _ in records]
    assert detail.values == {k: v for k, v, _, _ in records}
    assert [r.key for r in detail.errors] == [k for k, _, e, _ in records if e]
    assert [r.key for r in detail.warnings] == [k for k, _, _, w in records if w]


def test_detail_percentiles_and_validity():
    text = "\n".join([
        mllog("result_validity", "VALID"),
        mllog("result_first_token_99.00_percentile_latency_ns", 1234),
        mllog("result_time_per_output_token_99.00_percentile_ns", 56),
        mllog("result_99.90_percentile_latency_ns", 789),
        mllog("error_runtime", "Number of tokens need to be greater than 1", error=True),
    ])
    detail = parse_detail(text)
    assert detail.valid is True
    assert detail.percentile_ns("ttft", 99) == 1234
    assert detail.percentile_ns("tpot", 99.0) == 56
    assert detail.percentile_ns("latency", 99.9) == 789
    assert detail.errors[0].describe() == "error_runtime: Number of tokens need to be greater than 1"


def test_detail_cut_off_last_line_is_tolerated_elsewhere_not(tmp_path):
    good = mllog("result_validity", "INVALID")
    assert parse_detail(good + "\n" + good[:40]).valid is False
    with pytest.raises(InputError, match="line 1 is not valid MLLOG JSON"):
        parse_detail(good[:40] + "\n" + good)
    (tmp_path / "mlperf_log_detail.txt").write_text("nothing here\n")
    with pytest.raises(InputError, match="holds no ':::MLLOG' records"):
        read_detail(tmp_path)
