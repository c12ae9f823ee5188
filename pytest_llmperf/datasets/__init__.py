"""Datasets: MLPerf's processed OpenOrca, MMLU in both layouts, embedded samples."""
