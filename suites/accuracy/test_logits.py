"""Logits of the first K generated positions against ``.npy`` baselines.

``--llmperf-update-baselines`` generates K greedy tokens per prompt, scores
that path and stages one float32 ``.npy`` per prompt plus ``manifest.json``
(written under the baseline key's folder only if the whole run passes).  A
normal run scores the recorded path teacher-forced and compares with
``np.allclose`` (``[logits] atol, rtol`` in the profile).  ``[logits]
reference`` compares with another folder instead; an engine without logits of
its own (vLLM, OpenAI: log-probabilities only) is compared with the transformers
engine's logits of the same model and hardware.
"""

import pytest
from logits_prompts import PROMPTS

from pytest_llmperf import kit

pytestmark = pytest.mark.real_weights  # accuracy needs a real checkpoint


def test_logits_match_baseline(llmperf_engine, llmperf_session, llmperf_check, request):
    prompts = kit.logits_prompts(llmperf_session, PROMPTS, "suites/accuracy/logits_prompts.py")
    kit.gate_logits(llmperf_check, llmperf_session, llmperf_engine, prompts, request.node.nodeid)
