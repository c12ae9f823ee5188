"""LoadGen test settings from a profile, set field by field.

``TestSettings.FromConfig`` logs a critical error when it is called a second
time in one process, and a pytest session runs many LoadGen tests; so every
field is set directly from the profile.  A ``user.conf`` (profile key
``loadgen.user_conf``) is read by LoadGen itself in a child process, which
reports the values it produced; those are applied on top of the profile.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

from ..errors import InputError, UsageError
from ..config.profiles import Profile, ScenarioSection

Scenario = Literal["Offline", "Server", "Interactive"]
Mode = Literal["AccuracyOnly", "PerformanceOnly", "TEST06"]
SCENARIOS: tuple[str, ...] = ("Offline", "Server", "Interactive")
MODES: tuple[str, ...] = ("AccuracyOnly", "PerformanceOnly", "TEST06")

#: LoadGen rejects a one-token response when it measures token latencies
#: (TPOT divides by n_tokens - 1); MLPerf's LLM benchmarks generate at least 2.
MIN_TOKENS_WITH_TOKEN_LATENCIES = 2

NS_PER_MS = 1_000_000


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """Everything one LoadGen run is configured with, as plain values (written to run.json)."""

    scenario: str
    """Offline, Server or Interactive (a Server run with the interactive limits)."""
    mode: str
    """AccuracyOnly, PerformanceOnly, or TEST06 (performance mode with accuracy logging)."""
    min_duration_ms: int
    max_duration_ms: int
    """0 = no limit."""
    min_query_count: int
    """Server: queries; Offline: samples in the one query."""
    max_query_count: int
    """0 = no limit."""
    target_qps: float
    """Server: Poisson arrival rate; Offline: expected QPS (sizes the one query)."""
    target_latency_percentile: float
    """Percentile of the latency constraints and of early stopping (Server, Interactive)."""
    ttft_latency_ms: float
    """Time-to-first-token limit at that percentile (0 = none)."""
    tpot_latency_ms: float
    """Time-per-output-token limit at that percentile (0 = none)."""
    performance_sample_count: int
    """Samples loaded for performance runs; 0 = all prompts."""
    use_token_latencies: bool
    sample_concatenate_permutation: bool
    qsl_rng_seed: int
    sample_index_rng_seed: int
    schedule_rng_seed: int
    accuracy_log_sampling_target: int
    """TEST06: responses to log in performance mode (0 otherwise)."""
    accuracy_log_rng_seed: int
    max_new_tokens: int
    """generation.max_new_tokens, or performance.max_new_tokens in performance and TEST06 runs."""
    min_new_tokens: int
    """Raised to 2 when token latencies are measured (LoadGen rejects 1-token responses)."""
    max_batch_size: int
    """Server SUT on a static-batch engine: most queued queries sent to the engine in one generate call."""
    server_workers: int = 1
    """No longer used: continuous engines get each query on arrival; static-batch engines run one
    batch at a time.  A value other than 1 is noted in ``notes``."""
    user_conf: str = ""
    """The user.conf applied on top, or empty."""
    user_conf_values: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The TestSettings fields that user.conf (with LoadGen's mlperf.conf) changed."""
    notes: tuple[str, ...] = ()
    """Adjustments made to the profile's values, and why."""

    @property
    def loadgen_scenario(self) -> str:
        return "Offline" if self.scenario == "Offline" else "Server"

    @property
    def loadgen_mode(self) -> str:
        return "AccuracyOnly" if self.mode == "AccuracyOnly" else "PerformanceOnly"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def scenario_section(profile: Profile, scenario: str) -> ScenarioSection:
    check_scenario(scenario)
    return getattr(profile.loadgen, scenario.lower())


def check_scenario(scenario: str) -> None:
    if scenario not in SCENARIOS:
        raise UsageError(f"scenario {scenario!r}", "is not a LoadGen LLM scenario", f"use one of: {', '.join(SCENARIOS)}")


