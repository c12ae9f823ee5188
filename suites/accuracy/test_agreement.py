"""Cross-engine agreement: transformers and vLLM, greedy, on the embedded OpenOrca prompts.

The outputs compared are those of each engine's OpenOrca accuracy run, the
run the ROUGE suite scores (made here if this test comes first).  The rule is
vLLM's own: where the two token streams first differ, each side's token must
be in the other side's top-k (``TOP_K``).  The exact-match rate and
the first divergence positions are recorded in results.json.  Runs when both
engines are selected: ``pytest suites/accuracy --llmperf-engine transformers,vllm``.
"""

import statistics

import pytest

from pytest_llmperf import kit

pytestmark = pytest.mark.real_weights  # accuracy needs a real checkpoint

PAIR = ("transformers", "vllm")
TOP_K = 5
"""vLLM's tests compare against the top 5 log-probabilities."""


@pytest.mark.parametrize("device", kit.device_params())
def test_transformers_and_vllm_agree(device, llmperf_session, llmperf_check, request):
    session = llmperf_session
    (_, reference), (_, candidate) = pair = kit.engines_or_skip(session, PAIR, device)
    dataset = kit.openorca_dataset(session)
    outputs = [kit.accuracy_outputs(kit.accuracy_run(session, engine, target_id, request.node.nodeid).run,
                                    len(dataset.prompts)) for target_id, engine in pair]
    result = kit.compare_outputs(session, reference, candidate, dataset.prompts, *outputs, top_k=TOP_K)

    check = llmperf_check.bind(engine_key=f"{reference.info.engine}+{candidate.info.engine}-{device}")
    positions = result.first_divergence_positions
    check.info("agreement.exact_match_rate", result.exact_match_rate, "fraction", True,
               extra={"prompts": result.prompts, "exact_matches": result.exact_matches,
                      "dtypes": [reference.info.dtype, candidate.info.dtype]})
    check.info("agreement.first_divergence_min", min(positions) if positions else None, "tokens", True,
               extra={"positions": positions})
    check.info("agreement.first_divergence_median", statistics.median(positions) if positions else None, "tokens", True)
    check.against("agreement.top_k_violations", len(result.violations), "prompts", False,
                  kit.Limit.at_most(0, reference=0, source=f"vLLM's rule: the other side's token in its top-{TOP_K}",
                                    flag="suites/accuracy/test_agreement.py TOP_K"))
    for divergence in result.violations:
        check.fail(divergence.describe(reference.info.engine, candidate.info.engine))
