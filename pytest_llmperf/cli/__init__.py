"""The ``llmperf`` console script: one module per subcommand."""
