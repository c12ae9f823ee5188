"""Systems under test: any engine behind LoadGen's Offline and Server scenarios.

One worker thread takes the samples LoadGen has issued and runs them through
``engine.generate``:

* Offline: the one query LoadGen issues goes to the engine in one call (the
  engine batches it as it likes, up to its ``max_batch_size``).
* Server / Interactive: queries are taken as they arrive; whatever is queued
  when a worker is free (up to ``max_batch_size``) becomes its next batch.
  One worker by default; engines that batch concurrent calls continuously
  (vllm, openai) can take more (``loadgen.server_workers``).
  Each sample's first token is reported with ``FirstTokenComplete`` from the
  engine's ``on_token`` callback, the moment it exists, so TTFT is real.

Every sample is answered with one ``QuerySampleResponse(id, ptr, size,
n_tokens)``: its generated token ids as int32 (EOS at most once, no padding)
and ``n_tokens`` equal to their number.  If the engine raises, every issued
sample (those of the failed batch and all later ones) is still completed, with
an empty response, so LoadGen finishes its run; the runner then reports the
engine's message.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from typing import Sequence

from ..engines import Engine, GenerationParams


@dataclasses.dataclass
class SutStats:
    """What the SUT saw during one run (mutable: filled in by the worker thread)."""

    samples: int = 0
    """Samples completed."""
    tokens: int = 0
    """Output tokens reported to LoadGen."""
    generate_calls: int = 0
    batch_sizes: list[int] = dataclasses.field(default_factory=list)
    """Samples per engine.generate call, in order."""
    decode_steps: int = 0
    """Distinct token timestamps per generate call, summed (tokens of one forward pass share a timestamp)."""
    one_token_qsl: list[int] = dataclasses.field(default_factory=list)
    """qsl_idx of samples the engine answered with a single token (LoadGen flags these as errors)."""
    empty_qsl: list[int] = dataclasses.field(default_factory=list)
    """qsl_idx of samples answered with no token at all (engine failure or an empty generation)."""
    engine_error: str | None = None
    """The engine's exception, as ``Type: message``, if it raised."""

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
                 *, report_first_token: bool, batch_limit: int | None, use_token_latencies: bool = True,
                 workers: int = 1):
        self.engine = engine
        self.prompts = prompts
        self.params = params
        self.report_first_token = report_first_token
        self.batch_limit = batch_limit
        self.use_token_latencies = use_token_latencies
        self.stats = SutStats()
        self._queue: collections.deque = collections.deque()
        self._wake = threading.Condition()
        self._stats_lock = threading.Lock()
        self._stopping = False
        self._workers = [threading.Thread(target=self._work, name=f"llmperf-sut-{n}", daemon=True)
                         for n in range(max(1, workers))]
        for worker in self._workers:
            worker.start()

    # -- LoadGen callbacks (called on LoadGen's threads) ----------------------

    def issue_query(self, samples) -> None:
        with self._wake:
            self._queue.extend(samples)
            self._wake.notify()

    def flush_queries(self) -> None:
        """Nothing is held back: the worker takes queued samples as soon as it is free."""

    # -- lifecycle ------------------------------------------------------------

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        for worker in self._workers:
            worker.join()

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
            if self.stats.engine_error is not None:
                self._complete_empty(batch, set())
                continue
            self._serve(batch)

    # -- one batch ------------------------------------------------------------

    def _serve(self, batch: list) -> None:
        import mlperf_loadgen as lg

        first_reported: set[int] = set()

        def on_token(index: int, token: int, _time: float) -> None:
            if index not in first_reported:
                first_reported.add(index)
                self._first_token(lg, batch[index], [token])

        callback = on_token if self.report_first_token else None
        try:
            generations = self.engine.generate([self.prompts[s.index] for s in batch], self.params, callback)
            if len(generations) != len(batch):
                raise RuntimeError(f"engine returned {len(generations)} generations for {len(batch)} prompts")
        except Exception as exc:  # any engine failure: LoadGen must still see every sample completed
            with self._stats_lock:
                self.stats.engine_error = self.stats.engine_error or f"{type(exc).__name__}: {exc}"
            self._complete_empty(batch, first_reported)
            return
        with self._stats_lock:
            self._count(batch, generations)
        responses, buffers = [], []
        for position, (sample, generation) in enumerate(zip(batch, generations)):
            tokens = [int(t) for t in generation.token_ids]
            if self.report_first_token and position not in first_reported:
                # The engine gave no callback for it: report the first token now (TTFT = full latency).
                self._first_token(lg, sample, tokens[:1])
            response, buffer = _response(lg, sample.id, tokens)
            responses.append(response)
            buffers.append(buffer)  # kept alive until LoadGen has copied them
        lg.QuerySamplesComplete(responses)

    def _count(self, batch: list, generations) -> None:
        stats = self.stats
        stats.generate_calls += 1
        stats.batch_sizes.append(len(batch))
        stats.decode_steps += len({t for g in generations for t in g.token_times})
        for sample, generation in zip(batch, generations):
            count = len(generation.token_ids)
            if count == 1:
                stats.one_token_qsl.append(sample.index)
            elif count == 0:
                stats.empty_qsl.append(sample.index)
            stats.samples += 1
            stats.tokens += count

    def _first_token(self, lg, sample, tokens: list[int]) -> None:
        if not self.use_token_latencies:
            return
        response, _buffer = _response(lg, sample.id, tokens, with_count=False)
        lg.FirstTokenComplete([response])

    def _complete_empty(self, batch: list, first_reported: set[int]) -> None:
        import mlperf_loadgen as lg

        for position, sample in enumerate(batch):
            if self.report_first_token and position not in first_reported:
                self._first_token(lg, sample, [])
        with self._stats_lock:
            self.stats.empty_qsl.extend(sample.index for sample in batch)
            self.stats.samples += len(batch)
        lg.QuerySamplesComplete([_response(lg, sample.id, [])[0] for sample in batch])


def _response(lg, response_id: int, tokens: list[int], with_count: bool = True):
    """A QuerySampleResponse over an int32 buffer, and the buffer (keep it alive)."""
    import numpy as np

    buffer = np.asarray(tokens, dtype=np.int32)
    pointer = buffer.ctypes.data if buffer.size else 0
    if with_count:
        return lg.QuerySampleResponse(response_id, pointer, buffer.nbytes, len(tokens)), buffer
    return lg.QuerySampleResponse(response_id, pointer, buffer.nbytes), buffer


def offline_sut(engine: Engine, prompts: Sequence[Sequence[int]], params: GenerationParams,
                use_token_latencies: bool = True) -> EngineSut:
    """Offline: the whole query in one generate call; no first-token reports (LoadGen ignores them)."""
    return EngineSut(engine, prompts, params, report_first_token=False, batch_limit=None,
                     use_token_latencies=use_token_latencies)


def server_sut(engine: Engine, prompts: Sequence[Sequence[int]], params: GenerationParams,
               max_batch_size: int, use_token_latencies: bool = True, workers: int = 1) -> EngineSut:
    """Server / Interactive: queued queries batched as they come, first tokens reported at once."""
    return EngineSut(engine, prompts, params, report_first_token=True, batch_limit=max(1, max_batch_size),
                     use_token_latencies=use_token_latencies, workers=workers)
