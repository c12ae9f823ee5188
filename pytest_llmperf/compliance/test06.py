"""MLPerf TEST06 (LLM output consistency) as checks on an accuracy log.

TEST06 runs LoadGen in performance mode with accuracy logging and then checks
every logged response:

* ``first_token``: the token reported through ``FirstTokenComplete`` is the
  first token of the output (not applicable to Offline, which reports none);
* ``eos``: the output holds at most one EOS token, and only as its last token;
* ``sample_length``: the ``n_tokens`` reported with the response equals the
  output's length.

``check_test06`` applies these rules strictly and names every failing sample.
``reference_verdict`` reproduces the verdict of MLPerf's
``compliance/TEST06/run_verification.py``, which is laxer in places: its EOS
scan stops before index 0 and only counts EOS tokens at the end of the output,
its ``-e`` value stays a string (so with ``-e`` no EOS is ever found), and its
first-token comparison passes when the reported first token is empty.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

from ..loadgen.accuracy_log import AccuracyEntry

RULES = ("first_token", "eos", "sample_length")
RULE_TEXT = {
    "first_token": "the first token reported through FirstTokenComplete must be the output's first token",
    "eos": "an output may hold at most one EOS token, and only as its last token",
    "sample_length": "the reported token count must equal the output length",
}
#: Failing samples named per rule in a message; the rest are counted.
NAMED_SAMPLES = 10


@dataclasses.dataclass(frozen=True)
class Finding:
    """One sample that breaks one rule."""

    rule: str
    """first_token, eos or sample_length."""
    qsl_idx: int
    seq_id: int
    detail: str
    """What was seen, e.g. ``EOS at positions 3, 7 of 8 tokens``."""


@dataclasses.dataclass(frozen=True)
class Test06Result:
    """The verdict of each rule and the samples that broke it."""

    scenario: str
    samples: int
    """Logged responses checked."""
    first_token: bool | None
    """None when skipped (Offline)."""
    eos: bool
    sample_length: bool
    findings: tuple[Finding, ...]

    @property
    def passed(self) -> bool:
        return self.eos and self.sample_length and self.first_token is not False

    def failure_lines(self) -> list[str]:
        """One line per failed rule: the rule, the count, the qsl_idx values and a first example."""
        lines = []
        for rule in RULES:
            found = [f for f in self.findings if f.rule == rule]
            if not found:
                continue
            indices = sorted({f.qsl_idx for f in found})
            named = ", ".join(str(i) for i in indices[:NAMED_SAMPLES])
            more = f" and {len(indices) - NAMED_SAMPLES} more" if len(indices) > NAMED_SAMPLES else ""
            lines.append(f"TEST06 {rule} check failed for {len(found)} of {self.samples} samples "
                         f"(qsl_idx {named}{more}): {RULE_TEXT[rule]}; e.g. qsl_idx {found[0].qsl_idx}: {found[0].detail}")
        return lines


def check_test06(entries: Sequence[AccuracyEntry], scenario: str, eos_token_ids: Iterable[int]) -> Test06Result:
    """Apply the three TEST06 rules strictly to every logged response."""
    eos = frozenset(int(t) for t in eos_token_ids)
    check_first = scenario != "Offline"
    findings: list[Finding] = []
    for entry in entries:
        findings.extend(_sample_findings(entry, eos, check_first))
    broken = {f.rule for f in findings}
    return Test06Result(
        scenario=scenario,
        samples=len(entries),
        first_token=("first_token" not in broken) if check_first else None,
        eos="eos" not in broken,
        sample_length="sample_length" not in broken,
        findings=tuple(findings),
    )


def _sample_findings(entry: AccuracyEntry, eos: frozenset[int], check_first: bool) -> list[Finding]:
    found = []
    ids = entry.token_ids

    def add(rule: str, detail: str) -> None:
        found.append(Finding(rule, entry.qsl_idx, entry.seq_id, detail))

    if check_first:
        first = entry.first_token_ids
        if first is None:
            add("first_token", "no first token was logged (token_data missing: was FirstTokenComplete called?)")
        elif not first:
            add("first_token", "the reported first token is empty")
        elif tuple(ids[: len(first)]) != tuple(first):
            add("first_token", f"reported {list(first)}, output starts with {list(ids[: len(first)])}")
    positions = [i for i, token in enumerate(ids) if token in eos]
    if len(positions) > 1 or (positions and positions[0] != len(ids) - 1):
        add("eos", f"EOS at positions {', '.join(map(str, positions))} of {len(ids)} tokens")
    if entry.token_count is None:
        add("sample_length", "no token_count was logged (run with use_token_latencies)")
    elif entry.token_count != len(ids):
        add("sample_length", f"reported {entry.token_count} tokens, output has {len(ids)}")
    return found


# -- MLPerf's run_verification.py, rule for rule ---------------------------------

@dataclasses.dataclass(frozen=True)
class ReferenceVerdict:
    """What MLPerf's run_verification.py would print."""

    first_token: bool | None
    """None = ``Skipped`` (Offline)."""
    eos: bool
    sample_length: bool
    errors: tuple[str, ...]
    """The "Unexpected error occured ..." lines it prints before the verdict."""
    crashes: str | None = None
    """Set when the script would stop with an exception instead of printing a verdict."""

    @property
    def passed(self) -> bool:
        return self.eos and self.sample_length and self.first_token is not False

    def lines(self) -> list[str]:
        first = "Skipped" if self.first_token is None else str(self.first_token)
        return [
            f"First token check pass: {first}",
            f"EOS check pass: {self.eos}",
            f"Sample length check pass: {self.sample_length}",
            "TEST06 verification complete" if self.passed else "TEST06 verification failed",
        ]


