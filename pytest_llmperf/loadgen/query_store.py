"""Per-query token times in columns: the SUT's recorder during a run, and ``queries.npz`` on disk.

A run of 24,576 samples x 1,024 tokens has 25 M token times; as Python floats in
lists (and as indented JSON) that is gigabytes and minutes after LoadGen ends.
Here they are columns of machine numbers from the first token on:

* ``qsl_idx``, ``issued`` (seconds), ``tokens`` (tokens reported to LoadGen): one per query;
* ``token_times``: every query's token times, one after another (seconds), and
  ``offsets``: query ``i``'s times are ``token_times[offsets[i]:offsets[i + 1]]``.

The SUT appends to ``array.array`` buffers (8 bytes a token, no Python object per
token, grown in place); ``write_query_store`` streams them into ``queries.npz``
(numpy's zip of ``.npy`` arrays, uncompressed) a slice at a time, with times made
relative to the run's first issue and, on disk, each query's ``first_token`` plus
float32 ``token_gaps`` (half the bytes: writing is most of the cost);
``read_query_store`` reads that file back into the same columns, and the
``queries.json`` of older runs.
"""

from __future__ import annotations

import array
import ctypes
import dataclasses
import json
import sys
import threading
import zipfile
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..runtime import atomic
from ..errors import InputError

QUERY_STORE = "queries.npz"
LEGACY_QUERY_TIMES = "queries.json"
"""What runs before schema 2 wrote (``[qsl_idx, issued, [token times], tokens]`` rows); still read."""
SCHEMA = 2
CLOCK = "seconds since the first issue (perf_counter)"
COLUMNS = {"qsl_idx": np.int64, "issued": np.float64, "tokens": np.int64, "offsets": np.int64,
           "first_token": np.float64, "token_gaps": np.float32}
"""The file's arrays (besides ``schema`` and ``clock``)."""
WRITE_SLICE = 1 << 20
"""Values per write: the file is streamed, so writing costs 8 MiB of memory, not a copy of the run."""
_FIX_REWRITE = "re-run the LoadGen test; the SUT writes it at the end of each run"


@dataclasses.dataclass(frozen=True)
class QueryTiming:
    """One completed sample: when it was issued and when the engine emitted each of its tokens."""

    qsl_idx: int
    issued: float
    """Seconds (perf_counter, relative to the run's first issue) at which LoadGen issued it to the SUT."""
    token_times: tuple[float, ...]
    """Seconds, same clock, at which the engine emitted each token."""
    tokens: int

    @property
    def ttft(self) -> float | None:
        return self.token_times[0] - self.issued if self.token_times else None

    @property
    def tpot(self) -> float | None:
        """(last - first token) / (tokens - 1), as LoadGen defines it; None below 2 tokens."""
        if len(self.token_times) < 2:
            return None
        return (self.token_times[-1] - self.token_times[0]) / (len(self.token_times) - 1)

    @property
    def e2e(self) -> float | None:
        return self.token_times[-1] - self.issued if self.token_times else None

    @property
    def itl(self) -> list[float]:
        times = self.token_times
        return [b - a for a, b in zip(times, times[1:])]


@dataclasses.dataclass(frozen=True, eq=False)
class QueryTimes:
    """Every completed query of one run, as columns (see the module's docstring)."""

    qsl_idx: np.ndarray
    issued: np.ndarray
    tokens: np.ndarray
    offsets: np.ndarray
    token_times: np.ndarray

    def __len__(self) -> int:
        return len(self.qsl_idx)

    def __iter__(self) -> Iterator:
        """One ``QueryTiming`` per query (convenient for a few; use the columns for many)."""

        for i in range(len(self)):
            times = tuple(self.token_times[self.offsets[i]:self.offsets[i + 1]].tolist())
            yield QueryTiming(int(self.qsl_idx[i]), float(self.issued[i]), times, int(self.tokens[i]))

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[int, float, Iterable[float], int]]) -> QueryTimes:
        """From ``(qsl_idx, issued, token times, tokens)`` rows."""
        recorder = QueryRecorder()
        for qsl_idx, issued, times, tokens in rows:
            recorder.add(qsl_idx, issued, times, tokens)
        return recorder.columns(copy=True)

    @property
    def counts(self) -> np.ndarray:
        """Token times per query."""
        return np.diff(self.offsets)

    @property
    def answered(self) -> np.ndarray:
        return self.counts > 0

    def first_token(self) -> np.ndarray:
        """Time of each query's first token (NaN where it has none)."""
        return self._at(self.offsets[:-1])

    def last_token(self) -> np.ndarray:
        return self._at(self.offsets[1:] - 1)

    def ttft(self) -> np.ndarray:
        return self.first_token() - self.issued

    def e2e(self) -> np.ndarray:
        return self.last_token() - self.issued

    def tpot(self) -> np.ndarray:
        """(last - first token) / (tokens - 1), as LoadGen defines it; NaN below 2 tokens."""
        counts = self.counts
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (self.last_token() - self.first_token()) / (counts - 1)
        out[counts < 2] = np.nan
        return out

    def itl(self) -> np.ndarray:
        """Every gap between two tokens of one query; gaps across queries are NaN (a new array)."""
        gaps = np.diff(self.token_times)
        starts = self.offsets[1:-1]
        between = starts[(starts >= 1) & (starts <= len(gaps))] - 1
        gaps[between] = np.nan
        return gaps

    def _at(self, index: np.ndarray) -> np.ndarray:
        out = np.full(len(self), np.nan)
        has = self.answered
        out[has] = self.token_times[index[has]]
        return out


