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

from pytest_llmperf import hardware
from pytest_llmperf.engines.agreement import compare
from pytest_llmperf.errors import DeviceUnavailable, EngineError, EngineUnavailable, UsageError
from pytest_llmperf.gates import Limit
from pytest_llmperf.loadgen import read_accuracy_log
from pytest_llmperf.loadgen.suite_runs import accuracy_run, openorca_dataset
from pytest_llmperf.session import EngineTarget, unavailable_reason

PAIR = ("transformers", "vllm")
TOP_K = 5
"""vLLM's tests compare against the top 5 log-probabilities."""


def _engines(session, device):
    selected = session.settings.engines
    if not all(name in selected for name in PAIR):
        pytest.skip(f"compares {' and '.join(PAIR)}: select both with --llmperf-engine {','.join(PAIR)} "
                    f"(selected: {','.join(selected)})")
    engines = []  # (target id, engine) pairs
    for name in PAIR:
        target = EngineTarget(name, device)
        reason = unavailable_reason(session.settings, target)
        if reason:
            pytest.skip(reason)
        try:
            engines.append((target.id, session.engine(target)))
        except (EngineUnavailable, DeviceUnavailable) as exc:
            pytest.skip(str(exc))
        except (UsageError, EngineError) as exc:
            pytest.fail(str(exc), pytrace=False)
    return engines


@pytest.mark.parametrize("device", [pytest.param(d, marks=getattr(pytest.mark, d)) for d in hardware.DEVICE_CLASSES])
def test_transformers_and_vllm_agree(device, llmperf_session, llmperf_check, request):
    session = llmperf_session
    pair = _engines(session, device)
    dataset = openorca_dataset(session)
    outputs = [_outputs(accuracy_run(session, engine, target_id, request.node.nodeid).run, len(dataset.prompts))
               for target_id, engine in pair]
    (_, reference), (_, candidate) = pair
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


def _outputs(run, samples: int) -> list[tuple[int, ...]]:
    """Each sample's generated token ids, from the run's accuracy log (first response per sample)."""
    tokens: dict[int, tuple[int, ...]] = {}
    for entry in read_accuracy_log(run.accuracy_log, "int32"):
        tokens.setdefault(entry.qsl_idx, entry.token_ids)
    missing = [index for index in range(samples) if index not in tokens]
    if missing:
        pytest.fail(f"the accuracy run in {run.folder} has no response for samples {missing[:10]}", pytrace=False)
    return [tokens[index] for index in range(samples)]
