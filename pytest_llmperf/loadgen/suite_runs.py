"""LoadGen runs as the suites use them: prompts from the profile, one run per
(engine, scenario, mode) per process, shared between the tests that judge it.

The performance tests and the compliance validity tests judge the same runs;
the ROUGE suite and the cross-engine agreement suite read the same accuracy
runs.  Whichever test comes first runs LoadGen (its logs go to that test's
folder), the others reuse the result and say so.
"""

from __future__ import annotations

import dataclasses

from ..engines import Engine
from ..session import LlmperfSession
from .runner import LoadgenRun, run_loadgen


@dataclasses.dataclass(frozen=True)
class SuiteRun:
    run: LoadgenRun
    owner: str
    """Node id of the test that ran LoadGen."""
    reused: bool
    """True when this test reuses a run another test made."""


ROUGE_TEST = "test_openorca_rouge"
"""The ROUGE suite's test (suites/accuracy/test_rouge.py): accuracy runs are filed under its name."""


def openorca_dataset(session: LlmperfSession):
    """The profile's OpenOrca table (prompts and references), loaded once per process."""
    from ..datasets.openorca import load_openorca

    datasets, samples = session.profile.datasets, session.samples()
    return session.shared(("openorca", datasets.openorca, samples), lambda: load_openorca(
        datasets.openorca, session.tokenizer, samples=samples, allow_pickle=datasets.allow_pickle))


def openorca_prompts(session: LlmperfSession) -> tuple[list[list[int]], str]:
    """The profile's OpenOrca prompts (token ids) and the file they came from."""
    table = openorca_dataset(session)
    return [list(p) for p in table.prompts], str(table.path)


def accuracy_run(session: LlmperfSession, engine: Engine, target_id: str, nodeid: str) -> SuiteRun:
    """The OpenOrca accuracy run of ``engine`` (Offline, AccuracyOnly, every sample once), made
    once per process; its run.json names the suite and target so it can be judged again later.

    Its logs always go to the ROUGE test's folder of that target (``runs/test_openorca_rouge_<target>``),
    whichever test makes the run: two engines' runs never share a folder."""
    from ..metrics.rouge_targets import SUITE

    def make() -> LoadgenRun:
        dataset, profile = openorca_dataset(session), session.profile
        metadata = {"suite": SUITE, "model": str(session.model.path), "tokenizer": str(session.model.path),
                    "dataset": profile.datasets.openorca, "samples": session.samples(), "dtype": "int32",
                    "profile": profile.name, "target": target_id}
        return run_loadgen(engine, dataset.prompts, "Offline", "AccuracyOnly", profile,
                           session.test_dir(f"{ROUGE_TEST}[{target_id}]"), metadata)

    return _once(session, engine, ("Offline", "AccuracyOnly"), nodeid, make)


def scenario_run(session: LlmperfSession, engine: Engine, scenario: str, mode: str, nodeid: str) -> SuiteRun:
    """The LoadGen run of ``scenario`` / ``mode`` on ``engine``, made once per process."""
    def make() -> LoadgenRun:
        prompts, dataset = openorca_prompts(session)
        warm_up(session, engine, prompts)
        metadata = {"model": str(session.model.path), "tokenizer": str(session.model.path), "dataset": dataset,
                    "model_name": session.model.name, "profile": session.profile.source or session.profile.name,
                    "test": nodeid}
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


def warm_up(session: LlmperfSession, engine: Engine, prompts: list[list[int]]) -> None:
    """One tiny generate per engine, so one-time start-up costs stay out of LoadGen's numbers."""
    from ..engines import GenerationParams

    key = ("loadgen-warm-up", engine.info.engine, engine.info.device)
    session.shared(key, lambda: engine.generate(prompts[:2], GenerationParams(max_new_tokens=2, min_new_tokens=2)))


def loadgen_steps_per_second(run: LoadgenRun, tokens_per_second: float | None) -> float | None:
    """Decode steps per second of a LoadGen run: LoadGen times tokens, steps ran over the same span."""
    if tokens_per_second and run.stats.tokens:
        return tokens_per_second * run.stats.decode_steps / run.stats.tokens
    return None


def record_utilization(check, session: LlmperfSession, engine: Engine, prefix: str, tokens_per_second: float | None,
                       steps_per_second: float | None, engine_key: str) -> dict:
    """Record ``<prefix>.mfu`` and ``<prefix>.mbu`` (None, "n/a", where no peak is known); return them."""
    from ..metrics.utilization import utilization
    from ..models import parameter_count

    parameters = session.shared(("parameter-count", str(session.model.path)), lambda: parameter_count(session.model))
    found = utilization(engine.info.device_name, parameters, engine.info.dtype, tokens_per_second, steps_per_second)
    extra = found.extra()
    check.info(f"{prefix}.mfu", found.mfu, "ratio", True, engine=engine_key, extra=extra)
    check.info(f"{prefix}.mbu", found.mbu, "ratio", True, engine=engine_key, extra=extra)
    return {"mfu": found.mfu, "mbu": found.mbu, "utilization_note": found.note}
