"""What a suite imports: ``from pytest_llmperf import kit``.

A suite is a pytest test over the plugin's fixtures (``llmperf_engine``,
``llmperf_session``, ``llmperf_check``) that calls the functions here and
gates what they return.  docs/writing-suites.md shows a whole one.

* LoadGen runs shared between tests: ``scenario_run`` and ``accuracy_run`` make
  one run per (engine, scenario, mode) per process; whichever test asks first
  runs LoadGen (its logs go to that test's folder), the others reuse the result.
* Data: ``openorca_dataset`` (the profile's OpenOrca, loaded once), ``mmlu_predictions``.
* Engines: ``engine_or_skip`` (the plugin's ``llmperf_engine`` uses it too),
  ``engines_or_skip`` for suites that compare several engines, ``require_capability``
  for what a server behind an API may lack (skip, or fail where the profile requires it).
* Recording: ``record_utilization`` (MFU/MBU), ``gate_rouge``, ``gate_mmlu``, ``gate_logits``;
  gates are judged on ``llmperf_check`` when the test returns.
* ``Limit`` and ``Tolerance`` for the suite's own gates.
* Performance in calibrated rounds (``performance``): ``gate_in_rounds``, ``loadgen_rounds``,
  ``workload``, ``RoundMetric``; docs/performance-gates.md.

Nothing here imports torch, vLLM or LoadGen at import time.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

import pytest

from . import hardware
from .compliance.test06 import check_test06
from .compliance.validity import check_submission_rules, check_validity
from .datasets.chat import chat_prompt_ids
from .engines import Engine, GenerationParams
from .errors import DeviceUnavailable, EngineError, EngineUnavailable, LlmperfError, UsageError
from .gating.baselines import UPDATE_FLAG, Tolerance
from .gating.checker import Checker
from .gating.limits import Limit
from .loadgen import ACCURACY_LOG, LoadgenRun, read_accuracy_log
from .loadgen.run_folders import ROUGE_SUITE, AccuracyRun, find_accuracy_runs, read_accuracy_run
from .loadgen.test06_logs import find_test06_logs
from .metrics.mmlu import MODES as MMLU_MODES
from .metrics.mmlu import MmluPrediction
from .metrics.mmlu import record as gate_mmlu
from .metrics.mmlu import summarize as mmlu_score
from .metrics.rouge import RougeResult
from .metrics.rouge_targets import record as gate_rouge
from .performance import RoundMetric, gate_in_rounds, loadgen_rounds, loadgen_workload, workload
from .session import EngineTarget, LlmperfSession, unavailable_reason

__all__ = [
    "ACCURACY_LOG", "MMLU_MODES", "UPDATE_FLAG", "AccuracyRun", "Checker", "Engine", "EngineTarget",
    "GenerationParams", "Limit", "LlmperfError", "LoadgenRun", "MmluPredictions", "RoundMetric", "SuiteRun",
    "Tolerance", "gate_in_rounds", "loadgen_rounds", "loadgen_workload", "workload",
    "UsageError", "accuracy_outputs", "accuracy_run", "chat_prompt_ids", "check_submission_rules", "check_test06",
    "check_validity", "compare_outputs", "device_params", "engine_or_skip", "engines_or_skip",
    "find_accuracy_runs", "find_test06_logs", "gate_logits", "gate_mmlu", "gate_rouge", "loadgen_steps_per_second",
    "logits_baseline_folder", "logits_prompts", "mmlu_predictions", "mmlu_score", "openorca_dataset", "read_accuracy_log",
    "read_accuracy_run", "record_utilization", "require_capability", "scenario_run", "score_finished_run", "score_rouge",
    "target_or_skip", "tokenizer_of", "write_mmlu_predictions",
]

ROUGE_TEST = "test_openorca_rouge"
"""The ROUGE suite's test (suites/accuracy/test_rouge.py): accuracy runs are filed under its name."""


# -- engines ------------------------------------------------------------------------

def device_params() -> list:
    """One ``pytest.param`` per device class, carrying its marker (for suites not parametrized per engine)."""
    return [pytest.param(device, marks=getattr(pytest.mark, device)) for device in hardware.DEVICE_CLASSES]


def target_or_skip(session: LlmperfSession, target: EngineTarget) -> EngineTarget:
    """``target`` if it can run here; otherwise the test is skipped with the reason."""
    reason = unavailable_reason(session.settings, target)
    if reason:
        pytest.skip(reason)
    return target


