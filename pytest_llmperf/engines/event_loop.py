"""A private asyncio event loop in a daemon thread, for engines with a synchronous interface.

The engine interface is synchronous (LoadGen and pytest call it from plain
threads), while vLLM's streaming engine and the HTTP clients are asyncio.  Each
such engine owns one loop; ``run`` submits a coroutine and blocks the calling
thread until it is done, so several threads can share one engine.
"""

from __future__ import annotations

import asyncio
import threading


class LoopThread:
    """An event loop running forever in its own thread until ``stop``."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._requests: set = set()  # futures of run/submit still going (cancelled by cancel_requests)
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout: float | None = None):
        """Run ``coroutine`` on the loop and return its result (or raise its exception)."""
        future = self._track(asyncio.run_coroutine_threadsafe(coroutine, self.loop))
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()  # an interrupted caller (Ctrl-C, timeout) cancels its requests
            raise

    def submit(self, coroutine, tag: int, on_done) -> None:
        """Start ``coroutine`` on the loop and return at once; ``on_done(tag, result or exception)``
        is called on the loop's thread when it ends (a cancelled one ends with ``CancelledError``)."""
        future = self._track(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

        def finished(done) -> None:
            try:
                result = done.result()
            except BaseException as exc:  # the caller decides what a failed request means
                result = exc
            on_done(tag, result)

        future.add_done_callback(finished)

    def _track(self, future):
        self._requests.add(future)
        future.add_done_callback(self._requests.discard)
        return future

    def cancel_requests(self) -> int:
        """Cancel every coroutine started through ``run`` or ``submit`` (a cancelled streaming request is
        aborted: vLLM aborts it in its engine, an HTTP client closes its connection); how many."""
        pending = list(self._requests)
        for future in pending:
            future.cancel()
        return len(pending)

    def stop(self) -> None:
        """Cancel what is still pending, stop the loop and join its thread."""
        if self.loop.is_closed():
            return
        if self.loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(_cancel_pending_tasks(), self.loop).result(timeout=30)
            except Exception:  # stopping must go on; what is left is dropped with the loop
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=30)
        if not self.loop.is_running():
            self.loop.close()


async def _cancel_pending_tasks() -> None:
    """Cancel background tasks and wait for them, so none is destroyed while pending."""
    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def run_all(coroutines) -> list:
    """Run coroutines concurrently; results in order.  The first failure cancels the rest
    (a streaming request cancelled is aborted) and is raised as itself, not as a group."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(coroutine) for coroutine in coroutines]
    except BaseExceptionGroup as failures:
        first = failures.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    return [task.result() for task in tasks]


async def generate_each(generate_one, prompts, settings, on_token, on_finish) -> list:
    """``generate_one(index, prompt, settings, on_token)`` for every prompt, concurrently, results in
    order; ``on_finish(index, generation)`` as each ends (``generate`` of the streaming engines)."""
    async def one(index: int, prompt):
        generation = await generate_one(index, prompt, settings, on_token)
        if on_finish is not None:
            on_finish(index, generation)
        return generation

    return await run_all(one(index, prompt) for index, prompt in enumerate(prompts))
