"""Systems under test: any engine behind LoadGen's Offline, Server and Interactive scenarios.

Every sample is completed with ``QuerySamplesComplete`` the moment its own
answer ends, and in Server / Interactive its first token is reported with
``FirstTokenComplete`` the moment the engine emits it.  How queries reach the
engine depends on how the engine batches:

* Offline: the one query LoadGen issues goes to ``engine.generate`` in one
  call from a worker thread; the engine batches it as it likes and calls
  ``on_finish`` as each answer ends.
* Server / Interactive, an engine that batches continuously (it has
  ``submit``: vLLM, openai, llm-serving): each sample is submitted from
  ``issue_query`` itself, the moment LoadGen hands it over.  No batch
  barrier and no worker pool: the engine's own scheduler batches.
* Server / Interactive, an engine that batches statically (transformers): one
  worker thread takes whatever is queued (up to ``max_batch_size``) as its
  next batch; a query that arrives while a batch runs waits for the next
  batch boundary.  Its answer still completes at its own EOS step.

Every sample is answered with one ``QuerySampleResponse(id, ptr, size,
n_tokens)``: its generated token ids as int32 (EOS at most once, no padding)
and ``n_tokens`` equal to their number.  If the engine raises (or a request
fails), every issued sample not yet completed, and every later one, is
completed with an empty response, so LoadGen finishes its run; the runner
then reports the engine's message.  ``cancel`` (a run cut by Ctrl-C or SIGTERM)
does the same for every sample at once, counted as ``stats.cancelled``.
"""

from __future__ import annotations

import array
import collections
import dataclasses
import itertools
import threading
import time
from typing import Sequence

from ..engines import Engine, Generation, GenerationParams
from ..engines.base import batches_continuously, forward_passes
from ..metrics.latency import percentile
from ..metrics.utilization import kv_positions_read
from .query_store import QueryRecorder

INT32 = "i" if array.array("i").itemsize == 4 else "l"
"""The array type code of a 4-byte integer (LoadGen's accuracy log holds int32 token ids)."""
CANCELLED_JOIN_S = 2.0
"""After ``cancel``, how long ``stop`` waits for the batch worker to leave the engine."""


@dataclasses.dataclass
class SutStats:
    """What the SUT saw during one run (mutable: filled in as samples complete)."""

    samples: int = 0
    """Samples completed."""
    tokens: int = 0
    """Output tokens reported to LoadGen."""
    submission: str = "batch"
    """How samples reached the engine: ``batch`` (generate calls) or ``per-query`` (submit on arrival)."""
    generate_calls: int = 0
    batch_sizes: list[int] = dataclasses.field(default_factory=list)
    """Samples per engine.generate call, in order (empty for per-query submission)."""
    decode_steps: int = 0
    """Engine forward passes during the run (tokens of one pass share it), for MBU."""
    decode_steps_from: str = "engine"
    """``engine`` (its own count of forward passes) or ``token times`` (distinct token timestamps
    per generate call, for engines that do not count)."""
    kv_positions_read: int = 0
    """Cached positions the generated tokens attended to (prompt and earlier output), summed:
    with the model's KV bytes per position, the KV-cache term of MBU."""
    server_tokens: int | None = None
    """Where an HTTP engine re-tokenized text: the server's own count of generated tokens
    (``usage``), summed; recorded beside ``tokens``, not compared with it."""
    engine_latency_ms: dict[str, float] | None = None
    """The engine's own per-request TTFT and TPOT (p50, p99, in ms, and how many requests reported
    them), where the engine reports them (vLLM): a reference for LoadGen's client-side numbers."""
    one_token_qsl: list[int] = dataclasses.field(default_factory=list)
    """qsl_idx of samples the engine answered with a single token (LoadGen flags these as errors)."""
    empty_qsl: list[int] = dataclasses.field(default_factory=list)
    """qsl_idx of samples answered with no token at all (engine failure or an empty generation)."""
    engine_error: str | None = None
    """The engine's exception, as ``Type: message``, if it raised."""
    cancelled: int = 0
    """Samples completed empty because the run was interrupted (not counted in ``samples``)."""

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["batch_sizes"] = _run_lengths(self.batch_sizes)
        return data


