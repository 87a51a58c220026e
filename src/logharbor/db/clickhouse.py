"""The one ClickHouse client: where events live when ``LOGHARBOR_EVENTS_URL`` is set.

Two transports speak the same SQL:

- ``clickhouse://user:pass@host:8123[,host2:8123...]/db[?cluster=name]``: ClickHouse's HTTP
  interface. Queries are POSTed as text and answered in ``JSONEachRow``; inserts are
  ``INSERT ... FORMAT JSONEachRow`` with the rows as the body. That is the one protocol every
  server version speaks, from Debian's 18.16 to current releases, which is why this module uses
  it rather than ``clickhouse-connect`` (its current versions cannot talk to 18.16) or the native
  protocol (``clickhouse-driver`` hangs on literal inserts with 18.16). With several hosts and a
  ``cluster``, schema statements run on every host and everything else on one of them, through
  the ``Distributed`` tables.
- ``chdb:///path/to/dir/db``: the current ClickHouse engine in this process (PyPI's ``chdb``),
  with its tables in a directory. Made for the embedded case and for tests: one process owns the
  directory, so it is no choice for several workers.

Parameters are bound here, on the client (``literal``), for both: 18.16's HTTP interface has no
server-side parameters, and chDB must get what a server gets.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import orjson

from logharbor.common.errors import ServiceUnavailable

# 64-bit integers come back as JSON numbers, not strings (counts are UInt64). Both engines know
# this setting.
_SESSION_SETTINGS = {"output_format_json_quote_64bit_integers": "0"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class EventsStoreError(ServiceUnavailable):
    """ClickHouse refused or could not be reached: the request is answered 503 and retried."""


def identifier(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"not a plain ClickHouse identifier: {name!r}")
    return name


def literal(value: Any) -> str:
    """``value`` as a ClickHouse SQL literal (client-side binding; see the module docstring)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("ClickHouse literals must be finite numbers")
        return repr(value)
    if isinstance(value, datetime):
        return str(epoch_ms(value))
    if isinstance(value, str):
        # Backslash is ClickHouse's escape character in string literals, so it is doubled too.
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, list | tuple):
        return "(" + ", ".join(literal(item) for item in value) + ")"
    raise TypeError(f"no ClickHouse literal for {type(value).__name__}")


def epoch_ms(moment: datetime) -> int:
    """Event times are stored as Int64 Unix milliseconds: exact on every server version
    (18.16 has no DateTime64) and cheap to sort and bucket."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000 + (0.5 if moment.timestamp() >= 0 else -0.5))


def from_epoch_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def _json_line(line: str) -> dict[str, Any]:
    """One answer row. orjson: a 7-day statistics answer is ~5,000 histogram rows, and stdlib
    ``json.loads`` took a third of its time; stdlib's parser stays for what orjson refuses
    (an escaped lone surrogate)."""
    try:
        row: dict[str, Any] = orjson.loads(line)
    except orjson.JSONDecodeError:
        row = json.loads(line)
    return row


def json_row(row: Mapping[str, Any]) -> str:
    """One JSONEachRow line. Compact (no spaces): 18.16's ``visitParamExtract*`` needs it.

    orjson, as the SQL path's compose already uses: stdlib ``json.dumps`` was 39 % of the
    writer thread in bench/clickhouse_events.py (bench/RESULTS.md, 2026-12-04)."""
    # OPT_NON_STR_KEYS: column keys can be str subclasses (SQLAlchemy's quoted_name).
    return orjson.dumps(row, option=orjson.OPT_NON_STR_KEYS).decode()


class Transport(Protocol):
    def execute(self, sql: str, body: str | None = None) -> str:
        """Run one statement (with ``body`` appended as its data) and return its output."""

    def close(self) -> None: ...


@dataclass
class HttpTransport:
    base_url: str
    user: str
    password: str
    database: str
    settings: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 30.0
    _client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self._client = httpx.Client(base_url=self.base_url, timeout=self.timeout)

    def execute(self, sql: str, body: str | None = None) -> str:
        content = sql if body is None else sql + "\n" + body
        params = {**_SESSION_SETTINGS, **self.settings}
        if _needs_use(sql):  # the database may not exist yet when it is being created
            params["database"] = self.database
        headers = {"X-ClickHouse-User": self.user}
        if self.password:
            headers["X-ClickHouse-Key"] = self.password
        try:
            response = self._client.post(
                "/", params=params, content=content.encode(), headers=headers
            )
        except httpx.HTTPError as exc:
            raise EventsStoreError(f"ClickHouse at {self.base_url} unreachable: {exc}") from exc
        if response.status_code != 200:
            raise EventsStoreError(_server_message(response.text))
        return response.text

    def close(self) -> None:
        self._client.close()


def _server_message(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else "no answer"
    return f"ClickHouse refused the statement: {first[:500]}"


class _ChdbSessions:
    """chDB allows one session per process: every client of a directory shares it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._path: str | None = None
        self._session: Any = None

    def get(self, path: str) -> Any:
        with self._lock:
            if self._session is not None and self._path != path:
                raise EventsStoreError(
                    f"chDB already has {self._path} open in this process; it cannot open {path}"
                )
            if self._session is None:
                from chdb import session

                self._session = session.Session(path)  # type: ignore[no-untyped-call]
                for name, value in _SESSION_SETTINGS.items():
                    self._session.query(f"SET {identifier(name)} = {literal(value)}")
                self._path = path
            return self._session


