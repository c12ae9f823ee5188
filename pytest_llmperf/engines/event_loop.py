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
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout: float | None = None):
        """Run ``coroutine`` on the loop and return its result (or raise its exception)."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()  # an interrupted caller (Ctrl-C, timeout) cancels its requests
            raise

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
