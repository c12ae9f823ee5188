"""OpenOrca ROUGE through LoadGen AccuracyOnly, scored exactly as MLPerf's llama2-70b script.

LoadGen issues every dataset sample once (Offline, AccuracyOnly); the SUT's
int32 token ids land in ``mlperf_log_accuracy.json`` under this test's folder
in ``--llmperf-out``, next to LoadGen's other logs and run.json, so the run can
be scored again (``llmperf evaluate-accuracy``, suites/compliance).  The
agreement suite compares the same run's outputs; whichever test comes first
makes it.
Limits come from the profile's ``[rouge]`` table: baselines in the embedded
profile, published targets in the mlperf-* profiles.
"""

import pytest

from pytest_llmperf import kit

pytestmark = pytest.mark.real_weights  # accuracy needs a real checkpoint


def test_openorca_rouge(llmperf_engine, llmperf_target, llmperf_session, llmperf_check, request):
    dataset = kit.openorca_dataset(llmperf_session)
    shared = kit.accuracy_run(llmperf_session, llmperf_engine, llmperf_target.id, request.node.nodeid)
    if shared.reused:
        print(f"\nscoring the accuracy run made by {shared.owner} ({shared.run.folder})")
    result = kit.score_rouge(llmperf_session, shared.run.accuracy_log, dataset.references)
    print(f"\nrougeLsum sentence splitter: {result.splitter}\n{result.mlperf_dict()}")
    kit.gate_rouge(llmperf_check, llmperf_session.profile, result, expected_samples=len(dataset))
    kit.compare_rouge(llmperf_check, llmperf_session, llmperf_engine, llmperf_target.id, request.node.nodeid,
                      result)  # under --llmperf-compare
