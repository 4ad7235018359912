"""Metrics: pure Python, no torch, so scores can be computed from a predictions file on any laptop."""
