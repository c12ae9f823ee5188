"""Gates: limits (``limits``), the baseline files they come from (``baselines``, the one owner
of the file format) and the per-test checker that judges and records (``checker``)."""
