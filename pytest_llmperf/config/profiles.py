"""Profiles: TOML files naming datasets, sample counts, thresholds and LoadGen settings.

Layering, lowest first: the dataclass defaults below < the profile file <
command-line options.  A profile is given by name (a file shipped in
``pytest_llmperf/profiles/``) or by path.  It is checked whole when loaded:
unknown keys, wrong types and values out of range in any section are rejected
with the file, the key and the fix, before any test runs.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any, Callable

from ..errors import InputError, UsageError
from . import tables
from .serving_profile import CapacitySection, ServingWorkloadSection, SweepSection

PROFILE_DIR = Path(__file__).parent.parent / "profiles"
DEFAULT_PROFILE = "embedded"
ROUGE_SCORES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
"""Scores ``[rouge] reference`` may name."""
MMLU_MODES = ("loglikelihood", "argmax")
"""``loglikelihood`` (lm-eval) and ``argmax`` (FlagPerf)."""


@dataclasses.dataclass(frozen=True)
class GenerationSection:
    max_new_tokens: int = 64
    """Generated tokens per OpenOrca sample at most (MLPerf llama2-70b: 1024)."""
    min_new_tokens: int = 1
    """MLPerf requires at least 2 output tokens per sample in its token-latency scenarios."""
    max_batch_size: int = 16
    """Largest batch for in-process engines."""


@dataclasses.dataclass(frozen=True)
class DatasetsSection:
    openorca: str = "embedded"
    """``embedded`` or a path to MLPerf's processed OpenOrca (parquet, JSON; .pkl with allow_pickle)."""
    mmlu: str = "embedded"
    """``embedded`` or a folder in either MMLU layout (data/{dev,test}/*.csv, or HF parquet)."""
    samples: int = 0
    """OpenOrca samples to use; 0 = all (``--llmperf-samples`` overrides)."""
    allow_pickle: bool = False
    """Allow reading MLPerf's .pkl dataset (pickle runs code: only for files you trust)."""


@dataclasses.dataclass(frozen=True)
class RougeSection:
    mode: str = "baseline"
    """``baseline`` (the baselines/ file with ``tolerance_points``) or ``target`` (published reference below)."""
    reference: dict[str, float] = dataclasses.field(default_factory=dict)
    """Published reference scores, e.g. rouge1 = 44.4312 (mode = target)."""
    fraction: float = 0.99
    """Required fraction of the reference (MLPerf: 0.99 or 0.999)."""
    tolerance_points: float = 1.0
    """Baseline mode: allowed drop, in ROUGE points, below the recorded baseline."""
    tokens_per_sample: float = 0.0
    """Reference generated tokens per sample (MLPerf llama2-70b: 294.45); 0 = not gated."""
    tokens_per_sample_range: list[float] = dataclasses.field(default_factory=lambda: [0.9, 1.1])
    """Accepted band as fractions of ``tokens_per_sample``."""


@dataclasses.dataclass(frozen=True)
class MmluSection:
    shots: int = 5
    """Few-shot examples from the dev split before each test question (MMLU: 5)."""
    modes: list[str] = dataclasses.field(default_factory=lambda: ["loglikelihood", "argmax"])
    """``loglikelihood`` (lm-eval: compare log P of " A".." D") and/or ``argmax`` (FlagPerf: argmax over the vocabulary)."""
    target_accuracy: float = 0.0
    """Published accuracy to reach (fraction); 0 = use the baseline."""
    tolerance_points: float = 2.0
    """Baseline mode: allowed drop in accuracy points."""
    max_length: int = 2048
    """Prompt length limit; shots are dropped (last first) until the prompt fits."""
    subjects: list[str] = dataclasses.field(default_factory=list)
    """Subjects to ask (names as in the files, e.g. ``astronomy``); empty = all."""


