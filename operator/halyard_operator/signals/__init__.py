"""Serving signals: /metrics parsing, scraping, sliding windows, Prometheus API source."""
