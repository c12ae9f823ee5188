"""TEST06 on a finished audit's folder, as MLPerf's compliance/TEST06/run_verification.py runs it.

``verify`` computes the reference's verdict (its printed lines, with the reference's own quirks), our
strict finding beside it (``WARNING:`` lines where the reference is laxer than the rules it states),
and writes ``OUT/TEST06/verify_accuracy.txt`` with a copy of the log in ``OUT/TEST06/accuracy/``, as
that script does.  ``llmperf test06`` (cli/test06.py) prints what it returns.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from ..loadgen.accuracy_log import ACCURACY_LOG, read_accuracy_log
from .test06 import RULES, check_test06, reference_verdict

REFERENCE = "MLPerf's run_verification.py"
DEFAULT_EOS = 2  # the reference's default


@dataclasses.dataclass(frozen=True)
class Verification:
    errors: list[str]
    """The reference's per-sample error lines, printed before its verdict."""
    verdict: str
    """The four lines of the reference's verdict (also in verify_accuracy.txt)."""
    warnings: list[str]
    """Where the reference passes what the stated rules fail (or would crash)."""
    passed: bool
    """The reference's verdict is "complete"."""
    written: Path
    """verify_accuracy.txt."""


def verify(folder: Path, scenario: str, eos_token_id: int | None = None, dtype: str = "int32",
           output_dir: Path | None = None) -> Verification:
    """TEST06 on ``folder`` (holding mlperf_log_accuracy.json, or that file); InputError on a bad log."""
    entries = read_accuracy_log(folder, dtype)
    log_file = folder / ACCURACY_LOG if folder.is_dir() else folder
    raw = json.loads(log_file.read_text(encoding="utf-8"))
    eos = DEFAULT_EOS if eos_token_id is None else eos_token_id
    # The reference keeps -e as a string: given on its command line, it matches no token.
    reference = reference_verdict(raw, scenario, dtype, DEFAULT_EOS if eos_token_id is None else str(eos_token_id))
    strict = check_test06(entries, scenario, {eos})
    verdict = "\n".join(reference.lines()) + "\n"

    out = output_dir or (folder if folder.is_dir() else folder.parent)
    target = out / "TEST06"
    (target / "accuracy").mkdir(parents=True, exist_ok=True)
    (target / "verify_accuracy.txt").write_text(verdict, encoding="utf-8")
    if log_file.resolve() != (target / "accuracy" / ACCURACY_LOG).resolve():
        shutil.copy2(log_file, target / "accuracy" / ACCURACY_LOG)
    return Verification(list(reference.errors), verdict, _warnings(reference, strict, eos_token_id),
                        reference.passed, target / "verify_accuracy.txt")


def _warnings(reference, strict, eos_token_id: int | None) -> list[str]:
    lines = []
    if reference.crashes:
        lines.append(f"WARNING: {REFERENCE} would stop with {reference.crashes} instead of printing a verdict")
    lax = {"first_token": reference.first_token is True and strict.first_token is False,
           "eos": reference.eos and not strict.eos,
           "sample_length": reference.sample_length and not strict.sample_length}
    if lax["eos"] and eos_token_id is not None:
        lines.append(f"WARNING: {REFERENCE} compares -e {eos_token_id} as a string and finds no EOS; "
                     f"with EOS id {eos_token_id}:")
    by_rule = {line.split()[1]: line for line in strict.failure_lines()}
    for rule in RULES:
        if lax[rule]:
            lines.append(f"WARNING: stricter check: {by_rule[rule]}")
    return lines
