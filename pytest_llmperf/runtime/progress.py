"""Progress bars for long work: generation, LoadGen runs, scoring.

A thin layer over tqdm that stays silent where a bar would only add noise:

* stderr (where bars are drawn) or stdout is not a terminal: CI logs, pipes, and
  pytest's default output capture;
* inside a pytest-xdist worker (``PYTEST_XDIST_WORKER`` is set): several
  workers drawing on one terminal garble it;
* ``LLMPERF_PROGRESS=0``.  ``LLMPERF_PROGRESS=1`` forces bars on, even on
  a pipe (but never inside an xdist worker).

Bars appear only once the work has taken ``DELAY_S`` seconds, so short runs
print nothing.

API::

    from pytest_llmperf import progress

    with progress.bar(total=len(prompts), description="generate", unit="prompt") as bar:
        for batch in batches:
            ...
            bar.update(len(batch))

    for sample in progress.track(samples, description="score ROUGE", unit="sample"):
        ...

    # an engine's on_token callback that counts generated tokens:
    with progress.bar(total=len(prompts) * max_new_tokens, description="generate", unit="tok") as bar:
        engine.generate(prompts, params, on_token=progress.token_counter(bar))

``bar(...)`` yields an object with ``update(n=1)``, ``set_postfix(**values)``
and ``set_description(text)``; when bars are off it is a no-op with the same
methods, so callers never branch on ``enabled()``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")

ENV_SWITCH = "LLMPERF_PROGRESS"
XDIST_WORKER_ENV = "PYTEST_XDIST_WORKER"
DELAY_S = 2.0


def _is_terminal(stream) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def lines_enabled(isatty: bool) -> bool:
    """Whether one-line progress reports (a performance test's rounds) go to a terminal whose ``isatty``
    is given: the same switch as the bars (``LLMPERF_PROGRESS``), never inside an xdist worker."""
    if os.environ.get(XDIST_WORKER_ENV):
        return False
    switch = os.environ.get(ENV_SWITCH, "").strip().lower()
    if switch in ("0", "false", "no", "off"):
        return False
    return isatty or switch in ("1", "true", "yes", "on")


def enabled() -> bool:
    """Whether a bar started now would be drawn."""
    return lines_enabled(_is_terminal(sys.stderr) and _is_terminal(sys.stdout))


class SilentBar:
    """Stands in for a tqdm bar when bars are off."""

    n = 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, **values) -> None:
        pass

    def set_description(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


@contextlib.contextmanager
def bar(total: int | None, description: str, unit: str = "it") -> Iterator:
    """A progress bar for ``total`` units of work (None: unknown total)."""
    if not enabled():
        yield SilentBar()
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=description, unit=unit, delay=DELAY_S, leave=False, dynamic_ncols=True,
              file=sys.stderr) as handle:
        yield handle


def track(items: Iterable[T], description: str, unit: str = "it", total: int | None = None) -> Iterator[T]:
    """Iterate ``items`` with a bar; ``total`` defaults to ``len(items)`` where it has one."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with bar(total, description, unit) as handle:
        for item in items:
            yield item
            handle.update(1)


def token_counter(handle) -> Callable[[int, int, float], None]:
    """An engine ``on_token`` callback that advances ``handle`` by one per token."""
    def on_token(prompt_index: int, token_id: int, when: float) -> None:
        handle.update(1)

    return on_token
