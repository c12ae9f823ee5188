"""The example of docs/writing-suites.md is run as written, so the page cannot rot: it records its
baseline, passes against it, and goes red (one line naming the baseline) when the baseline is raised."""

import json
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "writing-suites.md"


def doc_example() -> str:
    """The first ``python`` block of the page."""
    match = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert match, f"{DOC} has no ```python block"
    return match.group(1)


def test_the_example_is_a_short_complete_suite():
    code = doc_example()
    assert len(code.strip().splitlines()) <= 22
    imports = [line for line in code.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["from pytest_llmperf import kit"]
    compile(code, str(DOC), "exec")


@pytest.mark.slow
def test_the_example_runs_records_and_goes_red(pytester):
    pytester.makepyfile(test_my_prompts=doc_example())

    def run(*args):
        # A process per run: torch cannot be imported twice into one interpreter.
        return pytester.runpytest_subprocess("-m", "cpu", "--llmperf-device", "cpu", "-p", "no:randomly",
                                             "--llmperf-out", str(pytester.path / "out"), *args)

    run("--llmperf-update-baselines").assert_outcomes(passed=1)
    (baseline,) = (pytester.path / "baselines").rglob("transformers-float32.json")
    metrics = json.loads((pytester.path / "out" / "results.json").read_text())["metrics"]
    assert {m["name"]: m["engine"] for m in metrics} == {"mine.slowest_ttft": "transformers-cpu",
                                                         "mine.tokens_per_second": "transformers-cpu"}

    data = json.loads(baseline.read_text())
    data["metrics"]["mine.tokens_per_second"]["value"] *= 1000  # now far out of reach
    baseline.write_text(json.dumps(data))
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["mine.tokens_per_second * < * tokens/s (*transformers-float32.json: * tolerance 50%); "
                                 "see --llmperf-update-baselines"])
