"""Accounts and tokens shared by both API families, plus per-traffic-source ingest keys."""
