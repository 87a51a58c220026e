"""Ingestion: every wire format in, one typed pipeline, one store.

The flow, one way only::

    front-end (compose, batch, OTLP)  --decodes-->  records.HttpExchange / records.LogLine
    normalize.py                       --masks, validates, caps-->  records.Normalized*
    pipeline.py (run by db.writer's group commit)  --stores through-->  store.RecordStore
                                       --hands events.TrafficEvent to-->  subscribers

The subscribers (rollups, exception grouping, alert outbox) are wired where the app is created
(``logharbor.app``); nothing in this package names them.
"""
