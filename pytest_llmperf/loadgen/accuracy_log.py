"""Read ``mlperf_log_accuracy.json``: the responses LoadGen logged, decoded by dtype.

The file is a JSON list with one object per logged response::

    {"seq_id": 0, "qsl_idx": 17, "data": "0D0000002A000000", "token_data": "0D000000", "token_count": 2}

``data`` is the response buffer as hexadecimal text (little-endian on every
platform LoadGen runs on); ``token_count`` is the ``n_tokens`` the SUT reported
and is present only when the run used token latencies; ``token_data`` is the
buffer sent with ``FirstTokenComplete`` and is present only in scenarios that
report a first token (Server, Interactive).  For LLMs the buffers hold int32
token ids, which is the default here.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from ..errors import InputError, UsageError

ACCURACY_LOG = "mlperf_log_accuracy.json"

#: Supported element types: name -> (numpy dtype string, little-endian).
DTYPES: dict[str, str] = {
    "int8": "<i1", "uint8": "<u1", "int16": "<i2", "uint16": "<u2",
    "int32": "<i4", "uint32": "<u4", "int64": "<i8", "uint64": "<u8",
    "float16": "<f2", "float32": "<f4", "float64": "<f8",
}


@dataclasses.dataclass(frozen=True)
class AccuracyEntry:
    """One logged response."""

    seq_id: int
    """LoadGen's sequence number of the response (order of completion)."""
    qsl_idx: int
    """Index of the sample in the query sample library (the dataset row)."""
    token_ids: tuple[int, ...]
    """The decoded response buffer (token ids for LLMs; floats for float dtypes)."""
    token_count: int | None
    """``n_tokens`` reported with the response, or None when the log has none."""
    first_token_ids: tuple[int, ...] | None = None
    """The buffer reported through ``FirstTokenComplete`` (``token_data``), or None when the log has none."""


def element_size(dtype: str) -> int:
    """Bytes per element of a supported dtype name; UsageError for others."""
    import numpy as np

    return np.dtype(_numpy_dtype(dtype)).itemsize


def _numpy_dtype(dtype: str) -> str:
    try:
        return DTYPES[dtype]
    except KeyError:
        raise UsageError(f"dtype {dtype!r}", "is not a supported response element type",
                         f"use one of: {', '.join(DTYPES)} (LLM token ids: int32)") from None


def read_accuracy_log(path: str | os.PathLike, dtype: str = "int32") -> list[AccuracyEntry]:
    """Decode every entry of an accuracy log; ``path`` may be the file or its folder.

    Raises InputError naming the file (and the entry) when the file is missing,
    truncated, not the expected JSON shape, or holds a buffer whose byte count is
    not a multiple of the element size of ``dtype``.
    """
    import numpy as np

    np_dtype = np.dtype(_numpy_dtype(dtype))
    path = Path(path)
    if path.is_dir():
        path = path / ACCURACY_LOG
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "no such file",
                         f"pass the folder of a LoadGen run that logged accuracy (it writes {ACCURACY_LOG})") from None
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror})", "check the path and its permissions") from None
    except UnicodeDecodeError:
        raise InputError(path, "is not UTF-8 text", f"pass the {ACCURACY_LOG} LoadGen wrote") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        truncated = exc.pos >= len(text.rstrip())
        problem = "is truncated" if truncated else "is not valid JSON"
        raise InputError(path, f"{problem} ({exc.msg} at line {exc.lineno}, column {exc.colno})",
                         "re-run the LoadGen test that wrote it (a run killed before it finished leaves it cut off)") from None
    if not isinstance(data, list):
        raise InputError(path, f"holds a JSON {type(data).__name__}, expected a list of responses",
                         f"pass the {ACCURACY_LOG} LoadGen wrote")
    return [_entry(path, position, item, np_dtype, dtype) for position, item in enumerate(data)]


def _entry(path: Path, position: int, item, np_dtype, dtype: str) -> AccuracyEntry:
    where = f"entry {position}"
    if not isinstance(item, dict):
        raise InputError(path, f"{where} is a {type(item).__name__}, expected an object with seq_id, qsl_idx, data",
                         f"pass the {ACCURACY_LOG} LoadGen wrote")
    for key in ("seq_id", "qsl_idx"):
        if not _is_int(item.get(key)):
            raise InputError(path, f"{where} has no integer {key!r} (got {item.get(key)!r})",
                             f"pass the {ACCURACY_LOG} LoadGen wrote")
    where = f"{where} (qsl_idx {item['qsl_idx']})"
    if not isinstance(item.get("data"), str):
        raise InputError(path, f"{where} has no hex string 'data'", f"pass the {ACCURACY_LOG} LoadGen wrote")
    token_ids = _decode(path, where, "data", item["data"], np_dtype, dtype)
    first_token_ids = None
    if item.get("token_data") is not None:
        if not isinstance(item["token_data"], str):
            raise InputError(path, f"{where}: 'token_data' is not a hex string", f"pass the {ACCURACY_LOG} LoadGen wrote")
        first_token_ids = _decode(path, where, "token_data", item["token_data"], np_dtype, dtype)
    token_count = item.get("token_count")
    if token_count is not None and not _is_int(token_count):
        raise InputError(path, f"{where}: 'token_count' is {token_count!r}, expected an integer",
                         f"pass the {ACCURACY_LOG} LoadGen wrote")
    return AccuracyEntry(int(item["seq_id"]), int(item["qsl_idx"]), token_ids, token_count, first_token_ids)


def _decode(path: Path, where: str, key: str, hex_text: str, np_dtype, dtype: str) -> tuple:
    import numpy as np

    try:
        raw = bytes.fromhex(hex_text)
    except ValueError:
        raise InputError(path, f"{where}: {key!r} is not hexadecimal text",
                         "the file is damaged; re-run the LoadGen test that wrote it") from None
    if len(raw) % np_dtype.itemsize:
        raise InputError(path, f"{where}: {key!r} holds {len(raw)} bytes, not a multiple of {np_dtype.itemsize} ({dtype})",
                         "pass the dtype the SUT sent (--dtype; LLM token ids are int32)")
    return tuple(np.frombuffer(raw, dtype=np_dtype).tolist())


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
