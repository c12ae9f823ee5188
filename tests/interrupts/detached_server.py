"""A pytest plugin for the interrupt tests: a session fixture that starts a "server" in a session of
its own (a parent that ignores SIGTERM, and a child of it) and never stops it, as a careless fixture
would.  The plugin's interrupt handling must stop it anyway.  Its pids go to $LLMPERF_TEST_SERVER_PIDS.

Loaded into a real session with ``-p detached_server`` (this folder on PYTHONPATH)."""

import os
import subprocess
import sys

import pytest

SERVER = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(child.pid, flush=True)
time.sleep(600)
"""


@pytest.fixture(scope="session", autouse=True)
def detached_server():
    process = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True,
                               start_new_session=True)
    child = int(process.stdout.readline())
    with open(os.environ["LLMPERF_TEST_SERVER_PIDS"], "w") as pids:
        pids.write(f"{process.pid} {child}\n")
    yield process
    # deliberately not stopped

