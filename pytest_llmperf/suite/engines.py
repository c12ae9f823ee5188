"""Getting an engine for a test, or skipping it with the reason."""

from __future__ import annotations

from typing import Sequence

import pytest

from .. import hardware
from ..engines import Engine
from ..engines.base import optional
from ..errors import DeviceUnavailable, EngineError, EngineUnavailable, UsageError
from ..harness.session import EngineTarget, LlmperfSession, unavailable_reason


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
    from ..engines.capabilities import lacking

    required = optional(engine, "required_capabilities", frozenset())
    line = lacking(engine.info, capability, needed_by, required, optional(engine, "settings_table", "[engine.<name>]"))
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
