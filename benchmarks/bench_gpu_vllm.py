"""vLLM at GPU scale: harness overhead side by side, and Server latencies against vLLM's own.

    python benchmarks/bench_gpu_vllm.py [--model shape:llama-3.1-8b] [--prompts 1024] [--rounds 5]
                                        [--server-qps 20,60] [--server-seconds 30] [--json FILE]

Overhead: the same prompts (``--prompts`` x ``--input-tokens`` in, ``--output-tokens``
out, ignore_eos) through (1) bare ``vllm.LLM.generate``, (2) the project's vLLM engine
``generate``, (3) the Offline SUT under LoadGen over the same engine, in alternating
rounds; printed: tokens/s per round and the median ratios engine/bare and SUT/bare
(goal >= 0.99 each).  Two engines share the GPU (each gets ``--memory-fraction`` of it);
only one runs at a time.

Server: LoadGen Server runs at each ``--server-qps`` (Poisson, per-query submission)
over the project's engine; printed: LoadGen's TTFT/TPOT p50/p99 beside vLLM's own
per-request numbers (its request statistics, from the request's arrival in the
engine), and their ratio (goal: within 5%).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

# Beside this script: the same plain-thread call the CPU overhead benchmark makes (as LoadGen's SUT calls).
from bench_overhead import in_worker_thread as in_thread  # noqa: E402


def fixed_length_prompts(tokenizer, count: int, length: int) -> list[list[int]]:
    """``count`` prompts of exactly ``length`` tokens, cut from the embedded OpenOrca prompts in order."""
    from pytest_llmperf.datasets.openorca import load_openorca

    stream: list[int] = []
    for prompt in load_openorca("embedded", tokenizer).prompts:
        stream.extend(int(t) for t in prompt)
    while len(stream) < count * length:
        stream.extend(stream)
    return [stream[i * length:(i + 1) * length] for i in range(count)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="shape:llama-3.1-8b")
    parser.add_argument("--prompts", type=int, default=1024)
    parser.add_argument("--input-tokens", type=int, default=128)
    parser.add_argument("--output-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-num-seqs", type=int, default=256)
    parser.add_argument("--memory-fraction", type=float, default=0.42)
    parser.add_argument("--server-qps", default="20,60")
    parser.add_argument("--server-seconds", type=float, default=30.0)
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import vllm

    from pytest_llmperf import models
    from pytest_llmperf.engines import EngineOptions, GenerationParams, load_engine
    from pytest_llmperf.loadgen import run_loadgen, run_settings
    from pytest_llmperf.config.profiles import load_profile

    spec = models.resolve(args.model)
    tokenizer = models.load_tokenizer(spec)
    prompts = fixed_length_prompts(tokenizer, args.prompts, args.input_tokens)
    settings = {"gpu_memory_utilization": args.memory_fraction, "max_model_len": 4096}
    engine = load_engine("vllm", EngineOptions(str(spec.path), spec.name, "cuda", dtype="bfloat16",
                                               max_batch_size=args.max_num_seqs, settings=settings))
    params = GenerationParams(max_new_tokens=args.output_tokens, min_new_tokens=args.output_tokens, ignore_eos=True)
    expected_tokens = args.prompts * args.output_tokens
    profile = load_profile("embedded")
    out = Path(tempfile.mkdtemp(prefix="bench-gpu-vllm-"))
    report: dict = {"model": spec.name, "vllm": vllm.__version__, "prompts": args.prompts,
                    "input_tokens": args.input_tokens, "output_tokens": args.output_tokens, "rounds": []}

    if not args.skip_overhead:
        from vllm import LLM, SamplingParams, TokensPrompt

        bare = LLM(model=str(spec.path), tokenizer=str(spec.path), dtype="bfloat16", load_format="dummy",
                   max_num_seqs=args.max_num_seqs, enable_prefix_caching=False, **settings)
        sampling = SamplingParams(temperature=0.0, max_tokens=args.output_tokens, min_tokens=args.output_tokens,
                                  ignore_eos=True, detokenize=False)
        token_prompts = [TokensPrompt(prompt_token_ids=p) for p in prompts]
        offline = dataclasses.replace(run_settings(profile, "Offline", "PerformanceOnly"), min_duration_ms=0,
                                      min_query_count=args.prompts, performance_sample_count=args.prompts,
                                      target_qps=float(args.prompts), max_new_tokens=args.output_tokens,
                                      min_new_tokens=args.output_tokens)
        # Warm-up of each path once (graph capture is done at start; this is allocation and first-call costs).
        bare.generate(token_prompts[:8], sampling, use_tqdm=False)
        in_thread(lambda: engine.generate(prompts[:8], params))
        for round_number in range(args.rounds):
            row = {}
            start = time.perf_counter()
            outputs = bare.generate(token_prompts, sampling, use_tqdm=False)
            row["bare"] = sum(len(o.outputs[0].token_ids) for o in outputs) / (time.perf_counter() - start)
            start = time.perf_counter()
            generations = in_thread(lambda: engine.generate(prompts, params))
            row["engine"] = sum(len(g.token_ids) for g in generations) / (time.perf_counter() - start)
            run = run_loadgen(engine, prompts, "Offline", "PerformanceOnly",
                              dataclasses.replace(offline, notes=()), out / f"offline-{round_number}")
            assert run.stats.tokens == expected_tokens, run.stats
            row["sut"] = run.summary.tokens_per_second
            row["sut_wall"] = run.stats.tokens / run.seconds
            report["rounds"].append(row)
            print(f"round {round_number + 1}: bare {row['bare']:,.0f}  engine {row['engine']:,.0f}  "
                  f"Offline SUT {row['sut']:,.0f} (wall {row['sut_wall']:,.0f}) tokens/s", flush=True)
        del bare
        for name in ("engine", "sut"):
            ratios = [r[name] / r["bare"] for r in report["rounds"]]
            report[f"{name}_over_bare_median"] = statistics.median(ratios)

    report["server"] = []
    for qps in [float(q) for q in args.server_qps.split(",") if q]:
        server = dataclasses.replace(run_settings(profile, "Server", "PerformanceOnly"), target_qps=qps,
                                     min_duration_ms=int(args.server_seconds * 1000),
                                     min_query_count=int(qps * args.server_seconds),
                                     performance_sample_count=args.prompts, max_new_tokens=args.output_tokens,
                                     min_new_tokens=args.output_tokens, target_latency_percentile=0.99,
                                     ttft_latency_ms=2000, tpot_latency_ms=200)
        run = in_thread(lambda: run_loadgen(engine, prompts, "Server", "PerformanceOnly", server,
                                            out / f"server-{qps:g}"))
        own = run.stats.engine_latency_ms or {}
        row = {"qps": qps, "valid": run.valid, "queries": run.stats.samples,
               "completed_tokens_per_second": run.summary.tokens_per_second,
               "decode_steps": run.stats.decode_steps, "tokens": run.stats.tokens, "engine": own}
        for name in ("ttft", "tpot"):
            for p in (50, 99):
                row[f"{name}_p{p}_ms"] = run.summary.percentile(name, p) / 1e6
        report["server"].append(row)
        print(f"Server {qps:g} QPS ({run.stats.samples} queries, {'VALID' if run.valid else 'INVALID'}): "
              + "  ".join(f"{n.upper()} p{p} LoadGen {row[f'{n}_p{p}_ms']:.2f} ms / vLLM "
                          f"{own.get(f'{n}_p{p}', float('nan')):.2f} ms" for n in ("ttft", "tpot") for p in (50, 99)),
              flush=True)
    engine.close()

    if not args.skip_overhead:
        print(f"median engine/bare {report['engine_over_bare_median']:.4f}, "
              f"SUT/bare {report['sut_over_bare_median']:.4f} (goal >= 0.99 each)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
