"""Validating parsers for option values, shared by the pytest options and the ``llmperf`` CLI.

Each parser raises ``argparse.ArgumentTypeError`` with the value and what to pass
instead; pytest and argparse both show that as a usage error at parse time.
"""

from __future__ import annotations

import argparse
from typing import Callable


def whole_number(minimum: int = 0, hint: str = "") -> Callable[[str], int]:
    """A parser of integers >= ``minimum``; ``hint`` (e.g. "pass a count >= 1") ends each message."""
    suffix = f"; {hint}" if hint else ""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number{suffix}") from None
        if value < minimum:
            problem = "is negative" if minimum == 0 else f"is not >= {minimum}"
            raise argparse.ArgumentTypeError(f"{value} {problem}{suffix}")
        return value

    parse.__name__ = f"whole_number_from_{minimum}"
    return parse


def fraction(hint: str) -> Callable[[str], float]:
    """A parser of numbers in 0 <= value < 1."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; {hint}") from None
        if not 0 <= value < 1:
            raise argparse.ArgumentTypeError(f"{value} is outside 0..1; {hint}")
        return value

    parse.__name__ = "fraction"
    return parse


def parse_endpoint(text: str) -> str:
    """An http(s) base URL, without its trailing slash."""
    from urllib.parse import urlparse

    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL; pass e.g. http://127.0.0.1:8000/v1")
    return text.rstrip("/")


positive = whole_number(1)
non_negative = whole_number(0)
