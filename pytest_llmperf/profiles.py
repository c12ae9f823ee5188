"""Profiles: TOML files naming datasets, sample counts, thresholds and LoadGen settings.

Layering, lowest first: the dataclass defaults below < the profile file <
command-line options.  A profile is given by name (a file shipped in
``pytest_llmperf/profiles/``) or by path.  Unknown keys and wrong types are
rejected with the file, the key and the expected type.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from .errors import InputError, UsageError

PROFILE_DIR = Path(__file__).parent / "profiles"
DEFAULT_PROFILE = "embedded"


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
    return dataclasses.replace(profile, source=str(path))


def _build(cls: type, data: Any, path: Path, where: str):
    if not isinstance(data, dict):
        raise InputError(path, f"[{where or 'top level'}] must be a table", "see the shipped profiles for the layout")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        place = f"[{where}]" if where else "the top level"
        raise InputError(path, f"unknown key {unknown[0]!r} in {place}",
                         f"known keys there: {', '.join(fields)}")
    values = {}
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else key
        values[key] = _convert(hints[key], value, path, dotted)
    return cls(**values)


def _convert(hint: Any, value: Any, path: Path, dotted: str):
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path, dotted)
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        return value  # only used for free-form engine settings
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list) or not all(_is(item, v) for v in value):
            _type_error(path, dotted, value, f"a list of {item.__name__}")
        return [float(v) if item is float else v for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            _type_error(path, dotted, value, "a table")
        return value
    if not _is(hint, value):
        _type_error(path, dotted, value, hint.__name__)
    return float(value) if hint is float else value


def _is(hint: Any, value: Any) -> bool:
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_error(path: Path, dotted: str, value: Any, expected: str):
    raise InputError(path, f"{dotted} = {value!r} is a {type(value).__name__}, expected {expected}",
                     f"change {dotted} to {expected}")
