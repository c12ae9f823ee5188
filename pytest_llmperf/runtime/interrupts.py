"""Ctrl-C and CI cancellation (SIGINT, SIGTERM): stop the session at once, keep what was measured.

The plugin installs ``handle_signal`` for SIGINT and SIGTERM while a session
runs.  The first signal raises ``KeyboardInterrupt`` on the main thread, as
Python's own SIGINT handler does, so pytest ends the session the way it ends any
Ctrl-C (``KeyboardInterrupt``, exit status 2) and the plugin's hooks record the
run as ``interrupted``.  Work that runs off the main thread learns of it from
``requested()``; a LoadGen run cancels its queries and tells the engine to abort
(``loadgen.runner``).  A second signal does not wait for any of that: it marks
results.json, stops every descendant process and ends the process at once.

A LoadGen run that does not return after its queries were cancelled (a Server
schedule sleeps until its last query is due) is left behind on its thread
(``abandoned``).  ``end_session``, the plugin's last act, stops every descendant
and then ends an interrupted process with ``os._exit`` once pytest has reported
and the exit handlers ran: interpreter shutdown would crash in the C++ threads
of an abandoned LoadGen run, and takes seconds with torch and vLLM loaded.
docs/loadgen.md says why.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import signal
import sys
import threading
from typing import Callable

from . import process_tree

SIGNALS = (signal.SIGINT, signal.SIGTERM)
INTERRUPTED_EXIT_STATUS = 2
"""pytest's ExitCode.INTERRUPTED: also the status of a second signal's immediate exit."""
STOP_GRACE_S = 1.5
"""Seconds a descendant gets between SIGTERM and SIGKILL once the session was interrupted
(GitHub Actions sends SIGKILL 10 s after its SIGINT)."""
HARD_STOP_GRACE_S = 0.5
"""The same after a second signal."""


@dataclasses.dataclass
class _State:
    signal_name: str | None = None
    at: str | None = None
    count: int = 0
    abandoned: list[str] = dataclasses.field(default_factory=list)
    """Folders of LoadGen runs left running on their thread."""
    known: list[process_tree.ProcessRef] = dataclasses.field(default_factory=list)
    """Descendants when the first signal came (a child re-parented later is still stopped)."""
    on_hard_stop: list[Callable[[str], None]] = dataclasses.field(default_factory=list)
    previous: dict[int, object] = dataclasses.field(default_factory=dict)


_state = _State()
_requested = threading.Event()
_depth = 0  # nested sessions that installed the handlers


def requested() -> bool:
    """True once SIGINT or SIGTERM arrived in this session."""
    return _requested.is_set()


def signal_name() -> str | None:
    """``SIGINT`` or ``SIGTERM`` (the first signal received), None before any."""
    return _state.signal_name


def received_at() -> str | None:
    return _state.at


def install() -> bool:
    """Handle SIGINT and SIGTERM in this process (main thread only); False where that is not possible.

    Sessions nest (pytester runs one inside another): only the outermost installs and uninstalls."""
    global _depth
    if threading.current_thread() is not threading.main_thread():
        return False
    if _depth == 0:
        reset()
        for sig in SIGNALS:
            _state.previous[sig] = signal.getsignal(sig)
            signal.signal(sig, handle_signal)
    _depth += 1
    return True


def uninstall() -> None:
    """Give the signals back to the handlers found by the outermost ``install``."""
    global _depth
    if threading.current_thread() is not threading.main_thread() or _depth == 0:
        return
    _depth -= 1
    if _depth:
        return
    for sig, handler in _state.previous.items():
        if signal.getsignal(sig) is handle_signal:
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
    _state.previous.clear()


def reset() -> None:
    """Forget an earlier session's signals (the outermost session starting again in this process)."""
    global _state
    previous = _state.previous
    _state = _State(previous=previous)
    _requested.clear()


def on_hard_stop(callback: Callable[[str], None]) -> None:
    """Call ``callback(signal name)`` before a second signal ends the process (quick work only)."""
    _state.on_hard_stop.append(callback)


def abandoned(folder: str) -> None:
    """A LoadGen run was left running: the process must end without interpreter shutdown."""
    _state.abandoned.append(folder)


def handle_signal(signum: int, _frame) -> None:
    """The handler: first signal -> ``KeyboardInterrupt``; a second -> stop everything now."""
    name = signal.Signals(signum).name
    _state.count += 1
    if _state.count > 1:
        hard_stop(name)
    from .results import now_iso

    _state.signal_name, _state.at = name, now_iso()
    _state.known = process_tree.descendants()
    _requested.set()
    raise KeyboardInterrupt(name) if signum != signal.SIGINT else KeyboardInterrupt()


def hard_stop(name: str) -> None:
    """A second signal: mark the results, stop every descendant, end the process (status 2)."""
    _write(f"\n{name} again: stopping now, without waiting for running work\n")
    for callback in list(_state.on_hard_stop):
        try:
            callback(name)
        except Exception:  # ending now matters more than any record
            pass
    process_tree.stop_descendants(HARD_STOP_GRACE_S, _state.known)
    _flush()
    os._exit(INTERRUPTED_EXIT_STATUS)


def end_session() -> None:
    """At the very end of an interrupted session: stop what it started, run the exit handlers, flush
    the output and end the process (status 2); nothing when no signal came."""
    if not requested():
        return
    for folder in _state.abandoned:
        _write(f"llmperf: the LoadGen run in {folder} was left running when interrupted; its logs are incomplete\n")
    left = process_tree.stop_descendants(STOP_GRACE_S, _state.known)
    if left:
        _write(f"llmperf: {len(left)} descendant process(es) did not stop: "
               f"{', '.join(str(ref.pid) for ref in left)}\n")
    # Interpreter shutdown would crash in the C++ threads of an abandoned LoadGen run, and takes
    # seconds with torch and vLLM loaded (measured: 2.9 s after a vLLM session): leave now.
    atexit._run_exitfuncs()
    _flush()
    os._exit(INTERRUPTED_EXIT_STATUS)


def _write(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