@dataclasses.dataclass(frozen=True)
class LogitsSection:
    prompts: int = 4
    """How many prompts of the fixed set (suites/accuracy/logits_prompts.py) to compare."""
    positions: int = 4
    """K: generated positions compared per prompt."""
    atol: float = 5e-3
    """np.allclose absolute tolerance (the contest's 5e-3)."""
    rtol: float = 1e-5
    """np.allclose relative tolerance (the contest's 1e-5)."""
    reference: str = ""
    """A logits baseline folder to compare with instead of the engine's own (absolute, or relative to
    ``--llmperf-baselines``), e.g. ``smollm2-135m-instruct/cpu/transformers-float32/logits``; engines that
    return only log-probabilities cannot record logits, so they need one."""


@dataclasses.dataclass(frozen=True)
class ScenarioSection:
    """LoadGen test settings of one scenario (names follow mlperf.conf)."""

    min_duration_ms: int = 0
    min_query_count: int = 1
    max_query_count: int = 0
    """0 = no limit."""
    target_qps: float = 1.0
    """Server: arrival rate; Offline: expected QPS (sizes the one query)."""
    ttft_latency_ms: float = 0.0
    """p99 TTFT limit (0 = none)."""
    tpot_latency_ms: float = 0.0
    """p99 TPOT limit (0 = none)."""
    performance_sample_count: int = 0
    """Samples loaded in the QSL for performance runs; 0 = the dataset size."""
    target_latency_percentile: float = 0.99
    """Server/Interactive: the percentile LoadGen's latency constraints and early stopping judge (MLPerf: 0.99)."""
    max_duration_ms: int = 0
    """0 = no limit."""


@dataclasses.dataclass(frozen=True)
class LoadgenSection:
    offline: ScenarioSection = dataclasses.field(default_factory=lambda: ScenarioSection(min_query_count=16))
    server: ScenarioSection = dataclasses.field(default_factory=lambda: ScenarioSection(target_qps=0.5, min_query_count=16))
    interactive: ScenarioSection = dataclasses.field(default_factory=ScenarioSection)
    use_token_latencies: bool = True
    sample_concatenate_permutation: bool = True
    """MLPerf llama2-70b sets it; TEST06 turns it off."""
    qsl_rng_seed: int = 0
    """LoadGen's own default is 0; the mlperf-* profiles carry the round's values from mlperf.conf."""
    sample_index_rng_seed: int = 0
    schedule_rng_seed: int = 0
    user_conf: str = ""
    """A ``user.conf`` to apply on top, as LoadGen reads it (its built-in mlperf.conf for ``mlperf_model``
    first, then the file); read in a child process, since LoadGen accepts only one config per process."""
    mlperf_model: str = "llama2-70b"
    """The model name ``user_conf`` keys are looked up under (``model.scenario.key``)."""
    server_workers: int = 1
    """Server SUT: generate calls in flight at once; engines that batch concurrent requests
    continuously (vllm, openai) gain from more, the transformers engine does not."""


@dataclasses.dataclass(frozen=True)
class PerformanceSection:
    throughput_tolerance: float = 0.35
    """New baselines: allowed relative drop in tokens/s and samples/s."""
    latency_tolerance: float = 0.5
    """New baselines: allowed relative rise in TTFT/TPOT p99."""
    max_new_tokens: int = 0
    """Generated tokens per sample in LoadGen performance and TEST06 runs; 0 = generation.max_new_tokens."""
    rounds: int = 5
    """Short rounds each performance metric is measured in, between calibrations (docs/performance-gates.md)."""
    baseline_rounds: int = 5
    """Rounds measured when recording a baseline (``--llmperf-update-baselines``)."""
    latency_rounds: int = 1
    """Server latency: LoadGen runs measured at first (each takes ``min_duration_ms``); judged against the
    baseline's spread (recorded with ``baseline_rounds`` runs), and re-measured while INCONCLUSIVE."""
    max_rounds: int = 8
    """While the verdict is INCONCLUSIVE, measure one more round, up to this many in all."""
    min_effect_throughput: float = 0.15
    """Smallest throughput drop (fraction) that counts as a regression: FAIL needs the whole confidence
    interval beyond it."""
    min_effect_latency: float = 0.30
    """Smallest latency rise (fraction) that counts as a regression."""
    confidence: float = 0.95
    """Confidence level of the interval for the change."""
    inconclusive_fails: bool = False
    """Whether an INCONCLUSIVE verdict (after max_rounds) fails the test."""
    paired_rounds: int = 6
    """Paired A/B: pairs of rounds (one of each side) measured before the first look."""
    paired_max_rounds: int = 12
    """Paired A/B: pairs measured at most (the second look) while a metric is INCONCLUSIVE."""
    paired_min_effect_throughput: float = 0.03
    """Paired A/B (``--llmperf-compare``): the smallest throughput drop against the reference measured beside
    this run that counts as REGRESSED (gating/paired.py)."""
    paired_min_effect_latency: float = 0.05
    """Paired A/B: the smallest latency rise against the reference that counts as REGRESSED."""
    max_contention: float = 0.15
    """A round is clean when other processes used less than this fraction of the machine's CPU during it:
    clean rounds are judged on raw values, and only clean rounds are recorded as a baseline."""


