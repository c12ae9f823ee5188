"""Logits comparison: np.allclose plus error statistics, log-softmax space, and safe .npy loading."""

import json
import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pytest_llmperf.errors import InputError
from pytest_llmperf.gating import logits
from pytest_llmperf.metrics import logits as comparison

ATOL, RTOL = 5e-3, 1e-5


def _logits(seed=0, shape=(4, 64)):
    return np.random.default_rng(seed).normal(0.0, 4.0, size=shape).astype(np.float32)


def test_identical_arrays_agree_on_everything():
    values = _logits()
    result = comparison.compare(values, values, atol=ATOL, rtol=RTOL)
    assert result.allclose and result.allclose_error == 0.0 and result.nonfinite == 0
    assert result.max_abs_error == 0.0 and result.max_rel_error == 0.0
    assert result.cosine_similarity == pytest.approx(1.0)
    assert result.top1_agreement == 1.0 and result.top5_agreement == 1.0
    assert result.entries == values.size and result.space == "logits"


def test_a_shift_of_1e_2_fails_and_the_worst_entry_is_named():
    baseline = _logits()
    measured = baseline.copy()
    measured[2, 17] += 1e-2
    result = comparison.compare(measured, baseline, atol=ATOL, rtol=RTOL)
    assert not result.allclose
    assert result.allclose_error > ATOL
    assert result.max_abs_error == pytest.approx(1e-2, rel=1e-3)
    assert result.worst["position"] == 2 and result.worst["token_id"] == 17
    assert result.top1_agreement == 1.0  # argmax unchanged: only allclose sees it


def test_a_shift_within_atol_passes():
    baseline = _logits()
    result = comparison.compare(baseline + np.float32(4e-3), baseline, atol=ATOL, rtol=RTOL)
    assert result.allclose and result.allclose_error <= ATOL


def test_rtol_scales_with_the_baseline():
    baseline = np.full((1, 8), 1000.0, dtype=np.float32)
    measured = baseline + np.float32(0.012)  # 0.012 <= 5e-3 + 1e-5 x 1000
    assert comparison.compare(measured, baseline, atol=ATOL, rtol=RTOL).allclose
    assert not comparison.compare(measured, baseline, atol=ATOL, rtol=0.0).allclose


def test_infinities_that_agree_still_fail():
    baseline = _logits()
    baseline[0, 0] = np.inf
    measured = baseline.copy()
    assert np.allclose(measured, baseline)  # numpy calls equal infinities close
    result = comparison.compare(measured, baseline, atol=ATOL, rtol=RTOL)
    assert not result.allclose and result.nonfinite == 1 and math.isinf(result.allclose_error)


def test_logprob_engines_are_compared_in_log_softmax_space():
    baseline = _logits(shape=(3, 200))
    returned = comparison.log_softmax(baseline)
    top = np.argsort(-returned, axis=1)[:, :20]
    measured = np.full(returned.shape, -np.inf)
    np.put_along_axis(measured, top, np.take_along_axis(returned, top, axis=1), axis=1)
    result = comparison.compare(measured, baseline, atol=ATOL, rtol=RTOL, space="logprobs")
    assert result.allclose and result.space == "logprobs" and result.entries == 3 * 20
    assert result.top1_agreement == 1.0 and result.top5_agreement == 1.0
    np.put_along_axis(measured, top[:, :1], np.take_along_axis(returned, top[:, :1], axis=1) + 0.01, axis=1)
    assert not comparison.compare(measured, baseline, atol=ATOL, rtol=RTOL, space="logprobs").allclose


def test_a_position_with_no_returned_logprob_fails():
    baseline = _logits(shape=(2, 10))
    measured = comparison.log_softmax(baseline)
    measured[1, :] = -np.inf
    result = comparison.compare(measured, baseline, atol=ATOL, rtol=RTOL, space="logprobs")
    assert not result.allclose and result.nonfinite == 1


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes differ"):
        comparison.compare(_logits(shape=(4, 10)), _logits(shape=(4, 11)), atol=ATOL, rtol=RTOL)


# -- properties -------------------------------------------------------------------------------

def _pairs(allow_nan):
    elements = st.floats(-1e4, 1e4, width=32)
    if allow_nan:
        elements = st.one_of(elements, st.sampled_from([np.nan, np.inf, -np.inf]))
    shape = st.tuples(st.integers(1, 4), st.integers(1, 12))
    return shape.flatmap(lambda s: st.tuples(hnp.arrays(np.float32, s, elements=elements),
                                             hnp.arrays(np.float32, s, elements=elements)))


def _same(x, y):
    return x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))


@settings(max_examples=200, deadline=None)
@given(_pairs(allow_nan=True))
def test_symmetric_measures_are_symmetric_and_nothing_raises(pair):
    a, b = pair
    forward = comparison.compare(a, b, atol=ATOL, rtol=RTOL)
    backward = comparison.compare(b, a, atol=ATOL, rtol=RTOL)
    for field in ("max_abs_error", "cosine_similarity", "top1_agreement", "top5_agreement", "nonfinite", "entries"):
        assert _same(getattr(forward, field), getattr(backward, field)), field
    # allclose itself is not symmetric (rtol scales with the baseline), as in numpy.


