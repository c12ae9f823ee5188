"""The round-based gate's statistics (gating.noise) and its recording (gating.rounds, Checker.against_rounds)."""

import math
import os
import random
import statistics
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_llmperf.gating.baselines import BaselineKey, BaselineStore, baseline_entry, workload_differences
from pytest_llmperf.gating.checker import BASELINE, Checker
from pytest_llmperf.gating.noise import judge_rounds, t_quantile
from pytest_llmperf.gating.contention import ContentionMeter, host_id
from pytest_llmperf.gating.rounds import RoundMeasurer, RoundMetric, RoundSettings
from pytest_llmperf.gating.sequential import gate_rounds

KEY = BaselineKey("m", "cpu", "transformers", "float32")
THROUGHPUT = RoundMetric("decode.tokens_per_second", "tokens/s", True)
LATENCY = RoundMetric("server.tpot_p50", "ms", False)
WORKLOAD = {"test": "decode", "max_new_tokens": 32, "threads": 2}


def noisy(center, n, spread, seed):
    rng = random.Random(seed)
    return [center * rng.lognormvariate(0, spread) for _ in range(n)]


@pytest.mark.parametrize(("p", "df", "expected"), [(0.975, 4, 2.7764), (0.975, 10, 2.2281), (0.95, 2, 2.9200),
                                                   (0.995, 30, 2.7500)])
def test_t_quantile_matches_tables(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=2e-4)


@settings(deadline=None)  # the first example imports scipy
@given(st.floats(0.51, 0.999), st.floats(1, 200))
def test_t_quantile_is_above_the_normal_one(p, df):
    # Student's t has heavier tails than the normal distribution it tends to.
    assert t_quantile(p, df) >= statistics.NormalDist().inv_cdf(p) - 1e-9


@pytest.mark.parametrize("seed", range(20))
def test_a_clear_25_percent_throughput_regression_fails(seed):
    baseline, current = noisy(100, 5, 0.04, seed), noisy(75, 5, 0.04, seed + 100)
    assert judge_rounds(baseline, current, higher_is_better=True, min_effect=0.15).verdict == "fail"


@pytest.mark.parametrize("seed", range(20))
def test_a_clear_50_percent_latency_rise_fails(seed):
    baseline, current = noisy(100, 5, 0.04, seed), noisy(150, 5, 0.04, seed + 100)
    assert judge_rounds(baseline, current, higher_is_better=False, min_effect=0.30).verdict == "fail"


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10 ** 6), st.floats(0.95, 1.05), st.integers(3, 8), st.booleans())
def test_noise_without_regression_never_fails(seed, drift, n, higher):
    # Same engine, rounds with 5% noise and a drift inside +-5%: never a regression of >= 15%.
    baseline, current = noisy(100, n, 0.05, seed), noisy(100 * drift, n, 0.05, seed + 1)
    verdict = judge_rounds(baseline, current, higher_is_better=higher, min_effect=0.15).verdict
    assert verdict in ("pass", "inconclusive")


@given(st.lists(st.floats(1, 1e4), min_size=2, max_size=8), st.lists(st.floats(1, 1e4), min_size=2, max_size=8),
       st.floats(1.01, 10))
def test_the_interval_moves_with_a_scaled_run(baseline, current, factor):
    plain = judge_rounds(baseline, current, higher_is_better=True, min_effect=0.1)
    scaled = judge_rounds(baseline, [v * factor for v in current], higher_is_better=True, min_effect=0.1)
    if math.isfinite(plain.low):
        assert (1 + scaled.low) == pytest.approx((1 + plain.low) * factor, rel=1e-6)
    assert plain.low <= plain.change <= plain.high


def test_a_wide_interval_is_inconclusive_and_one_round_each_decides_nothing():
    assert judge_rounds([100, 60, 140], [80, 130, 55], higher_is_better=True,
                        min_effect=0.15).verdict == "inconclusive"
    assert judge_rounds([100], [50], higher_is_better=True, min_effect=0.15).verdict == "inconclusive"


def _store(tmp_path, entry=None):
    store = BaselineStore(tmp_path)
    if entry is not None:
        store.update(KEY, {THROUGHPUT.name: entry})
    return store


