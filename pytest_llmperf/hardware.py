"""Which hardware is present, what it is, and what it can do at peak.

Detection answers with the check it made, so a skipped test can say exactly
what was looked for (``torch.cuda.is_available() is False``).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform
from typing import Literal

DeviceClass = Literal["cpu", "cuda", "rocm", "ascend"]
DEVICE_CLASSES: tuple[DeviceClass, ...] = ("cpu", "cuda", "rocm", "ascend")

#: Environment variable that limits which devices a process sees, per class.
VISIBLE_DEVICES_ENV = {
    "cuda": "CUDA_VISIBLE_DEVICES",
    "rocm": "HIP_VISIBLE_DEVICES",
    "ascend": "ASCEND_RT_VISIBLE_DEVICES",
}


@dataclasses.dataclass(frozen=True)
class Detection:
    available: bool
    check: str
    """The check that was made and its answer, e.g. ``torch.cuda.is_available() is False``."""


@dataclasses.dataclass(frozen=True)
class Peak:
    """Datasheet peaks of one accelerator (dense, no sparsity)."""

    bf16_flops: float
    """Dense bf16/fp16 tensor FLOP/s."""
    memory_bandwidth: float
    """Bytes/s."""
    source: str
    fp8_flops: float | None = None
    """Dense FP8 tensor FLOP/s (None: no FP8 matrix units)."""


#: Datasheet figures. Matched against the device name, first match wins.
PEAKS: tuple[tuple[str, Peak], ...] = (
    ("H200", Peak(989.4e12, 4.8e12, "NVIDIA H200 SXM datasheet", 1978.9e12)),
    ("H100 NVL", Peak(835e12, 3.9e12, "NVIDIA H100 NVL datasheet", 1670e12)),
    ("H100 PCIe", Peak(756e12, 2.0e12, "NVIDIA H100 PCIe datasheet", 1513e12)),
    ("H100", Peak(989.4e12, 3.35e12, "NVIDIA H100 SXM datasheet", 1978.9e12)),
    ("A100-SXM4-80GB", Peak(312e12, 2.039e12, "NVIDIA A100 80GB SXM datasheet")),
    ("A100 80GB PCIe", Peak(312e12, 1.935e12, "NVIDIA A100 80GB PCIe datasheet")),
    ("A100", Peak(312e12, 1.555e12, "NVIDIA A100 40GB datasheet")),
    ("A800", Peak(312e12, 2.039e12, "NVIDIA A800 80GB SXM datasheet")),
    ("MI325X", Peak(1307.4e12, 6.0e12, "AMD Instinct MI325X datasheet", 2614.9e12)),
    ("MI300X", Peak(1307.4e12, 5.3e12, "AMD Instinct MI300X datasheet", 2614.9e12)),
    ("910B", Peak(313e12, 1.6e12, "Huawei Ascend 910B (published figures)")),
)


def peak_for(device_name: str) -> Peak | None:
    """Datasheet peak for a device name, or None (then MFU/MBU read "n/a")."""
    for needle, peak in PEAKS:
        if needle.lower() in device_name.lower():
            return peak
    return None


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


@functools.lru_cache(maxsize=None)
def detect(device: DeviceClass) -> Detection:
    """Is a device of this class usable by torch in this process?"""
    if device == "cpu":
        return Detection(True, "the CPU is always present")
    torch = _torch()
    if torch is None:
        return Detection(False, "torch is not installed (pip install torch)")
    if device == "cuda":
        if getattr(torch.version, "hip", None):
            return Detection(False, f"torch.version.hip is {torch.version.hip!r} (a ROCm build, not CUDA)")
        ok = torch.cuda.is_available()
        return Detection(ok, f"torch.cuda.is_available() is {ok}")
    if device == "rocm":
        hip = getattr(torch.version, "hip", None)
        if not hip:
            return Detection(False, "torch.version.hip is None (torch was not built for ROCm)")
        ok = torch.cuda.is_available()
        return Detection(ok, f"torch.cuda.is_available() is {ok} on ROCm torch {hip}")
    if device == "ascend":
        try:
            import torch_npu  # noqa: F401  (registers torch.npu)
        except ImportError:
            return Detection(False, "torch_npu is not importable (pip install torch-npu)")
        ok = bool(torch.npu.is_available())
        return Detection(ok, f"torch.npu.is_available() is {ok}")
    raise ValueError(f"unknown device class {device!r}; known: {', '.join(DEVICE_CLASSES)}")


def resolve_auto() -> tuple[DeviceClass, str]:
    """The device ``--llmperf-device auto`` stands for, and why."""
    for device in ("cuda", "rocm", "ascend"):
        found = detect(device)
        if found.available:
            return device, found.check
    return "cpu", "no accelerator found (" + "; ".join(detect(d).check for d in ("cuda", "rocm", "ascend")) + ")"


def torch_device(device: DeviceClass, index: int = 0) -> str:
    """The torch device string: ROCm torch also calls its GPUs ``cuda``."""
    return {"cpu": "cpu", "cuda": f"cuda:{index}", "rocm": f"cuda:{index}", "ascend": f"npu:{index}"}[device]


@functools.lru_cache(maxsize=None)
def device_name(device: DeviceClass) -> str:
    """Marketing name of the device (``NVIDIA H100 80GB HBM3``) or the CPU's model name."""
    if device == "cpu":
        return _cpu_name()
    torch = _torch()
    if device in ("cuda", "rocm"):
        return torch.cuda.get_device_name(0)
    if device == "ascend":
        return torch.npu.get_device_name(0)
    return device


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def pin_worker(device: DeviceClass, worker_index: int) -> str | None:
    """Pin xdist worker N to device N through its visibility variable.

    Must run before any engine initialises the device runtime.  When the user
    already narrowed the devices (``CUDA_VISIBLE_DEVICES=4,5,6,7``), worker N
    takes the N-th of those.  Returns ``VAR=value`` as set, or None for CPUs.
    """
    variable = VISIBLE_DEVICES_ENV.get(device)
    if variable is None:
        return None
    listed = [d for d in os.environ.get(variable, "").split(",") if d.strip()]
    chosen = listed[worker_index % len(listed)] if listed else str(worker_index)
    os.environ[variable] = chosen
    return f"{variable}={chosen}"


# -- CPU threads of in-process engines --------------------------------------------

XDIST_WORKERS_VARIABLE = "PYTEST_XDIST_WORKER_COUNT"


def cpu_threads() -> tuple[int, str]:
    """(threads, why) for an in-process engine's math library on the CPU.

    ``OMP_NUM_THREADS`` wins when set; otherwise the cores this process may run on
    (its affinity mask, not the machine's count) shared among pytest-xdist workers.
    Two processes that each run as many OpenMP threads as the machine has cores slow
    each other down by an order of magnitude (each thread waits for the other at every
    operation), so a worker never takes more than its share."""
    import os

    requested = os.environ.get("OMP_NUM_THREADS", "").strip()
    if requested.isdigit() and int(requested) > 0:
        return int(requested), "OMP_NUM_THREADS"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = os.environ.get(XDIST_WORKERS_VARIABLE, "").strip()
    workers_count = int(workers) if workers.isdigit() and int(workers) > 0 else 1
    threads = max(1, cores // workers_count)
    why = f"{cores} usable cores" + (f" / {workers_count} xdist workers" if workers_count > 1 else "")
    return threads, why
