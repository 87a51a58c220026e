"""LLM calls: generations tied by trace id to the HTTP traffic that made them, their prices
and cost, and the spans of their traces."""
