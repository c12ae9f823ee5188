"""``llmperf test06 DIR --scenario S``: MLPerf TEST06 checks on a folder holding mlperf_log_accuracy.json.

Prints the four lines MLPerf's compliance/TEST06/run_verification.py prints,
with the same verdict, and writes them to ``OUT/TEST06/verify_accuracy.txt``
(plus a copy of the log in ``OUT/TEST06/accuracy/``), as that script does.
Where the reference is laxer than the rules it states, our strict finding
follows as a ``WARNING:`` line naming the rule and the samples.  Exit status:
0 when the verdict is "complete", 1 when "failed" (with ``--strict``, also
when a WARNING line was printed), 2 on bad input.  The work is
``compliance/test06_verify.py``.
"""

from __future__ import annotations

from pathlib import Path

from ..compliance.test06_verify import DEFAULT_EOS, verify
from ..loadgen.accuracy_log import ACCURACY_LOG, DTYPES


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
    found = verify(Path(args.dir), args.scenario, args.eos_token_id, args.dtype,
                   Path(args.output_dir) if args.output_dir else None)
    for line in found.errors:
        print(line)
    print(found.verdict)
    for line in found.warnings:
        print(line)
    if not found.passed:
        return 1
    return 1 if args.strict and found.warnings else 0
