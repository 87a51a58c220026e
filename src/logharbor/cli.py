"""The ``logharbor`` command: serve, manage users, migrate the database."""

from __future__ import annotations

import contextlib
import enum
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, TypeVar

try:
    import typer
except ImportError:  # pragma: no cover - only without the server extra
    raise SystemExit(
        "The logharbor command is the server; install it with: pip install 'logharbor[server]'"
    ) from None

from logharbor.settings import Settings

T = TypeVar("T")

app = typer.Typer(help="LogHarbor: self-hosted HTTP traffic and prompt logs.", no_args_is_help=True)
user_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the database schema.", no_args_is_help=True)
import_app = typer.Typer(
    help="Bring history across from Arkyn Logs or PromptCrafter (safe to run again).",
    no_args_is_help=True,
)
events_app = typer.Typer(
    help="The events store (ClickHouse): copy records into it", no_args_is_help=True
)
app.add_typer(user_app, name="user")
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(events_app, name="events")


def _engine(settings: Settings):  # type: ignore[no-untyped-def]
    from logharbor.db.engine import make_engine

    return make_engine(settings.resolved_database_url())


def _database(settings: Settings):  # type: ignore[no-untyped-def]
    from logharbor.db.clickhouse import EventsClient
    from logharbor.db.engine import Database

    events = EventsClient.from_url(settings.events_url) if settings.events_url else None
    return Database(_engine(settings), events)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply pending migrations."""
    from logharbor.db import migrate

    settings = Settings()
    engine = _engine(settings)
    migrate.upgrade(engine, revision)
    typer.echo(f"database at revision {migrate.current_revision(engine)}")
    engine.dispose()
    if settings.events_url:
        typer.echo(_upgrade_events(settings.events_url))


def _upgrade_events(url: str) -> str:
    from logharbor.db import events_schema
    from logharbor.db.clickhouse import EventsClient

    events = EventsClient.from_url(url)
    try:
        applied = events_schema.upgrade(events)
    finally:
        events.close()
    return f"events at version {events_schema.head()} on {events.node_count()} node(s)" + (
        f" (applied {applied})" if applied else ""
    )


@db_app.command("current")
def db_current() -> None:
    """Show the database's schema revision."""
    from logharbor.db import migrate

    engine = _engine(Settings())
    typer.echo(migrate.current_revision(engine) or "empty")
    engine.dispose()


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="Login email")],
    name: Annotated[str, typer.Option(help="Display name")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, help="At least 10 chars")],
) -> None:
    """Create a user (works even when open sign-up is disabled)."""
    from logharbor.auth import queries
    from logharbor.auth.passwords import hash_password
    from logharbor.auth.schemas import EMAIL_RE, PASSWORD_MIN
    from logharbor.common.errors import Conflict

    if not EMAIL_RE.match(email):
        raise typer.BadParameter("not a valid email address", param_hint="--email")
    if len(password) < PASSWORD_MIN:
        raise typer.BadParameter(
            f"must be at least {PASSWORD_MIN} characters", param_hint="--password"
        )
    db = _database(Settings())
    try:
        with db.write() as conn:
            user = queries.create_user(
                conn, email=email, name=name, password_hash=hash_password(password)
            )
    except Conflict:
        typer.echo(f"error: a user with email {email} already exists", err=True)
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    typer.echo(f"created user {user['id']} <{user['email']}>")


@user_app.command("set-password")
def user_set_password(
    email: Annotated[str, typer.Option(help="Login email")],
    password: Annotated[
        str,
        typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="At least 10"),
    ],
) -> None:
    """Set a user's password (accounts created by an import have none that works)."""
    from logharbor.auth import queries
    from logharbor.auth.passwords import hash_password
    from logharbor.auth.schemas import PASSWORD_MIN

    if len(password) < PASSWORD_MIN:
        raise typer.BadParameter(
            f"must be at least {PASSWORD_MIN} characters", param_hint="--password"
        )
    db = _database(Settings())
    try:
        with db.write() as conn:
            user = queries.get_user_by_email(conn, email)
            if user is not None:
                queries.update_user(conn, user["id"], {"password_hash": hash_password(password)})
    finally:
        db.dispose()
    if user is None:
        typer.echo(f"error: no user with email {email}", err=True)
        raise typer.Exit(1)
    typer.echo(f"password set for {user['email']}")


