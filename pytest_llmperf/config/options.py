"""Command-line options and ini settings: names, validating parsers, and the
frozen ``Settings`` the rest of the plugin reads.

Every option can also be set in ``[tool.pytest.ini_options]`` under the same name
with underscores (``llmperf_engine = "vllm"``); the command line wins.  A bad
value fails at parse time with the allowed values.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Callable

from .. import engines, hardware
from . import parsers, profiles
from .compare import CompareSpec, parse_compare
from ..errors import UsageError

ENGINE = "--llmperf-engine"
MODEL = "--llmperf-model"
DEVICE = "--llmperf-device"
OUT = "--llmperf-out"
BASELINES = "--llmperf-baselines"
UPDATE_BASELINES = "--llmperf-update-baselines"
STRICT_BASELINES = "--llmperf-strict-baselines"
DURATIONS = "--llmperf-durations"
PROFILE = "--llmperf-profile"
ENDPOINT = "--llmperf-endpoint"
SAMPLES = "--llmperf-samples"
SERVER_PID = "--llmperf-server-pid"
COMPARE = "--llmperf-compare"

DEVICE_CHOICES = ("auto",) + hardware.DEVICE_CLASSES


def ini_name(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def dest_name(option: str) -> str:
    return ini_name(option)


# -- parsers: each raises argparse.ArgumentTypeError (pytest shows it as a usage error) --

def parse_engines(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"no engine given; choose from {', '.join(engines.ENGINES)}")
    for name in names:
        try:
            engines.validate_engine_name(name)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(f"{exc.problem}; {exc.fix}") from None
    return tuple(dict.fromkeys(names))


def parse_device(text: str) -> str:
    value = text.strip().lower()
    if value == "npu":
        value = "ascend"
    if value not in DEVICE_CHOICES:
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; choose from {', '.join(DEVICE_CHOICES)}")
    return value


parse_samples = parsers.whole_number(0, "pass a count >= 1, or 0 for all")


parse_endpoint = parsers.parse_endpoint


def parse_profile(text: str) -> str:
    try:
        profiles.profile_path(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(f"{exc.problem}; {exc.fix}") from None
    return text


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    flag: str
    parse: Callable[[str], object] | None
    default: object
    help: str
    metavar: str | None = None


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(ENGINE, parse_engines, ("transformers",),
               f"engine(s) to test, comma-separated: {', '.join(engines.ENGINES)} (default: transformers)", "NAMES"),
    OptionSpec(MODEL, str, None, "local Hugging Face checkpoint folder (default: the embedded SmolLM2-135M-Instruct)", "PATH"),
    OptionSpec(DEVICE, parse_device, "auto",
               f"device class: {', '.join(DEVICE_CHOICES)} (auto: the accelerator present, else cpu)", "DEVICE"),
    OptionSpec(OUT, str, "llmperf-results", "folder for results.json, LoadGen logs and reports (default: llmperf-results)", "DIR"),
    OptionSpec(BASELINES, str, "baselines", "baselines folder (default: baselines)", "DIR"),
    OptionSpec(UPDATE_BASELINES, None, False, "record this run's values as the new baselines (only if the whole run passes)"),
    OptionSpec(STRICT_BASELINES, None, False,
               "a gated metric with no baseline entry fails the test (default: its verdict is NO BASELINE, "
               "with the command that records it)"),
    OptionSpec(DURATIONS, None, False,
               "print where each test's time went: engine load, warm-up, data, calibration, LoadGen runs, "
               "scoring and each round (also in results.json's durations)"),
    OptionSpec(PROFILE, parse_profile, profiles.DEFAULT_PROFILE,
               f"profile name ({', '.join(profiles.available_profiles())}) or .toml file (default: embedded)", "NAME|FILE"),
    OptionSpec(ENDPOINT, parse_endpoint, None, "base URL of an HTTP engine, e.g. http://127.0.0.1:8000/v1", "URL"),
    OptionSpec(SAMPLES, parse_samples, None, "dataset samples to use (default: the profile's; 0 = all)", "N"),
    OptionSpec(SERVER_PID, parsers.whole_number(1, "pass the process id of the server behind --llmperf-endpoint"),
               None, "process id of the HTTP engine's server on this machine, counted as the run's own CPU use "
               "by the contention meter (default: found by the port of a loopback endpoint)", "PID"),
    OptionSpec(COMPARE, parse_compare, None,
               "paired A/B: measure a reference setup beside the one under test, rounds interleaved A B B A, "
               "and judge each metric against it (IMPROVED, PASS, REGRESSED, INCONCLUSIVE) instead of the stored "
               "baselines; REF is key=value pairs: endpoint=URL, model=PATH, dtype=..., max_batch_size=N, "
               "<engine>.<setting>=VALUE (docs/paired-ab.md)", "REF"),
)


def add_options(parser) -> None:
    """Add the options to a pytest parser (``parser.getgroup``) or an argparse parser."""
    group = parser.getgroup("llmperf", "LLM accuracy and performance (pytest-llmperf)")
    for spec in OPTIONS:
        if spec.parse is None:
            group.addoption(spec.flag, action="store_true", default=None, dest=dest_name(spec.flag), help=spec.help)
            parser.addini(ini_name(spec.flag), spec.help, type="bool", default=False)
        else:
            group.addoption(spec.flag, type=spec.parse, default=None, dest=dest_name(spec.flag),
                            metavar=spec.metavar, help=spec.help)
            parser.addini(ini_name(spec.flag), spec.help, default=None)


@dataclasses.dataclass(frozen=True)
class Settings:
    """The resolved options of one session."""

    engines: tuple[str, ...]
    model: str | None
    device: str
    out: Path
    baselines: Path
    update_baselines: bool
    profile: str
    endpoint: str | None
    samples: int | None
    rootdir: Path
    strict_baselines: bool = False
    """A metric with no baseline entry fails (``--llmperf-strict-baselines``) instead of NO BASELINE."""
    server_pid: int | None = None
    """``--llmperf-server-pid``: the HTTP engine's server process, for the contention meter."""
    durations: bool = False
    """``--llmperf-durations``: the per-test, per-phase time table at the end."""
    compare: CompareSpec | None = None
    """``--llmperf-compare``: the reference side of a paired A/B session (None: judge against baselines/)."""