class QueryRecorder:
    """The SUT's columns during a run; ``add`` is called under the SUT's lock, once per completed sample."""

    def __init__(self) -> None:
        self._qsl_idx, self._issued, self._tokens = array.array("q"), array.array("d"), array.array("q")
        self._ends, self._times = array.array("q"), array.array("d")

    def __len__(self) -> int:
        return len(self._qsl_idx)

    def add(self, qsl_idx: int, issued: float, token_times: Iterable[float], tokens: int) -> None:
        self._times.extend(token_times)
        self._qsl_idx.append(qsl_idx)
        self._issued.append(issued)
        self._tokens.append(tokens)
        self._ends.append(len(self._times))

    @property
    def token_times_recorded(self) -> int:
        return len(self._times)

    def distinct_token_times(self, since: int = 0) -> int:
        """How many distinct values the token times recorded from position ``since`` on hold: the forward
        passes of a batch, for engines that do not count them (tokens of one pass share its time)."""
        times = np.frombuffer(self._times, np.float64)[since:] if len(self._times) > since else None
        if times is None:
            return 0
        # A query's times are in order and its tokens often share a pass's time: runs go first, cheaply.
        changes = np.empty(len(times), bool)
        changes[0] = True
        np.not_equal(times[1:], times[:-1], out=changes[1:])
        count = len(np.unique(times[changes]))
        del times  # the view pins the buffer, which could not grow while it lives
        return count

    def columns(self, copy: bool = False) -> QueryTimes:
        """The columns so far, in the SUT's clock.  Without ``copy`` they are views of the buffers:
        take them once the run has ended (a buffer that is viewed cannot grow)."""
        def view(buffer: array.array, dtype) -> np.ndarray:
            values = np.frombuffer(buffer, dtype=dtype) if len(buffer) else np.empty(0, dtype)
            return values.copy() if copy else values

        offsets = np.zeros(len(self._ends) + 1, np.int64)
        offsets[1:] = view(self._ends, np.int64)
        return QueryTimes(view(self._qsl_idx, np.int64), view(self._issued, np.float64),
                          view(self._tokens, np.int64), offsets, view(self._times, np.float64))

    def release(self) -> None:
        """Drop the buffers (after they were written) and hand the freed memory back to the system,
        so what comes next in the process (a Server run, say) does not work around a run's leftovers."""
        self.__init__()
        trim_heap()


_TRIM_LOCK = threading.Lock()


def trim_heap() -> None:
    """glibc keeps freed memory for reuse; ``malloc_trim(0)`` returns it to the system (elsewhere a no-op)."""
    if not sys.platform.startswith("linux"):
        return
    with _TRIM_LOCK:
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl): nothing to trim
            pass


def write_query_store(folder: str | Path, times: QueryTimes) -> Path:
    """``queries.npz`` in ``folder``: the columns, times relative to the first issue, streamed; token
    times as each query's first token (float64) and the gaps after it (float32: 4 bytes a token, exact
    to ~1e-7 of each gap, so a 10 ms inter-token latency to a nanosecond)."""
    origin = float(times.issued.min()) if len(times) else 0.0
    path = Path(folder) / QUERY_STORE
    columns = {"schema": np.array([SCHEMA], np.int64), "clock": np.array([CLOCK]), "qsl_idx": times.qsl_idx,
               "issued": times.issued - origin, "tokens": times.tokens, "offsets": times.offsets,
               "first_token": times.first_token() - origin}
    # No fsync: at 24,576 x 1,024 tokens it would wait on the disk for 100 MB that a re-run makes again.
    with atomic.writing(path, sync=False) as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, values in columns.items():
            _write_member(zf, name, values.dtype, len(values), [values])
        _write_member(zf, "token_gaps", np.dtype(np.float32), len(times.token_times), _gaps(times))
    return path


