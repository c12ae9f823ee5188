"""Plumbing engines: fakes that test the SUT's timing and the harness's ceiling, never an engine.

* ``PacedEngine`` emulates a continuous-batching engine: one step every
  ``step_s`` gives every running request its next token, and a submitted
  request joins at the next step.  It stamps each token with the time it
  really emitted it: those stamps are the "true" TTFT/TPOT that LoadGen's
  numbers are compared with.
* ``PacedStaticEngine`` emulates a static-batch engine: ``generate`` runs a
  batch in lock-step, one token per row every ``step_s``, until its longest
  answer ends; each row's answer is finished at its own last step.
* ``InstantEngine`` answers at once (the harness ceiling).

The answer length of a prompt is its first token id (a prompt ``[4, ...]`` gets
4 tokens, the last of them EOS), capped at ``max_new_tokens``.  Benchmarks
import this module too (``benchmarks/`` puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import threading
import time

from pytest_llmperf.engines import EngineInfo, Generation

EOS = 2
FILLER = 5


def answer_length(prompt, params) -> int:
    return max(1, min(int(prompt[0]), params.max_new_tokens))


def answer_tokens(length: int) -> tuple[int, ...]:
    return (FILLER,) * (length - 1) + (EOS,)


class _Request:
    def __init__(self, tag, tokens, start, on_token, on_done):
        self.tag, self.tokens, self.start = tag, tokens, start
        self.on_token, self.on_done = on_token, on_done
        self.times: list[float] = []


class PacedEngine:
    """Continuous batching, emulated: every ``step_s`` one step gives each running request a token.

    A request joins the running batch at the next step (one step after its
    submission when the engine is idle), so its first token comes within a step."""

    eos_token_ids = frozenset({EOS})

    def __init__(self, step_s: float = 0.010, fail_on: int | None = None, max_running: int | None = None):
        self.step_s = step_s
        self.fail_on = fail_on  # the submit number (1-based) that fails
        # At most this many requests decode at once; the rest wait in arrival order. With answers of
        # L tokens its capacity is max_running / (L x step_s) requests per second.
        self.max_running = max_running
        self.info = EngineInfo("paced-plumbing", "none", "cpu", "plumbing", "float32", {})
        self.submitted = 0
        self.steps = 0
        self.finished: list[Generation] = []
        self._joining: list[_Request] = []
        self._running: list[_Request] = []
        self._next_step = 0.0
        self._wake = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="paced-engine", daemon=True)
        self._thread.start()

    def submit(self, tag, prompt, params, on_token, on_done) -> None:
        with self._wake:
            self.submitted += 1
            if self.submitted == self.fail_on:
                raise RuntimeError(f"request {self.submitted} refused")
            start = time.perf_counter()
            if not self._running and not self._joining:
                self._next_step = start + self.step_s  # an idle engine starts stepping now
            self._joining.append(_Request(tag, answer_tokens(answer_length(prompt, params)), start, on_token,
                                          on_done))
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and not self._running and not self._joining:
                    self._wake.wait()
                if self._stopping:
                    return
                due = self._next_step
            time.sleep(max(0.0, due - time.perf_counter()))
            with self._wake:
                room = len(self._joining) if self.max_running is None else self.max_running - len(self._running)
                self._running.extend(self._joining[:max(0, room)])
                del self._joining[:max(0, room)]
                batch = list(self._running)
                self._next_step = max(due + self.step_s, time.perf_counter())
            self._step(batch)

    def _step(self, batch: list[_Request]) -> None:
        now = time.perf_counter()
        self.steps += 1
        done = []
        for request in batch:
            token = request.tokens[len(request.times)]
            request.times.append(now)
            if request.on_token is not None:
                request.on_token(request.tag, token, now)
            if len(request.times) == len(request.tokens):
                done.append(request)
        if done:
            with self._wake:
                self._running = [r for r in self._running if len(r.times) < len(r.tokens)]
        for request in done:
            generation = Generation(request.tokens, tuple(request.times), request.start, "eos")
            self.finished.append(generation)
            request.on_done(request.tag, generation)

    def generate(self, prompts, params, on_token=None, on_finish=None) -> list[Generation]:
        results: list = [None] * len(prompts)
        left = threading.Semaphore(0)

        def done(index, result):
            results[index] = result
            if on_finish is not None and isinstance(result, Generation):
                on_finish(index, result)
            left.release()

        for index, prompt in enumerate(prompts):
            self.submit(index, prompt, params, on_token, done)
        for _ in prompts:
            left.acquire()
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results

    def close(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join()


class PacedStaticEngine:
    """Static batches, emulated: rows advance in lock-step, one token per ``step_s``."""

    eos_token_ids = frozenset({EOS})

    def __init__(self, step_s: float = 0.010):
        self.step_s = step_s
        self.info = EngineInfo("paced-static-plumbing", "none", "cpu", "plumbing", "float32", {})
        self.batches: list[int] = []

    def generate(self, prompts, params, on_token=None, on_finish=None) -> list[Generation]:
        self.batches.append(len(prompts))
        answers = [answer_tokens(answer_length(p, params)) for p in prompts]
        times: list[list[float]] = [[] for _ in prompts]
        results: list = [None] * len(prompts)
        start = time.perf_counter()
        for step in range(max(len(a) for a in answers)):
            time.sleep(max(0.0, start + (step + 1) * self.step_s - time.perf_counter()))
            now = time.perf_counter()
            for row, answer in enumerate(answers):
                if step >= len(answer):
                    continue
                times[row].append(now)
                if on_token is not None:
                    on_token(row, answer[step], now)
                if step == len(answer) - 1:
                    results[row] = Generation(answer, tuple(times[row]), start, "eos")
                    if on_finish is not None:
                        on_finish(row, results[row])
        return results

    def close(self) -> None:
        pass


class InstantEngine:
    """Answers every prompt with ``answer`` at once; ``submit`` finishes before it returns."""

    eos_token_ids = frozenset({EOS})

    def __init__(self, answer=(FILLER, FILLER, EOS)):
        self.answer = tuple(answer)
        self.info = EngineInfo("instant-plumbing", "none", "cpu", "plumbing", "float32", {})

    def _answer(self, index, on_token) -> Generation:
        now = time.perf_counter()
        if on_token is not None:
            on_token(index, self.answer[0], now)
        return Generation(self.answer, (now,) * len(self.answer), now, "eos")

    def submit(self, tag, prompt, params, on_token, on_done) -> None:
        on_done(tag, self._answer(tag, on_token))

    def generate(self, prompts, params, on_token=None, on_finish=None) -> list[Generation]:
        out = []
        for index, _ in enumerate(prompts):
            out.append(self._answer(index, on_token))
            if on_finish is not None:
                on_finish(index, out[-1])
        return out

    def close(self) -> None:
        pass


class InstantStaticEngine(InstantEngine):
    """``InstantEngine`` without ``submit``: the SUT treats it as a static-batch engine."""

    submit = None