def run_settings(profile: Profile, scenario: str, mode: str) -> RunSettings:
    """Resolve the profile's values for one run (no LoadGen import)."""
    if mode not in MODES:
        raise UsageError(f"mode {mode!r}", "is not a LoadGen run mode", f"use one of: {', '.join(MODES)}")
    section = scenario_section(profile, scenario)
    loadgen, generation = profile.loadgen, profile.generation
    where = profile.source or profile.name
    notes: list[str] = []
    min_new_tokens = generation.min_new_tokens
    if loadgen.use_token_latencies:
        if generation.max_new_tokens < MIN_TOKENS_WITH_TOKEN_LATENCIES:
            raise UsageError(f"{where}: generation.max_new_tokens = {generation.max_new_tokens}",
                             "LoadGen needs at least 2 output tokens per sample to measure token latencies",
                             "set generation.max_new_tokens >= 2 (or loadgen.use_token_latencies = false)")
        if min_new_tokens < MIN_TOKENS_WITH_TOKEN_LATENCIES:
            notes.append(f"min_new_tokens raised from {min_new_tokens} to 2: LoadGen rejects 1-token responses "
                         "when it measures token latencies (MLPerf generates at least 2)")
            min_new_tokens = MIN_TOKENS_WITH_TOKEN_LATENCIES
    values = dict(
        scenario=scenario, mode=mode,
        min_duration_ms=section.min_duration_ms, max_duration_ms=section.max_duration_ms,
        min_query_count=section.min_query_count, max_query_count=section.max_query_count,
        target_qps=section.target_qps, target_latency_percentile=section.target_latency_percentile,
        ttft_latency_ms=section.ttft_latency_ms, tpot_latency_ms=section.tpot_latency_ms,
        performance_sample_count=section.performance_sample_count,
        use_token_latencies=loadgen.use_token_latencies,
        sample_concatenate_permutation=loadgen.sample_concatenate_permutation,
        qsl_rng_seed=loadgen.qsl_rng_seed, sample_index_rng_seed=loadgen.sample_index_rng_seed,
        schedule_rng_seed=loadgen.schedule_rng_seed,
        accuracy_log_sampling_target=0, accuracy_log_rng_seed=0,
        max_new_tokens=generation.max_new_tokens, min_new_tokens=min_new_tokens,
        max_batch_size=generation.max_batch_size, server_workers=max(1, loadgen.server_workers),
    )
    if mode != "AccuracyOnly" and profile.performance.max_new_tokens > 0:
        # Performance runs may generate shorter answers than accuracy runs (small CPUs).
        values["max_new_tokens"] = profile.performance.max_new_tokens
        values["min_new_tokens"] = min(min_new_tokens, profile.performance.max_new_tokens)
        if values["max_new_tokens"] < values["min_new_tokens"] or (
                loadgen.use_token_latencies and values["max_new_tokens"] < MIN_TOKENS_WITH_TOKEN_LATENCIES):
            raise UsageError(f"{where}: performance.max_new_tokens = {profile.performance.max_new_tokens}",
                             "LoadGen needs at least 2 output tokens per sample to measure token latencies",
                             "set performance.max_new_tokens >= 2, or 0 to use generation.max_new_tokens")
    if mode == "TEST06":
        audit = profile.compliance.test06
        # MLPerf's compliance/TEST06/audit.config, field for field.
        values.update(min_query_count=audit.min_query_count, min_duration_ms=0, max_query_count=0,
                      accuracy_log_sampling_target=audit.accuracy_log_sampling_target,
                      accuracy_log_rng_seed=audit.accuracy_log_rng_seed,
                      sample_concatenate_permutation=False)
        if audit.target_qps > 0:
            values["target_qps"] = audit.target_qps
    user_conf_values: dict[str, Any] = {}
    if loadgen.user_conf:
        scenario_name = "Offline" if scenario == "Offline" else "Server"
        # MLPerf names the interactive variant as a model of its own (llama2-70b-interactive).
        model = f"{loadgen.mlperf_model}-interactive" if scenario == "Interactive" else loadgen.mlperf_model
        user_conf_values = read_user_conf(loadgen.user_conf, model, scenario_name)
        notes.append(f"user.conf {loadgen.user_conf} applied on top of the profile "
                     f"({len(user_conf_values)} fields: {', '.join(sorted(user_conf_values)) or 'none'})")
    return RunSettings(**values, user_conf=loadgen.user_conf, user_conf_values=user_conf_values, notes=tuple(notes))


