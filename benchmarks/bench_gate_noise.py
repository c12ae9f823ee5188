"""Benchmark of the performance gate itself: false reds under a noisy neighbour, misses of a real slowdown.

(a) N runs of the performance suite (transformers engine, embedded model, CPU) while a
    competing CPU-bound process spins on the machine: every red run is a false red.
(b) N runs of the same suite with a slowdown of about 25% injected by a benchmark-only
    engine wrapper (``SlowEngine`` below: the transformers engine whose every forward pass
    takes a third longer), registered from outside the package through
    ``LLMPERF_EXTRA_ENGINES`` (docs/engines.md): every green run is a miss.

The wrapper reports itself as the transformers engine, so it is judged against the
transformers baselines.  Goal: 0 false reds, 0 misses.

    python benchmarks/bench_gate_noise.py            # 5 + 5 runs, about 15 minutes on 2 cores
    python benchmarks/bench_gate_noise.py --runs 2 --slowdown 0.25
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GATED = ("decode.tokens_per_second", "offline.tokens_per_second", "offline.samples_per_second",
         "server.ttft_p50", "server.tpot_p50")


class SlowEngine:
    """The transformers engine with every model forward pass slowed by ``LLMPERF_BENCH_SLOWDOWN``
    (0.25: throughput x 0.75, i.e. each pass takes 1/0.75 as long).  Benchmark only."""

    def __init__(self, options):
        from pytest_llmperf.engines.transformers_engine import TransformersEngine

        self.inner = TransformersEngine(options)
        self.info, self.eos_token_ids = self.inner.info, self.inner.eos_token_ids
        extra = 1 / (1 - float(os.environ.get("LLMPERF_BENCH_SLOWDOWN", "0.25"))) - 1
        model, forward = self.inner.model, self.inner.model.forward

        def slowed(*args, **kwargs):
            start = time.perf_counter()
            result = forward(*args, **kwargs)
            time.sleep((time.perf_counter() - start) * extra)
            return result

        model.forward = slowed

    def __getattr__(self, name):
        return getattr(self.inner, name)


def spin() -> None:
    while True:
        pass


def run_suite(engine: str, out: Path, env: dict[str, str]) -> dict:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "suites/performance", "-m", "cpu", "-q",
                           "-p", "no:cacheprovider", "--llmperf-engine", engine, f"--llmperf-out={out}"],
                          cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    try:
        metrics = json.loads((out / "results.json").read_text())["metrics"]
    except (OSError, ValueError, KeyError):
        metrics = []
    verdicts = {m["name"]: m["verdict"] for m in metrics if m["name"] in GATED}
    changes = {m["name"]: m.get("extra", {}).get("change") for m in metrics if m["name"] in GATED}
    bases = {m["name"]: m.get("extra", {}).get("basis", "") for m in metrics if m["name"] in GATED}
    contention = [c for m in metrics if m["name"] in GATED
                  for c in m.get("extra", {}).get("rounds", {}).get("contention") or [] if c is not None]
    return {"exit": done.returncode, "seconds": seconds, "verdicts": verdicts, "changes": changes, "bases": bases,
            "contention": max(contention, default=None), "tail": done.stdout[-1500:]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--slowdown", type=float, default=0.25)
    args = parser.parse_args()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), str(REPO / "benchmarks"), env.get("PYTHONPATH"))))
    env["LLMPERF_EXTRA_ENGINES"] = "slow-transformers=bench_gate_noise:SlowEngine"
    env["LLMPERF_BENCH_SLOWDOWN"] = str(args.slowdown)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-gate-") as folder:
        import multiprocessing

        for index in range(args.runs):
            neighbour = multiprocessing.Process(target=spin, daemon=True)
            neighbour.start()
            try:
                rows.append(("a: busy neighbour", index, run_suite("transformers", Path(folder) / f"a{index}", env)))
            finally:
                neighbour.terminate()
                neighbour.join()
        for index in range(args.runs):
            rows.append((f"b: {100 * args.slowdown:g}% slower", index,
                         run_suite("slow-transformers", Path(folder) / f"b{index}", env)))
    print(f"{'case':<20} {'run':>3} {'exit':>4} {'s':>5} {'busy':>5}  " + "  ".join(f"{name:<30}" for name in GATED))
    for case, index, row in rows:
        cells = []
        for name in GATED:
            change, basis = row["changes"].get(name), (row["bases"].get(name) or "-")[:3]
            cells.append(f"{row['verdicts'].get(name, '-').upper():<12} "
                         f"{'' if change is None else f'{100 * change:+.1f}%':<8} {basis:<8}")
        busy = "" if row["contention"] is None else f"{100 * row['contention']:.0f}%"
        print(f"{case:<20} {index:>3} {row['exit']:>4} {row['seconds']:>5.0f} {busy:>5}  " + "  ".join(cells))
    print("busy: the most other processes took of the CPU in any round; basis: raw or cal(ibrated) values judged")
    false_reds = sum(row["exit"] != 0 for case, _, row in rows if case.startswith("a"))
    misses = sum(row["exit"] == 0 or "fail" not in row["verdicts"].values() for case, _, row in rows
                 if case.startswith("b"))
    print(f"\nfalse reds under a busy neighbour: {false_reds}/{args.runs}; "
          f"misses of a {100 * args.slowdown:g}% slowdown: {misses}/{args.runs}")
    for case, index, row in rows:
        if (case.startswith("a") and row["exit"] != 0) or (case.startswith("b") and row["exit"] == 0):
            print(f"\n--- {case} run {index} ---\n{row['tail']}")
    return 0 if false_reds == 0 and misses == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
