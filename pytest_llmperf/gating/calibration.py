"""Calibration: how fast this machine is *right now*, measured beside the engine's rounds.

A neighbour that takes one of two cores for the whole run slows every round of the
engine alike, so repeating rounds cannot tell it from a slower engine.  It slows a
fixed CPU workload run with the same math library and the same thread count in the
same way, so the gated value is the engine's round value divided by the calibration
rate measured around that round (docs/performance-gates.md).

On an accelerator the engine's time is spent on the device, which a CPU neighbour
barely touches: calibration is skipped there (kind ``none``, rate 1.0, the ratio is
the raw value).
"""

from __future__ import annotations

import time

MATRIX = 256
"""Side of the float32 matrices multiplied: small enough for the L2 cache of a small CPU."""
REPEATS = 25
"""Multiplications per burst: about 30 ms on a quiet 2-core runner."""
BURSTS = 8
"""Bursts per calibration; the rate is the best burst's (see ``calibration_rate``)."""
KIND = f"torch-matmul-float32-{MATRIX}x{REPEATS}-best-of-{BURSTS}"
"""Recorded in baselines: values normalized by another kind are not comparable."""
NONE = "none"


def calibration_kind(device: str) -> str:
    """``KIND`` on CPUs, ``none`` on accelerators (not calibrated)."""
    return KIND if device == "cpu" else NONE


def calibration_rate(kind: str, threads: int | None = None) -> float:
    """GFLOP/s of the fixed workload now, with ``threads`` torch threads (None: torch's current count);
    1.0 for kind ``none``.

    The best of ``BURSTS`` short bursts: a neighbour that holds a core for the whole run slows every
    burst, so the best one still shows it; a spike of a few milliseconds slows one burst, which the
    engine's round of seconds averages away too, and is ignored."""
    if kind == NONE:
        return 1.0
    if kind != KIND:
        raise ValueError(f"unknown calibration kind {kind!r} (this version measures {KIND!r})")
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        generator = torch.Generator().manual_seed(0)
        a = torch.rand(MATRIX, MATRIX, generator=generator)
        b = torch.rand(MATRIX, MATRIX, generator=generator)
        torch.mm(a, b)  # first call allocates; keep it out of the timing
        best = float("inf")
        for _ in range(BURSTS):
            start = time.perf_counter()
            for _ in range(REPEATS):
                c = torch.mm(a, b)
                a, c = c * (1.0 / MATRIX), a  # keep values bounded and each product dependent on the last
            best = min(best, time.perf_counter() - start)
    finally:
        torch.set_num_threads(before)
    return 2 * MATRIX ** 3 * REPEATS / best / 1e9
