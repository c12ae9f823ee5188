"""Atomic writes: a process killed mid-write leaves the previous file intact."""

import json
import signal
import subprocess
import sys
import textwrap
import time

from pytest_llmperf.runtime import atomic

WRITER = textwrap.dedent("""
    import sys
    from pytest_llmperf.runtime import atomic
    path = sys.argv[1]
    print("ready", flush=True)
    version = 1
    while True:  # rewrite a large file over and over until killed
        version += 1
        atomic.write_json(path, {"version": version, "payload": "x" * 20_000_000})
""")


def test_killed_writer_leaves_a_complete_file(tmp_path):
    target = tmp_path / "results.json"
    atomic.write_json(target, {"version": 1, "payload": "previous"})
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "ready"
    time.sleep(1.5)  # well inside a write of 20 MB
    writer.send_signal(signal.SIGKILL)
    writer.wait(30)
    data = json.loads(target.read_text())  # parses: never half a file
    assert data["version"] >= 1
    assert data["payload"] in ("previous", "x" * 20_000_000)


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "baseline.json"
    atomic.write_json(target, {"ok": True})
    try:
        atomic.write_json(target, {"bad": float("nan")})  # strict JSON refuses NaN before anything is replaced
    except ValueError:
        pass
    assert json.loads(target.read_text()) == {"ok": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline.json"]


def test_written_files_follow_the_umask_not_private(tmp_path):
    atomic.write_text(tmp_path / "r.json", "{}")
    assert (tmp_path / "r.json").stat().st_mode & 0o044 == 0o044