OwnerOption = Annotated[
    str | None, typer.Option(help="Email of the LogHarbor user who owns everything imported")
]
UsersMapOption = Annotated[
    Path | None,
    typer.Option(help="Original user id -> email: a JSON object or `id,email` lines"),
]
CreateUsersOption = Annotated[
    bool,
    typer.Option(help="Create missing owners (with no usable password; they set one after)"),
]


def _owners(owner: str | None, users_map: Path | None, create_users: bool):  # type: ignore[no-untyped-def]
    from logharbor.auth.schemas import EMAIL_RE
    from logharbor.moving_in.common import Owners, read_users_map

    if owner is not None and not EMAIL_RE.match(owner):
        raise typer.BadParameter("not a valid email address", param_hint="--owner")
    mapping = read_users_map(users_map) if users_map is not None else {}
    return Owners(owner=owner.lower() if owner else None, users_map=mapping, create=create_users)


@import_app.command("promptcrafter")
def import_promptcrafter(
    file: Annotated[Path, typer.Argument(help="PromptCrafter's json-server data file (db.json)")],
    owner: OwnerOption = None,
    users_map: UsersMapOption = None,
    create_users: CreateUsersOption = False,
) -> None:
    """Import PromptCrafter prompts and their logs (owners matched by email unless mapped)."""
    from logharbor.moving_in import promptcrafter
    from logharbor.moving_in.common import ImportRefused
    from logharbor.progress import tracking

    db = _database(Settings())
    try:
        owners = _owners(owner, users_map, create_users)
        total = sum(promptcrafter.count(file).values())
        with tracking("PromptCrafter", total=total, unit="rows") as bar:
            summary = promptcrafter.import_file(db, file, owners, advance=bar.advance)
    except ImportRefused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    typer.echo("\n".join(summary.lines()))


@import_app.command("arkyn")
def import_arkyn(
    source_url: Annotated[
        str, typer.Option("--from", help="The Arkyn Logs database: postgresql://user:pass@host/db")
    ],
    owner: OwnerOption = None,
    users_map: UsersMapOption = None,
    create_users: CreateUsersOption = False,
) -> None:
    """Import an Arkyn Logs database: sources, shares, domains, pathnames, records with their
    requests and responses, core pathnames and logs, webhooks; rollups and exceptions rebuilt."""
    from logharbor.moving_in import arkyn
    from logharbor.moving_in.common import ImportRefused
    from logharbor.progress import tracking
    from logharbor.traffic.normalize import IngestConfig

    settings = Settings()
    if owner is None and users_map is None and not create_users:
        typer.echo(
            "note: Arkyn keeps its users in its auth service; without --owner or --users-map "
            "only owners found in a leftover User table can be matched",
            err=True,
        )
    db = _database(settings)
    try:
        owners = _owners(owner, users_map, create_users)
        source = arkyn.connect(source_url)
        try:
            with tracking("Arkyn Logs", total=arkyn.count(source), unit="rows") as bar:
                summary = arkyn.import_database(
                    db,
                    source,
                    owners,
                    IngestConfig.from_settings(settings),
                    advance=bar.advance,
                    webhook_cooldown_seconds=settings.webhook_default_cooldown_seconds,
                )
        finally:
            source.dispose()
    except ImportRefused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    typer.echo("\n".join(summary.lines()))


@events_app.command("copy")
def events_copy(
    delete_copied: Annotated[
        bool,
        typer.Option(
            "--delete-copied",
            help="Remove each copied page from the SQL database once ClickHouse has it",
        ),
    ] = False,
) -> None:
    """Copy the traffic records, core logs, LLM calls and spans stored in the SQL database to
    ClickHouse (LOGHARBOR_EVENTS_URL). Safe to stop and run again, and to run while the server
    runs."""
    from logharbor.db import events_schema
    from logharbor.moving_in import to_clickhouse
    from logharbor.progress import tracking

    settings = Settings()
    if not settings.events_url:
        typer.echo("error: set LOGHARBOR_EVENTS_URL to the ClickHouse to copy to", err=True)
        raise typer.Exit(1)
    db = _database(settings)
    assert db.events is not None
    try:
        events_schema.upgrade(db.events)
        with tracking("copy to ClickHouse", total=to_clickhouse.count(db), unit="rows") as bar:
            report = to_clickhouse.copy_records(
                db, db.events, delete_copied=delete_copied, advance=bar.advance
            )
    finally:
        db.dispose()
        db.events.close()
    typer.echo("\n".join(report.lines()))