@dataclasses.dataclass(frozen=True)
class Test06Section:
    """The audit run of MLPerf's TEST06 (performance mode with accuracy logging, min_duration 0)."""

    min_query_count: int = 100
    """Queries (Server) or samples in the one query (Offline); MLPerf's audit.config: 100."""
    accuracy_log_sampling_target: int = 100
    """Responses LoadGen aims to log; MLPerf's audit.config: 100."""
    accuracy_log_rng_seed: int = 720381539243781796
    """The seed of MLPerf's TEST06 audit.config."""
    target_qps: float = 0.0
    """Server/Interactive arrival rate of the audit run; 0 = the scenario's target_qps."""


@dataclasses.dataclass(frozen=True)
class ComplianceSection:
    test06: Test06Section = dataclasses.field(default_factory=Test06Section)
    submission_rules: bool = False
    """Also apply MLPerf's submission-checker rules for llama2-70b (the mlperf-* profiles)."""


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str = DEFAULT_PROFILE
    description: str = ""
    generation: GenerationSection = dataclasses.field(default_factory=GenerationSection)
    datasets: DatasetsSection = dataclasses.field(default_factory=DatasetsSection)
    rouge: RougeSection = dataclasses.field(default_factory=RougeSection)
    mmlu: MmluSection = dataclasses.field(default_factory=MmluSection)
    logits: LogitsSection = dataclasses.field(default_factory=LogitsSection)
    loadgen: LoadgenSection = dataclasses.field(default_factory=LoadgenSection)
    performance: PerformanceSection = dataclasses.field(default_factory=PerformanceSection)
    compliance: ComplianceSection = dataclasses.field(default_factory=ComplianceSection)
    capacity: CapacitySection = dataclasses.field(default_factory=CapacitySection)
    sweep: SweepSection = dataclasses.field(default_factory=SweepSection)
    serving_workload: ServingWorkloadSection = dataclasses.field(default_factory=ServingWorkloadSection)
    engine: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """Per-engine settings, e.g. ``[engine.vllm] gpu_memory_utilization = 0.3``."""
    source: str = ""
    """The file it was read from (filled in by the loader)."""


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def profile_path(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        if not candidate.is_file():
            raise UsageError(f"--llmperf-profile {name_or_path}", "no such profile file",
                             f"pass an existing .toml or one of: {', '.join(available_profiles())}")
        return candidate
    shipped = PROFILE_DIR / f"{name_or_path}.toml"
    if not shipped.is_file():
        raise UsageError(f"--llmperf-profile {name_or_path}", "unknown profile",
                         f"use one of: {', '.join(available_profiles())}, or a path to a .toml file")
    return shipped


def load_profile(name_or_path: str = DEFAULT_PROFILE) -> Profile:
    path = profile_path(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, f"is not valid TOML ({exc})", "fix the syntax; see the shipped profiles for examples")
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror})", "check the path and its permissions")
    data.setdefault("name", path.stem)
    profile = _build(Profile, data, path, "")
    _check_values(profile, path)
    return dataclasses.replace(profile, source=str(path))


def _build(cls: type, data: Any, path: Path, where: str):
    return tables.build(cls, data, path, where, check=_check_table)


