"""The vLLM engine's settings: ``AsyncEngineArgs`` from the run's options and the profile's ``[engine.vllm]``
table, the settings that name a baseline file of their own, and the device class vLLM runs on."""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from ..models import random_weights_seed
from .base import EngineOptions

#: The settings docs/engines.md describes; any other AsyncEngineArgs field is accepted too.
KNOWN_SETTINGS = (
    "tensor_parallel_size", "dtype", "kv_cache_dtype", "quantization", "max_model_len",
    "gpu_memory_utilization", "kv_cache_memory_bytes", "enforce_eager", "max_num_seqs",
    "enable_prefix_caching", "max_logprobs",
)


DEFAULT_TOP_K = 20
"""Log-probabilities returned per position by ``score_path`` (vLLM's default ``max_logprobs``)."""


#: On CPU, inductor compilation costs minutes at start-up and measured no faster decode.
CPU_DEFAULTS = {"enforce_eager": True}


VLLM_DEVICES = {"cpu": "cpu", "cuda": "cuda", "rocm": "rocm", "npu": "ascend"}


#: Settings that change the numbers and so name a baseline file of their own, with their defaults.
KEY_SETTINGS = {"kv_cache_dtype": "auto", "quantization": None, "tensor_parallel_size": 1}


def key_options(arguments: dict[str, Any]) -> dict[str, str]:
    """The ``KEY_SETTINGS`` that differ from their defaults in ``arguments`` (``EngineInfo.key_options``)."""
    found = {}
    for name, default in KEY_SETTINGS.items():
        value = arguments.get(name, default)
        if value is not None and str(value) != str(default):
            found[name] = str(value)
    return found


def engine_arguments(options: EngineOptions) -> dict[str, Any]:
    """``AsyncEngineArgs`` keyword arguments from the options and the profile's ``[engine.vllm]``."""
    import dataclasses

    from vllm.engine.arg_utils import AsyncEngineArgs

    settings = dict(options.settings)
    fields = {f.name for f in dataclasses.fields(AsyncEngineArgs)}
    unknown = sorted(set(settings) - fields)
    if unknown:
        raise UsageError(
            f"[engine.vllm] {unknown[0]}", "is not a vLLM engine argument",
            f"use one of {', '.join(KNOWN_SETTINGS)} (or another AsyncEngineArgs field); see --llmperf-profile",
        )
    arguments: dict[str, Any] = {
        "model": options.model_path,
        "tokenizer": options.model_path,
        "served_model_name": options.model_name,
        "enable_prefix_caching": False,
        "max_num_seqs": options.max_batch_size,
        "max_logprobs": DEFAULT_TOP_K,
        "disable_log_stats": True,
    }
    # The package's convention (float32 on CPU, bfloat16 on accelerators) rather than the checkpoint's
    # dtype: on CPU, bfloat16 vLLM is not batch-invariant (batched and single prompts diverge at near-ties).
    arguments["dtype"] = options.resolved_dtype()
    if options.device == "cpu":
        arguments.update(CPU_DEFAULTS)
    if random_weights_seed(options.model_path) is not None:
        # A random-weight model or a shape has no weights on disk: vLLM draws its own.
        arguments["load_format"] = "dummy"
    arguments.update(settings)
    return arguments


def device_class() -> str:
    from vllm.platforms import current_platform

    if current_platform.is_rocm():
        return "rocm"
    return VLLM_DEVICES.get(current_platform.device_type, current_platform.device_type)
