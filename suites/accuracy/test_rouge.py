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

from pytest_llmperf.loadgen import read_accuracy_log
from pytest_llmperf.loadgen.suite_runs import accuracy_run, openorca_dataset
from pytest_llmperf.metrics import rouge, rouge_targets


def test_openorca_rouge(llmperf_engine, llmperf_target, llmperf_session, llmperf_profile, llmperf_check, request):
    session, profile = llmperf_session, llmperf_profile
    rouge_targets.check_section(profile)
    dataset = openorca_dataset(session)
    shared = accuracy_run(session, llmperf_engine, llmperf_target.id, request.node.nodeid)
    run = shared.run
    if shared.reused:
        print(f"\nscoring the accuracy run made by {shared.owner} ({run.folder})")
    with session.timed("score"):
        result = rouge.score_accuracy_log(read_accuracy_log(run.accuracy_log, "int32"), dataset.references,
                                          session.tokenizer, log_path=run.accuracy_log)
    print(f"\nrougeLsum sentence splitter: {result.splitter}\n{result.mlperf_dict()}")

    rouge_targets.record(llmperf_check, profile, result, baseline_key=session.baseline_key(llmperf_engine),
                         engine=llmperf_check.engine(llmperf_engine), expected_samples=len(dataset))
    llmperf_check.verify()
