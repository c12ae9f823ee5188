"""Benchmark of the paired A/B gate (``--llmperf-compare``, docs/paired-ab.md): false reds and misses.

(a) A/A: ``--llmperf-compare same`` (two loads of one setup), quiet, then beside one busy neighbour
    process (a CPU-bound spin): every REGRESSED is a false red.
(b) A/B: a real slowdown made by a real engine setting: the setup under test runs a batch of 2
    (a copy of the embedded profile), the reference a batch of 16 (``--llmperf-compare
    max_batch_size=16``): every run without REGRESSED is a miss.

Each run is one pytest session (one process, both engines loaded once) of the decode and Offline
suites on the embedded model, CPU.  The table gives, per metric, the verdicts, the median change and
the MDE at the pairs measured.

    python benchmarks/bench_paired.py                      # 3 + 2 + 4 runs, about 15 minutes on 2 cores
    python benchmarks/bench_paired.py --quiet 5 --busy 3 --ab 10 --engine vllm
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUITES = ("suites/performance/test_decode.py", "suites/performance/test_offline.py")
GATED = ("decode.tokens_per_second", "offline.tokens_per_second", "offline.samples_per_second")


def spin() -> None:
    while True:
        pass


def small_batch_profile(folder: Path) -> Path:
    """The embedded profile with a batch of 2 (the slow side of the A/B)."""
    sys.path.insert(0, str(REPO))
    from pytest_llmperf.config.profiles import profile_path

    text = re.sub(r"(?m)^max_batch_size = \d+$", "max_batch_size = 2", profile_path("embedded").read_text())
    path = folder / "batch-2.toml"
    path.write_text(text)
    return path


def session(engine: str, compare: str, out: Path, profile: Path | None) -> dict:
    command = [sys.executable, "-m", "pytest", *SUITES, "-m", "cpu", "-q", "-p", "no:cacheprovider",
               "--llmperf-engine", engine, "--llmperf-compare", compare, f"--llmperf-out={out}"]
    if profile is not None:
        command += ["--llmperf-profile", str(profile)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    try:
        metrics = json.loads((out / "results.json").read_text())["metrics"]
    except (OSError, ValueError, KeyError):
        return {"exit": done.returncode, "seconds": seconds, "paired": {}, "tail": done.stdout[-2000:]}
    paired = {m["name"]: m["extra"]["paired"] for m in metrics if m["name"] in GATED and "paired" in m.get("extra", {})}
    return {"exit": done.returncode, "seconds": seconds, "paired": paired, "tail": done.stdout[-2000:]}


def table(kind: str, runs: list[dict]) -> list[str]:
    lines = []
    for name in GATED:
        found = [r["paired"][name] for r in runs if name in r["paired"]]
        if not found:
            lines.append(f"| {kind} | {name} | not measured ({len(runs)} runs) | | | |")
            continue
        verdicts = {v: sum(1 for p in found if p["verdict"] == v) for v in ("regressed", "pass", "improved",
                                                                              "inconclusive")}
        shown = ", ".join(f"{n} {v.upper()}" for v, n in verdicts.items() if n)
        change = statistics.median(p["change"] for p in found)
        mde = statistics.median(p["mde"] for p in found)
        pairs = statistics.median(p["pairs"] for p in found)
        lines.append(f"| {kind} | {name} | {shown} | {100 * change:+.1f}% | {100 * mde:.1f}% | {pairs:g} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="transformers")
    parser.add_argument("--quiet", type=int, default=3, help="A/A runs on a quiet machine")
    parser.add_argument("--busy", type=int, default=2, help="A/A runs beside one busy neighbour process")
    parser.add_argument("--ab", type=int, default=4, help="A/B runs with the real slowdown")
    args = parser.parse_args()

    results: dict[str, list[dict]] = {"A/A quiet": [], "A/A busy neighbour": [], "A/B batch 2 vs 16": []}
    with tempfile.TemporaryDirectory(prefix="bench-paired-") as tmp:
        folder = Path(tmp)
        slow = small_batch_profile(folder)
        plan = ([("A/A quiet", "same", None, False)] * args.quiet + [("A/A busy neighbour", "same", None, True)]
                * args.busy + [("A/B batch 2 vs 16", "max_batch_size=16", slow, False)] * args.ab)
        for index, (kind, compare, profile, busy) in enumerate(plan):
            neighbour = multiprocessing.Process(target=spin, daemon=True) if busy else None
            if neighbour is not None:
                neighbour.start()
            try:
                found = session(args.engine, compare, folder / f"run-{index}", profile)
            finally:
                if neighbour is not None:
                    neighbour.terminate()
                    neighbour.join()
            results[kind].append(found)
            verdicts = {name: p["verdict"] for name, p in found["paired"].items()}
            print(f"{kind} #{index}: exit {found['exit']} in {found['seconds']:.0f} s: {verdicts}", flush=True)
            if not found["paired"]:
                print(found["tail"], flush=True)

    print()
    print(f"engine {args.engine}, embedded model, CPU; suites: {', '.join(SUITES)}")
    print("| runs | metric | verdicts | median change | median MDE | median pairs |")
    print("|---|---|---|---|---|---|")
    for kind, runs in results.items():
        for line in table(f"{kind} ({len(runs)})", runs):
            print(line)
    false_reds = sum(1 for kind in ("A/A quiet", "A/A busy neighbour") for r in results[kind]
                     for p in r["paired"].values() if p["verdict"] == "regressed")
    misses = sum(1 for r in results["A/B batch 2 vs 16"] for name in GATED
                 if r["paired"].get(name, {}).get("verdict") != "regressed")
    print(f"\nfalse reds (A/A REGRESSED): {false_reds}; misses (A/B metrics not REGRESSED): {misses}")
    return 0 if false_reds == 0 and misses == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
