"""Exact fast ROUGE vs MLPerf's way, side by side in one run, on the same samples.

Both paths start from token ids (what an accuracy log holds) and end with the
dict MLPerf's llama2-70b evaluate-accuracy.py prints:

* ``reference``: what that script does: ``batch_decode`` every response in the
  main process, split sentences and join them with newlines there, then
  ``rouge_score`` (rouge1/2/L/Lsum, Porter stemmer) in one chunk per core
  (``Pool(cpu_count())``);
* ``fast``: ``pytest_llmperf.metrics.rouge`` (``method="fast"``): decoding,
  splitting and exact scoring spread over the same number of processes.

The synthetic samples (``--samples``, default 24,576 like MLPerf's dataset):
references are made of random sentences (6-30 words) whose words are drawn
from the embedded OpenOrca sample's text, about 280 words each; predictions
are their references with 10% of words dropped, 45% of the rest replaced by
other random words and some neighbours swapped, tokenized with the embedded
model's tokenizer (about 300 tokens each).  Building them is not timed.

It prints wall and CPU seconds (CPU includes the worker processes, so it
stays meaningful on a busy machine), the ratio, and whether every per-sample
F-measure and the final dict are identical.

    python benchmarks/bench_rouge.py                    # full size: the reference path takes minutes
    python benchmarks/bench_rouge.py --samples 2048     # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import sys
import time


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def build_samples(count: int, seed: int, tokenizer) -> tuple[list[str], list[list[int]]]:
    from pytest_llmperf.datasets.openorca import embedded_records

    rng = random.Random(seed)
    text = " ".join(r["question"] + " " + r["output"] for r in embedded_records())
    words = re.findall(r"[A-Za-z']+|\d+", text)

    def sentence() -> list[str]:
        chosen = [rng.choice(words) for _ in range(rng.randint(6, 30))]
        chosen[0] = chosen[0][:1].upper() + chosen[0][1:]
        return chosen

    references, predictions = [], []
    for _ in range(count):
        sentences, length = [], 0
        while length < 270:
            sentences.append(sentence())
            length += len(sentences[-1])
        ends = [rng.choice(".....?!") for _ in sentences]
        references.append(" ".join(" ".join(s) + end for s, end in zip(sentences, ends)))
        changed = []
        for s, end in zip(sentences, ends):
            kept = [w if rng.random() < 0.55 else rng.choice(words) for w in s if rng.random() >= 0.1] or [s[0]]
            for _ in range(len(kept) // 3):  # some local reordering, so rougeL < rouge1 as in real outputs
                i = rng.randrange(len(kept))
                j = min(len(kept) - 1, i + rng.randint(1, 4))
                kept[i], kept[j] = kept[j], kept[i]
            changed.append(" ".join(kept) + end)
        predictions.append(" ".join(changed))
    ids = tokenizer(predictions, add_special_tokens=False)["input_ids"]
    return references, [list(map(int, i)) for i in ids]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=24576)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=0, help="processes for both paths (default: usable cores)")
    parser.add_argument("--splitter", default="auto", choices=("auto", "punkt", "regex"))
    parser.add_argument("--tokenizer", default=None,
                        help="a folder with the tokenizer files (default: the embedded model's checkpoint)")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)

    from pytest_llmperf import models
    from pytest_llmperf.loadgen.accuracy_log import AccuracyEntry
    from pytest_llmperf.metrics import rouge

    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer, local_files_only=True)
    else:
        tokenizer = models.load_tokenizer(models.resolve(None))
    workers = args.workers or rouge.default_workers()
    references, token_lists = build_samples(args.samples, args.seed, tokenizer)
    tokens = sum(map(len, token_lists))
    print(f"samples: {args.samples:,} synthetic (random words from the embedded OpenOrca text), "
          f"{tokens / args.samples:.0f} tokens per prediction; workers: {workers}; "
          f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores ({rouge.default_workers()} usable)",
          flush=True)

    entries = [AccuracyEntry(i, i, tuple(t), len(t)) for i, t in enumerate(token_lists)]
    timings, results = {}, {}
    for method in ("fast", "reference"):
        wall, cpu = time.perf_counter(), cpu_seconds()
        results[method] = rouge.score_accuracy_log(entries, references, tokenizer, splitter=args.splitter,
                                                   method=method, workers=workers)
        timings[method] = (time.perf_counter() - wall, cpu_seconds() - cpu)
        print(f"{method}: {timings[method][0]:.1f} s wall, {timings[method][1]:.1f} s CPU", flush=True)

    fast, reference = results["fast"], results["reference"]
    differing = sum(a != b for a, b in zip(fast.per_sample, reference.per_sample))
    identical = differing == 0 and len(fast.per_sample) == len(reference.per_sample)
    wall_ratio = timings["reference"][0] / timings["fast"][0]
    cpu_ratio = timings["reference"][1] / timings["fast"][1]
    print()
    print("| path | wall s | CPU s | samples/s (wall) |")
    print("|---|---:|---:|---:|")
    for method in ("reference", "fast"):
        wall, cpu = timings[method]
        print(f"| {method} | {wall:.1f} | {cpu:.1f} | {args.samples / wall:,.0f} |")
    print()
    print(f"ratio (reference / fast): {wall_ratio:.1f}x wall, {cpu_ratio:.1f}x CPU")
    print(f"per-sample F-measures identical: {'yes' if identical else 'NO'} "
          f"({len(fast.per_sample) - differing:,}/{len(fast.per_sample):,} samples x 4 metrics)")
    print(f"dict identical: {'yes' if fast.mlperf_dict() == reference.mlperf_dict() else 'NO'}")
    print(f"rougeLsum sentence splitter: {fast.splitter}")
    print(fast.mlperf_dict())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"samples": args.samples, "workers": workers, "timings": timings, "identical": identical,
                       "wall_ratio": wall_ratio, "cpu_ratio": cpu_ratio, "result": fast.mlperf_dict()}, handle, indent=2)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
