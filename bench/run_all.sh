#!/usr/bin/env bash
# Every ingest and stats benchmark, on SQLite and PostgreSQL, from one command:
#   bench/run_all.sh            (full: 10 s wrk runs, 10M records for stats; ~1 h on 2 cores)
#   QUICK=1 bench/run_all.sh    (5 s runs, 300k records for stats; a few minutes)
#   PHOENIX_PY=/tmp/phoenix-venv/bin/python bench/run_all.sh   (adds the Arize Phoenix peer to
#   ingest_otlp.py; install arize-phoenix in a venv of its own, never in the project's)
# Needs wrk (apt-get install -y wrk) and PostgreSQL binaries (initdb, pg_ctl); installs nothing.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PY="${PY:-$HERE/../.venv/bin/python}"
DB="${DB:-sqlite,postgresql}"
if ! command -v wrk >/dev/null; then
  echo "wrk is not installed: apt-get install -y wrk" >&2
  exit 2
fi
if [ -n "${QUICK:-}" ]; then SECS=5; RECORDS=300000; RAW=20000; else SECS=10; RECORDS=10000000; RAW=100000; fi
cd "$HERE"
"$PY" ingest_http.py --db "$DB" --seconds "$SECS"
"$PY" ingest_batch.py --db "$DB" --seconds "$SECS" --raw-records "$RAW"
"$PY" ingest_otlp.py --db "$DB" --seconds "$SECS" ${PHOENIX_PY:+--phoenix "$PHOENIX_PY"}
"$PY" stats_query.py --db "$DB" --records "$RECORDS"