def read_settings(config) -> Settings:
    """Command line > ini file > default, each ini value through the same parser."""
    values = {}
    for spec in OPTIONS:
        value = config.getoption(dest_name(spec.flag))
        if value is None:
            raw = config.getini(ini_name(spec.flag))
            if spec.parse is None:
                value = bool(raw)
            elif raw not in (None, "", []):
                try:
                    value = spec.parse(str(raw))
                except argparse.ArgumentTypeError as exc:
                    raise UsageError(f"ini setting {ini_name(spec.flag)} = {raw!r}", str(exc),
                                     f"fix it in {config.inifile or 'the ini file'} or override with {spec.flag}") from None
        values[spec.flag] = spec.default if value is None else value
    if values[COMPARE] is not None and values[UPDATE_BASELINES]:
        raise UsageError(f"{COMPARE} {values[COMPARE].text} with {UPDATE_BASELINES}",
                         "a paired A/B session is judged against its reference, so it records no baselines",
                         f"drop one of them: record baselines in a session without {COMPARE}")
    rootdir = Path(str(config.rootpath))
    return Settings(
        engines=values[ENGINE],
        model=values[MODEL],
        device=values[DEVICE],
        out=_absolute(values[OUT], Path.cwd()),
        # Baselines live in the repository: a relative default is taken from its root.
        baselines=_absolute(values[BASELINES], rootdir if values[BASELINES] == "baselines" else Path.cwd()),
        update_baselines=bool(values[UPDATE_BASELINES]),
        profile=values[PROFILE],
        endpoint=values[ENDPOINT],
        samples=values[SAMPLES],
        rootdir=rootdir,
        strict_baselines=bool(values[STRICT_BASELINES]),
        server_pid=values[SERVER_PID],
        durations=bool(values[DURATIONS]),
        compare=values[COMPARE],
    )


def _absolute(path: str, base: Path) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else base / candidate
