"""Webhooks and exception grouping."""
