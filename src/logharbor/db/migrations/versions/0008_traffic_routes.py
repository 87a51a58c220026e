"""traffic routes

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23

``http_traffic.route_pathname_id``: the route template a collector matched, as a pathname of the
record's domain; statistics count the record under it (see logharbor/traffic/ingest.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_FK = "fk_http_traffic_route_pathname_id_pathnames"
_INDEX = "ix_http_traffic_route_pathname_id_created_at"


def upgrade() -> None:
    # On SQLite this copies http_traffic into a new table (SQLite cannot add a named foreign
    # key in place): a one-time cost proportional to the stored traffic.
    with op.batch_alter_table("http_traffic") as batch:
        batch.add_column(sa.Column("route_pathname_id", sa.String(length=36), nullable=True))
        batch.create_foreign_key(
            _FK, "pathnames", ["route_pathname_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index(_INDEX, ["route_pathname_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("http_traffic") as batch:
        batch.drop_index(_INDEX)
        batch.drop_constraint(_FK, type_="foreignkey")
        batch.drop_column("route_pathname_id")