def engine_or_skip(session: LlmperfSession, target: EngineTarget) -> Engine:
    """The loaded engine of ``target``: skipped where it cannot run here, failed (one line) on a usage error."""
    target_or_skip(session, target)
    try:
        return session.engine(target)
    except (EngineUnavailable, DeviceUnavailable) as exc:
        pytest.skip(str(exc))
    except (UsageError, EngineError) as exc:
        pytest.fail(str(exc), pytrace=False)


def require_capability(engine: Engine, capability: str, needed_by: str) -> None:
    """Go on where ``engine`` has ``capability`` (``engines.capabilities``); otherwise skip the test
    with a line naming the server and the capability, or fail with it where the profile's
    ``[engine.<name>] require`` lists the capability."""
    from .engines.capabilities import lacking

    required = getattr(engine, "required_capabilities", frozenset())
    line = lacking(engine.info, capability, needed_by, required, getattr(engine, "settings_table", "[engine.<name>]"))
    if line is None:
        return
    if capability in required:
        pytest.fail(line, pytrace=False)
    pytest.skip(line)


def skip_weightless(session: LlmperfSession) -> None:
    """Accuracy needs a real checkpoint: a weightless model shape is skipped, naming why."""
    shape = session.model.shape
    if shape:
        pytest.skip(f"--llmperf-model shape:{shape} has random weights, so accuracy cannot be judged on it "
                    "(performance and compliance suites run on it); pass a real checkpoint for accuracy")


def engines_or_skip(session: LlmperfSession, names: Sequence[str], device: str) -> list[tuple[str, Engine]]:
    """(target id, engine) of each engine in ``names`` on ``device``; skipped unless all are selected and run."""
    selected = session.settings.engines
    if not all(name in selected for name in names):
        pytest.skip(f"compares {' and '.join(names)}: select {'both' if len(names) == 2 else 'all'} with --llmperf-engine {','.join(names)} "
                    f"(selected: {','.join(selected)})")
    return [(target.id, engine_or_skip(session, target)) for target in (EngineTarget(n, device) for n in names)]


# -- data ------------------------------------------------------------------------------

def tokenizer_of(session: LlmperfSession, checkpoint: str | None):
    """The tokenizer of ``checkpoint`` (a folder, ``embedded``), loaded once; None: the session's model's."""
    if not checkpoint or checkpoint == str(session.model.path):
        return session.tokenizer
    from .models import load_tokenizer

    return session.shared(("tokenizer", checkpoint), lambda: load_tokenizer(checkpoint))


def openorca_dataset(session: LlmperfSession, source: str | None = None, samples: int | None = None, tokenizer=None):
    """OpenOrca prompts and references, loaded once per process for each (source, samples, tokenizer).

    Defaults: the profile's ``[datasets] openorca``, the session's sample count, the model's tokenizer."""
    from .datasets.openorca import load_openorca

    source = source or session.profile.datasets.openorca
    samples = session.samples() if samples is None else samples
    tokenizer = tokenizer or session.tokenizer
    allow_pickle = session.profile.datasets.allow_pickle
    key = ("openorca", source, samples, getattr(tokenizer, "name_or_path", id(tokenizer)), allow_pickle)
    return session.shared(key, lambda: load_openorca(source, tokenizer, samples=samples, allow_pickle=allow_pickle))


# -- shared LoadGen runs ------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SuiteRun:
    run: LoadgenRun
    owner: str
    """Node id of the test that ran LoadGen."""
    reused: bool
    """True when this test reuses a run another test made."""


def accuracy_run(session: LlmperfSession, engine: Engine, target_id: str, nodeid: str) -> SuiteRun:
    """The OpenOrca accuracy run of ``engine`` (Offline, AccuracyOnly, every sample once), made
    once per process; its run.json names the suite and target so it can be judged again later.
    Skipped on a weightless model shape.

    Its logs always go to the ROUGE test's folder of that target (``runs/test_openorca_rouge_<target>``),
    whichever test makes the run: two engines' runs never share a folder."""
    skip_weightless(session)
    from .loadgen import run_loadgen

    def make() -> LoadgenRun:
        dataset, profile = openorca_dataset(session), session.profile
        metadata = {"suite": ROUGE_SUITE, "model": str(session.model.path), "tokenizer": str(session.model.path),
                    "dataset": profile.datasets.openorca, "samples": session.samples(), "dtype": "int32",
                    "profile": profile.name, "target": target_id}
        return run_loadgen(engine, dataset.prompts, "Offline", "AccuracyOnly", profile,
                           session.test_dir(f"{ROUGE_TEST}[{target_id}]"), metadata)

    return _once(session, engine, ("Offline", "AccuracyOnly"), nodeid, make)


