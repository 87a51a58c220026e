"""The event tables on ClickHouse, and their versioned migrations.

Events are written once and read in bulk, so each is one wide row: a traffic record carries its
domain, pathname, request and response, where the SQL schema joins five tables (and 18.16 joins
one table per SELECT). Names (domains, pathnames) keep their ids in the SQL database, which
also keeps users, sources, keys, shares, webhooks, exceptions and prompts.

Times are Int64 Unix milliseconds (``created_at``): 18.16 has no DateTime64. Partitions are days,
so that retention drops whole partitions where every source's window has passed. Sorting by
(source, time, id) serves the lists and statistics, which always name a source and a window;
``record_ids`` is sorted by id for the lookups of retries.

On a cluster (``?cluster=name`` in the URL), each node holds ``<table>_local`` and a
``Distributed`` table named ``<table>`` over them, sharded by the traffic source so that one
source's rows stay on one shard. ``?replicated=1`` makes the local tables ``ReplicatedMergeTree``
(ZooKeeper or ClickHouse Keeper, and ``{shard}``/``{replica}`` macros in each node's config).

Each node keeps its own ``logharbor_migrations`` table, so a node added to a cluster is brought
up to date by the same ``logharbor db upgrade`` that migrates the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text

from logharbor.db.clickhouse import EventsClient, Transport, identifier, literal
from logharbor.db.clickhouse_sql import EpochMs, Flag, JsonText

# --- the tables, as the queries see them --------------------------------------------------------

metadata = MetaData()

_DAY = "toYYYYMMDD(toDateTime(intDiv(created_at, 1000)))"


def _payload(prefix: str) -> list[Column[object]]:
    return [
        Column(prefix + "headers", JsonText),
        Column(prefix + "body", Text),
        Column(prefix + "body_preview", Text),
        # Not Nullable on ClickHouse: a record without that payload has 0 here.
        Column(prefix + "body_size", Integer, nullable=False),
        Column(prefix + "body_truncated", Flag, nullable=False),
        Column(prefix + "created_at", EpochMs),
    ]


def _call_columns() -> list[Column[object]]:
    """What traffic records and core logs both record of a call."""
    return [
        Column("status", Integer),
        Column("method", String),
        Column("level", String),
        Column("elapsed_time", Float),
        Column("traffic_user_id", String),
        Column("request_id", String),
        Column("response_id", String),
        Column("created_at", EpochMs),
    ]


def _trace_columns() -> list[Column[object]]:
    return [
        Column("trace_id", String),
        Column("span_id", String),
        Column("exception", JsonText),
    ]


http_traffic = Table(
    "http_traffic",
    metadata,
    Column("id", String),
    Column("traffic_source_id", String),
    Column("domain_id", String),
    Column("pathname_id", String),
    *_call_columns(),
    Column("route_pathname_id", String),
    *_trace_columns(),
    Column("domain", String),
    Column("protocol", String),
    Column("pathname", String),
    Column("route", String),
    *_payload("rq_"),
    Column("rq_query_params", JsonText),
    *_payload("rs_"),
)

core_logs = Table(
    "core_logs",
    metadata,
    Column("id", String),
    Column("traffic_source_id", String),
    Column("core_pathname_id", String),
    Column("core_pathname", String),
    *_call_columns(),
    *_trace_columns(),
    Column("message", Text),
    Column("attributes", JsonText),
)

generations = Table(
    "generations",
    metadata,
    Column("id", String),
    Column("traffic_source_id", String),
    Column("trace_id", String),
    Column("span_id", String),
    Column("parent_span_id", String),
    Column("traffic_record_id", String),
    Column("route", String),
    Column("provider", String),
    Column("operation", String),
    Column("request_model", String),
    Column("response_model", String),
    Column("response_id", String),
    Column("finish_reasons", JsonText),
    Column("parameters", JsonText),
    Column("input_messages", JsonText),
    Column("output_messages", JsonText),
    Column("system_instructions", JsonText),
    Column("output_preview", Text),
    Column("input_tokens", Integer),
    Column("output_tokens", Integer),
    Column("cached_tokens", Integer),
    Column("cost", Float),
    Column("duration_ms", Float),
    Column("time_to_first_token_ms", Float),
    Column("streamed", Flag),
    Column("error_type", String),
    Column("error_message", Text),
    Column("prompt_id", String),
    Column("prompt_version", Integer),
    Column("created_at", EpochMs),
)

spans = Table(
    "spans",
    metadata,
    Column("id", String),
    Column("traffic_source_id", String),
    Column("trace_id", String),
    Column("span_id", String),
    Column("parent_span_id", String),
    Column("name", String),
    Column("kind", String),
    Column("service", String),
    Column("duration_ms", Float),
    Column("status", String),
    Column("status_message", Text),
    Column("attributes", JsonText),
    Column("created_at", EpochMs),
)

# Which record has which id, sorted by id: a retry's lookup reads a few granules, not a scan.
record_ids = Table(
    "record_ids",
    metadata,
    Column("id", String),
    Column("kind", String),  # http_traffic | core_logs | generations | spans
    Column("traffic_source_id", String),
    Column("created_at", EpochMs),
)


def _rollup_key(*, per_path: bool = False) -> list[Column[object]]:
    key: list[Column[object]] = [
        Column("traffic_source_id", String),
        Column("resolution", Integer),
        Column("bucket_start", EpochMs),
        Column("domain_id", String),
        Column("pathname_id", String),
    ]
    if not per_path:
        key += [Column("method", String), Column("status_class", Integer)]
    return key


# The statistics rollups, with the SQL tables' columns (stats/rollups.py writes the same rows;
# stats/queries.py reads them). The SQL store adds a group's figures to a row with an upsert;
# here each group appends its rows, merges fold them, and a query sums what is not folded yet.
traffic_rollups = Table(
    "traffic_rollups",
    metadata,
    *_rollup_key(),
    Column("count", Integer),
    Column("errors", Integer),
    Column("latency_sum", Float),
    Column("latency_min", Float),
    Column("latency_max", Float),
)
traffic_rollup_latency = Table(
    "traffic_rollup_latency",
    metadata,
    *_rollup_key(),
    Column("bucket", Integer),
    Column("count", Integer),
)
traffic_rollup_path_latency = Table(
    "traffic_rollup_path_latency",
    metadata,
    *_rollup_key(per_path=True),
    Column("bucket", Integer),
    Column("count", Integer),
)

# Tokens and cost of LLM calls (stats/llm_rollups.py writes the SQL table's rows; the statistics
# read them with the same statements). Every figure is a sum, so SummingMergeTree may fold rows.
llm_rollups = Table(
    "llm_rollups",
    metadata,
    *_rollup_key()[:3],
    Column("route", String),
    Column("model", String),
    Column("prompt_id", String),
    Column("prompt_version", Integer),
    Column("calls", Integer),
    Column("failed_calls", Integer),
    Column("input_tokens", Integer),
    Column("output_tokens", Integer),
    Column("cached_tokens", Integer),
    Column("cost", Float),
    Column("unpriced_calls", Integer),
    Column("duration_sum", Float),
)

# --- DDL ---------------------------------------------------------------------------------------

_PAYLOAD_DDL = """
    {p}headers Nullable(String), {p}body Nullable(String), {p}body_preview Nullable(String),
    {p}body_size Int64, {p}body_truncated UInt8, {p}created_at Nullable(Int64)"""

_TRAFFIC_ROLLUP_KEY = """
    traffic_source_id String, resolution Int32, bucket_start Int64, domain_id String,
    pathname_id String, method String, status_class Int32"""

# Migration 2's main rollup, before migration 4 folded it.
_APPENDED_ROLLUP_COLUMNS = (
    _TRAFFIC_ROLLUP_KEY
    + """,
    count Int64, errors Int64, latency_sum Float64, latency_min Float64, latency_max Float64"""
)

_COLUMNS: dict[str, str] = {
    "http_traffic": """
    id String, traffic_source_id String, domain_id String, pathname_id String,
    status Int32, method String, level String, elapsed_time Float64,
    traffic_user_id Nullable(String), request_id Nullable(String), response_id Nullable(String),
    created_at Int64, route_pathname_id Nullable(String),
    trace_id Nullable(String), span_id Nullable(String), exception Nullable(String),
    domain String, protocol String, pathname String, route Nullable(String),"""
    + _PAYLOAD_DDL.format(p="rq_")
    + ", rq_query_params Nullable(String),"
    + _PAYLOAD_DDL.format(p="rs_"),
    "core_logs": """
    id String, traffic_source_id String, core_pathname_id String, core_pathname String,
    status Nullable(Int32), method Nullable(String), level String,
    elapsed_time Nullable(Float64), traffic_user_id Nullable(String),
    request_id Nullable(String), response_id Nullable(String), created_at Int64,
    trace_id Nullable(String), span_id Nullable(String), exception Nullable(String),
    message Nullable(String), attributes Nullable(String)""",
    "generations": """
    id String, traffic_source_id String, trace_id Nullable(String), span_id Nullable(String),
    parent_span_id Nullable(String), traffic_record_id Nullable(String), route Nullable(String),
    provider String, operation String, request_model String, response_model Nullable(String),
    response_id Nullable(String), finish_reasons Nullable(String), parameters Nullable(String),
    input_messages Nullable(String), output_messages Nullable(String),
    system_instructions Nullable(String), output_preview Nullable(String),
    input_tokens Nullable(Int64), output_tokens Nullable(Int64), cached_tokens Nullable(Int64),
    cost Nullable(Float64), duration_ms Float64, time_to_first_token_ms Nullable(Float64),
    streamed UInt8, error_type Nullable(String), error_message Nullable(String),
    prompt_id Nullable(String), prompt_version Nullable(Int32), created_at Int64""",
    "spans": """
    id String, traffic_source_id String, trace_id String, span_id String,
    parent_span_id Nullable(String), name String, kind String, service Nullable(String),
    duration_ms Float64, status String, status_message Nullable(String),
    attributes Nullable(String), created_at Int64""",
    "record_ids": "id String, kind String, traffic_source_id String, created_at Int64",
    "traffic_rollups": _TRAFFIC_ROLLUP_KEY
    + """,
    count AggregateFunction(sum, Int64), errors AggregateFunction(sum, Int64),
    latency_sum AggregateFunction(sum, Float64), latency_min AggregateFunction(min, Float64),
    latency_max AggregateFunction(max, Float64)""",
    "traffic_rollups_input": _APPENDED_ROLLUP_COLUMNS,
    "traffic_rollup_latency": """
    traffic_source_id String, resolution Int32, bucket_start Int64, domain_id String,
    pathname_id String, method String, status_class Int32, bucket Int32, count Int64""",
    "traffic_rollup_path_latency": """
    traffic_source_id String, resolution Int32, bucket_start Int64, domain_id String,
    pathname_id String, bucket Int32, count Int64""",
    "llm_rollups": """
    traffic_source_id String, resolution Int32, bucket_start Int64, route String, model String,
    prompt_id String, prompt_version Int32, calls Int64, failed_calls Int64,
    input_tokens Int64, output_tokens Int64, cached_tokens Int64, cost Float64,
    unpriced_calls Int64, duration_sum Float64""",
}
_ROLLUP_KEY = "traffic_source_id, resolution, bucket_start, domain_id, pathname_id"

_SORTING = {
    "http_traffic": "traffic_source_id, created_at, id",
    "core_logs": "traffic_source_id, created_at, id",
    "generations": "traffic_source_id, created_at, id",
    "spans": "traffic_source_id, created_at, id",
    "record_ids": "id",
    "traffic_rollups": _ROLLUP_KEY + ", method, status_class",
    "traffic_rollup_latency": _ROLLUP_KEY + ", method, status_class, bucket",
    "traffic_rollup_path_latency": _ROLLUP_KEY + ", bucket",
    "llm_rollups": (
        "traffic_source_id, resolution, bucket_start, route, model, prompt_id, prompt_version"
    ),
}
# Every group commit appends rollup rows, so unfolded they outnumber the records they count
# (1.8 rows per record at 10M; bench/RESULTS.md). Histogram rows only add counts, which
# SummingMergeTree folds together as parts merge. The main rollup also keeps a minimum and a
# maximum, which summing would spoil, so it holds aggregate states (AggregatingMergeTree, read
# with -Merge functions: ``rollup_figure``), fed from rows of plain numbers through a Null table
# and a materialized view (``WRITTEN_TO``), which 18.16 and current servers alike accept; 18.16
# has no SimpleAggregateFunction.
_ENGINES = {
    "traffic_rollups": "AggregatingMergeTree",
    "traffic_rollups_input": "Null",
    "traffic_rollup_latency": "SummingMergeTree",
    "traffic_rollup_path_latency": "SummingMergeTree",
    "llm_rollups": "SummingMergeTree",
}
_FOLDING = ("SummingMergeTree", "AggregatingMergeTree")
# Replicated tables made anew by a migration under another name keep the coordinator path they
# were created with; the same table created from scratch must use that path too.
_REPLICA_PATH_SUFFIX = {"traffic_rollups": ".4"}
# Where rows for a table are inserted, when that is not the table itself.
WRITTEN_TO = {"traffic_rollups": "traffic_rollups_input"}
# How the folded main rollup is read, per column: the aggregate its states hold.
FOLDED_FIGURES = {
    "count": "sum",
    "errors": "sum",
    "latency_sum": "sum",
    "latency_min": "min",
    "latency_max": "max",
}
# Rollups by resolution and month: the retention job's thinning drops minute and hour detail
# past its horizon.
_ROLLUP_PARTITION = "(resolution, toYYYYMM(toDateTime(intDiv(bucket_start, 1000))))"
ROLLUP_TABLES = (
    "traffic_rollups",
    "traffic_rollup_latency",
    "traffic_rollup_path_latency",
    "llm_rollups",
)
_PARTITIONS = dict.fromkeys(ROLLUP_TABLES, _ROLLUP_PARTITION)


def merged(table: str) -> str:
    """``table`` as a statement's FROM in which one key's rows count once, whether its parts
    have merged yet or not: a summing table is read ``FINAL``."""
    return f"{table} FINAL" if _ENGINES.get(table) in _FOLDING else table


def written_to(table: str) -> str:
    """The table that rows for ``table`` are inserted into."""
    return WRITTEN_TO.get(table, table)


@dataclass(frozen=True)
class Layout:
    """How the tables are laid out: one node, or local tables plus Distributed ones."""

    database: str
    cluster: str | None = None
    replicated: bool = False
    # Whether a migration run on this node copies its rows into a table it creates: on a
    # replicated cluster only one replica of each shard does, and replication does the rest.
    carries_rows: bool = True

    def local(self, table: str) -> str:
        return f"{table}_local" if self.cluster else table

    def create_event_table(self, table: str) -> list[str]:
        return self.create_table(table, self.local(table), _COLUMNS[table])

    def create_table(
        self,
        table: str,
        name: str,
        columns: str,
        family: str | None = None,
        replica_path: str | None = None,
    ) -> list[str]:
        """``name`` (a node's table) with ``table``'s engine (or ``family``), partitions and
        sorting, and on a cluster the Distributed ``table`` over it. Replicas of a table share
        its coordinator path, ``name`` unless ``replica_path`` says otherwise."""
        family = family or _ENGINES.get(table, "MergeTree")
        if family == "Null":
            storage = "Null"
        else:
            if self.replicated:
                tail = replica_path or name + _REPLICA_PATH_SUFFIX.get(table, "")
                path = literal(f"/clickhouse/tables/{{shard}}/{self.database}/{tail}")
                engine = f"Replicated{family}({path}, '{{replica}}')"
            else:
                engine = family
            partition = _PARTITIONS.get(table, _DAY)
            storage = f"{engine} PARTITION BY {partition} ORDER BY ({_SORTING[table]})"
        statements = [
            f"CREATE TABLE IF NOT EXISTS {self.database}.{name} ({columns}\n) ENGINE = {storage}"
        ]
        if self.cluster and name == self.local(table):
            statements.append(self.distributed(table))
        return statements

    def distributed(self, table: str) -> str:
        name = self.local(table)
        return (
            f"CREATE TABLE IF NOT EXISTS {self.database}.{table} AS {self.database}.{name} "
            f"ENGINE = Distributed({self.cluster}, {self.database}, {name}, "
            "cityHash64(traffic_source_id))"
        )


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: Callable[[Layout], list[str]]


def _initial(layout: Layout) -> list[str]:
    return [
        statement
        for table in ("http_traffic", "core_logs", "generations", "spans", "record_ids")
        for statement in layout.create_event_table(table)
    ]


def _rollups(layout: Layout) -> list[str]:
    return [
        *layout.create_table(
            "traffic_rollups",
            layout.local("traffic_rollups"),
            _APPENDED_ROLLUP_COLUMNS,
            family="MergeTree",
            replica_path=layout.local("traffic_rollups"),
        ),
        *(
            statement
            for table in ("traffic_rollup_latency", "traffic_rollup_path_latency")
            for statement in layout.create_event_table(table)
        ),
    ]


def _llm_rollups(layout: Layout) -> list[str]:
    return layout.create_event_table("llm_rollups")


_MAIN_ROLLUP_KEY = _SORTING["traffic_rollups"]


def _folded_figures(source: str) -> str:
    states = ", ".join(
        f"{agg}State({column}) AS {column}" for column, agg in FOLDED_FIGURES.items()
    )
    return f"SELECT {_MAIN_ROLLUP_KEY}, {states} FROM {source} GROUP BY {_MAIN_ROLLUP_KEY}"


def _fold_main_rollup(layout: Layout) -> list[str]:
    """Migration 2's appended main rollup becomes aggregate states, one row per key once merged.

    Each node folds its own rows into a new table that then takes the old one's name, so reads
    never see half of them. On a replicated cluster only each shard's first replica folds (its
    replicas hold the same rows, and replication copies the folded ones to the others; two
    replicas each inserting them counted every row twice in a test), and the new table's
    coordinator path carries the migration's number rather than the name it had while it was
    filled, so that a replica added later, which creates it under that same path, joins it.
    Run it with ingest stopped: rows appended to the old table during the copy are not carried.
    """
    db = layout.database
    current = layout.local("traffic_rollups")
    folding, appended = current + "_folding", current + "_appended"
    statements = [
        f"DROP TABLE IF EXISTS {db}.{folding}",
        *layout.create_table(
            "traffic_rollups",
            folding,
            _COLUMNS["traffic_rollups"],
            replica_path=current + _REPLICA_PATH_SUFFIX["traffic_rollups"],
        ),
    ]
    if layout.carries_rows:
        statements.append(f"INSERT INTO {db}.{folding} {_folded_figures(f'{db}.{current}')}")
    if layout.cluster:
        # The Distributed table takes its columns from the local one when created.
        statements.append(f"DROP TABLE IF EXISTS {db}.traffic_rollups")
    statements += [
        f"RENAME TABLE {db}.{current} TO {db}.{appended}, {db}.{folding} TO {db}.{current}",
        f"DROP TABLE {db}.{appended}",
    ]
    if layout.cluster:
        statements.append(layout.distributed("traffic_rollups"))
    return statements + _rollup_input(layout)


def _rollup_input(layout: Layout) -> list[str]:
    """The main rollup's input table, and the view that folds what it is given into states."""
    db = layout.database
    return [
        *layout.create_event_table("traffic_rollups_input"),
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{layout.local('traffic_rollups_fold')} "
        f"TO {db}.{layout.local('traffic_rollups')} AS "
        + _folded_figures(f"{db}.{layout.local('traffic_rollups_input')}"),
    ]


