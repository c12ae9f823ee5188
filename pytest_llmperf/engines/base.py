"""The interface every engine implements, and the values it returns.

An engine takes token ids, never text: the tokenizer belongs to the model, so
every engine (in-process or over HTTP) is fed the same prompts and its output is
scored the same way.  Three capabilities, as in lm-eval's model interface:

* ``generate``: batched greedy generation with per-token timestamps;
* ``logits``: teacher-forced scores of a given token path;
* ``loglikelihood``: log P(continuation | context), for MMLU-style scoring.

Engines may implement ``abort()`` (see ``abort``): stop at once, the session was
interrupted.

Engines that batch continuously (vLLM's ``AsyncLLM``, HTTP servers) also
implement ``submit``: one request, started at once, finished through a
callback (see ``ContinuousEngine``).  LoadGen's Server SUT hands each query to
``submit`` the moment it is issued.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Literal, Protocol, Sequence, runtime_checkable

import numpy as np

#: Called as ``on_token(prompt_index, token_id, perf_counter_time)`` for every
#: generated token as soon as the engine has it (the Server SUT reports the
#: first one to LoadGen through it).
TokenCallback = Callable[[int, int, float], None]
#: Called as ``on_finish(prompt_index, generation)`` the moment one prompt's
#: answer is complete, while ``generate`` may still be running others (the SUTs
#: complete that sample with LoadGen at once).
FinishCallback = Callable[[int, "Generation"], None]
#: Called once per ``submit``: ``on_done(tag, result)`` where ``result`` is the
#: request's ``Generation`` or the exception that ended it.
DoneCallback = Callable[[int, "Generation | BaseException"], None]


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    """Everything an engine needs to load; engines ignore fields that do not apply."""

    model_path: str
    """Local Hugging Face checkpoint folder (also the tokenizer for HTTP engines)."""
    model_name: str
    device: str
    """Device class: cpu, cuda, rocm or ascend."""
    dtype: str = "auto"
    """float32, bfloat16, float16 or auto (float32 on CPU, bfloat16 on accelerators)."""
    endpoint: str | None = None
    """Base URL of an HTTP engine, e.g. ``http://127.0.0.1:8000/v1``."""
    max_batch_size: int = 16
    """Largest batch an in-process engine runs at once."""
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Engine-specific settings from the profile's ``[engine.<name>]`` table."""

    def resolved_dtype(self) -> str:
        if self.dtype != "auto":
            return self.dtype
        return "float32" if self.device == "cpu" else "bfloat16"


@dataclasses.dataclass(frozen=True)
class GenerationParams:
    """How to generate; always greedy (temperature 0), as MLPerf and lm-eval score."""

    max_new_tokens: int = 128
    """Upper bound of generated tokens per prompt (EOS included)."""
    min_new_tokens: int = 1
    """EOS is suppressed until this many tokens exist."""
    ignore_eos: bool = False
    """Keep generating through EOS (benchmarks that want fixed output lengths)."""

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ValueError(
                f"min_new_tokens must be in 0..max_new_tokens ({self.max_new_tokens}), "
                f"got {self.min_new_tokens}"
            )


@dataclasses.dataclass(frozen=True)
class Generation:
    """One prompt's output.

    ``token_ids`` holds only generated tokens (no prompt, no padding) and ends in
    EOS at most once.  ``token_times[i]`` is the ``time.perf_counter()`` at which
    token ``i`` became available; ``start_time`` is when the request was started.
    """

    token_ids: tuple[int, ...]
    token_times: tuple[float, ...]
    start_time: float
    finish_reason: Literal["eos", "length"]
    server_token_count: int | None = None
    """The server's own count of generated tokens (``usage.completion_tokens``) where an HTTP
    engine had to re-tokenize the answer's text: recorded beside ``len(token_ids)``, never
    compared with it (the two tokenizations need not agree)."""
    engine_ttft: float | None = None
    """The engine's own time to first token in seconds, where it reports one (vLLM: from the
    request's arrival in the engine); a reference for the client-side ``token_times``."""
    engine_tpot: float | None = None
    """The engine's own mean time per output token after the first, in seconds, where it reports one."""

    @property
    def time_to_first_token(self) -> float:
        return self.token_times[0] - self.start_time if self.token_times else float("nan")

    @property
    def time_per_output_token(self) -> float:
        """Mean gap between tokens after the first (MLPerf's TPOT)."""
        if len(self.token_times) < 2:
            return float("nan")
        return (self.token_times[-1] - self.token_times[0]) / (len(self.token_times) - 1)


@dataclasses.dataclass(frozen=True)
class ScoredPath:
    """Teacher-forced scores for one token path.

    ``values[i]`` scores the token at ``path[i]`` given the prompt and
    ``path[:i]``; its last axis is the vocabulary.  ``space`` says whether these
    are raw logits or log-probabilities (engines behind an API only expose the
    latter, and only the top few: missing entries are ``-inf``).
    """

    values: np.ndarray
    space: Literal["logits", "logprobs"]


@dataclasses.dataclass(frozen=True)
class EngineInfo:
    """What a result needs to say about the engine that produced it."""

    engine: str
    model: str
    device: str
    device_name: str
    dtype: str
    versions: dict[str, str]
    notes: tuple[str, ...] = ()
    threads: int | None = None
    """CPU threads of an in-process engine's math library, where the engine sets them."""
    server: str | None = None
    """The software (and version) behind an HTTP engine, e.g. ``vllm 0.32.0`` (``engines.server_identity``)."""
    key_options: dict[str, str] = dataclasses.field(default_factory=dict)
    """Engine options that change the numbers and differ from the engine's defaults (vLLM's
    ``kv_cache_dtype``, ``quantization``, ``tensor_parallel_size``): part of the baseline key, so each
    configuration has baselines of its own (``gating.baselines.BaselineKey.options``)."""
    capabilities: dict[str, bool | None] = dataclasses.field(default_factory=dict)
    """What a server can do, as probed (``engines.capabilities``): name -> available (True), lacking
    (False) or accepted but not confirmed (None: a parameter no answer has shown ignored yet); a name
    not listed is available (in-process engines can do everything)."""


