"""What a suite imports: ``from pytest_llmperf import kit``.

A suite is a pytest test over the plugin's fixtures (``llmperf_engine``, ``llmperf_session``,
``llmperf_check``) that calls the names here and gates what they return; every gate is judged on
``llmperf_check`` when the test returns.  docs/writing-suites.md shows a whole suite.  The names, by
what a suite author does (each is documented where it is defined):

* get an engine, or skip: ``engine_or_skip``, ``engines_or_skip``, ``target_or_skip``,
  ``require_capability``, ``device_params``, ``GenerationParams``;
* run a scenario (one LoadGen run per engine, scenario and mode per process, shared between tests):
  ``scenario_run``, ``accuracy_run``, ``loadgen_runner`` (runs with settings of the suite's own),
  ``openorca_dataset``, ``chat_prompt_ids``, ``accuracy_outputs``,
  ``read_accuracy_log``, ``ACCURACY_LOG``, ``find_accuracy_runs``, ``read_accuracy_run``,
  ``loadgen_steps_per_second``, ``mmlu_predictions``, ``MMLU_MODES``, ``logits_prompts``;
* gate a metric: ``Limit`` and ``Tolerance`` (a suite's own gates), ``gate_rouge``, ``score_rouge``,
  ``score_finished_run``, ``gate_mmlu``, ``mmlu_score``, ``gate_logits``, ``compare_outputs``,
  ``check_test06``, ``find_test06_logs``, ``check_validity``, ``check_submission_rules``; in
  calibrated rounds (docs/performance-gates.md): ``gate_loadgen_rounds`` (rounds of LoadGen runs, each
  VALID), ``gate_p99_limits``, ``ms``, ``gate_in_rounds`` (rounds of any measurement), ``loadgen_rounds``,
  ``RoundMetric``, ``workload``, ``loadgen_workload``; against the reference of a paired A/B session
  (``--llmperf-compare``, docs/paired-ab.md; no-ops without it): ``compare_mmlu``, ``compare_rouge``;
* record evidence: ``record_utilization`` (MFU/MBU), ``write_mmlu_predictions``.

Nothing here imports torch, vLLM or LoadGen at import time.
"""

from __future__ import annotations

from .compliance.test06 import check_test06
from .compliance.test06_logs import find_test06_logs
from .compliance.validity import check_submission_rules, check_validity
from .datasets.chat import chat_prompt_ids
from .engines import GenerationParams
from .gating.baselines import Tolerance
from .gating.limits import Limit
from .gating.mmlu import record as gate_mmlu
from .gating.rouge import record as gate_rouge
from .loadgen import ACCURACY_LOG, read_accuracy_log
from .loadgen.run_folders import find_accuracy_runs, read_accuracy_run
from .metrics.mmlu import MODES as MMLU_MODES
from .metrics.mmlu import summarize as mmlu_score
from .suite.engines import device_params, engine_or_skip, engines_or_skip, require_capability, target_or_skip
from .suite.gates import (compare_mmlu, compare_outputs, compare_rouge, gate_logits, record_utilization,
                          score_finished_run, score_rouge)
from .suite.performance import (RoundMetric, gate_in_rounds, gate_loadgen_rounds, gate_p99_limits, loadgen_rounds,
                                loadgen_workload, ms, workload)
from .suite.runs import (accuracy_outputs, accuracy_run, loadgen_runner, loadgen_steps_per_second, logits_prompts,
                         mmlu_predictions, openorca_dataset, scenario_run, write_mmlu_predictions)

__all__ = [
    # get an engine, or skip
    "engine_or_skip", "engines_or_skip", "target_or_skip", "require_capability", "device_params", "GenerationParams",
    # run a scenario
    "scenario_run", "accuracy_run", "loadgen_runner", "openorca_dataset", "chat_prompt_ids", "accuracy_outputs", "read_accuracy_log",
    "ACCURACY_LOG", "find_accuracy_runs", "read_accuracy_run", "loadgen_steps_per_second", "mmlu_predictions",
    "MMLU_MODES", "logits_prompts",
    # gate a metric
    "Limit", "Tolerance", "gate_rouge", "score_rouge", "score_finished_run", "gate_mmlu", "mmlu_score", "gate_logits",
    "compare_outputs", "check_test06", "find_test06_logs", "check_validity", "check_submission_rules",
    "gate_loadgen_rounds", "gate_p99_limits", "ms", "gate_in_rounds", "loadgen_rounds", "RoundMetric", "workload",
    "loadgen_workload", "compare_mmlu", "compare_rouge",
    # record evidence
    "record_utilization", "write_mmlu_predictions",
]
