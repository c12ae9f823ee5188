"""MMLU 5-shot, scored as lm-eval does (log-likelihood of " A".." D") and as
FlagPerf does (argmax over the whole vocabulary at the last prompt position).
Both modes read the same next-token distribution: the first of the two tests
scores every mode of the profile in one pass, the other reuses its predictions.

Data and limits come from the profile's ``[datasets] mmlu`` and ``[mmlu]``:
the embedded profile gates on baselines within ``tolerance_points``;
``flagperf-llama2-7b-mmlu`` on FlagPerf's published 45.8%.  Each question's
prompt, answer and prediction go to ``mmlu-predictions.jsonl`` in the test's
folder under ``--llmperf-out``.
"""

import pytest

from pytest_llmperf import kit

pytestmark = pytest.mark.real_weights  # accuracy needs a real checkpoint


@pytest.mark.parametrize("mode", kit.MMLU_MODES)
def test_mmlu_accuracy(mode, llmperf_engine, llmperf_session, llmperf_check, request):
    found = kit.mmlu_predictions(llmperf_session, llmperf_engine, mode)
    result = kit.mmlu_score(mode, found.predictions)
    predictions_file = kit.write_mmlu_predictions(llmperf_session, request.node.nodeid, found)
    print(f"\nMMLU {found.shots}-shot, {mode}: {result.accuracy:.2f}% ({result.correct}/{result.total})\n"
          f"{result.table()}")
    kit.gate_mmlu(llmperf_check, llmperf_session.profile, result,
                  extra={**found.extra(), "predictions": str(predictions_file)})
    kit.compare_mmlu(llmperf_check, llmperf_session, llmperf_engine, mode, found)  # under --llmperf-compare
