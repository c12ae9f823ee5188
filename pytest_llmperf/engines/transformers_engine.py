"""The Hugging Face transformers engine (cpu, cuda, rocm, npu).

Greedy generation runs in static batches of prompts of similar length,
left-padded with an attention mask.  A stopping criterion, which transformers
calls once per decode step, stamps each new token's time, reports it through
``on_token``, and reports a prompt's whole answer through ``on_finish`` at the
step its answer ends (its EOS, or its last token), while the batch goes on.

Compile mode (``compile = true`` in the profile's ``[engine.transformers]``
table, or ``LLMPERF_TRANSFORMERS_COMPILE=1``) gives ``generate`` a static KV
cache and a ``CompileConfig``, so transformers runs every decode step through
``torch.compile`` (by default ``mode="reduce-overhead"``: CUDA graphs) while the
prefill stays eager.  transformers copies each step's logits out of the graph's
buffers before the next replay, which a bare ``torch.compile(model.forward)``
does not.
"""

from __future__ import annotations

import os
import time
from typing import Any, Sequence

import numpy as np

from .. import hardware
from ..errors import EngineAborted, EngineError, UsageError
from .base import (EngineInfo, EngineOptions, FinishCallback, Generation, GenerationParams, ScoredPath, TokenCallback,
                   trim_at_eos)

DTYPES = ("float32", "bfloat16", "float16")
COMPILE_ENV = "LLMPERF_TRANSFORMERS_COMPILE"
COMPILE_MODES = ("reduce-overhead", "default", "max-autotune", "max-autotune-no-cudagraphs")


def compile_settings(settings: dict[str, Any]) -> tuple[bool, str]:
    """(compile?, torch.compile mode) from ``[engine.transformers]``; the environment variable wins for ``compile``."""
    where = "[engine.transformers]"
    requested = settings.get("compile", False)
    if os.environ.get(COMPILE_ENV, "") != "":
        where, requested = COMPILE_ENV, os.environ[COMPILE_ENV].strip().lower()
        if requested not in ("1", "0", "true", "false"):
            raise UsageError(COMPILE_ENV, f"{requested!r} is not a boolean", "set it to 1 or 0")
        requested = requested in ("1", "true")
    if not isinstance(requested, bool):
        raise UsageError(f"{where} compile", f"{requested!r} is not a boolean", "write compile = true or compile = false")
    mode = settings.get("compile_mode", COMPILE_MODES[0])
    if mode not in COMPILE_MODES:
        raise UsageError("[engine.transformers] compile_mode", f"{mode!r} is not a torch.compile mode",
                         f"use one of: {', '.join(COMPILE_MODES)}")
    return requested, mode


def length_sorted_batches(lengths: Sequence[int], max_batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), so little padding is computed."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[start:start + max_batch_size] for start in range(0, len(order), max_batch_size)]


