"""MLPerf LoadGen integration: SUT adapters over any engine, settings from profiles, log parsing.

``run_loadgen`` (runner.py) runs one LoadGen test; its docstring shows the call.
Nothing here imports ``mlperf_loadgen`` at module level: the runner and the
SUTs import it when a run starts.
"""

from .accuracy_log import ACCURACY_LOG, AccuracyEntry, read_accuracy_log
from .detail import DETAIL_LOG, LoadgenDetail, read_detail
from .runner import RUN_FILE, LoadgenRun, run_loadgen
from .settings import MODES, SCENARIOS, RunSettings, run_settings
from .summary import SUMMARY_LOG, LoadgenSummary, read_summary

__all__ = [
    "ACCURACY_LOG", "DETAIL_LOG", "MODES", "RUN_FILE", "SCENARIOS", "SUMMARY_LOG",
    "AccuracyEntry", "LoadgenDetail", "LoadgenRun", "LoadgenSummary", "RunSettings",
    "read_accuracy_log", "read_detail", "read_summary", "run_loadgen", "run_settings",
]
