"""Bare-engine decode speed: no LoadGen, one batch of fixed chat prompts, in calibrated rounds.

The LoadGen scenarios (test_offline.py, test_server.py) are the numbers to
publish; this one isolates the engine, so a regression can be told apart from
harness overhead.  Each round is one batch; the gate judges the rounds against
the baseline's (docs/performance-gates.md).
"""

from pytest_llmperf import kit

QUESTIONS = (
    "Explain in three sentences why the sky is blue.",
    "Write a short poem about a lighthouse.",
    "List five uses of a paperclip.",
    "Describe how a bicycle gear works.",
)
NEW_TOKENS = 16
METRIC = kit.RoundMetric("decode.tokens_per_second", "tokens/s", True)


def test_decode_tokens_per_second(llmperf_engine, llmperf_session, llmperf_check, benchmark):
    engine = llmperf_engine
    prompts = [kit.chat_prompt_ids(llmperf_session.tokenizer, q) for q in QUESTIONS]
    params = kit.GenerationParams(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS)
    steps = []

    def one_round(_index, on):
        with llmperf_session.timed("generate"):
            generations = on.generate(prompts, params)
        seconds = max(g.token_times[-1] for g in generations) - min(g.start_time for g in generations)
        if on is engine:  # one decode step yields a token for every row of the batch
            steps.append(max(len(g.token_ids) for g in generations) / seconds)
        return {METRIC.name: sum(len(g.token_ids) for g in generations) / seconds}

    one_round(-1, engine)  # warm-up: one-time start-up costs stay out of the rounds
    workload = kit.workload(engine, test="decode", prompts=len(prompts), max_new_tokens=NEW_TOKENS)
    measured = benchmark.pedantic(kit.gate_in_rounds, args=(llmperf_check, llmperf_session, engine, [METRIC],
                                                            one_round, workload), rounds=1, iterations=1)
    values = measured.values(METRIC.name)
    tokens_per_second = sorted(values)[len(values) // 2]
    benchmark.extra_info.update(rounds=len(values), round_tokens_per_second=values,
                                calibration=measured.calibration, tokens_per_second=tokens_per_second)
    steps_per_second = sorted(steps[1:])[len(steps[1:]) // 2]
    benchmark.extra_info.update(kit.record_utilization(llmperf_check, llmperf_session, engine, "decode",
                                                       tokens_per_second, steps_per_second))