def scenario_run(session: LlmperfSession, engine: Engine, scenario: str, mode: str, nodeid: str) -> SuiteRun:
    """The LoadGen run of ``scenario`` / ``mode`` on ``engine``, made once per process."""
    from .loadgen import run_loadgen

    def make() -> LoadgenRun:
        table = openorca_dataset(session)
        prompts = [list(p) for p in table.prompts]
        _warm_up(session, engine, prompts)
        metadata = {"model": str(session.model.path), "tokenizer": str(session.model.path),
                    "dataset": str(table.path), "model_name": session.model.name,
                    "profile": session.profile.source or session.profile.name, "test": nodeid}
        return run_loadgen(engine, prompts, scenario, mode, session.profile, session.test_dir(nodeid), metadata)

    return _once(session, engine, (scenario, mode), nodeid, make)


def _once(session: LlmperfSession, engine: Engine, kind: tuple[str, str], nodeid: str, make) -> SuiteRun:
    """``make()``'s LoadGen run of ``kind`` (scenario, mode) on ``engine``: made by the first test that
    asks in this process (timed as generation), reused by the others."""
    made: list[bool] = []

    def timed() -> tuple[LoadgenRun, str]:
        made.append(True)
        with session.timed("generate"):
            return make(), nodeid

    run, owner = session.shared(("loadgen-run", engine.info.engine, engine.info.device, *kind), timed)
    return SuiteRun(run, owner, reused=not made)


def _warm_up(session: LlmperfSession, engine: Engine, prompts: list[list[int]]) -> None:
    """One tiny generate per engine, so one-time start-up costs stay out of LoadGen's numbers."""
    key = ("loadgen-warm-up", engine.info.engine, engine.info.device)
    session.shared(key, lambda: engine.generate(prompts[:2], GenerationParams(max_new_tokens=2, min_new_tokens=2)))


def loadgen_steps_per_second(run: LoadgenRun, tokens_per_second: float | None) -> float | None:
    """Decode steps per second of a LoadGen run: LoadGen times tokens, steps ran over the same span."""
    if tokens_per_second and run.stats.tokens:
        return tokens_per_second * run.stats.decode_steps / run.stats.tokens
    return None


def accuracy_outputs(run: LoadgenRun, samples: int) -> list[tuple[int, ...]]:
    """Each sample's generated token ids from the run's accuracy log (first response per sample)."""
    tokens: dict[int, tuple[int, ...]] = {}
    for entry in read_accuracy_log(run.accuracy_log, "int32"):
        tokens.setdefault(entry.qsl_idx, entry.token_ids)
    missing = [index for index in range(samples) if index not in tokens]
    if missing:
        pytest.fail(f"the accuracy run in {run.folder} has no response for samples {missing[:10]}", pytrace=False)
    return [tokens[index] for index in range(samples)]


# -- scoring ------------------------------------------------------------------------------

def score_rouge(session: LlmperfSession, log: Path, references: Sequence[str], tokenizer=None,
                dtype: str = "int32") -> RougeResult:
    """ROUGE of an accuracy log, exactly as MLPerf's evaluate-accuracy.py scores it (timed as scoring)."""
    from .metrics import rouge

    with session.timed("score"):
        return rouge.score_accuracy_log(read_accuracy_log(log, dtype), references, tokenizer or session.tokenizer,
                                        log_path=log)


def score_finished_run(session: LlmperfSession, run: AccuracyRun) -> tuple[RougeResult, int]:
    """ROUGE of a finished accuracy run, with the dataset and tokenizer its run.json names
    (else the profile's and the model's); returns the result and the dataset's size."""
    tokenizer = tokenizer_of(session, run.tokenizer)
    samples = run.samples if run.dataset else None
    dataset = openorca_dataset(session, run.dataset, samples, tokenizer)
    return score_rouge(session, run.accuracy_log, dataset.references, tokenizer, run.dtype), len(dataset)


