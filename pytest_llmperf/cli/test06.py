"""``llmperf test06 DIR --scenario S``: MLPerf TEST06 checks on a folder holding mlperf_log_accuracy.json.

Prints the four lines MLPerf's compliance/TEST06/run_verification.py prints,
with the same verdict, and writes them to ``OUT/TEST06/verify_accuracy.txt``
(plus a copy of the log in ``OUT/TEST06/accuracy/``), as that script does.
Where the reference is laxer than the rules it states, our strict finding
follows as a ``WARNING:`` line naming the rule and the samples.  Exit status:
0 when the verdict is "complete", 1 when "failed" (with ``--strict``, also
when a WARNING line was printed), 2 on bad input.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..compliance.test06 import RULES, check_test06, reference_verdict
from ..loadgen.accuracy_log import ACCURACY_LOG, DTYPES, read_accuracy_log

REFERENCE = "MLPerf's run_verification.py"
DEFAULT_EOS = 2  # the reference's default


def configure(parser) -> None:
    parser.add_argument("dir", metavar="DIR", help=f"folder holding {ACCURACY_LOG} (a TEST06 audit run)")
    parser.add_argument("--scenario", required=True, choices=["Offline", "Server", "Interactive"],
                        help="the scenario the audit ran (Offline skips the first-token check)")
    parser.add_argument("--eos-token-id", type=int, default=None, metavar="N",
                        help=f"EOS token id of the tokenizer (default {DEFAULT_EOS}, as the reference)")
    parser.add_argument("--dtype", default="int32", choices=list(DTYPES), help="element type of the logged tokens")
    parser.add_argument("--output-dir", default=None, metavar="OUT",
                        help="where TEST06/verify_accuracy.txt goes (default: DIR)")
    parser.add_argument("--strict", action="store_true",
                        help="also exit 1 when our stricter checks fail where the reference passes")


def run(args) -> int:
    folder = Path(args.dir)
    entries = read_accuracy_log(folder, args.dtype)  # InputError (exit 2) on a missing or damaged log
    log_file = folder / ACCURACY_LOG if folder.is_dir() else folder
    raw = json.loads(log_file.read_text(encoding="utf-8"))
    eos = DEFAULT_EOS if args.eos_token_id is None else args.eos_token_id
    # The reference keeps -e as a string: given on its command line, it matches no token.
    reference = reference_verdict(raw, args.scenario, args.dtype, DEFAULT_EOS if args.eos_token_id is None
                                  else str(args.eos_token_id))
    strict = check_test06(entries, args.scenario, {eos})

    for line in reference.errors:
        print(line)
    verdict = "\n".join(reference.lines()) + "\n"
    print(verdict)
    warnings = _warnings(reference, strict, args)
    for line in warnings:
        print(line)

    out = Path(args.output_dir) if args.output_dir else (folder if folder.is_dir() else folder.parent)
    target = out / "TEST06"
    (target / "accuracy").mkdir(parents=True, exist_ok=True)
    (target / "verify_accuracy.txt").write_text(verdict, encoding="utf-8")
    if log_file.resolve() != (target / "accuracy" / ACCURACY_LOG).resolve():
        shutil.copy2(log_file, target / "accuracy" / ACCURACY_LOG)
    if not reference.passed:
        return 1
    return 1 if args.strict and warnings else 0


def _warnings(reference, strict, args) -> list[str]:
    lines = []
    if reference.crashes:
        lines.append(f"WARNING: {REFERENCE} would stop with {reference.crashes} instead of printing a verdict")
    lax = {"first_token": reference.first_token is True and strict.first_token is False,
           "eos": reference.eos and not strict.eos,
           "sample_length": reference.sample_length and not strict.sample_length}
    if lax["eos"] and args.eos_token_id is not None:
        lines.append(f"WARNING: {REFERENCE} compares -e {args.eos_token_id} as a string and finds no EOS; "
                     f"with EOS id {args.eos_token_id}:")
    by_rule = {line.split()[1]: line for line in strict.failure_lines()}
    for rule in RULES:
        if lax[rule]:
            lines.append(f"WARNING: stricter check: {by_rule[rule]}")
    return lines