@events_app.command("ddl")
def events_ddl(
    database: Annotated[str, typer.Option(help="the events database")] = "logharbor",
    cluster: Annotated[
        str | None, typer.Option(help="a cluster's name: local tables and Distributed ones")
    ] = None,
    replicated: Annotated[bool, typer.Option(help="Replicated*MergeTree local tables")] = False,
) -> None:
    """Print the ClickHouse DDL of the events tables as `db upgrade` leaves them, for one
    node or (--cluster) for each node of a cluster. `db upgrade` runs it for you and records
    the schema version; this is for review, or for running it yourself."""
    from logharbor.db import events_schema
    from logharbor.db.clickhouse import identifier

    if replicated and not cluster:
        typer.echo("error: --replicated needs --cluster", err=True)
        raise typer.Exit(2)
    try:
        for name in (database, cluster or "logharbor"):
            identifier(name)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    layout = events_schema.Layout(database, cluster, replicated)
    typer.echo(f"CREATE DATABASE IF NOT EXISTS {database};")
    for statement in events_schema.schema_ddl(layout):
        typer.echo(statement + ";")


@app.command()
def prune() -> None:
    """Apply retention now: delete records (and bodies) older than each source's retentionDays."""
    from logharbor import retention_job
    from logharbor.progress import tracking

    settings = Settings()
    db = _database(settings)

    try:
        # Each batch is one short transaction of at most retention_batch_size rows; the job asks
        # should_stop between batches, which is where the bar learns that one was done.
        with tracking("prune", unit="batches") as bar:

            def one_batch_done() -> bool:
                bar.advance(1)
                return False

            report = retention_job.prune(
                db,
                batch_size=settings.retention_batch_size,
                outbox_keep_days=settings.webhook_outbox_keep_days,
                rollup_days=(settings.stats_minute_days, settings.stats_hour_days),
                should_stop=one_batch_done,
            )
    finally:
        db.dispose()
    records = report.records
    typer.echo(
        f"pruned {len(records.sources)} source(s) with retention: {records.traffic} traffic "
        f"records, {records.core_logs} core logs, {records.requests} requests, "
        f"{records.responses} responses, {report.traces.generations} LLM calls, "
        f"{report.traces.spans} spans; {report.outbox} old webhook deliveries; "
        f"{report.rollups} minute/hour rollup rows past their horizons"
    )


class ExportFormat(enum.StrEnum):
    jsonl = "jsonl"
    csv = "csv"


def _counted(items: Iterator[T], advance: Callable[[int], None]) -> Iterator[T]:
    for item in items:
        yield item
        advance(1)


@app.command()
def export(
    traffic_source_id: Annotated[str, typer.Argument(help="The traffic source's id")],
    output_format: Annotated[ExportFormat, typer.Option("--format", "-f")] = ExportFormat.jsonl,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; default stdout")
    ] = None,
    since: Annotated[str | None, typer.Option(help="ISO-8601 start (inclusive)")] = None,
    until: Annotated[str | None, typer.Option(help="ISO-8601 end (exclusive)")] = None,
) -> None:
    """Export a traffic source's records (full requests and responses) as JSONL or CSV."""
    from logharbor.common.errors import NotFound
    from logharbor.common.ids import is_uuid
    from logharbor.common.timestamps import parse_iso
    from logharbor.progress import tracking
    from logharbor.traffic import export as exporter
    from logharbor.traffic.filters import TrafficFilters

    if not is_uuid(traffic_source_id):
        raise typer.BadParameter("not a traffic source id", param_hint="TRAFFIC_SOURCE_ID")
    try:
        start = parse_iso(since) if since else None
        end = parse_iso(until) if until else None
    except ValueError:
        raise typer.BadParameter("dates must be ISO-8601, e.g. 2025-07-10T16:00:00Z") from None
    db = _database(Settings())
    records = exporter.iter_records(
        db, traffic_source_id.lower(), TrafficFilters(start=start, end=end)
    )
    write = exporter.write_csv if output_format is ExportFormat.csv else exporter.write_jsonl
    try:
        if output is None:
            count = write(records, sys.stdout)  # stdout carries the data: no progress bar
        else:
            with (
                output.open("w", newline="", encoding="utf-8") as handle,
                tracking("export", unit="records") as bar,
            ):
                count = write(_counted(records, bar.advance), handle)
    except NotFound:
        typer.echo(f"error: no traffic source {traffic_source_id}", err=True)
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    typer.echo(f"exported {count} records", err=True)


