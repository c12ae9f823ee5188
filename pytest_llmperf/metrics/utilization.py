"""MFU and MBU: how much of the device's datasheet peak a measured throughput uses.

* MFU (model FLOPs utilization), as FlagPerf counts it:
  ``2 x parameters x tokens/s / peak FLOP/s`` (two FLOPs per parameter per token).
* MBU (model bandwidth utilization):
  ``bytes read per decode step x decode steps/s / peak memory bandwidth``,
  where a decode step reads every weight once (KV-cache reads are not counted,
  so MBU is a lower bound).

Peaks come from ``hardware.peak_for(device_name)``.  Where no peak is known
(CPUs, unknown accelerators) both are None and the note says "n/a" and why:
a guess would be worse than no number.
"""

from __future__ import annotations

import dataclasses

from ..hardware import Peak, peak_for

#: Bytes per weight for the dtypes engines report.
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "fp8": 1}


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
    steps_per_second: float | None
    """Decode steps per second (batched tokens of one forward pass count once)."""
    note: str
    """How the numbers were obtained, or why they are n/a."""

    def extra(self) -> dict:
        """The inputs, for a metric's ``extra``."""
        return {
            "parameters": self.parameters,
            "bytes_per_step": self.bytes_per_step,
            "steps_per_second": self.steps_per_second,
            "peak_flops": None if self.peak is None else self.peak.bf16_flops,
            "peak_bandwidth": None if self.peak is None else self.peak.memory_bandwidth,
            "peak_source": None if self.peak is None else self.peak.source,
            "note": self.note,
        }


def model_flops_utilization(parameters: int, tokens_per_second: float, peak_flops: float) -> float:
    return 2.0 * parameters * tokens_per_second / peak_flops


def memory_bandwidth_utilization(bytes_per_step: float, steps_per_second: float, peak_bandwidth: float) -> float:
    return bytes_per_step * steps_per_second / peak_bandwidth


def utilization(device_name: str, parameters: int, dtype: str, tokens_per_second: float | None,
                steps_per_second: float | None) -> Utilization:
    """MFU and MBU for a throughput measured on ``device_name``."""
    bytes_per_step = float(parameters * DTYPE_BYTES.get(dtype, 2))
    peak = peak_for(device_name)
    if peak is None:
        return Utilization(None, None, None, parameters, bytes_per_step, steps_per_second,
                           f"n/a: no datasheet peak known for {device_name!r} (see hardware.PEAKS)")
    mfu = None if tokens_per_second is None else model_flops_utilization(parameters, tokens_per_second, peak.bf16_flops)
    mbu = None
    if steps_per_second is not None:
        mbu = memory_bandwidth_utilization(bytes_per_step, steps_per_second, peak.memory_bandwidth)
    note = (f"datasheet peak {peak.source}: {peak.bf16_flops / 1e12:g} TFLOP/s dense bf16, "
            f"{peak.memory_bandwidth / 1e12:g} TB/s; MFU = 2 x params x tokens/s / peak; "
            "MBU = weight bytes x decode steps/s / peak (KV cache not counted)")
    if dtype not in DTYPE_BYTES:
        note += f"; dtype {dtype!r} unknown, 2 bytes per weight assumed"
    return Utilization(mfu, mbu, peak, parameters, bytes_per_step, steps_per_second, note)
