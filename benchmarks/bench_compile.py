"""Decode step time of the transformers engine: eager vs compiled, on one device, in one run.

For each batch size, every prompt has the same length (default 128 tokens) and
generates a fixed number of tokens (default 128, EOS ignored).  A step's time is
the mean gap between the per-token timestamps the engine records (the
``_StepClock`` reads each new token on the host, so a timestamp is taken only
once the device has finished that step).  Variants:

* ``eager``: the engine as it runs by default (dynamic KV cache, no compile);
* ``static``: a static KV cache, still eager (transformers' auto-compile off);
* ``compiled``: the engine's compile mode (static cache, ``torch.compile``
  ``mode="reduce-overhead"``, i.e. CUDA graphs on GPUs);
* ``compiled-default``: compile mode with ``compile_mode = "default"``
  (inductor kernels, no CUDA graphs).

Each compiled variant is checked against ``eager``: greedy tokens of every row
(identical rows, shortest common prefix), and the raw logits of the first
decode steps of one batch (largest difference relative to the largest logit,
argmax agreement).  MBU and MFU use the device's datasheet peaks
(``hardware.peak_for``); "n/a" where none is known.

    python benchmarks/bench_compile.py --model embedded-random --device cuda --out gpu-results
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = {
    "eager": {},
    "static": {},
    "compiled": {"compile": True},
    "compiled-default": {"compile": True, "compile_mode": "default"},
}
LOGITS_STEPS = 32


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded-random", help="--llmperf-model value (default: embedded-random)")
    parser.add_argument("--device", default="cuda", help="cpu or cuda (default: cuda)")
    parser.add_argument("--dtype", default="auto", help="float32, bfloat16, float16 or auto (default)")
    parser.add_argument("--batches", default="1,16,64,256", help="batch sizes, comma-separated")
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--variants", default="eager,static,compiled,compiled-default",
                        help=f"comma-separated, from: {', '.join(VARIANTS)}")
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="skip the variants not yet started once this many seconds have passed")
    parser.add_argument("--check-dtype", default="float32",
                        help="also compare each compiled variant with eager in this dtype ('' to skip; default float32)")
    parser.add_argument("--out", default=None, help="folder for compile-bench.json and compile-bench.txt")
    args = parser.parse_args(argv)
    args.batches = [int(b) for b in args.batches.split(",")]
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    return args


def make_prompts(batch: int, length: int, vocab: int, avoid: frozenset[int]) -> list[list[int]]:
    """Fixed pseudo-random token ids (the same for every variant), no special tokens."""
    import numpy as np

    rng = np.random.default_rng(1234 + batch)
    ids = rng.integers(100, vocab, size=(batch, length))
    return [[int(t) if int(t) not in avoid else 100 for t in row] for row in ids]


def load(spec, device: str, dtype: str, variant: str, max_batch: int):
    from pytest_llmperf.engines import EngineOptions, load_engine

    options = EngineOptions(str(spec.path), spec.name, device, dtype=dtype, max_batch_size=max_batch,
                            settings=dict(VARIANTS[variant]))
    engine = load_engine("transformers", options)
    if variant == "static":
        engine.model.generation_config.cache_implementation = "static"
        engine.model.generation_config.disable_compile = True
    return engine


def timed_generate(engine, prompts, new_tokens: int) -> dict:
    from pytest_llmperf.engines import GenerationParams

    params = GenerationParams(max_new_tokens=new_tokens, min_new_tokens=new_tokens, ignore_eos=True)
    started = time.perf_counter()
    generations = engine.generate(prompts, params)
    wall = time.perf_counter() - started
    times = generations[0].token_times
    step_s = (times[-1] - times[0]) / (len(times) - 1)
    return {
        "ms_per_step": 1e3 * step_s,
        "decode_tokens_per_s": len(prompts) / step_s,
        "ttft_ms": 1e3 * generations[0].time_to_first_token,
        "wall_s": wall,
        "tokens": [list(g.token_ids) for g in generations],
    }


def first_step_logits(engine, prompts, steps: int):
    """Raw logits (batch, steps, vocab) and tokens (batch, steps) of the first steps, through the engine's generate setup."""
    torch = engine.torch
    ids = torch.tensor(prompts, dtype=torch.long, device=engine.device)
    with torch.inference_mode():
        out = engine.model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=steps,
            min_new_tokens=steps, pad_token_id=engine.pad_token_id, output_logits=True,
            return_dict_in_generate=True, temperature=None, top_p=None, top_k=None)
    return torch.stack(out.logits, dim=1).float().cpu(), out.sequences[:, ids.shape[1]:].cpu()