def _run_lengths(values: list[int]) -> list[list[int]]:
    """[[value, repeat], ...]: batch sizes compress well and run.json stays small."""
    out: list[list[int]] = []
    for value in values:
        if out and out[-1][0] == value:
            out[-1][1] += 1
        else:
            out.append([value, 1])
    return out


class EngineSut:
    """A LoadGen SUT over one engine; build it with ``offline_sut`` or ``server_sut``."""

    def __init__(self, engine: Engine, prompts: Sequence[Sequence[int]], params: GenerationParams,
                 *, report_first_token: bool, batch_limit: int | None, per_query: bool,
                 use_token_latencies: bool = True):
        self.engine = engine
        self.prompts = prompts
        self.params = params
        self.report_first_token = report_first_token and use_token_latencies
        self.batch_limit = batch_limit
        self.per_query = per_query
        self.stats = SutStats(submission="per-query" if per_query else "batch")
        self._lock = threading.Lock()
        self._in_flight: dict[int, object] = {}  # tag -> LoadGen sample, until completed
        self._first_reported: set[int] = set()
        self._tags = itertools.count()
        self._issued: dict[int, float] = {}  # tag -> perf_counter when LoadGen handed the sample over
        self.queries = QueryRecorder()
        """Per completed sample: qsl_idx, issue time, the engine's token times and tokens, as columns, for
        per-query TTFT/TPOT/ITL/E2E (``loadgen.query_times``); LoadGen's logs have no per-token times."""
        self._step_times: set[float] = set()
        self._engine_ttft: list[float] = []
        self._engine_tpot: list[float] = []
        self._passes_at_start = forward_passes(engine)
        if self._passes_at_start is None:
            self.stats.decode_steps_from = "token times"
        self._queue: collections.deque = collections.deque()
        self._wake = threading.Condition()
        self._stopping = False
        self._cancelled = False
        self._worker = None
        if not per_query:
            self._worker = threading.Thread(target=self._work, name="llmperf-sut", daemon=True)
            self._worker.start()

    # -- LoadGen callbacks (called on LoadGen's threads) ----------------------

    def issue_query(self, samples) -> None:
        if self._cancelled:
            for sample in samples:
                self._complete(self._track(sample), None, cancelled=True)
            return
        if self.per_query:
            for sample in samples:
                self._submit(sample)
            return
        with self._wake:
            self._queue.extend(samples)
            self._wake.notify()

    def flush_queries(self) -> None:
        """Nothing is held back: queries go to the engine as soon as it can take them."""

    # -- lifecycle ------------------------------------------------------------

    def cancel(self) -> None:
        """The run was interrupted: complete every sample in flight or queued, and every later one,
        with an empty answer at once, so LoadGen can end; engine results arriving later are dropped."""
        with self._wake:
            self._cancelled = True
            queued = list(self._queue)
            self._queue.clear()
            self._wake.notify_all()
        with self._lock:
            in_flight = list(self._in_flight)
        for tag in in_flight + [self._track(sample) for sample in queued]:
            self._complete(tag, None, cancelled=True)

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._worker is not None:
            # Cancelled: an engine without abort may still be in its batch; its results are dropped anyway.
            self._worker.join(timeout=CANCELLED_JOIN_S if self._cancelled else None)
        passes = forward_passes(self.engine)
        if passes is not None and self._passes_at_start is not None:
            self.stats.decode_steps = passes - self._passes_at_start
        if self._engine_ttft:
            self.stats.engine_latency_ms = {"requests": len(self._engine_ttft)}
            for name, values in (("ttft", self._engine_ttft), ("tpot", self._engine_tpot)):
                for p in (50, 99):
                    if values:
                        self.stats.engine_latency_ms[f"{name}_p{p}"] = round(percentile(values, p) * 1e3, 3)

    def queries_so_far(self):
        """A copy of the per-query columns, taken under the lock: for a run cut short, whose late
        engine results may still arrive while it is written."""
        with self._lock:
            return self.queries.columns(copy=True)

    # -- per-query submission -------------------------------------------------

    def _submit(self, sample) -> None:
        tag = self._track(sample)
        if self.stats.engine_error is not None or self._cancelled:
            self._complete(tag, None, cancelled=self._cancelled)
            return
        try:
            self.engine.submit(tag, self.prompts[sample.index], self.params, self._on_token, self._on_done)
        except Exception as exc:  # the engine refused the request: LoadGen must still see it completed
            self._on_done(tag, exc)

    def _on_done(self, tag: int, result) -> None:
        if isinstance(result, BaseException):
            self._failed(result, [tag])
        else:
            self._complete(tag, result)

    # -- batches (Offline, and Server on static-batch engines) ------------------

    def _next_batch(self) -> list | None:
        with self._wake:
            while not self._queue and not self._stopping:
                self._wake.wait()
            if not self._queue:
                return None
            limit = len(self._queue) if self.batch_limit is None else self.batch_limit
            return [self._queue.popleft() for _ in range(min(limit, len(self._queue)))]

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            tags = [self._track(sample) for sample in batch]
            if self.stats.engine_error is not None or self._cancelled:
                for tag in tags:
                    self._complete(tag, None, cancelled=self._cancelled)
                continue
            self._serve(tags)

    def _serve(self, tags: list[int]) -> None:
        with self._lock:
            samples = [self._in_flight[tag] for tag in tags]
            self.stats.generate_calls += 1
            self.stats.batch_sizes.append(len(tags))
            first_time = self.queries.token_times_recorded  # this call's token times are recorded from here

        def on_token(position: int, token: int, time: float) -> None:
            self._on_token(tags[position], token, time)

        def on_finish(position: int, generation: Generation) -> None:
            self._complete(tags[position], generation)

        try:
            generations = self.engine.generate([self.prompts[s.index] for s in samples], self.params,
                                               on_token, on_finish)
            if len(generations) != len(tags):
                raise RuntimeError(f"engine returned {len(generations)} generations for {len(tags)} prompts")
        except Exception as exc:  # any engine failure: LoadGen must still see every sample completed
            self._failed(exc, tags)
            return
        for tag, generation in zip(tags, generations):
            self._complete(tag, generation)  # those the engine did not finish through on_finish
        if self._passes_at_start is None:
            with self._lock:  # one worker serves batches: every time recorded since first_time is this call's
                self.stats.decode_steps += self.queries.distinct_token_times(first_time)

    # -- completing samples ---------------------------------------------------

    def _track(self, sample) -> int:
        tag = next(self._tags)
        with self._lock:
            self._in_flight[tag] = sample
            self._issued[tag] = time.perf_counter()
        return tag

    def _on_token(self, tag: int, token: int, _time: float) -> None:
        if not self.report_first_token or tag in self._first_reported:
            return  # the common case, every token after the first: no lock taken
        with self._lock:
            sample = self._in_flight.get(tag)
            if sample is None or tag in self._first_reported:
                return
            self._first_reported.add(tag)
        self._first_token(sample, [token])

    def _failed(self, exc: BaseException, tags: list[int]) -> None:
        from ..runtime import interrupts

        # An engine told to abort fails its requests, and a terminal's Ctrl-C reaches vLLM's engine core
        # too, which then dies: after a signal neither is an engine error.
        cancelled = self._cancelled or interrupts.requested()
        with self._lock:
            if not cancelled:
                self.stats.engine_error = self.stats.engine_error or f"{type(exc).__name__}: {exc}"
        for tag in tags:
            self._complete(tag, None, cancelled=cancelled)

    def _complete(self, tag: int, generation: Generation | None, cancelled: bool = False) -> None:
        """Complete one sample with LoadGen (``None``: an empty answer); a second call for it is a no-op."""
        import mlperf_loadgen as lg

        if tag not in self._in_flight:
            return  # already completed (through on_finish): the common case after a batch returns
        tokens = [] if generation is None else list(generation.token_ids)
        with self._lock:
            sample = self._in_flight.pop(tag, None)
            if sample is None:
                return
            first_reported = tag in self._first_reported
            self._first_reported.discard(tag)
            if cancelled:
                self.stats.cancelled += 1
                self._issued.pop(tag, None)
            else:
                self._count(sample, tokens, generation)
                self.queries.add(sample.index, self._issued.pop(tag, 0.0),
                                 () if generation is None else generation.token_times, len(tokens))
        if self.report_first_token and not first_reported:
            # The engine gave no token callback for it: report the first token now (TTFT = full latency).
            self._first_token(sample, tokens[:1])
        response, _buffer = _response(lg, sample.id, tokens)  # LoadGen copies the buffer during the call
        lg.QuerySamplesComplete([response])

    def _count(self, sample, tokens: list[int], generation: Generation | None) -> None:
        stats = self.stats
        stats.samples += 1
        stats.tokens += len(tokens)
        stats.kv_positions_read += kv_positions_read(len(self.prompts[sample.index]), len(tokens))
        if len(tokens) == 1:
            stats.one_token_qsl.append(sample.index)
        elif not tokens:
            stats.empty_qsl.append(sample.index)
        if generation is not None and generation.engine_ttft is not None:
            self._engine_ttft.append(generation.engine_ttft)
            if generation.engine_tpot is not None:
                self._engine_tpot.append(generation.engine_tpot)
        if generation is not None and generation.server_token_count is not None:
            stats.server_tokens = (stats.server_tokens or 0) + generation.server_token_count
        if self.per_query and generation is not None and self._passes_at_start is None:
            # No engine count: steps are told apart by token time (an upper bound across requests).
            before = len(self._step_times)
            self._step_times.update(generation.token_times)
            stats.decode_steps += len(self._step_times) - before

    def _first_token(self, sample, tokens: list[int]) -> None:
        import mlperf_loadgen as lg

        response, _buffer = _response(lg, sample.id, tokens, with_count=False)
        lg.FirstTokenComplete([response])


