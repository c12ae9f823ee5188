"""MLPerf LoadGen integration: SUT adapters over any engine, settings from profiles, log parsing.

Nothing here imports ``mlperf_loadgen`` at module level; the runner imports it
when a run starts.
"""

from .accuracy_log import ACCURACY_LOG, AccuracyEntry, read_accuracy_log

__all__ = ["ACCURACY_LOG", "AccuracyEntry", "read_accuracy_log"]
