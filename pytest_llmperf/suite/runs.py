"""LoadGen runs and datasets shared between the tests of one process.

``scenario_run`` and ``accuracy_run`` make one run per (engine, scenario, mode) per process; whichever
test asks first runs LoadGen (its logs go to that test's folder; the accuracy run's to the folder of
its suite and target), the others reuse the result.  ``openorca_dataset`` loads the profile's OpenOrca
once; ``mmlu_predictions`` answers the profile's MMLU prompts once per engine.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import pytest

from ..datasets.chat import chat_prompt_ids
from ..engines import Engine, GenerationParams
from ..errors import UsageError
from ..loadgen import LoadgenRun, read_accuracy_log
from ..loadgen.run_folders import ROUGE_SUITE
from ..metrics.mmlu import MmluPrediction
from ..harness.session import LlmperfSession
from .engines import require_capability, skip_weightless


def tokenizer_of(session: LlmperfSession, checkpoint: str | None):
    """The tokenizer of ``checkpoint`` (a folder, ``embedded``), loaded once; None: the session's model's."""
    if not checkpoint or checkpoint == str(session.model.path):
        return session.tokenizer
    from ..models import load_tokenizer

    return session.shared(("tokenizer", checkpoint), lambda: load_tokenizer(checkpoint))


def openorca_dataset(session: LlmperfSession, source: str | None = None, samples: int | None = None, tokenizer=None):
    """OpenOrca prompts and references, loaded once per process for each (source, samples, tokenizer).

    Defaults: the profile's ``[datasets] openorca``, the session's sample count, the model's tokenizer."""
    from ..datasets.openorca import load_openorca

    source = source or session.profile.datasets.openorca
    samples = session.samples() if samples is None else samples
    tokenizer = tokenizer or session.tokenizer
    allow_pickle = session.profile.datasets.allow_pickle
    key = ("openorca", source, samples, getattr(tokenizer, "name_or_path", id(tokenizer)), allow_pickle)
    def load():
        with session.timed("data"):
            return load_openorca(source, tokenizer, samples=samples, allow_pickle=allow_pickle)

    return session.shared(key, load)


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

    Its logs always go to the folder of the suite and target (``runs/accuracy-rouge_<target>``),
    whichever test makes the run: two engines' runs never share a folder."""
    skip_weightless(session)
    from ..loadgen import run_loadgen

    def make() -> LoadgenRun:
        dataset, profile = openorca_dataset(session), session.profile
        metadata = {"suite": ROUGE_SUITE, "model": str(session.model.path), "tokenizer": str(session.model.path),
                    "dataset": profile.datasets.openorca, "samples": session.samples(), "dtype": "int32",
                    "profile": profile.name, "target": target_id}
        return run_loadgen(engine, dataset.prompts, "Offline", "AccuracyOnly", profile,
                           session.test_dir(f"{ROUGE_SUITE}[{target_id}]"), metadata)

    return _once(session, engine, ("Offline", "AccuracyOnly"), nodeid, make)


def scenario_run(session: LlmperfSession, engine: Engine, scenario: str, mode: str, nodeid: str) -> SuiteRun:
    """The LoadGen run of ``scenario`` / ``mode`` on ``engine``, made once per process."""
    from ..loadgen import run_loadgen

    def make() -> LoadgenRun:
        table = openorca_dataset(session)
        prompts = [list(p) for p in table.prompts]
        _warm_up(session, engine, prompts)
        metadata = {"model": str(session.model.path), "tokenizer": str(session.model.path),
                    "dataset": str(table.path), "model_name": session.model.name,
                    "profile": session.profile.source or session.profile.name, "test": nodeid}
        return run_loadgen(engine, prompts, scenario, mode, session.profile, session.test_dir(nodeid), metadata)

    return _once(session, engine, (scenario, mode), nodeid, make)


def loadgen_runner(session: LlmperfSession, engine: Engine, nodeid: str, scenario: str | None = None):
    """``run_one(settings, folder)``: one PerformanceOnly LoadGen run of ``engine`` over the profile's
    OpenOrca prompts with ``settings`` (a ``RunSettings``; its scenario, or ``scenario``), its logs in
    ``folder``; for suites that choose their own settings per run (capacity search, a fixed workload).
    The engine is warmed up first, once per process."""
    from ..loadgen import run_loadgen

    prompts = [list(p) for p in openorca_dataset(session).prompts]
    _warm_up(session, engine, prompts)
    profile = session.profile
    metadata = {"model": str(session.model.path), "profile": profile.source or profile.name, "test": nodeid}

    def run_one(settings, folder):
        return run_loadgen(engine, prompts, scenario or settings.scenario, "PerformanceOnly", settings, folder, metadata)

    return run_one


def _once(session: LlmperfSession, engine: Engine, kind: tuple[str, str], nodeid: str, make) -> SuiteRun:
    """``make()``'s LoadGen run of ``kind`` (scenario, mode) on ``engine``: made by the first test that
    asks in this process (timed as generation), reused by the others."""
    made: list[bool] = []

    def timed() -> tuple[LoadgenRun, str]:
        made.append(True)
        with session.timed("generate"):
            return make(), nodeid

    run, owner = session.shared(("loadgen-run", engine.info.engine, engine.info.device, session.side(engine), *kind),
                                timed)
    return SuiteRun(run, owner, reused=not made)


def _warm_up(session: LlmperfSession, engine: Engine, prompts: list[list[int]]) -> None:
    """One tiny generate per engine, so one-time start-up costs stay out of LoadGen's numbers."""
    key = ("loadgen-warm-up", engine.info.engine, engine.info.device, session.side(engine))

    def warm_up():
        with session.timed("warm-up"):
            return engine.generate(prompts[:2], GenerationParams(max_new_tokens=2, min_new_tokens=2))

    session.shared(key, warm_up)


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
    from ..datasets.mmlu import build_prompts, load_mmlu
    from ..metrics import mmlu

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
    predictions_key = ("mmlu-predictions", engine.info.engine, engine.info.device, session.side(engine), prompts_key,
                       tuple(section.modes))
    with session.timed("score"):
        predictions = session.shared(predictions_key, lambda: mmlu.score_modes(engine, session.tokenizer, prompts,
                                                                               section.modes))
    return MmluPredictions(data.location, data.layout, section.shots, prompts, predictions[mode])


def write_mmlu_predictions(session: LlmperfSession, nodeid: str, found: MmluPredictions) -> Path:
    """``mmlu-predictions.jsonl`` in the test's folder: each question, answer and prediction."""
    from ..metrics.mmlu import write_predictions

    path = session.test_dir(nodeid) / "mmlu-predictions.jsonl"
    write_predictions(path, found.predictions)
    return path


def logits_prompts(session: LlmperfSession, table: Sequence[tuple[str, str]], where: str) -> list:
    """The first ``[logits] prompts`` of ``table`` ((id, text) pairs, defined in ``where``), chat-templated."""
    from ..metrics.logits import LogitsPrompt

    profile, count = session.profile, session.profile.logits.prompts
    if not 1 <= count <= len(table):
        raise UsageError(f"{profile.source or profile.name}: logits.prompts = {count}",
                         f"must be between 1 and {len(table)}", f"the fixed set is in {where}; add prompts at its end")
    return [LogitsPrompt(prompt_id, text, tuple(chat_prompt_ids(session.tokenizer, text)))
            for prompt_id, text in table[:count]]
