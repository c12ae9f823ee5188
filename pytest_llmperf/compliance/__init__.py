"""Compliance checks on LoadGen runs: MLPerf TEST06 on accuracy logs, LoadGen validity and submission rules."""
