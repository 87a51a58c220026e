"""Per-minute rollups maintained at ingest, and the statistics API that reads them."""