_chdb_sessions = _ChdbSessions()
# chDB's engine is shared by the whole process; queries on one session are serialized.
_chdb_lock = threading.Lock()


@dataclass
class ChdbTransport:
    path: str
    database: str

    def execute(self, sql: str, body: str | None = None) -> str:
        session = _chdb_sessions.get(self.path)
        content = sql if body is None else sql + "\n" + body
        try:
            with _chdb_lock:
                session.query(f"USE {identifier(self.database)}") if _needs_use(sql) else None
                result = session.query(content)
        except Exception as exc:  # chdb raises its own ChdbError (and RuntimeError in places)
            raise EventsStoreError(_server_message(str(exc))) from exc
        return bytes(result.bytes()).decode() if result is not None else ""

    def close(self) -> None:
        pass


def _needs_use(sql: str) -> bool:
    """Whether ``sql`` runs in the events database (rather than creating or dropping it)."""
    head = sql.lstrip()[:20].upper()
    return not head.startswith(("CREATE DATABASE", "DROP DATABASE"))


@dataclass(frozen=True)
class EventsUrl:
    scheme: str  # "clickhouse" | "chdb"
    hosts: tuple[str, ...]
    user: str
    password: str
    database: str
    cluster: str | None
    path: str | None  # chdb's directory
    replicated: bool = False

    @classmethod
    def parse(cls, url: str) -> EventsUrl:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        cluster = query.get("cluster", [None])[0]
        if cluster is not None:
            identifier(cluster)
        replicated = query.get("replicated", ["0"])[0] in ("1", "true", "yes")
        if parts.scheme == "chdb":
            directory, _, database = parts.path.rstrip("/").rpartition("/")
            if not directory or not database:
                raise ValueError("a chDB events URL is chdb:///path/to/directory/database")
            return cls("chdb", (), "", "", identifier(database), None, directory)
        if parts.scheme not in ("clickhouse", "clickhouse+http", "http"):
            raise ValueError("LOGHARBOR_EVENTS_URL must start with clickhouse:// or chdb://")
        netloc = parts.netloc
        credentials, _, host_list = netloc.rpartition("@")
        user, _, password = credentials.partition(":")
        hosts = tuple(host.strip() for host in host_list.split(",") if host.strip())
        if not hosts:
            raise ValueError("a ClickHouse events URL names at least one host:port")
        database = parts.path.strip("/") or "logharbor"
        return cls(
            "clickhouse",
            hosts,
            unquote(user) or "default",
            unquote(password),
            identifier(database),
            cluster,
            None,
            replicated,
        )


class EventsClient:
    """Statements and inserts against the events database (see the module docstring)."""

    def __init__(self, url: EventsUrl) -> None:
        self.url = url
        self.database = url.database
        self.cluster = url.cluster
        self.nodes: list[Transport]
        if url.scheme == "chdb":
            assert url.path is not None
            self.nodes = [ChdbTransport(url.path, url.database)]
        else:
            # Through a Distributed table an insert is acknowledged only once every shard has
            # its rows: an answer then means stored, and a read right after sees them.
            settings = {"insert_distributed_sync": "1"} if url.cluster else {}
            self.nodes = [
                HttpTransport(f"http://{host}", url.user, url.password, url.database, settings)
                for host in url.hosts
            ]
        self._next = 0

    @classmethod
    def from_url(cls, url: str) -> EventsClient:
        return cls(EventsUrl.parse(url))

    @property
    def engine_name(self) -> str:
        return "chdb" if self.url.scheme == "chdb" else "clickhouse"

    def _node(self) -> Transport:
        # Round robin over the hosts: any host of a cluster answers for all of them.
        self._next = (self._next + 1) % len(self.nodes)
        return self.nodes[self._next]

    def query(self, sql: str) -> list[dict[str, Any]]:
        text = self._node().execute(sql + "\nFORMAT JSONEachRow")
        return [_json_line(line) for line in text.splitlines() if line]

    def command(self, sql: str) -> None:
        self._node().execute(sql)

    def command_on_every_node(self, sql: str) -> None:
        """Schema statements: each node of a cluster holds its own local tables."""
        for node in self.nodes:
            node.execute(sql)

    def node_count(self) -> int:
        return len(self.nodes)

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]], *, settings: str = "") -> None:
        """One multi-row insert: ClickHouse wants few large inserts, not many small ones."""
        if not rows:
            return
        body = "\n".join(json_row(row) for row in rows)
        self._node().execute(f"INSERT INTO {identifier(table)} {settings}FORMAT JSONEachRow", body)

    def wait_for_mutations(self, timeout: float = 300.0) -> None:
        """Until no mutation (``ALTER ... DELETE/UPDATE``) of the database is pending on any
        node: they run in the background, and 18.16 has no ``mutations_sync``."""
        deadline = time.monotonic() + timeout
        sql = (
            "SELECT count() FROM system.mutations WHERE database = "
            f"{literal(self.database)} AND is_done = 0 FORMAT TabSeparated"
        )
        for node in self.nodes:
            while int(node.execute(sql).strip() or 0) > 0:
                if time.monotonic() > deadline:
                    raise EventsStoreError("ClickHouse mutations did not finish in time")
                time.sleep(0.05)

    def write(self, table: str, rows: list[dict[str, Any]]) -> None:
        """A ``RowSink`` for the group writer: what a transaction staged for ``table``."""
        self.insert(table, rows)

    def close(self) -> None:
        for node in self.nodes:
            node.close()
