"""Find and stop a process's descendants: servers a fixture started, vLLM's engine core and workers.

``stop_process_tree(pid)`` is what a fixture calls to stop a server it started
(``vllm serve``, a llama.cpp server, a loopback test server): SIGTERM to the
process, its process group (servers start in a session of their own) and every
descendant found, then SIGKILL to whatever is still alive after ``grace``
seconds.  ``stop_descendants()`` does the same for everything this process
started; the plugin calls it when a session was interrupted, so nothing it
started outlives it.

Descendants are found with psutil (``Process.children(recursive=True)``, on every
platform it supports), as the contention meter finds them.  Each one is remembered
with its start time, so a pid that was reused by an unrelated process meanwhile is
never signalled.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time

import psutil

DEFAULT_GRACE_S = 5.0
"""Seconds between SIGTERM and SIGKILL when none is given."""


@dataclasses.dataclass(frozen=True)
class ProcessRef:
    """A process as it was found: pid, and its start time (psutil's ``create_time``) to tell a reused pid apart."""

    pid: int
    started: float

    def alive(self) -> bool:
        try:
            process = psutil.Process(self.pid)
            return process.create_time() == self.started and process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False


def _ref(process: psutil.Process) -> ProcessRef | None:
    try:
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return ProcessRef(process.pid, process.create_time())
    except psutil.Error:
        return None


def process_ref(pid: int) -> ProcessRef | None:
    """``pid`` as a ``ProcessRef``, or None if it is not running."""
    try:
        return _ref(psutil.Process(pid))
    except psutil.Error:
        return None


def descendants(pid: int | None = None) -> list[ProcessRef]:
    """Every living descendant of ``pid`` (default: this process), children first; [] when it is gone."""
    try:
        children = psutil.Process(os.getpid() if pid is None else pid).children(recursive=True)
    except psutil.Error:
        return []
    return [ref for ref in map(_ref, children) if ref is not None]


def _signal(ref: ProcessRef, sig: int) -> None:
    if ref.alive():
        try:
            os.kill(ref.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_processes(refs: list[ProcessRef], grace: float = DEFAULT_GRACE_S, groups: tuple[int, ...] = ()) -> list[ProcessRef]:
    """SIGTERM ``refs`` (and process groups ``groups``), SIGKILL what is alive after ``grace`` s; return
    the processes still alive after that (normally none)."""
    for group in groups:
        _signal_group(group, signal.SIGTERM)
    for ref in refs:
        _signal(ref, signal.SIGTERM)
    deadline = time.monotonic() + max(grace, 0.0)
    while time.monotonic() < deadline and any(ref.alive() for ref in refs):
        time.sleep(0.05)
    for group in groups:
        _signal_group(group, signal.SIGKILL)
    for ref in refs:
        _signal(ref, signal.SIGKILL)
    deadline = time.monotonic() + 2.0  # SIGKILL is not refused; give the kernel a moment to finish it
    while time.monotonic() < deadline and any(ref.alive() for ref in refs):
        time.sleep(0.02)
    return [ref for ref in refs if ref.alive()]


def stop_process_tree(pid: int, grace: float = DEFAULT_GRACE_S) -> list[ProcessRef]:
    """Stop ``pid``, its process group where it leads one, and all its descendants (see the module doc).

    The descendants are listed before anything is signalled: once a parent dies its children are
    re-parented and could no longer be found from it."""
    root = process_ref(pid)
    refs = ([root] if root is not None else []) + descendants(pid)
    groups = ()
    try:
        if os.getpgid(pid) == pid:
            groups = (pid,)
    except (ProcessLookupError, PermissionError, OSError):
        pass
    return stop_processes(refs, grace, groups)


def stop_descendants(grace: float = DEFAULT_GRACE_S, known: list[ProcessRef] = ()) -> list[ProcessRef]:
    """Stop every descendant of this process (and the ``known`` ones, found earlier); return survivors."""
    refs = list(dict.fromkeys([*known, *descendants()]))
    # Process groups a descendant leads (a server started with setsid): their members go too.
    groups = tuple(ref.pid for ref in refs if _leads_group(ref.pid))
    return stop_processes(refs, grace, groups)


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except (ProcessLookupError, PermissionError, OSError):
        return False

