"""One exception hierarchy for everything a user can get wrong.

Every user-facing error says three things: what (the file, option or endpoint),
the problem, and the fix.  The CLI prints ``str(error)`` on one line and exits
with status 2; the plugin turns it into a usage error or a test failure, never a
traceback.
"""

from __future__ import annotations


class LlmperfError(Exception):
    """Base class of every error this package raises on purpose."""


class UsageError(LlmperfError):
    """A bad option, profile value or command-line argument."""

    def __init__(self, what: str, problem: str, fix: str):
        self.what, self.problem, self.fix = what, problem, fix
        super().__init__(f"{what}: {problem}; {fix}")


class InputError(LlmperfError):
    """A file that is missing, unreadable or malformed."""

    def __init__(self, path: object, problem: str, fix: str):
        self.path, self.problem, self.fix = str(path), problem, fix
        super().__init__(f"{path}: {problem}; {fix}")


class EngineError(LlmperfError):
    """An engine that failed to load or to answer (a dead endpoint, an OOM)."""


class EngineAborted(EngineError):
    """An engine told to stop (``abort``: the session was interrupted) refusing or ending work."""


class EngineUnavailable(LlmperfError):
    """An engine whose library is not installed; tests skip with this message."""


class DeviceUnavailable(LlmperfError):
    """The requested hardware is not present; tests skip with this message."""
