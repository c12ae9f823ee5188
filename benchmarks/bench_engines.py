"""Start-up time and throughput of each engine, side by side, on the embedded model.

    python benchmarks/bench_engines.py                       # transformers, vllm, openai (a vllm serve it starts)
    python benchmarks/bench_engines.py --engines vllm --batch 64 --new-tokens 64

For each engine: seconds to load (for openai: to start ``vllm serve`` and
connect), the first generate (vLLM warms up there), decode throughput of one
batch with a fixed output length, and TTFT / TPOT of a single prompt.  Engines
run one after another, each closed before the next, so their memory never
adds up.  Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

QUESTIONS = (
    "Explain in three sentences why the sky is blue.",
    "Write a short poem about a lighthouse.",
    "List five uses of a paperclip.",
    "Describe how a bicycle gear works.",
)


def measure(name: str, model, batch: int, new_tokens: int) -> dict:
    from pytest_llmperf.datasets.chat import chat_prompt_ids
    from pytest_llmperf.engines import EngineOptions, GenerationParams, load_engine
    from pytest_llmperf.config.profiles import load_profile

    settings = dict(load_profile("embedded").engine.get(name, {}))
    server = None
    began = time.perf_counter()
    endpoint = None
    if name == "openai":
        from pytest_llmperf.engines.servers import VllmServer, VllmServeSpec

        server = VllmServer(VllmServeSpec(str(model.path), model.name)).start()
        endpoint = server.base_url
    engine = load_engine(name, EngineOptions(str(model.path), model.name, "cpu", endpoint=endpoint,
                                             max_batch_size=batch, settings=settings))
    load_seconds = time.perf_counter() - began
    try:
        from pytest_llmperf import models

        tokenizer = models.load_tokenizer(model)
        prompts = [chat_prompt_ids(tokenizer, QUESTIONS[i % len(QUESTIONS)]) for i in range(batch)]
        fixed = GenerationParams(max_new_tokens=new_tokens, min_new_tokens=new_tokens, ignore_eos=True)

        began = time.perf_counter()
        engine.generate(prompts[:1], GenerationParams(max_new_tokens=8))
        first_seconds = time.perf_counter() - began

        began = time.perf_counter()
        outputs = engine.generate(prompts, fixed)
        tokens_per_second = sum(len(o.token_ids) for o in outputs) / (time.perf_counter() - began)

        singles = [engine.generate(prompts[:1], fixed)[0] for _ in range(3)]
        return {
            "engine": name,
            "dtype": engine.info.dtype,
            "load_s": load_seconds,
            "first_generate_s": first_seconds,
            "tokens_per_second": tokens_per_second,
            "ttft_ms": 1000 * statistics.median(g.time_to_first_token for g in singles),
            "tpot_ms": 1000 * statistics.median(g.time_per_output_token for g in singles),
        }
    finally:
        engine.close()
        if server is not None:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="transformers,vllm,openai")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=64)
    args = parser.parse_args(argv)
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # keep the table readable
    from pytest_llmperf import models

    model = models.resolve(None)
    rows = []
    for name in args.engines.split(","):
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        rows.append(measure(name.strip(), model, args.batch, args.new_tokens))
    print(f"\nbatch {args.batch} x {args.new_tokens} new tokens, CPU, {model.name}\n")
    print("| engine | dtype | load (s) | first generate (s) | tokens/s | TTFT batch 1 (ms) | TPOT batch 1 (ms) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['engine']} | {row['dtype']} | {row['load_s']:.1f} | {row['first_generate_s']:.1f} | "
              f"{row['tokens_per_second']:.0f} | {row['ttft_ms']:.0f} | {row['tpot_ms']:.1f} |")
    return 0


if __name__ == "__main__":  # vLLM starts its workers with spawn: nothing may run on import
    sys.exit(main())