def _write_member(zf: zipfile.ZipFile, name: str, dtype: np.dtype, length: int,
                  pieces: Iterable[np.ndarray]) -> None:
    """One ``name.npy`` member of ``length`` values, written piece by piece (np.load reads it)."""
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (length,)}
    with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
        np.lib.format.write_array_header_1_0(member, header)
        for piece in pieces:
            member.write(memoryview(np.ascontiguousarray(piece, dtype)).cast("B"))  # the bytes, not a copy


def _gaps(times: QueryTimes) -> Iterator[np.ndarray]:
    """Each token's time after the one before it in its query (0 for a query's first), a slice at a time."""
    flat, starts = times.token_times, times.offsets[:-1]
    for low in range(0, len(flat), WRITE_SLICE):
        high = min(low + WRITE_SLICE, len(flat))
        gaps = np.zeros(high - low, np.float32)
        skip = 1 if low == 0 else 0
        np.subtract(flat[low + skip:high], flat[low + skip - 1:high - 1], out=gaps[skip:], casting="same_kind")
        first, last = np.searchsorted(starts, (low, high))
        gaps[starts[first:last] - low] = 0.0
        yield gaps


def _token_times(offsets: np.ndarray, first_token: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """The token times back from first tokens and gaps: one cumulative sum, each answered query's first
    gap replaced by the step from the previous answered query's last token to its first."""
    times = gaps.astype(np.float64)
    answered = np.diff(offsets) > 0
    if not answered.any():
        return times
    starts, firsts = offsets[:-1][answered], first_token[answered]
    lasts = firsts + np.add.reduceat(times, starts)  # each query's gaps follow its first token
    times[starts] = firsts - np.concatenate(([0.0], lasts[:-1]))
    return np.cumsum(times, out=times)


def query_store_path(folder: str | Path) -> Path:
    """The per-query times file of a run folder: ``queries.npz``, else an older run's ``queries.json``."""
    path = Path(folder)
    if not path.is_dir():
        return path
    store = path / QUERY_STORE
    legacy = path / LEGACY_QUERY_TIMES
    return legacy if not store.exists() and legacy.exists() else store


def read_query_store(folder: str | Path) -> QueryTimes:
    """The per-query times of a run folder (or of a ``queries.npz`` / ``queries.json`` file)."""
    path = query_store_path(folder)
    if not path.exists():
        raise InputError(path, "no such file", "pass the folder of a LoadGen run made by pytest-llmperf")
    if path.suffix == ".json":
        return _read_legacy(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            if "schema" not in data.files:
                raise ValueError("it has no 'schema' array")
            schema = int(data["schema"][0])
            if schema != SCHEMA:
                raise InputError(path, f"has schema {schema}, this version reads schema {SCHEMA}",
                                 "read it with the pytest-llmperf version that wrote it, or re-run the LoadGen test")
            missing = [name for name in COLUMNS if name not in data.files]
            if missing:
                raise ValueError(f"it lacks {', '.join(missing)}")
            columns = {name: np.asarray(data[name], dtype) for name, dtype in COLUMNS.items()}
    except InputError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(path, f"is not a per-query times file ({exc})", _FIX_REWRITE) from None
    _check(path, columns)
    gaps = columns.pop("token_gaps")
    token_times = _token_times(columns["offsets"], columns.pop("first_token"), gaps)
    return QueryTimes(**columns, token_times=token_times)


def _check(path: Path, columns: dict[str, np.ndarray]) -> None:
    n, offsets, gaps = len(columns["qsl_idx"]), columns["offsets"], columns["token_gaps"]
    lengths = {name: len(columns[name]) for name in ("issued", "tokens", "first_token")}
    problem = None
    if any(length != n for length in lengths.values()):
        shown = ", ".join(f"{length} {name}" for name, length in lengths.items())
        problem = f"its columns differ in length ({n} qsl_idx, {shown})"
    elif len(offsets) != n + 1 or offsets[0] != 0 or offsets[-1] != len(gaps):
        problem = f"its offsets do not index its {len(gaps)} token times ({len(offsets)} offsets)"
    elif n and np.any(np.diff(offsets) < 0):
        problem = "its offsets decrease"
    if problem:
        raise InputError(path, problem, _FIX_REWRITE)


def _read_legacy(path: Path) -> QueryTimes:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["queries"]
        return QueryTimes.from_rows((int(i), float(issued), [float(t) for t in times], int(n))
                                    for i, issued, times, n in rows)
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(path, f"is not a per-query times file ({exc})", _FIX_REWRITE) from None