def compare_tokens(reference: list[list[int]], candidate: list[list[int]]) -> dict:
    prefixes = []
    for ref, got in zip(reference, candidate):
        same = 0
        while same < min(len(ref), len(got)) and ref[same] == got[same]:
            same += 1
        prefixes.append(same)
    return {"rows_identical": sum(p == len(r) for p, r in zip(prefixes, reference)), "rows": len(reference),
            "shortest_common_prefix": min(prefixes), "mean_common_prefix": sum(prefixes) / len(prefixes)}


def compare_logits(reference, candidate) -> dict:
    """Logits of steps whose inputs were identical in both runs (every earlier token the same).

    Step 0 is the prefill (eager in every variant); step 1 is the first decode
    step.  Once a row's tokens differ, its later logits answer different
    questions and are left out.
    """
    import torch

    (ref_logits, ref_tokens), (got_logits, got_tokens) = reference, candidate
    differs = (ref_tokens != got_tokens).int()
    earlier_differ = torch.cumsum(differs, dim=1) - differs  # differences before each step
    comparable = earlier_differ == 0
    scale = float(ref_logits.abs().max())
    gap = (ref_logits - got_logits).abs().amax(dim=-1)  # (batch, steps)
    agree = ref_logits.argmax(-1) == got_logits.argmax(-1)
    decode = comparable.clone()
    decode[:, 0] = False
    return {
        "steps": int(ref_tokens.shape[1]), "rows": int(ref_tokens.shape[0]), "max_abs_logit": scale,
        "prefill_max_abs_diff": float(gap[:, 0].max()),
        "decode_comparable": int(decode.sum()),
        "decode_max_abs_diff": float(gap[decode].max()) if decode.any() else None,
        "decode_relative": float(gap[decode].max()) / scale if decode.any() and scale else None,
        "decode_argmax_agreement": float(agree[decode].float().mean()) if decode.any() else None,
        "tokens": compare_tokens(ref_tokens.tolist(), got_tokens.tolist()),
    }