def reference_verdict(raw_entries: list, scenario: str, dtype: str, eos_token_id: int | str) -> ReferenceVerdict:
    """The reference script's verdict on the raw JSON entries of an accuracy log.

    ``eos_token_id`` is what the script compares with: the int 2 by default, or
    the *string* given with ``-e``, which equals no token.
    """
    import numpy as np

    from ..loadgen.accuracy_log import DTYPES

    np_dtype = np.dtype(DTYPES[dtype])
    errors = []

    def decode(sample: dict, key: str):
        return np.frombuffer(bytes.fromhex(sample[key]), dtype=np_dtype)

    try:
        eos_pass = _reference_eos(raw_entries, decode, eos_token_id)
    except Exception:
        errors.append("Unexpected error occured while doing the EOS check")
        eos_pass = False
    first_pass: bool | None = None
    if scenario != "Offline":
        try:
            first_pass = all(all(a == b for a, b in zip(decode(s, "data"), decode(s, "token_data")))
                             for s in raw_entries)
        except Exception:
            errors.append("Unexpected error occured while doing the first token check")
            first_pass = False
    try:
        length_pass = all(len(decode(s, "data")) == int(s["token_count"]) for s in raw_entries)
    except Exception as exc:  # the script does not catch this one: it stops with a traceback
        return ReferenceVerdict(first_pass, eos_pass, False, tuple(errors),
                                crashes=f"{type(exc).__name__} in its sample length check ({exc})")
    return ReferenceVerdict(first_pass, eos_pass, length_pass, tuple(errors))


def _reference_eos(raw_entries: list, decode, eos_token_id) -> bool:
    """Trailing EOS tokens are counted from the end, down to index 1; two or more fail."""
    for sample in raw_entries:
        data = decode(sample, "data")
        index, count = data.shape[0] - 1, 0
        while index > 0:
            is_eos = bool(data[index] == eos_token_id) if not isinstance(eos_token_id, str) else False
            if is_eos:
                count += 1
            if count >= 2:
                return False
            if not is_eos:
                break
            index -= 1
    return True
