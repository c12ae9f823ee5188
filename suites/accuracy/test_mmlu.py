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

from pytest_llmperf.datasets.mmlu import build_prompts, load_mmlu
from pytest_llmperf.metrics import mmlu


@pytest.mark.parametrize("mode", mmlu.MODES)
def test_mmlu_accuracy(mode, llmperf_engine, llmperf_session, llmperf_profile, llmperf_check, request):
    session, section = llmperf_session, llmperf_profile.mmlu
    mmlu.check_section(llmperf_profile)
    if mode not in section.modes:
        pytest.skip(f"profile {llmperf_profile.name} does not score MMLU by {mode} (mmlu.modes = {section.modes})")
    location = llmperf_profile.datasets.mmlu
    key = ("mmlu-prompts", location, section.shots, section.max_length, tuple(section.subjects))
    data = session.shared(("mmlu-data", location, tuple(section.subjects)),
                          lambda: load_mmlu(location).only(section.subjects))
    prompts = session.shared(key, lambda: build_prompts(data, section.shots, section.max_length,
                                                        mmlu.prompt_token_count(session.tokenizer)))

    with session.timed("score"):
        predictions = session.shared(
            ("mmlu-predictions", llmperf_engine.info.engine, llmperf_engine.info.device, key, tuple(section.modes)),
            lambda: mmlu.score_modes(llmperf_engine, session.tokenizer, prompts, section.modes))[mode]
    result = mmlu.summarize(mode, predictions)
    predictions_file = session.test_dir(request.node.nodeid) / "mmlu-predictions.jsonl"
    mmlu.write_predictions(predictions_file, predictions)
    print(f"\nMMLU {section.shots}-shot, {mode}: {result.accuracy:.2f}% ({result.correct}/{result.total})\n"
          f"{result.table()}")

    mmlu.record(llmperf_check, llmperf_profile, result, baseline_key=session.baseline_key(llmperf_engine),
                engine=llmperf_check.engine(llmperf_engine),
                extra={"dataset": data.location, "layout": data.layout, "shots": section.shots,
                       "prompts_with_fewer_shots": sum(p.shots < section.shots for p in prompts),
                       "prompts_longer_than_max_length": sum(not p.fits for p in prompts),
                       "predictions": str(predictions_file)})
    llmperf_check.verify()
