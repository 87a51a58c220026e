"""Machinery every feature shares: errors, ids, timestamps, pagination, routing."""