def schema_ddl(layout: Layout) -> list[str]:
    """The statements that create, on an empty node, the tables every migration leaves, and
    record those migrations as applied (so that ``upgrade`` later applies only newer ones):
    what ``logharbor events ddl`` prints for operators who run DDL themselves (``ON CLUSTER``,
    review). tests/db/test_events_schema.py checks that they build what ``upgrade`` builds."""
    return [
        *(
            statement
            for table in _COLUMNS
            if table != "traffic_rollups_input"
            for statement in layout.create_event_table(table)
        ),
        *_rollup_input(layout),
        _migrations_table(layout.database),
        *(_recorded(layout.database, migration) for migration in MIGRATIONS),
    ]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "event tables", _initial),
    Migration(2, "statistics rollups", _rollups),
    Migration(3, "LLM token and cost rollups", _llm_rollups),
    Migration(4, "main rollup folded as it merges", _fold_main_rollup),
)


def layout_of(client: EventsClient) -> Layout:
    return Layout(client.database, client.cluster, client.url.replicated)


def alter_local_tables(client: EventsClient, table: str, clause: str) -> None:
    """``ALTER TABLE`` (a partition drop, a mutation) on ``table``'s data: on a cluster that is
    each node's local table, as a Distributed table refuses both."""
    local = layout_of(client).local(table)
    client.command_on_every_node(f"ALTER TABLE {client.database}.{local} {clause}")


