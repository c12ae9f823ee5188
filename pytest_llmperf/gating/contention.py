"""How much of the machine other processes took while a round ran.

A round is *clean* when the rest of the machine (every process outside this one and
its descendants, and the hypervisor's steal time) used less than
``[performance] max_contention`` of the machine's CPU time during it.  Clean rounds
on both sides of a comparison can be judged on their raw values, which are several
times less noisy than values divided by a calibration; rounds the neighbours shared
are judged on the calibrated ratio (``gating.rounds``, docs/performance-gates.md).

Read from ``/proc/stat`` (the machine) and ``psutil`` (this process tree).  Where
either is missing the contention is unknown (``None``) and rounds count as shared.

An HTTP engine's server is no descendant of this process when it was started
beside pytest (``python -m pytest_llmperf.engines.servers ... -- pytest ...``, or by hand):
its process tree is counted as this run's too (``ContentionMeter(pids=...)``), found
by the port it listens on for a loopback endpoint (``server_pids``) or named with
``--llmperf-server-pid``.  A server on another host uses no CPU here.
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


def _tree_cpu_seconds(pids: tuple[int, ...] = ()) -> float | None:
    """CPU seconds used so far by this process, the processes ``pids`` and all their live descendants
    (vLLM's engine core, servers); each process counted once."""
    try:
        import psutil
    except ImportError:
        return None
    roots = [psutil.Process()]
    for pid in pids:
        try:
            roots.append(psutil.Process(pid))
        except psutil.Error:
            continue  # the server is gone: its time is lost, which can only overstate contention
    seen: set[int] = set()
    seconds = 0.0
    for root in roots:
        try:
            members = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for process in members:
            if process.pid in seen:
                continue
            seen.add(process.pid)
            try:
                seconds += sum(process.cpu_times()[:2])
            except psutil.Error:
                continue  # gone meanwhile: its time is lost, which can only overstate contention
    return seconds


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "0.0.0.0")


def server_pids(endpoint: str) -> tuple[int, ...] | None:
    """The processes listening on ``endpoint``'s port when it is on this machine (loopback); ``()`` for a
    server on another host (it uses no CPU here); None when a local server's process cannot be found."""
    from urllib.parse import urlparse

    parsed = urlparse(endpoint)
    if parsed.hostname not in LOOPBACK_HOSTS:
        return ()
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        import psutil

        connections = psutil.net_connections(kind="tcp")
    except (ImportError, OSError, RuntimeError):
        return None
    found = tuple(sorted({c.pid for c in connections
                          if c.pid and c.status == "LISTEN" and c.laddr and c.laddr.port == port}))
    return found or None


class ContentionMeter:
    """``start()`` before a round, ``stop()`` after it: the fraction of the machine's CPU time
    others used in between (0 = nobody, 1 = every core), or ``None`` where it cannot be read.

    ``pids``: processes outside this one's tree whose CPU time is this run's too (an HTTP engine's server)."""

    def __init__(self, enabled: bool = True, pids: tuple[int, ...] = ()) -> None:
        self.enabled = enabled
        self.pids = tuple(pids)
        self._start: tuple[tuple[float, float], float, float] | None = None

    def start(self) -> None:
        if not self.enabled:
            self._start = None
            return
        machine, mine = _machine_jiffies(), _tree_cpu_seconds(self.pids)
        self._start = None if machine is None or mine is None else (machine, mine, time.monotonic())

    def stop(self) -> float | None:
        if self._start is None:
            return None
        (busy0, total0), mine0, _ = self._start
        machine, mine = _machine_jiffies(), _tree_cpu_seconds(self.pids)
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