class FixedMeter(ContentionMeter):
    """Plumbing: reports the given contention for each round in turn (then the last one again)."""

    def __init__(self, values):
        super().__init__()
        self.values = list(values)

    def start(self):
        pass

    def stop(self):
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]


def _entry(values, workload=WORKLOAD, kind="k", calibration=None, contention=0.0, host=None):
    calibration = calibration or [1.0] * len(values)
    rounds = {"normalized": [v / c for v, c in zip(values, calibration)], "raw": values, "calibration": calibration,
              "calibration_kind": kind, "contention": [contention] * len(values), "host": host or host_id()}
    return baseline_entry(sorted(values)[len(values) // 2], "tokens/s", True, {}, {}, rounds=rounds,
                          workload=workload, min_effect=0.15)


def _gate(tmp_path, store, values, *, update=False, workload=WORKLOAD, settings=RoundSettings(rounds=5, max_rounds=8),
          calibration=None, contention=(0.0,), strict=False):
    check = Checker("suites/performance/test_decode.py::test_decode[transformers-cpu]", [], store, update, strict)
    check.bind(baseline_key=KEY, engine_key="transformers-cpu")
    supply, rates = iter(values), iter(calibration or [1.0] * (len(values) + 1))
    measurer = RoundMeasurer(lambda index: {THROUGHPUT.name: next(supply)}, lambda: next(rates), "k",
                             FixedMeter(contention))
    gate_rounds(check, [THROUGHPUT], measurer, settings, workload)
    return check, measurer


def test_gate_fails_a_25_percent_slowdown_with_one_line(tmp_path):
    store = _store(tmp_path, _entry(noisy(40, 5, 0.03, 1)))
    check, _ = _gate(tmp_path, store, noisy(30, 8, 0.03, 2))
    assert check.metrics[0].verdict == "fail"
    (line,) = check.failures
    assert line.startswith("decode.tokens_per_second regressed: ") and "min effect 15%" in line
    assert "performance.min_effect_throughput" in line and "--llmperf-profile" in line


def test_gate_passes_noise_and_remeasures_while_inconclusive(tmp_path):
    store = _store(tmp_path, _entry(noisy(40, 5, 0.03, 1)))
    check, measurer = _gate(tmp_path, store, noisy(40, 8, 0.03, 3))
    assert check.metrics[0].verdict == "pass" and not check.failures and measurer.count == 5
    # A drop just beyond the minimum effect: undecided after 5 rounds, decided (FAIL) at the second look (8).
    check, measurer = _gate(tmp_path, store, noisy(40 * 0.845, 8, 0.03, 7))
    assert check.metrics[0].verdict == "fail" and measurer.count == 8
    assert check.metrics[0].extra["confidence"] == pytest.approx(0.975)  # 95% split over two looks
    # Rounds so wild that even 8 of them could not decide: no more are measured, the verdict is INCONCLUSIVE.
    wild = [40, 25, 55, 30, 50, 28, 52, 31]
    check, measurer = _gate(tmp_path, store, wild)
    assert check.metrics[0].verdict == "inconclusive" and measurer.count == 5 and not check.failures


def test_inconclusive_fails_where_the_profile_says_and_never_stages_a_baseline(tmp_path):
    store = _store(tmp_path, _entry(noisy(40, 5, 0.03, 1)))
    strict = RoundSettings(rounds=5, max_rounds=6, inconclusive_fails=True, source="p.toml")
    check, _ = _gate(tmp_path, store, [40, 25, 55, 30, 50, 28], settings=strict)
    assert check.metrics[0].verdict == "inconclusive"
    assert "INCONCLUSIVE" in check.failures[0] and "performance.inconclusive_fails" in check.failures[0]
    assert not [p for kind, p in check.user_properties if kind == BASELINE]


def test_a_baseline_of_another_workload_is_not_judged_against(tmp_path):
    store = _store(tmp_path, _entry(noisy(40, 5, 0.03, 1)))
    check, _ = _gate(tmp_path, store, noisy(40, 5, 0.03, 3), workload={**WORKLOAD, "max_new_tokens": 64})
    (metric,) = check.metrics  # NO BASELINE: nothing of this workload to judge against
    assert metric.verdict == "no_baseline" and not check.failures
    assert "max_new_tokens 64 here, 32 in the baseline" in metric.extra["no_baseline"]
    check, _ = _gate(tmp_path, store, noisy(40, 5, 0.03, 3), workload={**WORKLOAD, "max_new_tokens": 64}, strict=True)
    (line,) = check.failures
    assert "max_new_tokens 64 here, 32 in the baseline" in line
    assert "pytest suites/performance/test_decode.py::test_decode --llmperf-update-baselines" in line


def test_recording_stages_rounds_spread_and_workload(tmp_path):
    store = _store(tmp_path)
    check, _ = _gate(tmp_path, store, noisy(40, 5, 0.03, 3), update=True)
    (staged,) = [p for kind, p in check.user_properties if kind == BASELINE]
    entry = staged["entry"]
    assert len(entry["rounds"]["normalized"]) == 5 and entry["rounds"]["log_sd"] > 0
    assert entry["workload"] == WORKLOAD and entry["min_effect"] == 0.15 and "tolerance" not in entry


def test_an_old_single_value_entry_keeps_its_tolerance_rule(tmp_path):
    old = baseline_entry(40.0, "tokens/s", True, {"relative": 0.35}, {})
    store = _store(tmp_path, old)
    check, _ = _gate(tmp_path, store, [20.0] * 5)
    assert check.metrics[0].verdict == "fail" and "tolerance 35%" in check.failures[0]
    check, _ = _gate(tmp_path, store, [39.0] * 5)
    assert check.metrics[0].verdict == "pass"


def test_workload_differences_name_each_setting():
    assert workload_differences({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == [
        "b 3 here, 2 in the baseline", "c 4 here, None in the baseline"]


def test_recording_stages_quiet_rounds_whatever_the_old_baseline_but_never_shared_ones(tmp_path):
    store = _store(tmp_path, _entry(noisy(40, 5, 0.03, 1)))
    check, measurer = _gate(tmp_path, store, noisy(30, 8, 0.03, 2), update=True)
    assert check.metrics[0].verdict == "new" and not check.failures and measurer.count == 5  # no re-measuring
    assert [p for kind, p in check.user_properties if kind == BASELINE]
    check, _ = _gate(tmp_path, store, noisy(40, 8, 0.03, 2), update=True, contention=[0.02, 0.5, 0.01])
    assert check.metrics[0].verdict == "inconclusive"
    (line,) = check.failures
    assert "baseline not recorded" in line and "50% of the CPU" in line and "performance.max_contention" in line
    assert not [p for kind, p in check.user_properties if kind == BASELINE]


def test_quiet_rounds_on_one_host_are_judged_raw_so_calibration_noise_cannot_hide_a_slowdown(tmp_path):
    rates = [1.0, 1.3, 0.8, 1.25, 0.75, 1.2, 0.85, 1.3, 0.8]  # a calibration that jitters by +-25%
    store = _store(tmp_path, _entry(noisy(40, 6, 0.03, 1), calibration=rates[:6]))
    check, _ = _gate(tmp_path, store, noisy(30, 8, 0.03, 2), calibration=rates)
    assert check.metrics[0].verdict == "fail" and check.metrics[0].extra["basis"] == "raw"
    assert "; raw)" in check.failures[0]
    check, _ = _gate(tmp_path, store, noisy(40, 8, 0.03, 3), calibration=rates)
    assert check.metrics[0].verdict == "pass" and not check.failures


def test_rounds_a_neighbour_shared_are_judged_on_the_calibrated_ratio(tmp_path):
    store = _store(tmp_path, _entry(noisy(40, 5, 0.03, 1)))
    # A neighbour halves the engine and the calibration alike: raw -50%, ratio unchanged.
    check, _ = _gate(tmp_path, store, noisy(20, 8, 0.03, 2), calibration=[0.5] * 9, contention=[0.5])
    assert check.metrics[0].verdict == "pass" and check.metrics[0].extra["basis"] == "calibrated"
    # A baseline recorded on another host is judged on the ratio too, quiet or not.
    other = _store(tmp_path / "other", _entry(noisy(40, 5, 0.03, 1), host="0123456789ab"))
    check, _ = _gate(tmp_path, other, noisy(20, 8, 0.03, 2), calibration=[0.5] * 9)
    assert check.metrics[0].verdict == "pass" and check.metrics[0].extra["basis"] == "calibrated"


def test_a_run_a_neighbour_shared_cannot_fail_but_its_quiet_rounds_are_judged(tmp_path):
    store = _store(tmp_path, _entry(noisy(40, 5, 0.03, 1)))
    # The neighbour stalls the engine more than the calibration: the ratio says -50%, which is no proof.
    check, measurer = _gate(tmp_path, store, noisy(20, 8, 0.03, 2), contention=[0.5])
    assert check.metrics[0].verdict == "inconclusive" and not check.failures
    assert check.metrics[0].extra["basis"] == "calibrated, not judged: other processes took up to 50% of the CPU"
    assert measurer.count == 8  # re-measured, in case the neighbour left
    # A real slowdown, the neighbour gone after the first 3 rounds: the quiet rounds that follow decide.
    check, measurer = _gate(tmp_path, store, noisy(30, 8, 0.03, 3), contention=[0.5, 0.5, 0.5, 0.0])
    quiet = measurer.count - 3
    assert check.metrics[0].verdict == "fail"
    assert check.metrics[0].extra["basis"] == f"raw ({quiet} of {measurer.count} rounds quiet)"


def test_raw_and_calibrated_verdicts_that_contradict_each_other_are_inconclusive(tmp_path):
    # Quiet, same host name, but the machine itself runs 25% slower (the calibration says so too).
    store = _store(tmp_path, _entry(noisy(40, 5, 0.03, 1)))
    check, _ = _gate(tmp_path, store, noisy(30, 8, 0.03, 2), calibration=[0.75] * 9)
    assert check.metrics[0].verdict == "inconclusive" and not check.failures
    assert check.metrics[0].extra["basis"] == "raw, but the calibrated values say PASS"


def test_quiet_rounds_are_judged_on_the_calibrated_ratio_where_it_spread_less_in_the_baseline(tmp_path):
    # A host whose speed drifts by +-20% with nobody else on it: the engine follows the calibration.
    rates = [1.0, 1.2, 0.8, 1.15, 0.85, 1.1, 0.9, 1.2, 0.8]
    speed = [(a + b) / 2 for a, b in zip(rates, rates[1:])]
    store = _store(tmp_path, _entry([40 * r * v for r, v in zip(speed, noisy(1, 6, 0.02, 1))],
                                   calibration=speed[:6]))
    check, _ = _gate(tmp_path, store, [30 * r * v for r, v in zip(speed, noisy(1, 8, 0.02, 2))], calibration=rates)
    assert check.metrics[0].verdict == "fail" and check.metrics[0].extra["basis"] == "calibrated"


def test_inconclusive_shows_in_the_table_the_note_and_results_json(tmp_path):
    from pytest_llmperf.report.table import inconclusive_note, metric_row
    from pytest_llmperf.runtime.results import Metric, ResultsStore, load_results

    metric = Metric("decode.tokens_per_second", 30.0, "tokens/s", True, "inconclusive", engine="transformers-cpu")
    assert metric_row(metric)[-1] == "INCONCLUSIVE"
    note = inconclusive_note([metric, Metric("x", 1.0, "s", False, "pass")])
    assert note.startswith("1 metric INCONCLUSIVE") and "decode.tokens_per_second [transformers-cpu]" in note
    assert inconclusive_note([Metric("x", 1.0, "s", False, "pass")]) is None
    store = ResultsStore(tmp_path, {})
    store.add_metric(metric)
    store.finish("passed", ["decode.tokens_per_second"])
    data = load_results(tmp_path)
    assert data["metrics"][0]["verdict"] == "inconclusive" and data["run"]["inconclusive"] == ["decode.tokens_per_second"]


def _spin_seconds(seconds):
    return [sys.executable, "-c", f"import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass"]


def test_the_contention_meter_sees_a_neighbour_but_not_this_process_tree():
    from pytest_llmperf.gating import contention

    # A neighbour outside this process tree: started by a shell that exits at once (so it is re-parented).
    subprocess.run(["sh", "-c", " ".join(f"'{part}'" for part in _spin_seconds(3)) + " >/dev/null 2>&1 &"], check=True)
    meter = ContentionMeter()
    meter.start()
    time.sleep(1.5)
    assert meter.stop() >= 0.6 / os.cpu_count()  # one busy core of the machine's (0.5 of two)
    # A child of this process is this process's own work (vLLM's engine core, a fixture's server).
    import psutil

    before = contention._tree_cpu_seconds()
    child = subprocess.Popen(_spin_seconds(1.5))
    time.sleep(1.0)
    child_seconds = sum(psutil.Process(child.pid).cpu_times()[:2])
    mine = contention._tree_cpu_seconds() - before
    child.wait()
    assert child_seconds > 0.05 and mine >= child_seconds - 0.05  # clock ticks of 10 ms
    assert ContentionMeter(enabled=False).stop() is None


def test_a_server_started_beside_pytest_counts_as_the_run_not_as_a_neighbour():
    import socket

    import psutil

    from pytest_llmperf.gating import contention

    # A process outside this tree that listens on a loopback port, as `python -m pytest_llmperf.engines.servers` starts.
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    number = port.getsockname()[1]
    port.close()
    server = ("import socket, time\ns = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
              f"s.bind(('127.0.0.1', {number})); s.listen()\nend = time.time() + 3\nwhile time.time() < end: pass")
    subprocess.run(["sh", "-c", f"'{sys.executable}' -c \"{server}\" >/dev/null 2>&1 &"], check=True)
    deadline = time.time() + 2
    while time.time() < deadline and not contention.server_pids(f"http://127.0.0.1:{number}/v1"):
        time.sleep(0.05)
    (pid,) = contention.server_pids(f"http://127.0.0.1:{number}/v1")
    assert psutil.Process(pid).ppid() != os.getpid()  # not a child: re-parented
    assert contention.server_pids("http://inference.example.com:8000/v1") == ()  # elsewhere: no CPU here
    alone, counted = ContentionMeter(), ContentionMeter(pids=(pid,))
    alone.start(), counted.start()
    time.sleep(1.0)
    seen_alone, seen_counted = alone.stop(), counted.stop()
    assert seen_alone >= 0.6 / os.cpu_count()  # without the pid the busy server is a neighbour
    assert seen_counted < seen_alone - 0.3 / os.cpu_count()  # with it, its core is the run's own


def test_the_two_look_rule_holds_its_false_fail_rate_at_the_minimum_effect(tmp_path):
    # The worst case for a false FAIL: the engine is slower by exactly the minimum effect (15%), which is
    # not a regression. Over both looks, FAIL must stay within (1 - confidence) / 2 = 2.5% of runs.
    settings = RoundSettings(rounds=3, max_rounds=6)
    fails = 0
    runs = 400
    for seed in range(runs):
        store = _store(tmp_path / str(seed), _entry(noisy(40, 5, 0.03, 10_000 + seed)))
        check, _ = _gate(tmp_path, store, noisy(40 * 0.85, 6, 0.03, seed), settings=settings)
        fails += check.metrics[0].verdict == "fail"
    assert fails / runs <= 0.025 + 0.02  # 2.5% plus about 2.5 standard errors of 400 runs


def test_each_round_reports_a_progress_line_naming_what_is_still_undecided(tmp_path):
    store = _store(tmp_path, _entry(noisy(40, 5, 0.03, 1)))
    check = Checker("suites/performance/test_decode.py::test_decode[transformers-cpu]", [], store, False, False)
    check.bind(baseline_key=KEY, engine_key="transformers-cpu")
    supply, lines = iter(noisy(40 * 0.845, 8, 0.03, 7)), []
    measurer = RoundMeasurer(lambda index: {THROUGHPUT.name: next(supply)}, lambda: 1.0, "k", FixedMeter((0.0,)))
    gate_rounds(check, [THROUGHPUT], measurer, RoundSettings(rounds=5, max_rounds=8), WORKLOAD, say=lines.append)
    assert len(lines) == 8 and lines[0].endswith(": round 1 of 5 (up to 8 while a metric is undecided)")
    assert lines[5].endswith("round 6 of 8; undecided: decode.tokens_per_second")
