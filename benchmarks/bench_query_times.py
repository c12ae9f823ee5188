"""The harness's own bookkeeping at scale: per-query token times after LoadGen ends.

    python benchmarks/bench_query_times.py [--sizes 10000x128,100000x128,1100000x128] [--server-qps 2000]

An instant plumbing engine (``tests/plumbing.py``: every answer at once, tokens cost
nothing) through the Offline SUT and the real LoadGen, one run per size (samples x
tokens per sample).  Per run: LoadGen's own time (``StartTest``, issue to last
completion), the bookkeeping (everything ``run_loadgen`` does outside it: the SUT's
stop, LoadGen's logs read, run.json, ``queries.npz`` written, the buffers released),
their ratio, the kept token times (MiB), the memory the bookkeeping added above the
RSS at LoadGen's end, the process's peak RSS, and the time to read the file back and
compute its statistics (what a sweep or capacity probe does).  Goals at 1.1 M x 128:
bookkeeping <= 10% of LoadGen's time and < 2 GB.

Then what a run leaves behind: a Server run at ``--server-qps`` with the same engine,
in this process right after the largest Offline run, and in a fresh process; LoadGen's
latency p99 of both should be alike.  Fakes measure the harness, never an engine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's package, even where another one is installed

from bench_server_fidelity import MS_PER_NS, server_settings  # noqa: E402
from plumbing import InstantEngine, answer_tokens  # noqa: E402

MIB = 1 << 20
PROMPTS = 1024
"""Distinct prompts in the QSL (LoadGen repeats them): a million prompts would measure the QSL, not us."""


class RssSampler:
    """The process's resident memory every ``interval_s``, with the time of each sample."""

    def __init__(self, interval_s: float = 0.005):
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._page = __import__("os").sysconf("SC_PAGE_SIZE")
        self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self, interval_s: float) -> None:
        with open("/proc/self/statm", "rb") as statm:
            while not self._stop.is_set():
                statm.seek(0)
                self.samples.append((time.perf_counter(), int(statm.read().split()[1]) * self._page))
                time.sleep(interval_s)

    def between(self, start: float, end: float) -> tuple[int, int]:
        """RSS at ``start`` (the last sample before it) and the highest RSS from then to ``end``."""
        before = [rss for t, rss in self.samples if t <= start] or [self.samples[0][1]]
        during = [rss for t, rss in self.samples if start <= t <= end] or [before[-1]]
        return before[-1], max(during + [before[-1]])


def offline_row(profile, samples: int, tokens: int, out: Path) -> dict:
    from pytest_llmperf.loadgen import run_loadgen, run_settings
    from pytest_llmperf.loadgen.query_times import query_stats, read_query_times

    engine = InstantEngine(answer=answer_tokens(tokens))
    settings = dataclasses.replace(run_settings(profile, "Offline", "PerformanceOnly"), min_duration_ms=0,
                                   min_query_count=samples, performance_sample_count=PROMPTS, target_qps=1.0,
                                   max_new_tokens=tokens)
    folder = out / f"offline-{samples}x{tokens}"
    with RssSampler() as rss:
        started = time.perf_counter()
        run = run_loadgen(engine, [[tokens, 1]] * PROMPTS, "Offline", "PerformanceOnly", settings, folder)
        returned = time.perf_counter()
        # LoadGen's StartTest ends run.seconds after the runner's start, which is at or after ``started``.
        at_end, peak = rss.between(started + run.seconds, returned)
        times = read_query_times(folder)
        stats = query_stats(times)
        read_s = time.perf_counter() - returned
    # LoadGen rounds an Offline query up to whole copies of the performance set.
    assert len(times) == stats.queries == run.stats.samples >= samples, (len(times), samples)
    samples = len(times)
    bookkeeping = returned - started - run.seconds
    return {"samples": samples, "tokens": tokens, "loadgen_s": run.seconds, "bookkeeping_s": bookkeeping,
            "ratio": bookkeeping / run.seconds, "kept_mib": (times.token_times.nbytes + 5 * 8 * samples) / MIB,
            "added_mib": (peak - at_end) / MIB, "peak_rss_mib": max(r for _, r in rss.samples) / MIB,
            "file_mib": (folder / "queries.npz").stat().st_size / MIB, "read_stats_s": read_s}


def server_p99(profile, qps: float, seconds: float, tokens: int, out: Path) -> dict:
    from pytest_llmperf.loadgen import run_loadgen

    engine = InstantEngine(answer=answer_tokens(tokens))
    run = run_loadgen(engine, [[1, 2]] * PROMPTS, "Server", "PerformanceOnly",
                      server_settings(profile, qps, seconds, PROMPTS), out / f"server-{qps:g}")
    return {"qps": run.summary.samples_per_second, "valid": run.valid,
            "p99_ms": run.summary.percentile("latency", 99) * MS_PER_NS}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000x128,100000x128,1100000x128", help="SAMPLESxTOKENS, comma-separated")
    parser.add_argument("--server-qps", type=float, default=2000.0)
    parser.add_argument("--server-seconds", type=float, default=10.0)
    parser.add_argument("--server-tokens", type=int, default=32)
    parser.add_argument("--server-only", action="store_true", help="only the Server run, printed as JSON")
    args = parser.parse_args()

    from pytest_llmperf.config.profiles import load_profile

    profile = load_profile("embedded")
    with tempfile.TemporaryDirectory(prefix="bench-query-times-") as scratch:
        out = Path(scratch)
        if args.server_only:
            print(json.dumps(server_p99(profile, args.server_qps, args.server_seconds, args.server_tokens, out)))
            return 0
        rows = []
        for size in args.sizes.split(","):
            samples, tokens = (int(part) for part in size.lower().split("x"))
            rows.append(offline_row(profile, samples, tokens, out))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        after = server_p99(profile, args.server_qps, args.server_seconds, args.server_tokens, out)
    fresh = json.loads(subprocess.run(
        [sys.executable, __file__, "--server-only", f"--server-qps={args.server_qps:g}",
         f"--server-seconds={args.server_seconds:g}", f"--server-tokens={args.server_tokens}"],
        check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])

    print("Offline, instant engine: per-query token times after LoadGen ends")
    print("| samples | tokens/sample | LoadGen s | bookkeeping s | ratio | kept times MiB | bookkeeping added MiB "
          "| peak RSS MiB | queries.npz MiB | read + stats s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['samples']:,} | {r['tokens']} | {r['loadgen_s']:.1f} | {r['bookkeeping_s']:.2f} | "
              f"{r['ratio']:.1%} | {r['kept_mib']:,.0f} | {r['added_mib']:,.0f} | {r['peak_rss_mib']:,.0f} | "
              f"{r['file_mib']:,.0f} | {r['read_stats_s']:.2f} |")
    big = max(rows, key=lambda r: r["samples"] * r["tokens"])
    print(f"goal at the largest size: bookkeeping <= 10% of LoadGen's time ({big['ratio']:.1%}) and < 2 GB "
          f"(kept {big['kept_mib']:,.0f} MiB + added {big['added_mib']:,.0f} MiB)")
    print()
    print(f"Server at {args.server_qps:g} QPS, instant engine, answers of {args.server_tokens} tokens, "
          f"{args.server_seconds:g} s: LoadGen latency p99")
    for name, result in (("after the Offline runs, same process", after), ("fresh process", fresh)):
        print(f"  {name}: {result['p99_ms']:.3f} ms, {result['qps']:,.0f} samples/s, "
              f"{'VALID' if result['valid'] else 'INVALID'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
