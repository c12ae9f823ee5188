"""One engine on the profile's prompts, for the CLI commands that run LoadGen themselves
(``find-qps``, ``sweep``): the same ``--llmperf-*`` options as the pytest plugin, one engine."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, Callable

from ..config import options


def configure(parser: argparse.ArgumentParser) -> None:
    """The plugin's ``--llmperf-*`` options (one engine); the ``--llmperf-out`` default differs per command."""
    for spec in options.OPTIONS:
        if spec.flag in (options.BASELINES, options.UPDATE_BASELINES, options.STRICT_BASELINES):
            continue
        help_text = "the engine to run (one name)" if spec.flag == options.ENGINE else spec.help
        parser.add_argument(spec.flag, type=spec.parse, default=spec.default, metavar=spec.metavar, help=help_text)


@dataclasses.dataclass
class EngineRun:
    """A loaded engine, its prompts and how to run one LoadGen test on them."""

    session: Any
    engine: Any
    prompts: list[list[int]]
    profile: Any
    out: Path
    metadata: dict

    def run_one(self, settings, folder: Path):
        from ..loadgen import run_loadgen

        return run_loadgen(self.engine, self.prompts, settings.scenario, "PerformanceOnly", settings, folder,
                           self.metadata)

    def close(self) -> None:
        self.session.close()


def open_engine(args: argparse.Namespace, command: str, report: Callable[[str], None] = print) -> EngineRun:
    from .. import hardware
    from ..engines import GenerationParams
    from ..errors import UsageError
    from ..suite.runs import openorca_dataset
    from ..config.profiles import load_profile
    from ..harness.session import EngineTarget, LlmperfSession, unavailable_reason

    engines = getattr(args, options.dest_name(options.ENGINE))
    if len(engines) != 1:
        raise UsageError(f"{options.ENGINE} {','.join(engines)}", f"llmperf {command} runs one engine",
                         "name one engine; run the command once per engine")
    values = {spec.flag: getattr(args, options.dest_name(spec.flag), spec.default) for spec in options.OPTIONS}
    out = Path(values[options.OUT]).absolute()
    settings = options.Settings(
        engines=engines, model=values[options.MODEL], device=values[options.DEVICE], out=out,
        baselines=Path("baselines").absolute(), update_baselines=False, profile=values[options.PROFILE],
        endpoint=values[options.ENDPOINT], samples=values[options.SAMPLES], rootdir=Path.cwd())
    profile = load_profile(settings.profile)
    device = hardware.resolve_auto()[0] if settings.device == "auto" else settings.device
    target = EngineTarget(engines[0], device)
    why = unavailable_reason(dataclasses.replace(settings, device=device), target)
    if why is not None:
        raise UsageError(f"{options.ENGINE} {target.engine} on {device}", why, "see --llmperf-device / --llmperf-endpoint")
    session = LlmperfSession(settings, profile)
    report(f"loading {target.engine} on {device} ({session.model.name})")
    engine = session.engine(target)
    table = openorca_dataset(session)
    prompts = [list(p) for p in table.prompts]
    # One tiny generate first, so one-time start-up costs stay out of the first probe.
    engine.generate(prompts[:2], GenerationParams(max_new_tokens=2, min_new_tokens=2))
    metadata = {"model": str(session.model.path), "tokenizer": str(session.model.path), "dataset": str(table.path),
                "model_name": session.model.name, "profile": profile.source or profile.name, "command": command}
    out.mkdir(parents=True, exist_ok=True)
    return EngineRun(session, engine, prompts, profile, out, metadata)
