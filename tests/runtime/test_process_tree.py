"""process_tree: stopping a server's whole tree, a session's descendants, and never a stranger."""

from __future__ import annotations

import subprocess
import sys
import time

from pytest_llmperf.runtime import process_tree

#: A "server" in a session of its own that ignores SIGTERM and starts a child; prints the child's pid.
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(child.pid, flush=True)
time.sleep(600)
"""
#: A parent that starts a grandchild-to-be, prints its pid, and exits: the child is re-parented away.
ORPHANING = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
print(child.pid, flush=True)
"""


def start(code: str) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    return process, int(process.stdout.readline())


def test_stop_process_tree_stops_a_server_that_ignores_sigterm_and_its_child():
    server, child = start(STUBBORN)
    refs = [process_tree.process_ref(server.pid), process_tree.process_ref(child)]
    assert all(ref is not None and ref.alive() for ref in refs)
    assert {ref.pid for ref in process_tree.descendants()} >= {server.pid, child}
    began = time.monotonic()
    left = process_tree.stop_process_tree(server.pid, grace=0.5)
    took = time.monotonic() - began
    server.wait(timeout=10)
    assert left == [] and not any(ref.alive() for ref in refs)
    assert took >= 0.5, "SIGTERM was ignored: only SIGKILL after the grace period can have stopped it"


def test_a_process_re_parented_away_is_stopped_from_its_earlier_snapshot():
    """What the plugin does after an interrupt (``stop_descendants(known=...)``), on one process: the
    tree is listed when the signal comes, so a child whose parent dies meanwhile is still stopped.
    (Not ``stop_descendants`` itself here: it would stop the servers other tests of this session share.)"""
    parent, orphan = start(ORPHANING)
    parent.wait(timeout=10)
    ref = process_tree.process_ref(orphan)
    assert ref is not None and ref.alive()
    assert orphan not in {r.pid for r in process_tree.descendants()}, "re-parented: no longer found from here"
    assert process_tree.stop_processes([ref], grace=0.5) == []
    deadline = time.monotonic() + 5
    while ref.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not ref.alive()


def test_a_reused_pid_is_never_signalled():
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        real = process_tree.process_ref(bystander.pid)
        stale = process_tree.ProcessRef(real.pid, real.started - 1)  # the same pid, started at another time
        assert real.alive() and not stale.alive()
        assert process_tree.stop_processes([stale], grace=0.1) == []
        time.sleep(0.2)
        assert bystander.poll() is None and real.alive()
    finally:
        bystander.kill()
        bystander.wait()

