"""How much of the machine other processes took while a round ran.

A round is *clean* when the rest of the machine (every process outside this one and
its descendants, and the hypervisor's steal time) used less than
``[performance] max_contention`` of the machine's CPU time during it.  Clean rounds
on both sides of a comparison can be judged on their raw values, which are several
times less noisy than values divided by a calibration; rounds the neighbours shared
are judged on the calibrated ratio (``gating.rounds``, docs/performance-gates.md).

Read from ``/proc/stat`` (the machine) and ``psutil`` (this process tree).  Where
either is missing the contention is unknown (``None``) and rounds count as shared.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PROC_STAT = Path("/proc/stat")
_IDLE_COLUMNS = (3, 4)
"""idle and iowait among ``cpu`` line columns user nice system idle iowait irq softirq steal."""


def _machine_jiffies() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine since boot, steal counted as busy."""
    try:
        first = PROC_STAT.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not first or first[0] != "cpu":
        return None
    ticks = [float(v) for v in first[1:9]]  # guest time is already inside user
    per_second = os.sysconf("SC_CLK_TCK")
    total = sum(ticks) / per_second
    idle = sum(ticks[i] for i in _IDLE_COLUMNS) / per_second
    return total - idle, total


def _tree_cpu_seconds() -> float | None:
    """CPU seconds used so far by this process and its live descendants (vLLM's engine core, servers)."""
    try:
        import psutil
    except ImportError:
        return None
    me = psutil.Process()
    seconds = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            seconds += sum(child.cpu_times()[:2])
        except psutil.Error:
            continue  # gone meanwhile: its time is lost, which can only overstate contention
    return seconds


class ContentionMeter:
    """``start()`` before a round, ``stop()`` after it: the fraction of the machine's CPU time
    others used in between (0 = nobody, 1 = every core), or ``None`` where it cannot be read."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._start: tuple[tuple[float, float], float, float] | None = None

    def start(self) -> None:
        if not self.enabled:
            self._start = None
            return
        machine, mine = _machine_jiffies(), _tree_cpu_seconds()
        self._start = None if machine is None or mine is None else (machine, mine, time.monotonic())

    def stop(self) -> float | None:
        if self._start is None:
            return None
        (busy0, total0), mine0, _ = self._start
        machine, mine = _machine_jiffies(), _tree_cpu_seconds()
        self._start = None
        if machine is None or mine is None or machine[1] <= total0:
            return None
        busy, total = machine
        others = (busy - busy0) - (mine - mine0)
        return min(1.0, max(0.0, others / (total - total0)))


def host_id() -> str:
    """A short hash of this machine's host name: raw values are compared only on the host that recorded them."""
    import hashlib
    import socket

    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:12]


def all_clean(contention: list[float | None] | None, limit: float) -> bool:
    """Every round's contention is known and below ``limit``."""
    return bool(contention) and all(c is not None and c < limit for c in contention)  # type: ignore[union-attr]
