"""Metrics: ROUGE as MLPerf scores it, MMLU accuracy, logits comparison, throughput and latency."""
