"""MFU and MBU: how much of the device's datasheet peak a measured throughput uses.

* MFU (model FLOPs utilization), as FlagPerf counts it:
  ``2 x parameters x tokens/s / peak FLOP/s`` (two FLOPs per parameter per token).
* MBU (model bandwidth utilization):
  ``(weight bytes x decode steps/s + KV-cache bytes read/s) / peak memory bandwidth``,
  where a decode step reads every weight once, and each generated token reads
  the KV cache of every position before it (prompt and earlier output).  The
  KV-cache term is counted where the run knows the positions read and the
  model's config gives its KV size; otherwise MBU counts weights only (a
  lower bound) and the note says so.

Peaks come from ``hardware.peak_for(device_name)``.  Where no peak is known
(CPUs, unknown accelerators) both are None and the note says "n/a" and why:
a guess would be worse than no number.
"""

from __future__ import annotations

import dataclasses

from ..hardware import Peak, peak_for

#: Bytes per weight for the dtypes engines report.
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "fp8": 1}
#: Weight formats of quantized checkpoints (vLLM's ``quantization``): bytes per weight, and whether
#: their matrix products run on the FP8 tensor units (then MFU is against the FP8 peak).
QUANTIZED_WEIGHTS = {"fp8": (1, True), "fbgemm_fp8": (1, True), "modelopt": (1, True)}
#: KV-cache dtypes (vLLM's ``kv_cache_dtype``) and their bytes per value; "auto" = the model's dtype.
KV_DTYPE_BYTES = {"fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "float16": 2, "bfloat16": 2, "float32": 4}


def kv_bytes_per_position(config: dict, dtype: str, kv_cache_dtype: str = "auto") -> float | None:
    """Bytes the KV cache holds per token position: K and V, every layer, every KV head.

    ``config`` is a Hugging Face config.json; None where it lacks the fields."""
    try:
        layers = int(config["num_hidden_layers"])
        heads = int(config.get("num_key_value_heads") or config["num_attention_heads"])
        head_dim = int(config.get("head_dim") or int(config["hidden_size"]) // int(config["num_attention_heads"]))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    per_value = KV_DTYPE_BYTES.get(kv_cache_dtype) or DTYPE_BYTES.get(dtype, 2)
    return float(2 * layers * heads * head_dim * per_value)


def kv_positions_read(prompt_length: int, generated: int) -> int:
    """Cached positions read while generating ``generated`` tokens after a prompt: token i
    (0-based) attends to ``prompt_length + i`` earlier positions."""
    return generated * prompt_length + generated * (generated - 1) // 2


@dataclasses.dataclass(frozen=True)
class Utilization:
    """MFU and MBU of one measurement, with the inputs that produced them."""

    mfu: float | None
    """Fraction of peak FLOP/s (0..1), or None when no peak is known."""
    mbu: float | None
    """Fraction of peak memory bandwidth (0..1), or None when no peak or no step rate is known."""
    peak: Peak | None
    """The datasheet peak used."""
    parameters: int
    bytes_per_step: float
    """Weight bytes read per decode step (parameters x bytes per weight)."""
    kv_bytes_per_second: float | None
    steps_per_second: float | None
    """Decode steps per second (batched tokens of one forward pass count once)."""
    note: str
    """How the numbers were obtained, or why they are n/a."""
    peak_flops: float | None = None
    """The FLOP/s peak MFU is against (bf16, or FP8 for FP8-quantized weights), per device."""

    def extra(self) -> dict:
        """The inputs, for a metric's ``extra``."""
        return {
            "parameters": self.parameters,
            "bytes_per_step": self.bytes_per_step,
            "kv_bytes_per_second": self.kv_bytes_per_second,
            "steps_per_second": self.steps_per_second,
            "peak_flops": self.peak_flops if self.peak_flops is not None else (
                None if self.peak is None else self.peak.bf16_flops),
            "peak_bandwidth": None if self.peak is None else self.peak.memory_bandwidth,
            "peak_source": None if self.peak is None else self.peak.source,
            "note": self.note,
        }


def model_flops_utilization(parameters: int, tokens_per_second: float, peak_flops: float) -> float:
    return 2.0 * parameters * tokens_per_second / peak_flops


def memory_bandwidth_utilization(bytes_per_step: float, steps_per_second: float, peak_bandwidth: float) -> float:
    return bytes_per_step * steps_per_second / peak_bandwidth


def utilization(device_name: str, parameters: int, dtype: str, tokens_per_second: float | None,
                steps_per_second: float | None, kv_bytes_per_second: float | None = None,
                devices: int = 1, quantization: str | None = None) -> Utilization:
    """MFU and MBU for a throughput measured on ``device_name`` (``devices`` of them: peaks add up).

    ``quantization`` (vLLM's, e.g. ``fp8``): weights of that format count their own bytes (1 for FP8,
    not the activation dtype's 2), and FP8 matrix work is measured against the FP8 peak."""
    weight_bytes, fp8_math = QUANTIZED_WEIGHTS.get(quantization or "", (DTYPE_BYTES.get(dtype, 2), False))
    bytes_per_step = float(parameters * weight_bytes)
    peak = peak_for(device_name)
    if peak is None:
        return Utilization(None, None, None, parameters, bytes_per_step, kv_bytes_per_second, steps_per_second,
                           f"n/a: no datasheet peak known for {device_name!r} (see hardware.PEAKS)")
    if fp8_math and peak.fp8_flops is None:
        return Utilization(None, None, peak, parameters, bytes_per_step, kv_bytes_per_second, steps_per_second,
                           f"n/a: {peak.source} gives no FP8 peak for quantization={quantization}")
    peak_flops = peak.fp8_flops if fp8_math else peak.bf16_flops
    flops, bandwidth = peak_flops * devices, peak.memory_bandwidth * devices
    mfu = None if tokens_per_second is None else model_flops_utilization(parameters, tokens_per_second, flops)
    mbu = None
    if steps_per_second is not None:
        mbu = (memory_bandwidth_utilization(bytes_per_step, steps_per_second, bandwidth)
               + (kv_bytes_per_second or 0.0) / bandwidth)
    kv = ("KV-cache bytes read/s included" if kv_bytes_per_second is not None
          else "KV cache not counted: a lower bound")
    math_kind = "FP8" if fp8_math else "bf16"
    note = (f"datasheet peak {peak.source}: {peak_flops / 1e12:g} TFLOP/s dense {math_kind}, "
            f"{peak.memory_bandwidth / 1e12:g} TB/s{f' per device, {devices} devices' if devices > 1 else ''}; "
            f"MFU = 2 x params x tokens/s / peak; MBU = (weight bytes x decode steps/s + KV bytes/s) / peak ({kv})")
    if quantization:
        note += f"; quantization={quantization}: {weight_bytes} byte(s) per weight"
    if dtype not in DTYPE_BYTES and not quantization:
        note += f"; dtype {dtype!r} unknown, 2 bytes per weight assumed"
    return Utilization(mfu, mbu, peak, parameters, bytes_per_step, kv_bytes_per_second, steps_per_second, note,
                       peak_flops)
