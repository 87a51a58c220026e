"""Webhooks, exception grouping and retention."""