class _StepClock:
    """Stopping criterion that never stops: it timestamps every decode step and reports
    each row's tokens, and each row's answer the step it ends."""

    def __init__(self, prompt_width: int, rows: list[int], eos: frozenset[int], params: GenerationParams,
                 start: float, on_token: TokenCallback | None, on_finish: FinishCallback | None,
                 aborted=lambda: False):
        self.aborted = aborted
        self.prompt_width = prompt_width
        self.rows = rows  # batch row -> caller's prompt index
        self.eos = frozenset() if params.ignore_eos else eos
        self.max_new_tokens = params.max_new_tokens
        self.start = start
        self.on_token = on_token
        self.on_finish = on_finish
        self.times: list[float] = []
        self.finished = [False] * len(rows)

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        now = time.perf_counter()
        self.times.append(now)
        newest = input_ids[:, -1].tolist()
        last_step = len(self.times) >= self.max_new_tokens
        for row, token in enumerate(newest):
            if self.finished[row]:
                continue
            if self.on_token is not None:
                self.on_token(self.rows[row], int(token), now)
            if token in self.eos or last_step:
                self.finished[row] = True
                if self.on_finish is not None:
                    self.on_finish(self.rows[row], self.generation(input_ids[row, self.prompt_width:].tolist()))
        # Returning True for every row ends generate() after this step (abort: the session was interrupted).
        stop = torch.ones if self.aborted() else torch.zeros
        return stop(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    def generation(self, new_tokens: list[int]) -> Generation:
        """One row's answer from its generated tokens (cut after its first EOS)."""
        kept, ended = trim_at_eos(new_tokens, self.eos)
        return Generation(token_ids=kept, token_times=tuple(self.times[: len(kept)]), start_time=self.start,
                          finish_reason="eos" if ended else "length")


def _cuda_graph_state_for_this_thread(torch) -> None:
    """Set up the per-thread state of torch's CUDA graph trees where it is missing.

    Some torch versions (2.11 among them) create it only in the thread that
    imported them and fail a bare ``assert`` in any other, e.g. LoadGen's SUT
    worker; newer ones (2.13) set it up on first use, as done here.
    """
    import collections
    import threading

    try:
        from torch._inductor import cudagraph_trees

        if torch._C._is_key_in_tls("tree_manager_containers"):
            return
        local = cudagraph_trees.local
        local.tree_manager_containers = {}
        local.tree_manager_locks = collections.defaultdict(threading.Lock)
        torch._C._stash_obj_in_tls("tree_manager_containers", local.tree_manager_containers)
        torch._C._stash_obj_in_tls("tree_manager_locks", local.tree_manager_locks)
    except (ImportError, AttributeError):  # a torch without these internals has its own handling
        return


class TransformersEngine:
    """``transformers.AutoModelForCausalLM`` behind the engine interface."""

    def __init__(self, options: EngineOptions):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ..models import build_random_model, offline_environment, random_weights_seed

        offline_environment()
        self.compile, self.compile_mode = compile_settings(options.settings)
        dtype = options.resolved_dtype()
        if dtype not in DTYPES:
            raise EngineError(f"transformers engine: dtype {dtype!r} is not one of {', '.join(DTYPES)}")
        self.options = options
        self.device = hardware.torch_device(options.device)
        self.threads = None
        if options.device == "cpu":
            self.threads, why = hardware.cpu_threads()
            torch.set_num_threads(self.threads)
            threads_note = f"torch CPU threads: {self.threads} ({why})"
        if options.device == "ascend":
            import torch_npu  # noqa: F401  (registers the npu device)
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(options.model_path, local_files_only=True)
        seed = random_weights_seed(options.model_path)
        try:
            if seed is None:
                self.model = AutoModelForCausalLM.from_pretrained(
                    options.model_path, dtype=getattr(torch, dtype), local_files_only=True
                ).to(self.device).eval()
            else:
                self.model = build_random_model(options.model_path, getattr(torch, dtype), self.device)
        except (OSError, ValueError) as exc:
            raise EngineError(f"transformers engine could not load {options.model_path}: {exc}") from exc
        if self.compile:
            self._compile_decode_step()
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos_ids.add(self.tokenizer.eos_token_id)
        self.eos_token_ids = frozenset(eos_ids)
        pad = self.tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else min(self.eos_token_ids)
        self.max_batch_size = options.max_batch_size
        self._aborted = False
        self.forward_passes = 0
        """Model forward passes run by ``generate`` so far (one per generated token position of a batch)."""
        import transformers

        self.info = EngineInfo(
            # A name of its own, so compiled and eager runs never share a baseline file.
            engine="transformers-compiled" if self.compile else "transformers",
            model=options.model_name,
            device=options.device,
            device_name=hardware.device_name(options.device),
            dtype=dtype,
            versions={"torch": torch.__version__, "transformers": transformers.__version__},
            notes=(((f"random weights, seed {seed}",) if seed is not None else ())
                   + ((f"torch.compile (mode={self.compile_mode}) with a static KV cache",) if self.compile else ())
                   + ((threads_note,) if self.threads is not None else ())),
            threads=self.threads,
        )

    def _compile_decode_step(self) -> None:
        """Make ``generate`` compile its decode step: a static KV cache and a CompileConfig."""
        from transformers import CompileConfig

        config = self.model.generation_config
        config.cache_implementation = "static"
        config.compile_config = CompileConfig(fullgraph=True, mode=self.compile_mode)
        # transformers compiles on its own only on accelerators; compile mode means compile, on CPUs too.
        config.compile_config._compile_all_devices = True

    # -- generation ---------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        params: GenerationParams,
        on_token: TokenCallback | None = None,
        on_finish: FinishCallback | None = None,
    ) -> list[Generation]:
        from ..runtime import progress

        results: list[Generation | None] = [None] * len(prompts)
        with progress.bar(total=len(prompts), description="generate (transformers)", unit="prompt") as bar:
            for batch in length_sorted_batches([len(p) for p in prompts], self.max_batch_size):
                if self._aborted:
                    raise EngineAborted("transformers engine: aborted (the session was interrupted)")
                batch_prompts = [prompts[i] for i in batch]
                for index, generation in zip(batch, self._generate_batch(batch_prompts, batch, params,
                                                                         on_token, on_finish)):
                    results[index] = generation
                bar.update(len(batch))
        if self._aborted:  # cut during its last batch: its answers are partial
            raise EngineAborted("transformers engine: aborted (the session was interrupted)")
        return results  # type: ignore[return-value]

    def _generate_batch(self, prompts, indices, params: GenerationParams, on_token, on_finish):
        torch = self.torch
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            input_ids[row, width - len(prompt):] = torch.tensor(list(prompt), dtype=torch.long)
            attention[row, width - len(prompt):] = 1
        start = time.perf_counter()
        clock = _StepClock(width, list(indices), self.eos_token_ids, params, start, on_token, on_finish,
                           aborted=lambda: self._aborted)
        kwargs = dict(
            input_ids=input_ids.to(self.device),
            attention_mask=attention.to(self.device),
            do_sample=False,
            max_new_tokens=params.max_new_tokens,
            min_new_tokens=params.min_new_tokens if not params.ignore_eos else None,
            pad_token_id=self.pad_token_id,
            eos_token_id=None if params.ignore_eos else sorted(self.eos_token_ids),
            stopping_criteria=[clock],
            temperature=None, top_p=None, top_k=None,
        )
        if self.compile:
            kwargs["cache_implementation"] = "static"
            if self.device.startswith("cuda"):
                _cuda_graph_state_for_this_thread(torch)
        with torch.inference_mode():
            output = self.model.generate(**kwargs)
        self.forward_passes += len(clock.times)
        return [clock.generation(tokens) for tokens in output[:, width:].tolist()]

    def abort(self) -> None:
        """Stop now (the session was interrupted): a running ``generate`` ends after its current decode
        step and raises ``EngineAborted``; later calls raise it at once."""
        self._aborted = True

    # -- scoring ------------------------------------------------------------

    def _logits_at(self, sequences: Sequence[Sequence[int]], positions: Sequence[Sequence[int]]):
        """Right-padded forward pass; float32 logits of row i at ``positions[i]`` only.

        The LM head runs only at the positions asked for (``logits_to_keep``):
        full-vocabulary logits of every position would take gigabytes at batch 16.
        """
        torch = self.torch
        width = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, seq in enumerate(sequences):
            ids[row, : len(seq)] = torch.tensor(list(seq), dtype=torch.long)
            mask[row, : len(seq)] = 1
        kept = sorted({p for row in positions for p in row})
        column = {p: i for i, p in enumerate(kept)}
        with torch.inference_mode():
            try:
                out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                 logits_to_keep=torch.tensor(kept, device=self.device))
                logits = out.logits
            except TypeError:  # a model class without logits_to_keep: slice afterwards
                out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
                logits = out.logits[:, kept]
        return [logits[row, [column[p] for p in row_positions]].float()
                for row, row_positions in enumerate(positions)]

    def score_path(self, prompt: Sequence[int], path: Sequence[int], top_k: int | None = None) -> ScoredPath:
        if not prompt or not path:
            raise ValueError("score_path needs a non-empty prompt and path")
        start = len(prompt) - 1
        (logits,) = self._logits_at([list(prompt) + list(path)], [range(start, start + len(path))])
        return ScoredPath(values=logits.cpu().numpy().astype(np.float32), space="logits")

    def loglikelihood(self, requests: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[tuple[float, bool]]:
        """Sum log P(continuation | context) and whether the continuation is greedy.

        Single-token continuations of one context (MMLU's " A".." D") share one
        forward pass over the context, as lm-eval does.
        """
        torch = self.torch
        for index, (context, continuation) in enumerate(requests):
            if not context or not continuation:
                raise ValueError(f"request {index} has an empty context or continuation")
        # One forward pass per distinct (sequence, scored span): for a single
        # token the sequence is the context alone, so " A".." D" share it.
        passes: dict[tuple[tuple[int, ...], int, int], list[int]] = {}
        for index, (context, continuation) in enumerate(requests):
            sequence = tuple(context) if len(continuation) == 1 else tuple(context) + tuple(continuation)
            passes.setdefault((sequence, len(context) - 1, len(continuation)), []).append(index)
        keys = list(passes)
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        for batch in length_sorted_batches([len(k[0]) for k in keys], self.max_batch_size):
            logits = self._logits_at([keys[i][0] for i in batch],
                                     [range(keys[i][1], keys[i][1] + keys[i][2]) for i in batch])
            for row, i in enumerate(batch):
                logprobs = torch.log_softmax(logits[row], dim=-1)
                greedy_tokens = logprobs.argmax(dim=-1)
                positions = torch.arange(keys[i][2], device=logprobs.device)
                for index in passes[keys[i]]:
                    target = torch.tensor(list(requests[index][1]), device=logprobs.device)
                    total = logprobs[positions, target].sum().item()
                    results[index] = (float(total), bool((greedy_tokens == target).all().item()))
        return results  # type: ignore[return-value]

    def close(self) -> None:
        self.model = None
        if self.options.device in ("cuda", "rocm"):
            self.torch.cuda.empty_cache()