def compare_outputs(session: LlmperfSession, reference: Engine, candidate: Engine, prompts, outputs_a, outputs_b,
                    top_k: int):
    """vLLM's agreement rule over two engines' outputs (``metrics.agreement.compare``), timed as scoring."""
    from .metrics.agreement import compare

    with session.timed("score"):
        return compare(reference, candidate, prompts, outputs_a, outputs_b, top_k=top_k)


def record_utilization(check: Checker, session: LlmperfSession, engine: Engine, prefix: str,
                       tokens_per_second: float | None, steps_per_second: float | None,
                       run: LoadgenRun | None = None) -> dict:
    """Record ``<prefix>.mfu`` and ``<prefix>.mbu`` (None, "n/a", where no peak is known); return them.

    With the LoadGen ``run``, MBU adds the KV-cache bytes its generated tokens read (positions
    attended to x the model's KV bytes per position)."""
    from .metrics.utilization import kv_bytes_per_position, utilization
    from .models import parameter_count

    parameters = session.shared(("parameter-count", str(session.model.path)), lambda: parameter_count(session.model))
    kv_per_second = None
    if run is not None and tokens_per_second and run.stats.tokens:
        config = json.loads((session.model.path / "config.json").read_text(encoding="utf-8"))
        per_position = kv_bytes_per_position(config, engine.info.dtype, getattr(engine, "kv_cache_dtype", "auto"))
        if per_position is not None:
            kv_per_second = run.stats.kv_positions_read * per_position * tokens_per_second / run.stats.tokens
    quantization = (getattr(engine.info, "key_options", None) or {}).get("quantization")
    found = utilization(engine.info.device_name, parameters, engine.info.dtype, tokens_per_second, steps_per_second,
                        kv_per_second, quantization=quantization)
    extra = found.extra()
    if session.model.shape:
        extra["model_shape"] = (f"shape:{session.model.shape}: the real architecture with the embedded tokenizer's "
                                "vocabulary (49,152) and random weights; parameters counted with that vocabulary")
    check.info(f"{prefix}.mfu", found.mfu, "ratio", True, extra=extra)
    check.info(f"{prefix}.mbu", found.mbu, "ratio", True, extra=extra)
    return {"mfu": found.mfu, "mbu": found.mbu, "utilization_note": found.note}


# -- MMLU ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class MmluPredictions:
    """One mode's predictions over the profile's MMLU prompts."""

    location: str
    layout: str
    shots: int
    prompts: list
    predictions: list[MmluPrediction]

    def extra(self) -> dict[str, Any]:
        """What results.json records next to the accuracy."""
        return {"dataset": self.location, "layout": self.layout, "shots": self.shots,
                "prompts_with_fewer_shots": sum(p.shots < self.shots for p in self.prompts),
                "prompts_longer_than_max_length": sum(not p.fits for p in self.prompts)}


def mmlu_predictions(session: LlmperfSession, engine: Engine, mode: str) -> MmluPredictions:
    """``engine``'s answers to the profile's MMLU prompts in ``mode``; every mode of the profile is
    scored in one pass, once per process; a mode the profile does not score is skipped."""
    skip_weightless(session)
    from .datasets.mmlu import build_prompts, load_mmlu
    from .metrics import mmlu

    profile = session.profile
    section, location = profile.mmlu, profile.datasets.mmlu
    if mode not in section.modes:
        pytest.skip(f"profile {profile.name} does not score MMLU by {mode} (mmlu.modes = {section.modes})")
    require_capability(engine, "prompt_logprobs", f"MMLU ({mode})")
    data = session.shared(("mmlu-data", location, tuple(section.subjects)),
                          lambda: load_mmlu(location).only(section.subjects))
    prompts_key = ("mmlu-prompts", location, section.shots, section.max_length, tuple(section.subjects))
    prompts = session.shared(prompts_key, lambda: build_prompts(data, section.shots, section.max_length,
                                                                mmlu.prompt_token_count(session.tokenizer)))
    predictions_key = ("mmlu-predictions", engine.info.engine, engine.info.device, prompts_key, tuple(section.modes))
    with session.timed("score"):
        predictions = session.shared(predictions_key, lambda: mmlu.score_modes(engine, session.tokenizer, prompts,
                                                                               section.modes))
    return MmluPredictions(data.location, data.layout, section.shots, prompts, predictions[mode])