def _check_table(dotted: str, value: Any, path: Path) -> None:
    if dotted == "engine":
        _check_engine_names(value, path)


# -- values --------------------------------------------------------------------------

def _at_least(low: float) -> tuple[Callable[[Any], bool], str]:
    return (lambda value: value >= low), f">= {low:g}"


_POSITIVE, _NON_NEGATIVE = _at_least(1), _at_least(0)
_FRACTION = (lambda value: 0 < value <= 1), "a fraction in (0, 1]"
#: (dotted key, test, what it must be): the checks of one value; the scenario tables share theirs.
_RANGES: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("generation.max_new_tokens", *_POSITIVE), ("generation.min_new_tokens", *_NON_NEGATIVE),
    ("generation.max_batch_size", *_POSITIVE), ("datasets.samples", *_NON_NEGATIVE),
    ("rouge.fraction", *_FRACTION), ("rouge.tolerance_points", *_NON_NEGATIVE),
    ("rouge.tokens_per_sample", *_NON_NEGATIVE),
    ("mmlu.shots", *_NON_NEGATIVE), ("mmlu.max_length", *_at_least(2)),
    ("mmlu.target_accuracy", lambda v: 0 <= v <= 1, "a fraction in 0..1 (0 = use the baseline; 0.458 for 45.8%)"),
    ("mmlu.tolerance_points", *_NON_NEGATIVE),
    ("logits.prompts", *_POSITIVE), ("logits.positions", *_POSITIVE),
    ("logits.atol", *_NON_NEGATIVE), ("logits.rtol", *_NON_NEGATIVE),
    ("loadgen.server_workers", *_POSITIVE),
    ("performance.throughput_tolerance", *_NON_NEGATIVE), ("performance.latency_tolerance", *_NON_NEGATIVE),
    ("performance.max_new_tokens", *_NON_NEGATIVE), ("performance.rounds", *_at_least(2)),
    ("performance.latency_rounds", *_POSITIVE), ("performance.baseline_rounds", *_at_least(2)),
    ("performance.max_contention", lambda v: 0 < v <= 1, "a fraction in (0, 1], e.g. 0.15"),
    ("performance.min_effect_throughput", lambda v: 0 <= v < 1, "a fraction in [0, 1), e.g. 0.15 for 15%"),
    ("performance.min_effect_latency", *_NON_NEGATIVE),
    ("performance.paired_rounds", *_at_least(2)), ("performance.paired_max_rounds", *_at_least(2)),
    ("performance.paired_min_effect_throughput", lambda v: 0 <= v < 1, "a fraction in [0, 1), e.g. 0.03 for 3%"),
    ("performance.paired_min_effect_latency", *_NON_NEGATIVE),
    ("performance.confidence", lambda v: 0.5 <= v < 1, "a level in [0.5, 1), e.g. 0.95"),
    ("compliance.test06.min_query_count", *_POSITIVE),
    ("compliance.test06.accuracy_log_sampling_target", *_NON_NEGATIVE),
    ("compliance.test06.target_qps", *_NON_NEGATIVE),
    ("capacity.qps_min", (lambda v: v > 0), "> 0"), ("capacity.qps_max", (lambda v: v > 0), "> 0"),
    ("capacity.precision", (lambda v: 0 < v < 1), "a fraction in (0, 1), e.g. 0.1"),
    ("capacity.margin", (lambda v: 0 <= v < 1), "a fraction in [0, 1), e.g. 0.1"),
    ("capacity.probe_duration_ms", *_POSITIVE), ("capacity.probe_min_queries", *_POSITIVE),
    ("capacity.time_budget_s", (lambda v: v > 0), "> 0 seconds"), ("capacity.check_above", *_NON_NEGATIVE),
    ("serving_workload.qps", (lambda v: v > 0), "> 0"), ("serving_workload.seconds", (lambda v: v > 0), "> 0"),
    ("sweep.duration_ms", *_NON_NEGATIVE), ("sweep.min_queries", *_NON_NEGATIVE),
) + tuple((f"loadgen.{scenario}.{key}", *rule) for scenario in ("offline", "server", "interactive") for key, rule in (
    ("min_duration_ms", _NON_NEGATIVE), ("min_query_count", _POSITIVE), ("max_query_count", _NON_NEGATIVE),
    ("target_qps", ((lambda v: v > 0), "> 0")), ("ttft_latency_ms", _NON_NEGATIVE),
    ("tpot_latency_ms", _NON_NEGATIVE), ("performance_sample_count", _NON_NEGATIVE),
    ("target_latency_percentile", _FRACTION), ("max_duration_ms", _NON_NEGATIVE)))


