"""Paired A/B verdicts (gating.paired), their two-look rule (gating.sequential.gate_pairs) and their
recording (Checker.against_reference); ``--llmperf-compare REF`` as parsed (config.compare)."""

import argparse
import dataclasses
import math
import random

import pytest

from pytest_llmperf.config.compare import parse_compare
from pytest_llmperf.gating.baselines import BaselineKey
from pytest_llmperf.gating.checker import BASELINE, Checker
from pytest_llmperf.gating.paired import (PairedMeasurer, accuracy_verdict, judge_pairs, mcnemar_exact,
                                          paired_bootstrap, pairs_needed)
from pytest_llmperf.gating.rounds import RoundMetric, RoundSettings
from pytest_llmperf.gating.sequential import gate_pairs, paired_confidence

KEY = BaselineKey("m", "cpu", "transformers", "float32")
THROUGHPUT = RoundMetric("decode.tokens_per_second", "tokens/s", True)
LATENCY = RoundMetric("server.ttft_p50", "ms", False)
WORKLOAD = {"test": "decode", "max_new_tokens": 32}
REFERENCE = {"spec": "max_batch_size=2"}


def pairs(center, factor, n, spread, seed, drift=0.0):
    """``n`` pairs on a machine whose speed wanders (``drift`` per round, plus lognormal noise): the
    reference at ``center``, the current side at ``center * factor``."""
    rng = random.Random(seed)
    reference, current = [], []
    for i in range(n):
        machine = center * (1 + drift) ** i
        reference.append(machine * rng.lognormvariate(0, spread))
        current.append(machine * factor * rng.lognormvariate(0, spread))
    return reference, current


def judge(reference, current, higher=True, min_effect=0.03, confidence=0.99):
    return judge_pairs(reference, current, higher_is_better=higher, min_effect=min_effect, confidence=confidence)


@pytest.mark.parametrize("seed", range(20))
def test_a_10_percent_slowdown_is_regressed_at_six_pairs(seed):
    # The unpaired gate's minimum effect is 15%: a 10% slowdown passed it. Paired, 2% round noise, it is red.
    found = judge(*pairs(40, 0.90, 6, 0.02, seed))
    assert found.verdict == "regressed", found.describe()
    assert -0.15 < found.change < -0.05 and found.high < -0.03


@pytest.mark.parametrize("seed", range(20))
def test_a_15_percent_latency_rise_is_regressed(seed):
    # Beyond the MDE of 6 pairs at 2% round noise (about 10% against a 5% bound).
    found = judge(*pairs(20, 1.15, 6, 0.02, seed), higher=False, min_effect=0.05)
    assert found.verdict == "regressed", found.describe()


def test_a_clear_gain_is_improved_and_no_change_passes():
    assert judge(*pairs(40, 1.20, 6, 0.02, 1)).verdict == "improved"
    same = judge(*pairs(40, 1.00, 6, 0.01, 1))
    assert same.verdict == "pass" and same.low > -0.03
    # Latency: lower is better, so a 20% drop is an improvement.
    assert judge(*pairs(20, 0.80, 6, 0.02, 1), higher=False, min_effect=0.05).verdict == "improved"


def test_wild_pairs_are_inconclusive_and_say_how_many_pairs_would_decide():
    found = judge([40, 30, 52, 35, 45, 28], [33, 39, 40, 44, 31, 36])
    assert found.verdict == "inconclusive"
    needed = pairs_needed(found)
    assert needed is not None and needed > found.pairs
    assert "MDE" in found.describe() and "at 6 pairs" in found.describe()
    # One pair has no spread to judge by: nothing is decided and the MDE is unbounded.
    one = judge([40], [20])
    assert one.verdict == "inconclusive" and one.mde == 1.0


def test_the_mde_shrinks_with_pairs_and_an_effect_that_large_is_seen_about_80_percent_of_the_time():
    few, many = judge(*pairs(40, 1.0, 4, 0.03, 3)), judge(*pairs(40, 1.0, 16, 0.03, 3))
    assert many.mde < few.mde
    mde = judge(*pairs(40, 1.0, 8, 0.03, 4)).mde
    seen = sum(judge(*pairs(40, 1 - mde, 8, 0.03, 100 + seed)).verdict == "regressed" for seed in range(300))
    assert 0.6 < seen / 300 < 0.97  # 80% power, stated for the spread of one sample of 8 pairs