def correctness(spec, device: str, dtype: str, variants: list[str], batch: int, prompt_tokens: int, steps: int) -> list:
    """Each compiled variant against eager in ``dtype`` (float32 separates rounding from wrong results)."""
    import torch

    found, reference = [], None
    for variant in ["eager"] + [v for v in variants if v.startswith("compiled")]:
        try:
            engine = load(spec, device, dtype, variant, batch)
            prompts = make_prompts(batch, prompt_tokens, len(engine.tokenizer), engine.eos_token_ids)
            result = first_step_logits(engine, prompts, steps)
            engine.close()
        except Exception as exc:
            found.append({"variant": variant, "dtype": dtype, "error": f"{type(exc).__name__}: {exc}"[:300]})
            continue
        if reference is None:
            reference = result
        else:
            found.append({"variant": variant, "dtype": dtype, "batch": batch, **compare_logits(reference, result)})
            print(found[-1], flush=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return found


def shape_facts(spec) -> dict:
    from transformers import AutoConfig

    from pytest_llmperf import models

    config = AutoConfig.from_pretrained(str(spec.path), local_files_only=True)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return {"parameters": models.parameter_count(spec), "layers": config.num_hidden_layers,
            "kv_heads": config.num_key_value_heads, "head_dim": head_dim}


def utilization(row: dict, shape: dict, dtype_bytes: int, peak, prompt: int, new: int) -> None:
    """MBU: weights + the KV cache a step must read (mean context) per step time; MFU: 2 x params x tokens/s."""
    batch, step_s = row["batch"], row["ms_per_step"] / 1e3
    mean_context = prompt + new / 2
    kv_bytes = batch * mean_context * shape["layers"] * 2 * shape["kv_heads"] * shape["head_dim"] * dtype_bytes
    bytes_per_step = shape["parameters"] * dtype_bytes + kv_bytes
    flops_per_step = 2 * shape["parameters"] * batch
    row["mbu"] = bytes_per_step / step_s / peak.memory_bandwidth if peak else None
    row["mfu"] = flops_per_step / step_s / peak.bf16_flops if peak else None


def environment(engine) -> dict:
    facts = {"python": platform.python_version(), "device_name": engine.info.device_name,
             "versions": engine.info.versions, "cpu": platform.processor() or platform.machine()}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            facts["cpu"] = next(l.split(":", 1)[1].strip() for l in handle if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        facts["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                         capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return facts


def dynamo_counters() -> dict:
    from torch._dynamo.utils import counters

    return {group: dict(values) for group, values in counters.items() if values}


def render(rows: list[dict], peak_note: str) -> str:
    eager = {r["batch"]: r["ms_per_step"] for r in rows if r["variant"] == "eager" and "ms_per_step" in r}
    header = f"{'variant':<17}{'batch':>6}{'ms/step':>10}{'tokens/s':>12}{'speed-up':>10}{'MBU':>8}{'MFU':>8}   tokens vs eager"
    lines = [header, "-" * len(header)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['variant']:<17}{r['batch']:>6}   failed: {r['error']}")
            continue
        speedup = eager.get(r["batch"], math.nan) / r["ms_per_step"]
        pct = lambda v: "n/a" if v is None else f"{100 * v:.2f}%"  # noqa: E731
        match = r.get("tokens_vs_eager")
        agreement = "" if not match else (f"{match['rows_identical']}/{match['rows']} rows identical, "
                                          f"shortest common prefix {match['shortest_common_prefix']}")
        lines.append(f"{r['variant']:<17}{r['batch']:>6}{r['ms_per_step']:>10.3f}{r['decode_tokens_per_s']:>12,.0f}"
                     f"{speedup:>9.1f}x{pct(r['mbu']):>8}{pct(r['mfu']):>8}   {agreement}")
    lines.append(f"MBU/MFU peaks: {peak_note}")
    return "\n".join(lines)


def describe_check(check: dict) -> str:
    head = f"  {check['variant']} ({check['dtype']}"
    if "error" in check:
        return f"{head}): failed: {check['error']}"
    tokens = check["tokens"]
    decode = ("no decode step had identical inputs" if check["decode_comparable"] == 0 else
              f"{check['decode_comparable']} decode steps with identical inputs: max |diff| "
              f"{check['decode_max_abs_diff']:.3g} ({100 * check['decode_relative']:.2g}% of the largest logit), "
              f"argmax agrees on {100 * check['decode_argmax_agreement']:.1f}%")
    return (f"{head}, batch {check['batch']}, {check['steps']} steps): prefill max |diff| "
            f"{check['prefill_max_abs_diff']:.3g}; {decode}; tokens: {tokens['rows_identical']}/{tokens['rows']} rows "
            f"identical, shortest common prefix {tokens['shortest_common_prefix']}")


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from pytest_llmperf import hardware, models

    began = time.perf_counter()
    spec = models.resolve(args.model)
    shape = shape_facts(spec)
    rows, checks, runs = [], [], {}
    reference_tokens: dict[int, list[list[int]]] = {}
    reference_logits = None
    logits_batch = next((b for b in args.batches if b > 1), args.batches[0])
    env = None
    for variant in args.variants:
        if time.perf_counter() - began > args.budget_s:
            rows.append({"variant": variant, "batch": "-", "error": f"skipped: --budget-s {args.budget_s:g} spent"})
            continue
        print(f"== {variant}", flush=True)
        try:
            engine = load(spec, args.device, args.dtype, variant, max(args.batches))
        except Exception as exc:  # a variant that cannot load must not hide the others' numbers
            rows.append({"variant": variant, "batch": "-", "error": f"{type(exc).__name__}: {exc}"[:300]})
            continue
        env = env or environment(engine)
        vocab = len(engine.tokenizer)
        for batch in args.batches:
            prompts = make_prompts(batch, args.prompt_tokens, vocab, engine.eos_token_ids)
            row = {"variant": variant, "batch": batch}
            try:
                warm_tokens = args.new_tokens if variant.startswith("compiled") else 4
                warm = time.perf_counter()
                timed_generate(engine, prompts, warm_tokens)  # compiles / records graphs for this shape
                row["warmup_s"] = time.perf_counter() - warm
                result = timed_generate(engine, prompts, args.new_tokens)
            except Exception as exc:
                row["error"] = f"{type(exc).__name__}: {exc}"[:300]
                rows.append(row)
                print(row, flush=True)
                continue
            tokens = result.pop("tokens")
            row.update(result)
            if variant == "eager":
                reference_tokens[batch] = tokens
            elif batch in reference_tokens:
                row["tokens_vs_eager"] = compare_tokens(reference_tokens[batch], tokens)
            utilization(row, shape, 2 if engine.info.dtype != "float32" else 4,
                        hardware.peak_for(engine.info.device_name), args.prompt_tokens, args.new_tokens)
            rows.append(row)
            print({k: v for k, v in row.items()}, flush=True)
        try:
            logits = first_step_logits(engine, make_prompts(logits_batch, args.prompt_tokens, vocab,
                                                            engine.eos_token_ids), LOGITS_STEPS)
            if variant == "eager":
                reference_logits = logits
            elif reference_logits is not None:
                checks.append({"variant": variant, "dtype": engine.info.dtype, "batch": logits_batch,
                               **compare_logits(reference_logits, logits)})
                print(checks[-1], flush=True)
        except Exception as exc:
            checks.append({"variant": variant, "batch": logits_batch, "error": f"{type(exc).__name__}: {exc}"[:300]})
        runs[variant] = {"notes": list(engine.info.notes)}
        engine.close()
        del engine
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        save(args, spec, shape, env, runs, rows, checks, began, final=False)
    if args.check_dtype and time.perf_counter() - began < args.budget_s:
        print(f"== correctness in {args.check_dtype}", flush=True)
        checks += correctness(spec, args.device, args.check_dtype, args.variants, logits_batch,
                              args.prompt_tokens, LOGITS_STEPS)
    save(args, spec, shape, env, runs, rows, checks, began, final=True)
    return 0


def save(args, spec, shape, env, runs, rows, checks, began, final: bool) -> None:
    """Write the table and JSON (after every variant, so a run cut short keeps what it measured)."""
    from pytest_llmperf import hardware

    device_name = env["device_name"] if env else hardware.device_name(args.device)
    peak = hardware.peak_for(device_name)
    peak_note = (f"datasheet ({peak.source}: {peak.bf16_flops / 1e12:g} TFLOP/s dense bf16, "
                 f"{peak.memory_bandwidth / 1e12:g} TB/s)") if peak else f"n/a (no datasheet peak for {device_name})"
    title = f"{spec.name} on {device_name}; {args.prompt_tokens} prompt + {args.new_tokens} new tokens, greedy"
    text = "\n".join([title, render(rows, peak_note), "", "Correctness against eager:"]
                     + [describe_check(c) for c in checks]) + "\n"
    report = {
        "model": spec.name, "model_shape": shape, "device": args.device, "environment": env,
        "prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens, "peaks": peak_note,
        "variants": runs, "rows": rows, "logits_checks": checks, "dynamo_counters": dynamo_counters(),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]), "seconds": time.perf_counter() - began,
        "complete": final,
    }
    if final:
        print("\n" + text, end="")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "compile-bench.json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        (out / "compile-bench.txt").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
