"""The session as the plugin runs it: its engines, shared runs and timings (``session``), and the
record it keeps of every test, written to results.json and turned into baselines at the end
(``recording``)."""