def test_bad_round_values_are_refused_naming_them():
    with pytest.raises(ValueError, match="equal, non-zero counts: 2 and 1"):
        judge([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="positive finite"):
        judge([1.0, 0.0], [1.0, 1.0])


def test_a_step_change_of_the_machine_mid_run_falls_on_both_sides_alike():
    # The machine slows by 35% after the third round (seen on a 2-core VM). Rounds alternate A B B A ...,
    # so the step hits both sides: an A/A comparison still passes.
    speed = iter([54, 54, 54] + [34] * 40)
    noise = random.Random(5)
    measurer = PairedMeasurer(lambda i: {"x": next(speed) * noise.lognormvariate(0, 0.01)},
                              lambda i: {"x": next(speed) * noise.lognormvariate(0, 0.01)}, BurstMeter(()))
    measurer.more(6)
    assert measurer.order[:8] == ["reference", "current", "current", "reference"] * 2
    found = judge(measurer.values("x", "reference"), measurer.values("x", "current"))
    # The one pair straddling the step (round 3 is B of pair 1, A of pair 2 is slow) widens the interval;
    # it must not read as a regression.
    assert found.verdict != "regressed", found.describe()


class BurstMeter:
    """Plumbing: a neighbour's burst during the rounds listed (CPU fraction 0.5 there, 0 elsewhere)."""

    def __init__(self, busy_rounds):
        self.busy, self.round = set(busy_rounds), -1

    def start(self):
        self.round += 1

    def stop(self):
        return 0.5 if self.round in self.busy else 0.0


# -- the two-look rule and what a test records -------------------------------------------------------

def _gate(reference, current, settings=RoundSettings(paired_rounds=6, paired_max_rounds=12), metric=THROUGHPUT):
    check = Checker("suites/performance/test_decode.py::test_decode[transformers-cpu]", [], None, False, False)
    check.bind(baseline_key=KEY, engine_key="transformers-cpu")
    a, b = iter(reference), iter(current)
    measurer = PairedMeasurer(lambda i: {metric.name: next(a)}, lambda i: {metric.name: next(b)}, BurstMeter(()))
    gate_pairs(check, [metric], measurer, settings, WORKLOAD, REFERENCE)
    return check, measurer


def test_a_regression_fails_the_test_with_one_line_naming_the_reference():
    check, measurer = _gate(*pairs(40, 0.88, 12, 0.02, 1))
    (metric,) = check.metrics
    assert metric.verdict == "fail" and measurer.count == 6
    (line,) = check.failures
    assert line.startswith("decode.tokens_per_second REGRESSED against the reference: ")
    assert "--llmperf-compare max_batch_size=2" in line and "MDE" in line
    paired = metric.extra["paired"]
    assert paired["verdict"] == "regressed" and len(paired["rounds"]["reference"]) == 6
    assert paired["rounds"]["order"][:4] == ["reference", "current", "current", "reference"]
    assert paired["reference_setup"] == REFERENCE
    assert not [p for kind, p in check.user_properties if kind == BASELINE]  # paired rounds are no baseline


def test_the_second_look_measures_more_pairs_only_while_undecided():
    check, measurer = _gate(*pairs(40, 1.0, 12, 0.01, 2))
    assert check.metrics[0].verdict == "pass" and measurer.count == 6 and not check.failures
    # A slowdown near the bound: undecided at 6 pairs, more pairs at the second look.
    reference, current = [40, 41, 39, 40, 42, 38] * 2, [38.4, 40.6, 36.9, 39.2, 39.5, 37.1] * 2
    check, measurer = _gate(reference, current)
    assert measurer.count == 12
    assert check.metrics[0].extra["confidence"] == pytest.approx(paired_confidence(RoundSettings(), 1))


def test_inconclusive_fails_only_where_the_profile_says():
    wild = ([40, 30, 52, 35, 45, 28] * 2, [33, 39, 40, 44, 31, 36] * 2)
    check, _ = _gate(*wild)
    assert check.metrics[0].verdict == "inconclusive" and not check.failures
    strict = RoundSettings(paired_rounds=6, paired_max_rounds=12, inconclusive_fails=True, source="p.toml")
    check, _ = _gate(*wild, settings=strict)
    assert "INCONCLUSIVE after 12 pairs" in check.failures[0] and "p.toml" in check.failures[0]


def test_the_confidence_is_split_over_the_looks_and_the_tests_metrics():
    settings = RoundSettings(confidence=0.95, paired_rounds=6, paired_max_rounds=12)
    assert paired_confidence(settings, 1) == pytest.approx(0.975)
    assert paired_confidence(settings, 2) == pytest.approx(0.9875)
    assert paired_confidence(RoundSettings(confidence=0.95, paired_rounds=6, paired_max_rounds=6), 2) == \
        pytest.approx(0.975)


def test_the_rule_holds_its_false_fail_rate_at_the_minimum_effect():
    # The worst case for a false REGRESSED: slower by exactly the paired minimum effect (3%), which is not a
    # regression. Over both looks FAIL must stay within (1 - confidence) / 2 of runs.
    settings = RoundSettings(confidence=0.95, paired_rounds=4, paired_max_rounds=8)
    runs = 400
    fails = sum(_gate(*pairs(40, 0.97, 8, 0.03, seed), settings=settings)[0].metrics[0].verdict == "fail"
                for seed in range(runs))
    assert fails / runs <= 0.025 + 0.02


def test_pairs_beside_a_neighbour_are_left_out_and_said_so():
    # The burst slows the reference's round of pairs 1 and 4 (rounds 3 and 8 in the order A B B A A B ...).
    reference, current = pairs(40, 1.0, 6, 0.01, 11)
    reference[1] *= 0.6
    reference[4] *= 0.6
    a, b = iter(reference), iter(current)
    measurer = PairedMeasurer(lambda i: {THROUGHPUT.name: next(a)}, lambda i: {THROUGHPUT.name: next(b)},
                              BurstMeter({3, 8}))
    check = Checker("t::t", [], None, False, False)
    gate_pairs(check, [THROUGHPUT], measurer, RoundSettings(paired_rounds=6, paired_max_rounds=6), WORKLOAD,
               REFERENCE)
    (metric,) = check.metrics
    assert metric.extra["paired"]["left_out"] == 2 and metric.extra["paired"]["pairs"] == 4
    assert "2 beside a neighbour left out" in metric.limit
    assert metric.extra["paired"]["verdict"] == "pass"  # judged on all six, the burst reads as +30% or noise


def test_a_round_without_the_metric_fails_naming_both_sides():
    check, _ = _gate([40.0] * 6, [40.0, None, 40.0, 40.0, 40.0, 40.0])
    assert any("not measured in every round of both sides" in line for line in check.failures)


def test_an_interrupt_keeps_what_was_measured_and_judges_nothing():
    values = iter([40.0, 41.0, 39.0])

    def current(index):
        if index == 1:
            raise KeyboardInterrupt
        return {THROUGHPUT.name: next(values)}

    check = Checker("t::t", [], None, False, False)
    measurer = PairedMeasurer(lambda i: {THROUGHPUT.name: 40.0}, current, BurstMeter(()))
    with pytest.raises(KeyboardInterrupt):
        gate_pairs(check, [THROUGHPUT], measurer, RoundSettings(), WORKLOAD, REFERENCE)
    (metric,) = check.metrics
    assert metric.verdict == "info" and metric.extra["interrupted"] and not check.failures


# -- accuracy, paired --------------------------------------------------------------------------------

def test_mcnemar_sees_a_side_that_loses_questions_and_not_one_that_trades_them():
    reference = [True] * 60 + [False] * 40
    worse = [True] * 40 + [False] * 60  # 20 questions lost, none won
    found = mcnemar_exact(reference, worse)
    assert found.p_value < 1e-5 and found.difference == pytest.approx(-0.2) and found.high < 0
    traded = [False] * 10 + [True] * 50 + [True] * 10 + [False] * 30  # 10 lost, 10 won
    even = mcnemar_exact(reference, traded)
    assert even.p_value == 1.0 and even.difference == 0 and even.low < 0 < even.high and even.discordant == 20
    with pytest.raises(ValueError, match="same, non-empty list of questions"):
        mcnemar_exact([True], [True, False])


def test_the_paired_bootstrap_sees_a_rouge_drop_and_not_its_absence():
    rng = random.Random(0)
    reference = [rng.uniform(0.2, 0.6) for _ in range(200)]
    lower = [score - 0.02 + rng.gauss(0, 0.01) for score in reference]
    found = paired_bootstrap(reference, lower)
    assert found.high < 0 and found.p_value < 0.01
    same = paired_bootstrap(reference, list(reference))
    assert same.p_value == 1.0 and same.difference == 0
    with pytest.raises(ValueError, match="same, non-empty list of samples"):
        paired_bootstrap([], [])


def points(paired):
    """A paired accuracy difference in accuracy points, as the MMLU suite gates it."""
    return dataclasses.replace(paired, difference=100 * paired.difference, low=100 * paired.low,
                               high=100 * paired.high)


def test_a_paired_accuracy_drop_beyond_the_tolerance_fails_the_test_and_a_trade_does_not():
    reference = [True] * 60 + [False] * 40
    check = Checker("suites/accuracy/test_mmlu.py::test_mmlu_accuracy[loglikelihood-transformers-cpu]", [], None,
                    False, False)
    lost = mcnemar_exact(reference, [True] * 40 + [False] * 60)
    metric = check.paired_accuracy("mmlu.accuracy.loglikelihood.vs_reference", points(lost), "points", 2.0,
                                   REFERENCE, setting="p.toml: mmlu.tolerance_points")
    assert metric.verdict == "fail" and metric.value == pytest.approx(-20.0)
    (line,) = check.failures
    assert "REGRESSED against the reference" in line and "mmlu.tolerance_points" in line
    assert metric.extra["paired"]["verdict"] == "regressed" and metric.extra["paired"]["discordant"] == 20
    # The same answers on both sides: no difference, no spread, PASS.
    same = mcnemar_exact(reference, reference)
    assert accuracy_verdict(points(same), 2.0) == "pass"
    # Ten questions lost and ten won of 100: the interval (about -6..+6 points) straddles the tolerance.
    traded = mcnemar_exact(reference, [False] * 10 + [True] * 50 + [True] * 10 + [False] * 30)
    assert accuracy_verdict(points(traded), 2.0) == "inconclusive"
    assert accuracy_verdict(points(mcnemar_exact(reference, [True] * 100)), 2.0) == "improved"


# -- --llmperf-compare REF ---------------------------------------------------------------------------

def test_compare_forms_parse_to_what_the_reference_differs_in():
    assert parse_compare("same").describe() == {"spec": "same"}
    spec = parse_compare("vllm.kv_cache_dtype=fp8, vllm.max_num_seqs=4,max_batch_size=2")
    assert spec.max_batch_size == 2
    assert spec.engine_settings("vllm", {"max_num_seqs": 8, "enforce_eager": True}) == \
        {"max_num_seqs": 4, "enforce_eager": True, "kv_cache_dtype": "fp8"}
    assert spec.engine_settings("transformers", {"compile": False}) == {"compile": False}
    assert parse_compare("endpoint=http://127.0.0.1:8001").endpoint.startswith("http://127.0.0.1:8001")
    assert parse_compare("transformers.compile=true").settings == (("transformers", "compile", True),)
    assert parse_compare("model=/models/main,dtype=float32").describe() == {
        "spec": "model=/models/main,dtype=float32", "model": "/models/main", "dtype": "float32"}


@pytest.mark.parametrize(("text", "message"), [
    ("", "names no difference"),
    ("max_batch_size", "is not key=value"),
    ("max_batch_size=0", "whole number >= 1"),
    ("dtype=fp7", "choose from float32"),
    ("colour=red", "unknown key 'colour'"),
    (".x=1", "is not <engine>.<setting>"),
])
def test_a_bad_compare_names_the_pair_and_the_forms(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse_compare(text)


def test_change_is_the_geometric_mean_of_the_pair_ratios():
    found = judge([10, 20, 40], [11, 22, 44])
    assert found.change == pytest.approx(0.10) and math.isclose(found.low, found.high, rel_tol=1e-9)


def test_each_pair_reports_a_progress_line_naming_what_is_still_undecided():
    lines = []
    check = Checker("suites/performance/test_decode.py::test_decode[transformers-cpu]", [], None, False, False)
    a, b = iter([40, 30, 52, 35, 45, 28] * 2), iter([33, 39, 40, 44, 31, 36] * 2)
    measurer = PairedMeasurer(lambda i: {THROUGHPUT.name: next(a)}, lambda i: {THROUGHPUT.name: next(b)},
                              BurstMeter(()))
    gate_pairs(check, [THROUGHPUT], measurer, RoundSettings(paired_rounds=6, paired_max_rounds=12), WORKLOAD,
               REFERENCE, say=lines.append)
    assert len(lines) == 12
    assert lines[0] == ("suites/performance/test_decode.py::test_decode[transformers-cpu]: pair 1 of 6 "
                        "(up to 12 while a metric is undecided)")
    assert lines[6].endswith("pair 7 of 12; undecided: decode.tokens_per_second")
