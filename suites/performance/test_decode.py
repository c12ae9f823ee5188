"""Bare-engine decode speed: no LoadGen, one batch of fixed chat prompts.

The LoadGen scenarios (test_offline.py, test_server.py) are the numbers to
publish; this one isolates the engine, so a regression can be told apart from
harness overhead.
"""

from pytest_llmperf import kit

QUESTIONS = (
    "Explain in three sentences why the sky is blue.",
    "Write a short poem about a lighthouse.",
    "List five uses of a paperclip.",
    "Describe how a bicycle gear works.",
)
NEW_TOKENS = 32


def test_decode_tokens_per_second(llmperf_engine, llmperf_session, llmperf_check, benchmark):
    engine = llmperf_engine
    prompts = [kit.chat_prompt_ids(llmperf_session.tokenizer, q) for q in QUESTIONS]
    params = kit.GenerationParams(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS)

    def run():
        with llmperf_session.timed("generate"):
            return engine.generate(prompts, params)

    generations = benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=1)
    tokens = sum(len(g.token_ids) for g in generations)
    seconds = max(g.token_times[-1] for g in generations) - min(g.start_time for g in generations)
    tokens_per_second = tokens / seconds
    benchmark.extra_info.update(tokens=tokens, seconds=seconds, tokens_per_second=tokens_per_second)

    tolerance = kit.Tolerance(relative=llmperf_session.profile.performance.throughput_tolerance)
    llmperf_check.against_baseline("decode.tokens_per_second", tokens_per_second, "tokens/s", True, tolerance,
                                   extra={"batch": len(prompts), "new_tokens": NEW_TOKENS})
    # One decode step yields a token for every row of the batch.
    steps_per_second = max(len(g.token_ids) for g in generations) / seconds
    benchmark.extra_info.update(kit.record_utilization(llmperf_check, llmperf_session, engine, "decode",
                                                       tokens_per_second, steps_per_second))
