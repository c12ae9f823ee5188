"""Profiles are checked whole when loaded: an unknown key, a wrong type or a bad value in any
section fails at load with the file, the key and the fix (at pytest start: tests/config/test_plugin_options.py)."""

import dataclasses
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_llmperf.errors import InputError
from pytest_llmperf.config.profiles import _RANGES, Profile, available_profiles, load_profile


def _load(tmp_path, text: str):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    return load_profile(str(path))


@pytest.mark.parametrize("profile", available_profiles())
def test_every_shipped_profile_loads(profile):
    assert load_profile(profile).name == profile


@pytest.mark.parametrize("text, message", [
    ('[rouge]\nmode = "ceiling"\n', "rouge.mode = 'ceiling' is not a ROUGE gating mode; use \"baseline\""),
    ('[rouge]\nmode = "target"\n', 'rouge.reference is empty while rouge.mode = "target"; give the published scores'),
    ("[rouge]\nreference = { rouge3 = 1.0 }\n", "rouge.reference.rouge3 is not a ROUGE score; use keys among rouge1"),
    ('[rouge]\nreference = { rouge1 = "high" }\n', "rouge.reference.rouge1 = 'high' is a str, expected float"),
    ("[rouge]\ntokens_per_sample_range = [1.1, 0.9]\n", "is not a [low, high] pair of fractions; use e.g. [0.9, 1.1]"),
    ("[rouge]\nfraction = 99\n", "rouge.fraction = 99.0 is out of range; set rouge.fraction to a fraction in (0, 1]"),
    ('[mmlu]\nmodes = ["cloze"]\n', "mmlu.modes = ['cloze'] names no known scoring mode; use one or both of"),
    ("[mmlu]\nmodes = []\n", "mmlu.modes = [] names no known scoring mode"),
    ("[mmlu]\nshots = -1\n", "mmlu.shots = -1 is out of range; set mmlu.shots to >= 0"),
    ("[mmlu]\ntarget_accuracy = 45.8\n", "mmlu.target_accuracy = 45.8 is out of range; set mmlu.target_accuracy to a "
                                         "fraction in 0..1"),
    ("[logits]\npositions = 0\n", "logits.positions = 0 is out of range; set logits.positions to >= 1"),
    ("[logits]\natol = -1e-3\n", "logits.atol = -0.001 is out of range"),
    ("[generation]\nmax_new_tokens = 4\nmin_new_tokens = 8\n", "generation.min_new_tokens = 8 is above "
                                                               "generation.max_new_tokens = 4"),
    ("[datasets]\nsamples = -2\n", "datasets.samples = -2 is out of range; set datasets.samples to >= 0"),
    ("[loadgen.server]\ntarget_qps = 0\n", "loadgen.server.target_qps = 0.0 is out of range; set "
                                           "loadgen.server.target_qps to > 0"),
    ("[loadgen.offline]\ntarget_latency_percentile = 99\n", "loadgen.offline.target_latency_percentile = 99.0"),
    ("[loadgen]\nserver_workers = 0\n", "loadgen.server_workers = 0 is out of range; set loadgen.server_workers to >= 1"),
    ("[performance]\nlatency_tolerance = -0.5\n", "performance.latency_tolerance = -0.5 is out of range"),
    ("[compliance.test06]\nmin_query_count = 0\n", "compliance.test06.min_query_count = 0 is out of range"),
    ("[engine.vlm]\nmax_model_len = 2048\n", "unknown engine [engine.vlm]; use tables among: transformers, vllm"),
    ("[loadgen]\nserver_worker = 2\n", "unknown key 'server_worker' in [loadgen]; known keys there:"),
    ("[mmlu]\nshots = 2.5\n", "mmlu.shots = 2.5 is a float, expected int"),
])
def test_a_bad_profile_fails_at_load_naming_file_key_and_fix(tmp_path, text, message):
    with pytest.raises(InputError) as info:
        _load(tmp_path, text)
    assert str(info.value).startswith(f"{tmp_path / 'mine.toml'}: ")
    assert message in str(info.value)


def test_server_workers_stays_a_valid_key(tmp_path):
    assert _load(tmp_path, "[loadgen]\nserver_workers = 4\n").loadgen.server_workers == 4


RANGED = [dotted for dotted, _, _ in _RANGES]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(RANGED), st.integers(-10**6, -1))
def test_any_negative_ranged_value_is_named_with_its_key(tmp_path_factory, dotted, value):
    *sections, key = dotted.split(".")
    text = f"[{'.'.join(sections)}]\n{key} = {value}\n"
    with pytest.raises(InputError, match=re.escape(f"{dotted} = ")):
        _load(tmp_path_factory.mktemp("profile"), text)


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
def test_unknown_top_level_keys_are_rejected(tmp_path_factory, key):
    if key in {f.name for f in dataclasses.fields(Profile)}:
        return
    with pytest.raises(InputError, match=f"unknown key '{key}' in the top level"):
        _load(tmp_path_factory.mktemp("profile"), f"{key} = 1\n")
