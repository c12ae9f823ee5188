"""Time to verdict: the default suites, start to exit, with the breakdown the plugin records.

    python benchmarks/bench_time_to_verdict.py [--engines transformers,vllm] [--rounds 1] [-- extra pytest args]

Runs ``pytest suites -m cpu --llmperf-engine ENGINES`` in a fresh process per
round (so engine loading and process exit count), times it from start to
exit, and prints per round: the wall time, pytest's verdict, the time the
plugin recorded per phase (load, generate, score; ``timings`` in
results.json) and the slowest tests.  The goal is <= 5 minutes on a 2-core
CPU for both in-process engines.  Results of each round go to a temporary
``--llmperf-out`` folder, so the main job's ``llmperf-results/`` is left alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_S = 300.0
ROOT = Path(__file__).resolve().parent.parent


def one_round(engines: str, extra: list[str], out: Path) -> dict:
    command = [sys.executable, "-m", "pytest", "suites", "-m", "cpu", "--llmperf-engine", engines,
               "--llmperf-out", str(out), "-q", *extra]
    start = time.perf_counter()
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    verdict = next((line.strip("= ") for line in reversed(finished.stdout.splitlines())
                    if " passed" in line or " failed" in line), f"exit {finished.returncode}")
    results_file = out / "results.json"
    if not results_file.exists():
        raise SystemExit(f"pytest wrote no {results_file} (exit {finished.returncode}):\n"
                         f"{(finished.stdout + finished.stderr)[-3000:]}")
    results = json.loads(results_file.read_text(encoding="utf-8"))
    slowest = sorted(results.get("tests", []), key=lambda t: t.get("duration_s") or 0.0, reverse=True)[:5]
    return {"wall_s": wall, "exit": finished.returncode, "verdict": verdict,
            "timings": results.get("timings") or {}, "slowest": slowest}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="transformers,vllm")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest after --")
    args = parser.parse_args()

    walls = []
    for number in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory(prefix="llmperf-verdict-") as folder:
            found = one_round(args.engines, args.pytest_args, Path(folder))
        walls.append(found["wall_s"])
        phases = ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in sorted(found["timings"].items()))
        print(f"round {number}: {found['wall_s']:.1f} s wall ({found['wall_s'] / 60:.1f} min), exit {found['exit']}, "
              f"{found['verdict']}")
        print(f"  recorded time per phase: {phases or 'none'}")
        for test in found["slowest"]:
            print(f"  {test.get('duration_s') or 0.0:7.1f} s  {test['nodeid']}")
    best, worst = min(walls), max(walls)
    print(f"\nengines {args.engines}: {len(walls)} round(s), wall {best:.1f}..{worst:.1f} s; "
          f"goal <= {GOAL_S:.0f} s: {'met' if worst <= GOAL_S else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
