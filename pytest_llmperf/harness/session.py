"""Per-process session state: the profile, the model, loaded engines and shared work.

Engines are loaded once per process and kept until the session ends; work
that several tests need (the same generations, a tokenized dataset) is
computed once through ``shared``.  Nothing here knows about pytest.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

from .. import hardware, models
from ..engines import ENGINES, Engine, EngineOptions, engine_class
from ..errors import DeviceUnavailable, EngineError, EngineUnavailable, UsageError
from ..gating.baselines import BaselineKey, BaselineStore
from ..config.options import Settings
from ..config.profiles import Profile

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class EngineTarget:
    """One (engine, device) pair a test runs against; its id appears in test ids."""

    engine: str
    device: str
    reference: bool = False
    """The reference side of a paired A/B session (``--llmperf-compare``), not a test id of its own."""

    @property
    def id(self) -> str:
        return f"{self.engine}-{self.device}" + ("-reference" if self.reference else "")


def engine_targets(settings: Settings) -> list[EngineTarget]:
    """The (engine, device) pairs to parametrize engine tests over.

    Under ``--llmperf-device auto`` in-process engines get an item per device
    class, so ``-m cuda`` always has items to select (and skip where absent).
    HTTP engines run where their server runs, which we cannot see: they get the
    explicit device, or under auto the device detected here.
    """
    targets = []
    for name in settings.engines:
        if settings.device != "auto":
            devices = (settings.device,)
        elif ENGINES[name].in_process:
            devices = hardware.DEVICE_CLASSES
        else:
            devices = (hardware.resolve_auto()[0],)
        targets.extend(EngineTarget(name, device) for device in devices)
    return targets


def unavailable_reason(settings: Settings, target: EngineTarget) -> str | None:
    """Why ``target`` cannot run here (the skip reason), or None."""
    found = hardware.detect(target.device)  # type: ignore[arg-type]
    if not found.available:
        return f"{target.device} not available: {found.check}"
    if settings.device == "auto" and ENGINES[target.engine].in_process:
        chosen, why = hardware.resolve_auto()
        if chosen != target.device:
            return (f"--llmperf-device auto chose {chosen} ({why}); "
                    f"pass --llmperf-device {target.device} to run the {target.device} items")
    if not ENGINES[target.engine].in_process and not settings.endpoint:
        return f"engine {target.engine!r} needs --llmperf-endpoint URL (the server to test)"
    return None


class LlmperfSession:
    """State shared by the tests of one pytest process."""

    def __init__(self, settings: Settings, profile: Profile):
        self.settings = settings
        self.profile = profile
        self.baselines = BaselineStore(settings.baselines)
        self._engines: dict[EngineTarget, Engine] = {}
        self._engine_errors: dict[EngineTarget, Exception] = {}
        self._shared: dict[Any, Any] = {}
        self.timings: dict[str, float] = {}
        """Seconds per phase (load, warm-up, calibrate, generate, score), each counted once (``_Timer``)."""
        self._timer_stack: list = []
        self.say: Callable[[str], None] | None = None
        """Where one-line progress reports go (the terminal), or None: silent (not a terminal, LLMPERF_PROGRESS=0)."""

    # -- model and engines --------------------------------------------------

    @functools.cached_property
    def model(self) -> models.ModelSpec:
        return models.resolve(self.settings.model)

    @functools.cached_property
    def tokenizer(self):
        return models.load_tokenizer(self.model)

    def engine_options(self, target: EngineTarget) -> EngineOptions:
        return EngineOptions(
            model_path=str(self.model.path),
            model_name=self.model.name,
            device=target.device,
            endpoint=self.settings.endpoint,
            max_batch_size=self.profile.generation.max_batch_size,
            settings=dict(self.profile.engine.get(target.engine, {})),
        )

    def reference_options(self, target: EngineTarget) -> EngineOptions:
        """``engine_options`` changed as ``--llmperf-compare`` says: the reference side of a paired session."""
        spec = self.settings.compare
        if spec is None:
            raise UsageError("the reference engine", "this session compares with nothing",
                             "pass --llmperf-compare REF (docs/paired-ab.md)")
        if spec.endpoint and ENGINES[target.engine].in_process:
            raise UsageError(f"--llmperf-compare {spec.text}", f"engine {target.engine!r} runs in this process and "
                             "takes no endpoint", "compare endpoints with --llmperf-engine openai (or llm-serving); "
                             "for an in-process engine name what differs, e.g. model=PATH or max_batch_size=N")
        found = self.engine_options(target)
        model = models.resolve(spec.model) if spec.model else None
        return dataclasses.replace(
            found,
            model_path=str(model.path) if model else found.model_path,
            model_name=model.name if model else found.model_name,
            endpoint=spec.endpoint or found.endpoint,
            dtype=spec.dtype or found.dtype,
            max_batch_size=spec.max_batch_size or found.max_batch_size,
            settings=spec.engine_settings(target.engine, found.settings),
        )

    def reference_engine(self, target: EngineTarget) -> Engine:
        """The reference side's engine of ``target`` (``--llmperf-compare``), loaded once like ``engine``."""
        return self.engine(dataclasses.replace(target, reference=True))

    def reference_for(self, engine: Engine) -> Engine:
        """The reference side of the loaded ``engine`` (the same engine and device, as ``--llmperf-compare``
        changes it)."""
        for target, loaded in self._engines.items():
            if loaded is engine and not target.reference:
                return self.reference_engine(target)
        raise UsageError("the reference engine", "the engine under test was not loaded by this session",
                         "take the engine from the llmperf_engine fixture")

    def reference_setup(self, reference: Engine) -> dict[str, Any]:
        """What results.json records of a paired session's reference side: ``--llmperf-compare`` as parsed and
        the info (versions, options, device) of the engine it made."""
        return {**self.settings.compare.describe(), "engine_info": dataclasses.asdict(reference.info)}  # type: ignore[union-attr]

    def side(self, engine: Engine) -> str:
        """``reference`` for the reference engine of a paired session, else ``current`` (a part of every key
        under which runs and predictions are shared, so that the two sides never share one)."""
        return "reference" if any(loaded is engine and target.reference for target, loaded in self._engines.items()) \
            else "current"

    def engine(self, target: EngineTarget) -> Engine:
        """The loaded engine for ``target``; loaded on first use, then cached.

        A load failure is cached too, so fifty tests do not retry a broken
        engine fifty times; each of them fails with the same message.
        """
        if target in self._engines:
            return self._engines[target]
        if target in self._engine_errors:
            raise self._engine_errors[target]
        try:
            cls = engine_class(target.engine)
            options = self.reference_options(target) if target.reference else self.engine_options(target)
            with self.timed("load"):
                engine = cls(options)
        except (EngineUnavailable, DeviceUnavailable, UsageError, EngineError) as exc:
            self._engine_errors[target] = exc
            raise
        self._engines[target] = engine
        return engine

    def close(self) -> None:
        for engine in self._engines.values():
            try:
                engine.close()
            except Exception:  # closing must not hide the session's own outcome
                pass
        self._engines.clear()

    # -- shared work and timing --------------------------------------------

    def shared(self, key: Any, compute: Callable[[], T]) -> T:
        """Compute once per process, keyed by ``key`` (hashable)."""
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]

    def timed(self, phase: str):
        return _Timer(self.timings, phase, self._timer_stack)

    # -- baselines and output ----------------------------------------------

    def baseline_key(self, engine: Engine) -> BaselineKey:
        """The key of ``engine``'s baselines; the hardware is named by what this machine sees."""
        device = engine.info.device
        return BaselineKey.of(self.model.name, engine.info.engine, device, hardware.device_name(device),
                              engine.info.dtype, getattr(engine.info, "key_options", None))  # type: ignore[arg-type]

    def samples(self) -> int:
        """``--llmperf-samples`` or the profile's count; 0 means all."""
        if self.settings.samples is not None:
            return self.settings.samples
        return self.profile.datasets.samples

    def test_dir(self, nodeid: str) -> Path:
        """A folder of its own under ``--llmperf-out`` for one test's files."""
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", nodeid.split("::", 1)[-1]).strip("_")[:120]
        path = self.settings.out / "runs" / name
        path.mkdir(parents=True, exist_ok=True)
        return path


class _Timer:
    """Adds the time spent in its ``with`` block to ``sink[phase]``, exclusively: while a nested timer
    runs (warm-up inside a LoadGen run, say), the time goes to the inner phase, not to both, so the
    phases of a test add up to no more than its duration."""

    def __init__(self, sink: dict[str, float], phase: str, stack: list | None = None):
        self.sink, self.phase, self.stack = sink, phase, stack if stack is not None else []

    def _credit(self, now: float) -> None:
        self.sink[self.phase] = self.sink.get(self.phase, 0.0) + (now - self.start)
        self.seconds += now - self.start
        self.start = now

    def __enter__(self):
        now = time.perf_counter()
        if self.stack:
            self.stack[-1]._credit(now)  # the outer phase pauses
        self.start, self.seconds = now, 0.0
        self.stack.append(self)
        return self

    def __exit__(self, *exc):
        now = time.perf_counter()
        self._credit(now)
        if self.stack and self.stack[-1] is self:
            self.stack.pop()
        if self.stack:
            self.stack[-1].start = now  # the outer phase resumes
        return False