def _response(lg, response_id: int, tokens: list[int], with_count: bool = True):
    """A QuerySampleResponse over an int32 buffer, and the buffer (keep it alive until LoadGen copied it).

    ``array`` rather than numpy: numpy's ``ctypes.data`` costs microseconds per sample, which
    bounds the harness's own throughput at small answers."""
    buffer = array.array(INT32, tokens)
    pointer, count = buffer.buffer_info()
    size = count * buffer.itemsize
    if with_count:
        return lg.QuerySampleResponse(response_id, pointer if count else 0, size, len(tokens)), buffer
    return lg.QuerySampleResponse(response_id, pointer if count else 0, size), buffer


def offline_sut(engine: Engine, prompts: Sequence[Sequence[int]], params: GenerationParams,
                use_token_latencies: bool = True) -> EngineSut:
    """Offline: the whole query in one generate call; no first-token reports (LoadGen ignores them)."""
    return EngineSut(engine, prompts, params, report_first_token=False, batch_limit=None, per_query=False,
                     use_token_latencies=use_token_latencies)


def server_sut(engine: Engine, prompts: Sequence[Sequence[int]], params: GenerationParams,
               max_batch_size: int, use_token_latencies: bool = True) -> EngineSut:
    """Server / Interactive: each query submitted on arrival (continuous engines) or queued into
    the next static batch; first tokens reported at once."""
    return EngineSut(engine, prompts, params, report_first_token=True, batch_limit=max(1, max_batch_size),
                     per_query=batches_continuously(engine), use_token_latencies=use_token_latencies)
