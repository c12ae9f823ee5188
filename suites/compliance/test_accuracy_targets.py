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

from pytest_llmperf import kit

RUN_FOLDER_ENV = "LLMPERF_ACCURACY_RUN"


def test_mlperf_accuracy_targets(llmperf_target, llmperf_session, llmperf_check):
    """Per (engine, device) item, so it carries the device marker; no engine is loaded."""
    target = kit.target_or_skip(llmperf_session, llmperf_target)
    _skip_without_targets(llmperf_session.profile)
    runs = [run for run in kit.find_accuracy_runs(llmperf_session.settings.out) if run.target == target.id]
    if not runs:
        pytest.skip(f"no finished accuracy run of {target.id} under {llmperf_session.settings.out}: "
                    f"run suites/accuracy/test_rouge.py first (or set {RUN_FOLDER_ENV} and run "
                    "test_mlperf_accuracy_targets_of_folder)")
    _judge(runs[-1], llmperf_session, llmperf_check)


def test_mlperf_accuracy_targets_of_folder(llmperf_session, llmperf_check):
    folder = os.environ.get(RUN_FOLDER_ENV)
    if not folder:
        pytest.skip(f"set {RUN_FOLDER_ENV}=FOLDER to judge a finished accuracy run (a folder with mlperf_log_accuracy.json)")
    _skip_without_targets(llmperf_session.profile)
    _judge(kit.read_accuracy_run(folder), llmperf_session, llmperf_check)


def _skip_without_targets(profile) -> None:
    if profile.rouge.mode != "target":
        pytest.skip(f"profile {profile.name!r} sets no ROUGE targets (rouge.mode = {profile.rouge.mode!r}); "
                    "use --llmperf-profile mlperf-llama2-70b-99 (or -99.9)")


def _judge(run, session, check) -> None:
    result, samples = kit.score_finished_run(session, run)
    kit.gate_rouge(check.bind(engine_key=run.target), session.profile, result, prefix="compliance.accuracy",
                   expected_samples=samples)