@runtime_checkable
class Engine(Protocol):
    """The engine interface. Implementations live in one module each; what an engine may offer beyond
    these methods is listed in ``OPTIONAL_MEMBERS`` below."""

    info: EngineInfo
    eos_token_ids: frozenset[int]

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        params: GenerationParams,
        on_token: TokenCallback | None = None,
        on_finish: FinishCallback | None = None,
    ) -> list[Generation]:
        """Greedy-generate for each prompt; return outputs in prompt order.

        ``on_finish`` is called for each prompt as soon as its own answer ends
        (its EOS step or its last token), before the call returns."""
        ...

    def score_path(
        self, prompt: Sequence[int], path: Sequence[int], top_k: int | None = None
    ) -> ScoredPath:
        """Scores of ``path`` given ``prompt`` (shape ``len(path) x vocab``)."""
        ...

    def loglikelihood(
        self, requests: Sequence[tuple[Sequence[int], Sequence[int]]]
    ) -> list[tuple[float, bool]]:
        """For each ``(context, continuation)``: (sum log P, continuation is greedy)."""
        ...

    def close(self) -> None:
        """Free the engine's memory, processes and connections."""
        ...


@runtime_checkable
class ContinuousEngine(Engine, Protocol):
    """An engine that batches continuously: a request joins the running batch when it arrives."""

    def submit(self, tag: int, prompt: Sequence[int], params: GenerationParams,
               on_token: TokenCallback | None, on_done: DoneCallback) -> None:
        """Start one request and return at once.  ``on_token(tag, token, time)`` as tokens
        arrive, then exactly one ``on_done(tag, generation_or_exception)``; both are called
        from the engine's own thread."""
        ...


OPTIONAL_MEMBERS: dict[str, str] = {
    "submit": "continuous batching: start one request and return at once (``ContinuousEngine``); the Server "
              "SUT then submits each query on arrival",
    "abort": "stop at once after an interrupt and refuse new work (``abort``)",
    "forward_passes": "an int: the forward passes run so far, for MBU (``forward_passes``)",
    "endpoint": "the URL of the server behind an HTTP engine: that server's processes count as the run's CPU "
                "in the contention meter",
    "kv_cache_dtype": "the KV cache's element type where it is not the model's dtype (\"fp8\"), for MBU",
    "required_capabilities": "the capabilities the profile requires (``engines.capabilities``): a test that "
                             "needs one fails instead of skipping",
    "settings_table": "the profile table that configures the engine (\"[engine.openai]\"), named in messages",
}
"""What an engine may offer beyond ``Engine``'s methods, by attribute name.  The harness reads them only
through ``optional``, so this table is the whole list a new engine can look at."""


def optional(engine: Engine, name: str, default=None):
    """``engine``'s optional member ``name`` (one of ``OPTIONAL_MEMBERS``), or ``default``."""
    if name not in OPTIONAL_MEMBERS:
        raise ValueError(f"{name!r} is not an optional engine member; declare it in OPTIONAL_MEMBERS")
    return getattr(engine, name, default)


def abort(engine: Engine) -> None:
    """Tell ``engine`` to stop at once, where it can (``engine.abort()``): the session was interrupted.

    An engine's ``abort`` ends what it is running as soon as it can (between decode steps, or by
    aborting its requests) and refuses new work with ``EngineAborted``; it is only closed afterwards.
    Engines without one are left to finish; an error here never hides the interrupt."""
    stop = optional(engine, "abort")
    if callable(stop):
        try:
            stop()
        except Exception:
            pass


def batches_continuously(engine: Engine) -> bool:
    """True for engines with ``submit`` (the Server SUT then submits each query on arrival)."""
    return callable(optional(engine, "submit"))


def forward_passes(engine: Engine) -> int | None:
    """Forward passes (prefill and decode steps) the engine has run so far, where it counts them.

    Utilization (MBU) needs steps, not tokens: in one step a continuous batch
    emits a token for each running request, each stamped at its own time."""
    count = optional(engine, "forward_passes")
    return int(count) if isinstance(count, int) else None


def trim_at_eos(token_ids: Sequence[int], eos_token_ids: frozenset[int]) -> tuple[tuple[int, ...], bool]:
    """Cut a token list after its first EOS; return (tokens, ended_with_eos)."""
    for index, token in enumerate(token_ids):
        if token in eos_token_ids:
            return tuple(int(t) for t in token_ids[: index + 1]), True
    return tuple(int(t) for t in token_ids), False


def group_one_token_requests(
    requests: Sequence[tuple[Sequence[int], Sequence[int]]],
) -> tuple[dict[tuple[int, ...], list[int]], list[int]]:
    """Check ``loglikelihood`` requests and sort them for scoring: indices of one-token
    continuations grouped by their context (MMLU's " A".." D" share one), and all other indices."""
    one_token: dict[tuple[int, ...], list[int]] = {}
    longer: list[int] = []
    for index, (context, continuation) in enumerate(requests):
        if not context or not continuation:
            raise ValueError(f"request {index} needs a non-empty context and continuation")
        if len(continuation) == 1:
            one_token.setdefault(tuple(int(t) for t in context), []).append(index)
        else:
            longer.append(index)
    return one_token, longer
