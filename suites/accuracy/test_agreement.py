"""Cross-engine agreement: transformers and vLLM, greedy, on the embedded OpenOrca prompts.

The rule is vLLM's own: where the two token streams first differ, each side's
token must be in the other side's top-k (``TOP_K``).  The exact-match rate and
the first divergence positions are recorded in results.json.  Runs when both
engines are selected: ``pytest suites/accuracy --llmperf-engine transformers,vllm``.
"""

import statistics

import pytest

from pytest_llmperf import hardware
from pytest_llmperf.datasets.openorca import load_openorca
from pytest_llmperf.engines import GenerationParams
from pytest_llmperf.engines.agreement import compare
from pytest_llmperf.errors import DeviceUnavailable, EngineError, EngineUnavailable, UsageError
from pytest_llmperf.gates import Limit
from pytest_llmperf.session import EngineTarget, unavailable_reason

PAIR = ("transformers", "vllm")
TOP_K = 5
"""vLLM's tests compare against the top 5 log-probabilities."""


def _engines(session, device):
    selected = session.settings.engines
    if not all(name in selected for name in PAIR):
        pytest.skip(f"compares {' and '.join(PAIR)}: select both with --llmperf-engine {','.join(PAIR)} "
                    f"(selected: {','.join(selected)})")
    engines = []
    for name in PAIR:
        target = EngineTarget(name, device)
        reason = unavailable_reason(session.settings, target)
        if reason:
            pytest.skip(reason)
        try:
            engines.append(session.engine(target))
        except (EngineUnavailable, DeviceUnavailable) as exc:
            pytest.skip(str(exc))
        except (UsageError, EngineError) as exc:
            pytest.fail(str(exc), pytrace=False)
    return engines


@pytest.mark.parametrize("device", [pytest.param(d, marks=getattr(pytest.mark, d)) for d in hardware.DEVICE_CLASSES])
def test_transformers_and_vllm_agree(device, llmperf_session, llmperf_profile, llmperf_check):
    session, profile = llmperf_session, llmperf_profile
    reference, candidate = _engines(session, device)
    source, samples = profile.datasets.openorca, session.samples()
    dataset = session.shared(("openorca", source, samples), lambda: load_openorca(
        source, session.tokenizer, samples=samples, allow_pickle=profile.datasets.allow_pickle))
    params = GenerationParams(max_new_tokens=profile.generation.max_new_tokens,
                              min_new_tokens=profile.generation.min_new_tokens)
    with session.timed("generate"):
        outputs = [engine.generate(dataset.prompts, params) for engine in (reference, candidate)]
    with session.timed("score"):
        result = compare(reference, candidate, dataset.prompts, *outputs, top_k=TOP_K)

    engine_key = f"{reference.info.engine}+{candidate.info.engine}-{device}"
    positions = result.first_divergence_positions
    llmperf_check.info("agreement.exact_match_rate", result.exact_match_rate, "fraction", True, engine=engine_key,
                       extra={"prompts": result.prompts, "exact_matches": result.exact_matches,
                              "dtypes": [reference.info.dtype, candidate.info.dtype]})
    llmperf_check.info("agreement.first_divergence_min", min(positions) if positions else None, "tokens", True,
                       engine=engine_key, extra={"positions": positions})
    llmperf_check.info("agreement.first_divergence_median", statistics.median(positions) if positions else None,
                       "tokens", True, engine=engine_key)
    llmperf_check.against("agreement.top_k_violations", len(result.violations), "prompts", False,
                          Limit.at_most(0, reference=0, source=f"vLLM's rule: the other side's token in its top-{TOP_K}",
                                        flag="suites/accuracy/test_agreement.py TOP_K"),
                          engine=engine_key)
    for divergence in result.violations:
        llmperf_check.fail(divergence.describe(reference.info.engine, candidate.info.engine))
    llmperf_check.verify()
