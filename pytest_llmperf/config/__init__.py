"""What a run is told: the command-line options (``options``), their value parsers (``parsers``), the
profiles (``profiles``: TOML files in ``pytest_llmperf/profiles/``) and the serving sections of a
profile (``serving_profile``)."""
