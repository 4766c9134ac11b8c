"""What a migration records in ``schema_compat`` (:class:`db.schema.SchemaCompat`): the oldest software that may
still use the schema it leaves.

Every revision from 0003 on calls :func:`record_oldest_reader` at the end of its ``upgrade`` and
:func:`forget_revision` at the end of its ``downgrade``. Name an older revision only when code stopped at that
revision still reads and writes correctly: new tables and nullable (or server-defaulted) columns qualify; a dropped
or renamed column, a new NOT NULL column without a server default, or a changed meaning of a value do not.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

COMPAT_TABLE = sa.table("schema_compat", sa.column("revision", sa.String), sa.column("oldest_reader", sa.String))


def record_oldest_reader(revision: str, oldest_reader: str) -> None:
    """Record that code at ``oldest_reader`` or newer can use the schema at ``revision``."""
    op.bulk_insert(COMPAT_TABLE, [{"revision": revision, "oldest_reader": oldest_reader}])


def forget_revision(revision: str) -> None:
    """Remove ``revision``'s row (its downgrade)."""
    op.execute(COMPAT_TABLE.delete().where(COMPAT_TABLE.c.revision == revision))
