"""Harness overhead: the same prompts through the same engine, bare vs the Offline SUT under LoadGen.

    python benchmarks/bench_overhead.py [--engine transformers] [--prompts 16] [--new-tokens 32] [--rounds 5]

Each round runs ``engine.generate`` on the prompts directly, then a LoadGen
Offline run (PerformanceOnly) whose one query holds the same prompts; the SUT
hands them to ``engine.generate`` in one call, so the engine sees the same
batches.  Both are called from a worker thread, as the SUT does, so the
comparison isolates LoadGen and the SUT.  Printed: tokens/s of each (LoadGen's
own "Tokens per second" for the SUT, and its wall-clock rate), and per round the
ratio SUT/bare, and the median ratio; the goal is SUT >= 0.97 x bare.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path


def in_worker_thread(function):
    result: dict = {}

    def target():
        result["value"] = function()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    return result["value"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", default="transformers")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default=None, help="checkpoint folder (default: the embedded model)")
    parser.add_argument("--prompts", type=int, default=16, help="OpenOrca embedded prompts (one batch)")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()

    from pytest_llmperf import models
    from pytest_llmperf.datasets.openorca import load_openorca
    from pytest_llmperf.engines import EngineOptions, GenerationParams, load_engine
    from pytest_llmperf.loadgen import run_loadgen, run_settings
    from pytest_llmperf.config.profiles import load_profile

    spec = models.resolve(args.model)
    tokenizer = models.load_tokenizer(spec)
    prompts = [list(p) for p in load_openorca("embedded", tokenizer, samples=args.prompts).prompts]
    engine = load_engine(args.engine, EngineOptions(str(spec.path), spec.name, args.device,
                                                    max_batch_size=len(prompts)))
    params = GenerationParams(max_new_tokens=args.new_tokens, min_new_tokens=2)
    settings = dataclasses.replace(
        run_settings(load_profile("embedded"), "Offline", "PerformanceOnly"),
        min_query_count=len(prompts), performance_sample_count=len(prompts), min_duration_ms=0,
        max_new_tokens=args.new_tokens, min_new_tokens=2, sample_concatenate_permutation=False,
    )
    in_worker_thread(lambda: engine.generate(prompts[:2], GenerationParams(max_new_tokens=2)))  # start-up costs

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as scratch:
        for round_index in range(args.rounds):
            start, cpu = time.perf_counter(), time.process_time()
            generations = in_worker_thread(lambda: engine.generate(prompts, params))
            bare_seconds, bare_cpu = time.perf_counter() - start, time.process_time() - cpu
            bare_tokens = sum(len(g.token_ids) for g in generations)
            start, cpu = time.perf_counter(), time.process_time()
            run = run_loadgen(engine, prompts, "Offline", "PerformanceOnly", settings, Path(scratch) / str(round_index))
            sut_seconds, sut_cpu = time.perf_counter() - start, time.process_time() - cpu
            rows.append({
                "round": round_index + 1,
                "bare_tokens": bare_tokens,
                "bare_tokens_per_second": bare_tokens / bare_seconds,
                "sut_tokens": run.stats.tokens,
                "sut_tokens_per_second": run.summary.tokens_per_second,
                "sut_wall_tokens_per_second": run.stats.tokens / sut_seconds,
                "valid": run.valid,
                # CPU time per token: the work done, which a busy machine disturbs less than wall time.
                "bare_cpu_ms_per_token": 1000 * bare_cpu / bare_tokens,
                "sut_cpu_ms_per_token": 1000 * sut_cpu / run.stats.tokens,
            })
            rows[-1]["ratio"] = rows[-1]["sut_tokens_per_second"] / rows[-1]["bare_tokens_per_second"]
    engine.close()

    print(f"engine {engine.info.engine} on {engine.info.device_name}, {engine.info.dtype}; "
          f"{len(prompts)} prompts x up to {args.new_tokens} new tokens, one batch")
    header = (f"{'round':>5}  {'bare tok/s':>10}  {'SUT tok/s (LoadGen)':>19}  {'SUT tok/s (wall)':>16}  "
              f"{'SUT/bare':>8}  {'CPU ms/token bare/SUT':>21}  {'tokens bare/SUT':>15}")
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['round']:>5}  {row['bare_tokens_per_second']:>10.2f}  {row['sut_tokens_per_second']:>19.2f}  "
              f"{row['sut_wall_tokens_per_second']:>16.2f}  {row['ratio']:>8.3f}  "
              f"{row['bare_cpu_ms_per_token']:>10.1f}/{row['sut_cpu_ms_per_token']:<10.1f}  {row['bare_tokens']:>7}/{row['sut_tokens']:<7}")
    bare = statistics.median(r["bare_tokens_per_second"] for r in rows)
    sut = statistics.median(r["sut_tokens_per_second"] for r in rows)
    # Rounds are paired (bare, then SUT): the median of per-round ratios cancels slow drifts in machine load.
    ratio = statistics.median(r["ratio"] for r in rows)
    print(f"median bare {bare:.2f} tok/s, median SUT {sut:.2f} tok/s (LoadGen); median SUT/bare ratio {ratio:.3f} "
          f"(goal >= 0.97: {'met' if ratio >= 0.97 else 'NOT met'})")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "bare_median": bare, "sut_median": sut,
                                               "ratio": ratio, "engine": dataclasses.asdict(engine.info)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