@app.command("backup")
def backup_command(
    file: Annotated[Path, typer.Argument(help="Where to write the backup (a SQLite file)")],
    overwrite: Annotated[bool, typer.Option(help="Replace FILE if it exists")] = False,
) -> None:
    """Copy the embedded SQLite store, consistently, while the server runs and writes."""
    from logharbor.db import backup
    from logharbor.progress import tracking

    settings = Settings()
    try:
        database = backup.sqlite_path(settings.resolved_database_url())
        with tracking("backup", unit="pages") as bar:
            report = backup.backup(database, file, overwrite=overwrite, progress=bar.update)
    except backup.BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"backed up {database} to {report.path} ({report.bytes:,} bytes, schema revision "
        f"{report.revision}); also keep {settings.data_dir / 'secret_key'} unless "
        "LOGHARBOR_SECRET_KEY is set"
    )


@app.command("restore")
def restore_command(
    file: Annotated[Path, typer.Argument(help="A backup made by `logharbor backup`")],
) -> None:
    """Replace the embedded SQLite store with a backup (refused while a server uses it)."""
    from logharbor.db import backup
    from logharbor.progress import tracking

    settings = Settings()
    try:
        database = backup.sqlite_path(settings.resolved_database_url())
        with tracking("restore", unit="pages") as bar:
            report = backup.restore(file, database, progress=bar.update)
    except backup.BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if report.previous is not None:
        typer.echo(f"the database it replaced is kept as {report.previous}")
    typer.echo(
        f"restored {file} into {database} (schema revision {report.from_revision} -> "
        f"{report.to_revision})"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    migrate_first: Annotated[bool, typer.Option("--migrate/--no-migrate")] = True,
) -> None:
    """Apply pending migrations, then serve the API, its docs (/docs) and the web UI.

    With several workers each listens on a socket of its own (SO_REUSEPORT), so the kernel
    spreads connections over them; a worker that dies is started again.
    """
    from logharbor import serving
    from logharbor.db import backup, migrate

    settings = Settings()
    if workers > 1 and settings.events_url.startswith("chdb:"):
        typer.echo(
            "error: a chdb:// events store belongs to one process; serve it with --workers 1,"
            " or point LOGHARBOR_EVENTS_URL at a ClickHouse server to run several workers",
            err=True,
        )
        raise typer.Exit(2)
    # Resolve the secret once here so that every worker reads the same generated key.
    os.environ.setdefault("LOGHARBOR_SECRET_KEY", settings.resolved_secret_key())
    with contextlib.ExitStack() as stack:
        # Held here as well as by each worker, so that `restore` also waits out a restart.
        try:
            stack.enter_context(backup.presence(settings.resolved_database_url()))
        except backup.BackupError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        if migrate_first:
            engine = _engine(settings)
            migrate.upgrade(engine)
            engine.dispose()
            # chDB's directory belongs to one process: the worker migrates it (app.py).
            if settings.events_url and not settings.events_url.startswith("chdb:"):
                typer.echo(_upgrade_events(settings.events_url))
        typer.echo(f"LogHarbor on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
        serving.run(
            "logharbor.app:create_app_from_env", factory=True, host=host, port=port, workers=workers
        )


def main() -> None:
    app()