def write_mmlu_predictions(session: LlmperfSession, nodeid: str, found: MmluPredictions) -> Path:
    """``mmlu-predictions.jsonl`` in the test's folder: each question, answer and prediction."""
    from .metrics.mmlu import write_predictions

    path = session.test_dir(nodeid) / "mmlu-predictions.jsonl"
    write_predictions(path, found.predictions)
    return path


# -- logits -------------------------------------------------------------------------------

def logits_baseline_folder(session: LlmperfSession, engine: Engine) -> tuple[Path, Path]:
    """(folder to compare with, folder relative to the baselines root this engine records into).

    ``[logits] reference`` wins; else the engine's own folder; an engine that returns only
    log-probabilities (vLLM, openai) and has none falls back to the transformers engine's
    logits of the same model and hardware (its dtype, else float32)."""
    from .metrics.logits import FOLDER, MANIFEST

    root, section, key = session.baselines.root, session.profile.logits, session.baseline_key(engine)
    relative = key.arrays_dir(Path()) / FOLDER
    if section.reference:
        return root / section.reference, relative
    if engine.info.engine != "transformers" and not (root / relative / MANIFEST).exists():
        for dtype in dict.fromkeys((key.dtype, "float32")):
            candidate = dataclasses.replace(key, engine="transformers", dtype=dtype).arrays_dir(Path()) / FOLDER
            if (root / candidate / MANIFEST).exists():
                return root / candidate, relative
    return root / relative, relative


def logits_prompts(session: LlmperfSession, table: Sequence[tuple[str, str]], where: str) -> list:
    """The first ``[logits] prompts`` of ``table`` ((id, text) pairs, defined in ``where``), chat-templated."""
    from .metrics.logits import LogitsPrompt

    profile, count = session.profile, session.profile.logits.prompts
    if not 1 <= count <= len(table):
        raise UsageError(f"{profile.source or profile.name}: logits.prompts = {count}",
                         f"must be between 1 and {len(table)}", f"the fixed set is in {where}; add prompts at its end")
    return [LogitsPrompt(prompt_id, text, tuple(chat_prompt_ids(session.tokenizer, text)))
            for prompt_id, text in table[:count]]


def gate_logits(check: Checker, session: LlmperfSession, engine: Engine, prompts: Sequence, nodeid: str) -> None:
    """Under ``--llmperf-update-baselines`` stage the logits of ``prompts`` as the new baseline; else
    compare them with the baseline (``np.allclose`` with the profile's ``[logits] atol, rtol``)."""
    skip_weightless(session)
    require_capability(engine, "prompt_logprobs", "the logits suite")
    from .metrics import logits
    from .results import git_commit

    profile, section = session.profile, session.profile.logits
    folder, relative = logits_baseline_folder(session, engine)
    command = f"pytest {nodeid.split('[')[0]} -m {engine.info.device} {UPDATE_FLAG}"
    if session.settings.update_baselines and not section.reference:
        out = session.test_dir(nodeid) / logits.FOLDER
        try:
            with session.timed("score"):
                manifest = logits.record(engine, prompts, section.positions, out, git_commit())
        except logits.LogprobsOnly as exc:
            pytest.skip(str(exc))  # recording the other suites' baselines must not hinge on it
        names = [logits.MANIFEST] + [entry["file"] for entry in manifest["prompts"]]
        check.stage_baseline("logits.baseline_prompts", len(prompts), "prompts", None, Tolerance(),
                             files={str(relative / name): str(out / name) for name in names})
        check.info("logits.baseline_prompts", len(prompts), "prompts",
                   extra={"folder": str(folder), "positions": section.positions, "staged_from": str(out)})
        return
    where = profile.source or profile.name
    fix = "set [logits] reference to a recorded folder" if section.reference else f"record it again with: {command}"
    try:
        baseline = logits.LogitsBaseline.read(folder, fix)
        with session.timed("score"):
            results = logits.check(engine, baseline, prompts, section.positions, section.atol, section.rtol, fix)
    except FileNotFoundError:
        if section.reference:  # a folder named on purpose that is not there: the profile is wrong
            check.fail(f"logits: no baseline in {folder / logits.MANIFEST}; "
                       f"fix [logits] reference = {section.reference!r} in {where}")
        else:
            check.no_baseline("logits", None, "", None, f"no baseline in {folder / logits.MANIFEST}",
                              command=f"{command} (or set [logits] reference to another engine's logits folder)")
    except LlmperfError as exc:
        check.fail(f"logits: {exc}")
    else:
        logits.gate(check, profile, results)
