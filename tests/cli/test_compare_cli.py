"""``llmperf compare`` and ``llmperf report`` on a paired A/B session: one judge.

A real pytest session (the plugin, ``llmperf_check``, ``gate_pairs``) measures plumbing pairs: a plan
file gives each metric's round values on both sides.  ``llmperf compare`` must reach each metric's
session verdict from the pairs results.json kept, and so must ``llmperf report`` whatever ``--baseline``
it is given (a stored baseline is not what a paired metric was judged against).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_llmperf.cli import main
from pytest_llmperf.gating.baselines import BaselineKey, BaselineStore, baseline_entry
from pytest_llmperf.runtime.results import Metric, ResultsStore

REPO = Path(__file__).resolve().parents[2]

SUITE = '''
import json
from pathlib import Path

import pytest

from pytest_llmperf.gating.baselines import BaselineKey
from pytest_llmperf.gating.contention import ContentionMeter
from pytest_llmperf.gating.paired import PairedMeasurer
from pytest_llmperf.gating.rounds import RoundMetric, RoundSettings
from pytest_llmperf.gating.sequential import gate_pairs

PLAN = json.loads((Path(__file__).parent / "pairs.json").read_text())
SETTINGS = RoundSettings(paired_rounds=6, paired_max_rounds=12, source="test_pairs.py")


@pytest.mark.parametrize("name", sorted(PLAN))
def test_pairs(llmperf_check, name):
    plan = PLAN[name]
    reference, current = iter(plan["reference"]), iter(plan["current"])
    llmperf_check.bind(baseline_key=BaselineKey("plumbing-model", "cpu", "plumbing", "float32"),
                       engine_key="plumbing-cpu")
    measurer = PairedMeasurer(lambda i: {name: next(reference)}, lambda i: {name: next(current)},
                              ContentionMeter(enabled=False))  # plumbing: no neighbour is measured
    gate_pairs(llmperf_check, [RoundMetric(name, plan["unit"], plan["higher_is_better"])], measurer, SETTINGS,
               {"test": name}, {"spec": "max_batch_size=2"})
'''

# name: (unit, higher is better, current / reference, relative noise of a round)
METRICS = {
    "offline.tokens_per_second": ("tokens/s", True, 0.88, 0.01),  # -12%: REGRESSED
    "decode.tokens_per_second": ("tokens/s", True, 1.0, 0.005),  # unchanged: PASS
    "server.ttft_p50": ("ms", False, 0.80, 0.01),  # 20% faster: IMPROVED
    "server.tpot_p50": ("ms", False, 1.03, 0.15),  # too noisy to tell: INCONCLUSIVE
}
EXPECTED = {"offline.tokens_per_second": "REGRESSED", "decode.tokens_per_second": "PASS",
            "server.ttft_p50": "IMPROVED", "server.tpot_p50": "INCONCLUSIVE"}


def plan() -> dict:
    found = {}
    for name, (unit, higher, factor, noise) in METRICS.items():
        rng = random.Random(name)
        found[name] = {"unit": unit, "higher_is_better": higher,
                       "reference": [100 * rng.lognormvariate(0, noise) for _ in range(12)],
                       "current": [100 * factor * rng.lognormvariate(0, noise) for _ in range(12)]}
    return found


@pytest.fixture(scope="module")
def paired_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pairs")
    (folder / "test_pairs.py").write_text(SUITE)
    (folder / "pairs.json").write_text(json.dumps(plan()))
    out = folder / "results"
    env = {**os.environ, "LLMPERF_PROGRESS": "0", "PYTHONPATH": os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    done = subprocess.run([sys.executable, "-m", "pytest", "test_pairs.py", "-q", "-p", "no:cacheprovider",
                           "--llmperf-out", str(out)], cwd=folder, capture_output=True, text=True, timeout=600,
                          env=env)
    assert (out / "results.json").is_file(), done.stdout[-3000:] + done.stderr[-3000:]
    return out


def session_labels(run: Path) -> dict[str, str]:
    metrics = json.loads((run / "results.json").read_text())["metrics"]
    return {m["name"]: m["extra"]["paired"]["verdict"].upper() for m in metrics}


def printed_verdicts(printed: str) -> dict[str, str]:
    found = {}
    for line in printed.splitlines():
        words = line.split()
        if words and words[0].startswith("plumbing-cpu/"):
            found[words[0].split("/", 1)[1]] = words[-1]
    return found


def test_the_session_reached_the_verdicts_planned(paired_run):
    assert session_labels(paired_run) == EXPECTED
    assert json.loads((paired_run / "results.json").read_text())["run"]["status"] == "failed"  # the regression


def test_compare_reaches_the_sessions_verdicts_and_exits_1_on_a_regression(paired_run, capsys):
    status = main.main(["compare", str(paired_run)])
    printed = capsys.readouterr().out
    assert status == 1
    assert printed_verdicts(printed) == EXPECTED
    assert "REGRESSED plumbing-cpu/offline.tokens_per_second" in printed
    assert "INCONCLUSIVE plumbing-cpu/server.tpot_p50: about" in printed  # what would decide it


def test_the_report_keeps_the_paired_verdicts_whatever_baseline_it_is_given(paired_run, tmp_path, capsys):
    # A stored baseline far from both sides: judged against it, every throughput would read REGRESSED.
    store = BaselineStore(tmp_path / "baselines")
    store.update(BaselineKey("plumbing-model", "cpu", "plumbing", "float32"), {
        name: baseline_entry(1000.0, METRICS[name][0], METRICS[name][1], {"relative": 0.0}, {})
        for name in METRICS})
    main.main(["report", str(paired_run), "--baseline", str(tmp_path / "baselines"), "--out", str(tmp_path / "r")])
    diff = json.loads((tmp_path / "r" / "diff.json").read_text())
    statuses = {m["name"]: m["comparison"]["status"] for m in diff["metrics"]}
    assert statuses == {"offline.tokens_per_second": "regressed", "decode.tokens_per_second": "within",
                        "server.ttft_p50": "improved", "server.tpot_p50": "inconclusive"}
    capsys.readouterr()


def test_compare_refuses_a_run_that_was_not_paired_naming_the_two_run_form(tmp_path, capsys):
    run = tmp_path / "run"
    store = ResultsStore(run, {})
    store.add_metric(Metric("decode.tokens_per_second", 30.0, "tokens/s", True, "pass", engine="transformers-cpu"))
    store.finish("passed", [])
    assert main.main(["compare", str(run)]) == 2
    error = capsys.readouterr().err
    assert "holds no metric measured in pairs" in error and "llmperf compare A/results.json B/results.json" in error
