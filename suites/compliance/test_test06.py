"""MLPerf TEST06: every logged response of an audit run keeps the LLM output rules.

The audit is a LoadGen performance run with accuracy logging, set as MLPerf's
compliance/TEST06/audit.config sets it (profile table ``[compliance.test06]``).
Each logged sample is checked: the first token reported through
FirstTokenComplete is the output's first token (not for Offline), at most one
EOS and only at the end, and the reported token count equals the output length.
A failure names the rule and the qsl_idx of every sample that broke it.

``LLMPERF_TEST06_LOGS=DIR`` also checks a finished audit made elsewhere: DIR
holds ``mlperf_log_accuracy.json`` (scenario from run.json or
mlperf_log_detail.txt) or one subfolder per scenario (``Offline/``, ``Server/``,
``Interactive/``) holding it; EOS ids come from the tokenizer of --llmperf-model.
"""

import os
from pathlib import Path

import pytest

from pytest_llmperf import kit

LOGS_ENV = "LLMPERF_TEST06_LOGS"


@pytest.mark.parametrize("scenario", ["Offline", "Server"])
def test_test06_audit(llmperf_engine, llmperf_session, llmperf_check, request, scenario):
    # Its rules are about the engine's own tokens: on text re-tokenized here they would hold by construction.
    kit.require_capability(llmperf_engine, "output_token_ids", f"TEST06 {scenario}")
    run = kit.scenario_run(llmperf_session, llmperf_engine, scenario, "TEST06", request.node.nodeid).run
    entries = kit.read_accuracy_log(run.accuracy_log)
    llmperf_check.info(f"test06.{scenario.lower()}.samples_checked", len(entries), "samples",
                       extra={"logs": str(run.folder)})
    if not entries:
        llmperf_check.fail(f"TEST06 {scenario}: LoadGen logged no responses in {run.accuracy_log}; "
                           "check accuracy_log_sampling_target in [compliance.test06], see --llmperf-profile")
    result = kit.check_test06(entries, scenario, llmperf_engine.eos_token_ids)
    for line in result.failure_lines():
        llmperf_check.fail(f"{line}; see {run.accuracy_log}")
    for record in run.detail.errors:
        llmperf_check.fail(f"TEST06 {scenario}: LoadGen error during the audit run: {record.describe()}; "
                           f"see {run.detail_log}")


def test_test06_finished_logs(llmperf_session, llmperf_check):
    folder = os.environ.get(LOGS_ENV)
    if not folder:
        pytest.skip(f"set {LOGS_ENV}=DIR to check a finished TEST06 audit (a folder with {kit.ACCURACY_LOG})")
    eos = {llmperf_session.tokenizer.eos_token_id}
    for scenario, path in kit.find_test06_logs(Path(folder)):
        entries = kit.read_accuracy_log(path)
        result = kit.check_test06(entries, scenario, eos)
        llmperf_check.info(f"test06.{scenario.lower()}.samples_checked", len(entries), "samples",
                           extra={"logs": str(path)})
        for line in result.failure_lines():
            llmperf_check.fail(f"{line}; see {path}")