def _check_values(profile: Profile, path: Path) -> None:
    """Values every suite relies on, checked at load so a bad one fails before any test runs."""
    for dotted, admits, expected in _RANGES:
        value = profile
        for part in dotted.split("."):
            value = getattr(value, part)
        if not admits(value):
            raise InputError(path, f"{dotted} = {value!r} is out of range", f"set {dotted} to {expected}")
    generation, rouge, mmlu, performance = profile.generation, profile.rouge, profile.mmlu, profile.performance
    if performance.max_rounds < performance.rounds:
        raise InputError(path, f"performance.max_rounds = {performance.max_rounds} is below "
                               f"performance.rounds = {performance.rounds}", "make max_rounds >= rounds")
    if generation.min_new_tokens > generation.max_new_tokens:
        raise InputError(path, f"generation.min_new_tokens = {generation.min_new_tokens} is above "
                               f"generation.max_new_tokens = {generation.max_new_tokens}",
                         "make min_new_tokens <= max_new_tokens")
    if rouge.mode not in ("baseline", "target"):
        raise InputError(path, f"rouge.mode = {rouge.mode!r} is not a ROUGE gating mode",
                         'use "baseline" (limits from baselines/) or "target" (reference x fraction)')
    unknown = sorted(set(rouge.reference) - set(ROUGE_SCORES))
    if unknown:
        raise InputError(path, f"rouge.reference.{unknown[0]} is not a ROUGE score",
                         f"use keys among {', '.join(ROUGE_SCORES)}")
    if rouge.mode == "target" and not rouge.reference:
        raise InputError(path, 'rouge.reference is empty while rouge.mode = "target"',
                         "give the published scores, e.g. reference = { rouge1 = 44.4312, rouge2 = 22.0352, "
                         "rougeL = 28.6162 }")
    band = rouge.tokens_per_sample_range
    if len(band) != 2 or not 0 <= band[0] <= band[1]:
        raise InputError(path, f"rouge.tokens_per_sample_range = {band!r} is not a [low, high] pair of fractions",
                         "use e.g. [0.9, 1.1]")
    if profile.capacity.qps_max < profile.capacity.qps_min:
        raise InputError(path, f"capacity.qps_max = {profile.capacity.qps_max:g} is below capacity.qps_min = "
                               f"{profile.capacity.qps_min:g}", "make qps_min <= qps_max")
    workload = profile.serving_workload
    if abs(workload.qps * workload.seconds - workload.requests) > 1e-6 or workload.requests < 1:
        raise InputError(path, f"serving_workload.qps x seconds = {workload.qps:g} x {workload.seconds:g} = "
                               f"{workload.qps * workload.seconds:g} is not a whole number of requests",
                         "choose qps and seconds whose product is a whole number >= 1 (the kit: 0.5 x 3000 = 1500)")
    if any(qps <= 0 for qps in profile.sweep.qps):
        raise InputError(path, f"sweep.qps = {profile.sweep.qps!r} holds a rate <= 0", "list positive rates")
    if not mmlu.modes or any(mode not in MMLU_MODES for mode in mmlu.modes):
        raise InputError(path, f"mmlu.modes = {mmlu.modes!r} names no known scoring mode",
                         f"use one or both of: {', '.join(MMLU_MODES)}")


def _check_engine_names(tables: Any, path: Path) -> None:
    from ..engines import ENGINES

    unknown = sorted(set(tables) - set(ENGINES)) if isinstance(tables, dict) else []
    if unknown:
        raise InputError(path, f"unknown engine [engine.{unknown[0]}]", f"use tables among: {', '.join(ENGINES)}")