def _versions(node: Transport, database: str) -> set[int]:
    text = node.execute(f"SELECT version FROM {database}.logharbor_migrations FORMAT TabSeparated")
    return {int(line) for line in text.split()}


def upgrade(client: EventsClient, target: int | None = None) -> list[int]:
    """Bring every node's tables up to the newest migration (or to ``target``); returns the
    versions applied (on any node)."""
    layout = layout_of(client)
    database = identifier(layout.database)
    applied: set[int] = set()
    for node in client.nodes:
        node.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
    carriers = _first_replicas(client) if layout.replicated else set(range(len(client.nodes)))
    for index, node in enumerate(client.nodes):
        node_layout = replace(layout, carries_rows=index in carriers)
        node.execute(_migrations_table(database))
        done = _versions(node, database)
        for migration in MIGRATIONS:
            if migration.version in done or (target is not None and migration.version > target):
                continue
            for statement in migration.statements(node_layout):
                node.execute(statement)
            node.execute(_recorded(database, migration))
            applied.add(migration.version)
    return sorted(applied)


def _migrations_table(database: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {database}.logharbor_migrations "
        "(version UInt32, name String, applied_at DateTime) "
        "ENGINE = MergeTree ORDER BY version"
    )


def _recorded(database: str, migration: Migration) -> str:
    return (
        f"INSERT INTO {database}.logharbor_migrations (version, name, applied_at) "
        f"VALUES ({migration.version}, {literal(migration.name)}, now())"
    )


def _first_replicas(client: EventsClient) -> set[int]:
    """Of the URL's nodes, the first of each shard (by the ``{shard}`` macro that replicated
    tables need on every node)."""
    first: dict[str, int] = {}
    for index, node in enumerate(client.nodes):
        shard = node.execute(
            "SELECT substitution FROM system.macros WHERE macro = 'shard' FORMAT TabSeparated"
        ).strip()
        first.setdefault(shard, index)
    return set(first.values())


def current_versions(client: EventsClient) -> list[set[int]]:
    """Per node, the migrations it has."""
    return [_versions(node, identifier(client.database)) for node in client.nodes]


def head() -> int:
    return MIGRATIONS[-1].version
