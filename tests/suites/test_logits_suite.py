"""The logits suite end to end on the real engine: record, pass (also through [logits] reference),
then go red on a perturbed, pickled or missing baseline (each message names the file or the
command that records one)."""

import io
import pickle
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

SUITE = Path(__file__).resolve().parents[2] / "suites" / "accuracy"
ARRAYS = Path("smollm2-135m-instruct") / "cpu" / "transformers-float32" / "logits"


def _run(pytester, *args, baselines="baselines"):
    # A process per run: torch cannot be imported twice into one interpreter, which an in-process run would do.
    return pytester.runpytest_subprocess("-m", "cpu", "--llmperf-device", "cpu", "-p", "no:randomly",
                                         "--llmperf-baselines", str(pytester.path / baselines),
                                         "--llmperf-out", str(pytester.path / "out"), *args)


def test_logits_suite_records_then_fails_on_bad_baselines(pytester):
    for name in ("test_logits.py", "logits_prompts.py"):
        pytester.path.joinpath(name).write_text(SUITE.joinpath(name).read_text())
    folder = pytester.path / "baselines" / ARRAYS

    recorded = _run(pytester, "--llmperf-update-baselines")
    recorded.assert_outcomes(passed=1)
    assert sorted(p.name for p in folder.glob("*.npy")) == [
        "capital-japan.npy", "haiku-autumn.npy", "python-reverse.npy", "sky-blue.npy"]
    assert np.load(folder / "sky-blue.npy").shape == (4, 49152)

    _run(pytester).assert_outcomes(passed=1)

    # Another baselines folder without logits of its own, pointed at the recorded ones by the profile.
    pytester.path.joinpath("reference.toml").write_text(f'[logits]\nreference = "{folder}"\n')
    _run(pytester, "--llmperf-profile", str(pytester.path / "reference.toml"),
         baselines="empty").assert_outcomes(passed=1)

    target = folder / "sky-blue.npy"
    original = target.read_bytes()
    np.save(target, np.load(target) + np.float32(1e-2))
    perturbed = _run(pytester)
    perturbed.assert_outcomes(failed=1)
    perturbed.stdout.fnmatch_lines([
        f"*logits.sky-blue.allclose_error 0.0* > 0.0050 logit (embedded: np.allclose(atol=0.005, rtol=1e-05) "
        f"against {target}); see --llmperf-profile*"])
    assert "logits.capital-japan" not in "\n".join(l for l in perturbed.outlines if "> 0.0050" in l)

    target.write_bytes(pickle.dumps(np.load(io.BytesIO(original))))
    pickled = _run(pytester)
    pickled.assert_outcomes(failed=1)
    pickled.stdout.fnmatch_lines([f"*logits: {target}: holds pickled data or Python objects, which are refused*"])

    target.write_bytes(original)
    (folder / "manifest.json").unlink()
    unrecorded = _run(pytester)  # a first run: NO BASELINE, with the command that records it
    unrecorded.assert_outcomes(passed=1)
    unrecorded.stdout.fnmatch_lines(["*1 metric NO BASELINE*logits*record with: pytest test_logits.py*"])
    missing = _run(pytester, "--llmperf-strict-baselines")
    missing.assert_outcomes(failed=1)
    missing.stdout.fnmatch_lines([
        f"*logits: no baseline in {folder / 'manifest.json'}; record one with: "
        "pytest test_logits.py::test_logits_match_baseline -m cpu --llmperf-update-baselines*"])
