"""The helpers behind ``kit``, the face suites import: engines for a test (``engines``), shared LoadGen
runs and datasets (``runs``), gates a suite records (``gates``) and metrics measured in calibrated rounds
(``performance``)."""
