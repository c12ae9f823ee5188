"""MLPerf's llama2-70b accuracy targets over a finished accuracy run.

The run is the ROUGE suite's (found under ``--llmperf-out``), or any folder
holding ``mlperf_log_accuracy.json`` named by ``LLMPERF_ACCURACY_RUN`` (a
submission's accuracy folder, say).  The log is scored again from scratch,
exactly as MLPerf's evaluate-accuracy.py scores it, and judged against the
profile's targets: rouge1/2/L >= fraction x reference, tokens per sample in its
band, every dataset sample answered.  The dataset and tokenizer come from the
run's run.json, else from the profile (``[datasets] openorca``) and
``--llmperf-model``.
"""

import os

import pytest

from pytest_llmperf.cli.evaluate_accuracy import load_tokenizer
from pytest_llmperf.datasets.openorca import load_openorca
from pytest_llmperf.loadgen import read_accuracy_log
from pytest_llmperf.metrics import rouge, rouge_targets

RUN_FOLDER_ENV = "LLMPERF_ACCURACY_RUN"


def test_mlperf_accuracy_targets(llmperf_session, llmperf_profile, llmperf_check):
    session, profile = llmperf_session, llmperf_profile
    rouge_targets.check_section(profile)
    if profile.rouge.mode != "target":
        pytest.skip(f"profile {profile.name!r} sets no ROUGE targets (rouge.mode = {profile.rouge.mode!r}); "
                    "use --llmperf-profile mlperf-llama2-70b-99 (or -99.9)")
    folder = os.environ.get(RUN_FOLDER_ENV)
    runs = [rouge_targets.read_accuracy_run(folder)] if folder else rouge_targets.find_accuracy_runs(session.settings.out)
    if not runs:
        pytest.skip(f"no finished accuracy run under {session.settings.out}: run suites/accuracy/test_rouge.py first, "
                    f"or set {RUN_FOLDER_ENV}=FOLDER (a folder with mlperf_log_accuracy.json)")

    for run in runs:
        tokenizer = load_tokenizer(run.tokenizer) if run.tokenizer else session.tokenizer
        source = run.dataset or profile.datasets.openorca
        samples = run.samples if run.dataset else session.samples()
        dataset = session.shared(("openorca", source, samples), lambda: load_openorca(
            source, tokenizer, samples=samples, allow_pickle=profile.datasets.allow_pickle))
        log = run.folder / "mlperf_log_accuracy.json"
        with session.timed("score"):
            result = rouge.score_accuracy_log(read_accuracy_log(log, run.dtype), dataset.references, tokenizer,
                                              log_path=log)
        prefix = "compliance.accuracy" if len(runs) == 1 else f"compliance.accuracy[{run.folder.name}]"
        rouge_targets.record(llmperf_check, profile, result, prefix=prefix, expected_samples=len(dataset))
    llmperf_check.verify()
