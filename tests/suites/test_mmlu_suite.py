"""The MMLU suite end to end on the real engine: record baselines on a copied dataset named by an
edited profile, swap the answer key of a question the model gets right, and see both modes go red."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from pytest_llmperf.datasets.mmlu import EMBEDDED_DIR, LETTERS

pytestmark = pytest.mark.slow

SUITE = Path(__file__).resolve().parents[2] / "suites" / "accuracy"
SUBJECT = "computer_security"
# One shot keeps the prompts short: this test is about the gate, not about MMLU's numbers.
PROFILE = """
description = "embedded MMLU copy for gate tests"

[datasets]
mmlu = "{data}"

[mmlu]
shots = 1
modes = ["loglikelihood", "argmax"]
tolerance_points = 2.0
subjects = ["{subject}"]
"""


def _run(pytester, *args):
    # A process per run: torch cannot be imported twice into one interpreter, which an in-process run would do.
    return pytester.runpytest_subprocess("-m", "cpu", "--llmperf-device", "cpu", "-p", "no:randomly",
                                         "--llmperf-profile", str(pytester.path / "copy.toml"),
                                         "--llmperf-baselines", str(pytester.path / "baselines"),
                                         "--llmperf-out", str(pytester.path / "out"), *args)


def _predictions(out: Path, mode: str) -> list[dict]:
    (path,) = out.glob(f"runs/*{mode}*/mmlu-predictions.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_swapping_an_answer_key_turns_the_suite_red(pytester):
    pytester.path.joinpath("test_mmlu.py").write_text(SUITE.joinpath("test_mmlu.py").read_text())
    data = pytester.path / "mmlu" / "data"
    shutil.copytree(EMBEDDED_DIR, data)
    pytester.path.joinpath("copy.toml").write_text(PROFILE.format(data=data, subject=SUBJECT))

    _run(pytester, "--llmperf-update-baselines").assert_outcomes(passed=2)
    baseline = json.loads(next((pytester.path / "baselines").rglob("transformers-float32.json")).read_text())
    assert {"mmlu.accuracy.loglikelihood", "mmlu.accuracy.argmax"} <= set(baseline["metrics"])

    by_mode = {mode: _predictions(pytester.path / "out", mode) for mode in ("loglikelihood", "argmax")}
    right_in_both = [a for a, b in zip(*by_mode.values()) if a["correct"] and b["correct"]]
    assert right_in_both, f"the embedded model answers no {SUBJECT} question right in both modes; pick another subject"
    origin = right_in_both[0]["origin"]
    file, row = origin.rsplit(" row ", 1)
    rows = list(csv.reader(open(file, encoding="utf-8")))
    answer = rows[int(row) - 1][5]
    rows[int(row) - 1][5] = next(letter for letter in LETTERS if letter != answer)
    with open(file, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)

    swapped = _run(pytester)
    swapped.assert_outcomes(failed=2)
    swapped.stdout.fnmatch_lines([
        "*mmlu.accuracy.loglikelihood * < * % (*transformers-float32.json: * tolerance 2 absolute); "
        "see --llmperf-update-baselines*",
        "*mmlu.accuracy.argmax * < * % (*transformers-float32.json: * tolerance 2 absolute); "
        "see --llmperf-update-baselines*",
    ])