def to_test_settings(run: RunSettings):
    """A ``mlperf_loadgen.TestSettings`` with every field set from ``run``."""
    import mlperf_loadgen as lg

    settings = lg.TestSettings()
    settings.scenario = getattr(lg.TestScenario, run.loadgen_scenario)
    settings.mode = getattr(lg.TestMode, run.loadgen_mode)
    settings.min_duration_ms = run.min_duration_ms
    settings.max_duration_ms = run.max_duration_ms
    settings.min_query_count = run.min_query_count
    settings.max_query_count = run.max_query_count
    settings.use_token_latencies = run.use_token_latencies
    settings.sample_concatenate_permutation = run.sample_concatenate_permutation
    settings.qsl_rng_seed = run.qsl_rng_seed
    settings.sample_index_rng_seed = run.sample_index_rng_seed
    settings.schedule_rng_seed = run.schedule_rng_seed
    settings.accuracy_log_sampling_target = run.accuracy_log_sampling_target
    settings.accuracy_log_rng_seed = run.accuracy_log_rng_seed
    if run.loadgen_scenario == "Offline":
        settings.offline_expected_qps = run.target_qps
    else:
        settings.server_target_qps = run.target_qps
        settings.server_target_latency_percentile = run.target_latency_percentile
        if run.ttft_latency_ms > 0:
            settings.ttft_latency = int(run.ttft_latency_ms * NS_PER_MS)
        if run.tpot_latency_ms > 0:
            settings.tpot_latency = int(run.tpot_latency_ms * NS_PER_MS)
    for name, value in run.user_conf_values.items():
        setattr(settings, name, value)
    return settings


# A child process reads the file with LoadGen (its built-in mlperf.conf first,
# then user.conf) and prints the numeric fields that differ from the defaults.
_READ_USER_CONF = r"""
import json, sys
import mlperf_loadgen as lg
path, model, scenario = sys.argv[1:4]
default, settings = lg.TestSettings(), lg.TestSettings()
status = settings.FromConfig(path, model, scenario, 1)
changed = {}
for name in dir(settings):
    if name.startswith("_") or name in ("mode", "scenario"):
        continue
    value = getattr(settings, name)
    if isinstance(value, (bool, int, float)) and value != getattr(default, name):
        changed[name] = value
print(json.dumps({"status": status, "changed": changed}))
"""


def read_user_conf(path: str, mlperf_model: str, loadgen_scenario: str) -> dict[str, Any]:
    """The TestSettings fields LoadGen sets from ``path`` (read once, in a child process)."""
    file = Path(path)
    if not file.is_file():
        raise InputError(file, "no such user.conf", "fix loadgen.user_conf in the profile, or remove it")
    done = subprocess.run([sys.executable, "-c", _READ_USER_CONF, str(file), mlperf_model, loadgen_scenario],
                          capture_output=True, text=True, timeout=120, check=False)
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise InputError(file, f"LoadGen could not read it ({done.stderr.strip()[-300:] or 'no output'})",
                         "check its 'model.scenario.key = value' lines") from None
    if answer["status"] != 0:
        raise InputError(file, f"LoadGen's FromConfig returned {answer['status']}",
                         "check its 'model.scenario.key = value' lines")
    return answer["changed"]