@settings(max_examples=200, deadline=None)
@given(_pairs(allow_nan=True))
def test_never_passes_with_a_nan_or_inf(pair):
    a, b = pair
    result = comparison.compare(a, b, atol=ATOL, rtol=RTOL)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        assert not result.allclose and result.nonfinite > 0 and math.isinf(result.allclose_error)
    else:
        assert result.allclose == bool(np.allclose(a, b, atol=ATOL, rtol=RTOL))
        assert result.allclose == (result.allclose_error <= ATOL)


@settings(max_examples=100, deadline=None)
@given(_pairs(allow_nan=False))
def test_an_array_matches_itself(pair):
    a, _ = pair
    result = comparison.compare(a, a, atol=0.0, rtol=0.0)
    assert result.allclose and result.allclose_error == 0.0 and result.top1_agreement == 1.0


# -- baseline files ---------------------------------------------------------------------------

def test_save_and_load_round_trip(tmp_path):
    values = _logits()
    logits.save_array(tmp_path / "p.npy", values)
    assert np.array_equal(logits.load_array(tmp_path / "p.npy", values.shape), values)


def _bad_file(tmp_path, kind):
    path = tmp_path / "p.npy"
    if kind == "pickle":
        path.write_bytes(pickle.dumps({"logits": [1.0, 2.0]}))
    elif kind == "object":
        np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    elif kind == "float64":
        np.save(path, _logits().astype(np.float64))
    elif kind == "shape":
        np.save(path, _logits(shape=(3, 64)))
    elif kind == "nan":
        values = _logits()
        values[1, 1] = np.nan
        np.save(path, values)
    elif kind == "npz":
        with open(path, "wb") as handle:
            np.savez(handle, a=_logits())
    elif kind == "garbage":
        path.write_bytes(b"\x93NUMPY garbage")
    return path


@pytest.mark.parametrize("kind, problem", [
    ("pickle", "pickled data or Python objects, which are refused"),
    ("object", "pickled data or Python objects, which are refused"),
    ("float64", "has dtype float64, expected float32"),
    ("shape", "has shape (3, 64), the manifest says (4, 64)"),
    ("nan", "holds 1 NaN or infinite values"),
    ("npz", "is an .npz archive"),
    ("garbage", "is not a valid .npy file"),
])
def test_bad_baseline_arrays_fail_naming_the_file(tmp_path, kind, problem):
    path = _bad_file(tmp_path, kind)
    with pytest.raises(InputError) as info:
        logits.load_array(path, (4, 64), fix="record it again")
    assert str(info.value).startswith(f"{path}: ") and problem in str(info.value)
    assert str(info.value).endswith("record it again")


def test_missing_array_and_bad_manifests(tmp_path):
    with pytest.raises(InputError, match="is missing"):
        logits.load_array(tmp_path / "absent.npy", (4, 64))
    with pytest.raises(FileNotFoundError):
        logits.LogitsBaseline.read(tmp_path)
    manifest = tmp_path / logits.MANIFEST
    for text, problem in [("{", "is not valid JSON"), ("[]", "is not a logits manifest"),
                          (json.dumps({"schema": 1, "prompts": []}), "lists no prompts"),
                          (json.dumps({"schema": 1, "prompts": [{"id": "x"}]}), "has a prompt entry without")]:
        manifest.write_text(text)
        with pytest.raises(InputError, match=problem):
            logits.LogitsBaseline.read(tmp_path)


# -- gates ------------------------------------------------------------------------------------

def _gated(tmp_path, measured, baseline, space="logits"):
    from pytest_llmperf.gating.baselines import BaselineStore
    from pytest_llmperf.gating.checker import Checker
    from pytest_llmperf.config.profiles import load_profile

    check = Checker("suites/accuracy/test_logits.py::test_logits_match_baseline", [], BaselineStore(tmp_path), False)
    compared = comparison.compare(measured, baseline, atol=ATOL, rtol=RTOL, space=space)
    logits.gate(check, load_profile("embedded"), [logits.PromptResult("p", tmp_path / "p.npy", compared)])
    return check


def test_gate_fails_on_nan_with_two_lines(tmp_path):
    baseline = _logits()
    measured = baseline.copy()
    measured[0, 3] = np.nan
    check = _gated(tmp_path, measured, baseline)
    assert check.failures[0].startswith("logits.p.allclose_error is inf, need <= 0.005 logit (embedded: np.allclose(")
    assert check.failures[1] == f"logits.p.allclose_error: 1 NaN, infinite or missing values against {tmp_path / 'p.npy'}"


def test_gate_says_when_it_compared_log_probabilities(tmp_path):
    baseline = _logits()
    check = _gated(tmp_path, comparison.log_softmax(baseline), baseline, space="logprobs")
    (metric, *summary) = check.metrics
    assert check.failures == [] and metric.verdict == "pass" and metric.unit == "logprob"
    assert metric.extra["space"] == "logprobs" and metric.extra["compared_in"].startswith("log-softmax space")
    assert [m.name for m in summary] == ["logits.max_abs_error", "logits.max_rel_error", "logits.cosine_similarity",
                                         "logits.top1_agreement", "logits.top5_agreement"]
