"""MLPerf's llama2-70b accuracy targets over a finished accuracy run.

Two ways to name the run:

* ``test_mlperf_accuracy_targets``: per engine and device, like the suites that
  generate (so ``-m cuda`` selects it), the run the ROUGE suite
  (suites/accuracy/test_rouge.py) left for that target under ``--llmperf-out``;
* ``test_mlperf_accuracy_targets_of_folder``: any folder holding
  ``mlperf_log_accuracy.json``, named by ``LLMPERF_ACCURACY_RUN`` (a
  submission's accuracy folder, say).

The log is scored again from its files, exactly as MLPerf's evaluate-accuracy.py
scores it, and judged against the profile's targets: rouge1/2/L >= fraction x
reference, tokens per sample in its band, every dataset sample answered.  The
dataset and tokenizer come from the run's run.json, else from the profile
(``[datasets] openorca``) and ``--llmperf-model``.  No engine is loaded.
"""

import os

import pytest

from pytest_llmperf.cli.evaluate_accuracy import load_tokenizer
from pytest_llmperf.datasets.openorca import load_openorca
from pytest_llmperf.loadgen import read_accuracy_log
from pytest_llmperf.metrics import rouge, rouge_targets
from pytest_llmperf.session import unavailable_reason

RUN_FOLDER_ENV = "LLMPERF_ACCURACY_RUN"


@pytest.fixture
def llmperf_engine(llmperf_session, llmperf_target):
    """Stands in for the plugin's fixture in this module: the item is still made per
    (engine, device) and carries the device marker, but only the target is needed to
    find its run, so no engine is loaded."""
    reason = unavailable_reason(llmperf_session.settings, llmperf_target)
    if reason:
        pytest.skip(reason)
    return llmperf_target


def test_mlperf_accuracy_targets(llmperf_engine, llmperf_session, llmperf_profile, llmperf_check):
    target = llmperf_engine
    _skip_without_targets(llmperf_profile)
    runs = [run for run in rouge_targets.find_accuracy_runs(llmperf_session.settings.out) if run.target == target.id]
    if not runs:
        pytest.skip(f"no finished accuracy run of {target.id} under {llmperf_session.settings.out}: "
                    f"run suites/accuracy/test_rouge.py first (or set {RUN_FOLDER_ENV} and run "
                    "test_mlperf_accuracy_targets_of_folder)")
    _judge(runs[-1], llmperf_session, llmperf_profile, llmperf_check)


def test_mlperf_accuracy_targets_of_folder(llmperf_session, llmperf_profile, llmperf_check):
    folder = os.environ.get(RUN_FOLDER_ENV)
    if not folder:
        pytest.skip(f"set {RUN_FOLDER_ENV}=FOLDER to judge a finished accuracy run (a folder with mlperf_log_accuracy.json)")
    _skip_without_targets(llmperf_profile)
    _judge(rouge_targets.read_accuracy_run(folder), llmperf_session, llmperf_profile, llmperf_check)


def _skip_without_targets(profile) -> None:
    rouge_targets.check_section(profile)
    if profile.rouge.mode != "target":
        pytest.skip(f"profile {profile.name!r} sets no ROUGE targets (rouge.mode = {profile.rouge.mode!r}); "
                    "use --llmperf-profile mlperf-llama2-70b-99 (or -99.9)")


def _judge(run, session, profile, check) -> None:
    tokenizer = load_tokenizer(run.tokenizer) if run.tokenizer else session.tokenizer
    source = run.dataset or profile.datasets.openorca
    samples = run.samples if run.dataset else session.samples()
    dataset = session.shared(("openorca", source, samples), lambda: load_openorca(
        source, tokenizer, samples=samples, allow_pickle=profile.datasets.allow_pickle))
    log = run.folder / "mlperf_log_accuracy.json"
    with session.timed("score"):
        result = rouge.score_accuracy_log(read_accuracy_log(log, run.dtype), dataset.references, tokenizer,
                                          log_path=log)
    rouge_targets.record(check, profile, result, prefix="compliance.accuracy", engine=run.target,
                         expected_samples=len(dataset))
    check.verify()
