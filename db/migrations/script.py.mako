"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.migrations.compat import forget_revision, record_oldest_reader
${imports if imports else ""}

revision: str = ${repr(up_revision)}
down_revision: str | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}

OLDEST_READER = revision
"""The oldest revision whose code can still read and write this schema (see db.migrations.compat): an older one
only for an additive change."""


def upgrade() -> None:
    """Apply this revision."""
    ${upgrades if upgrades else "pass"}
    record_oldest_reader(revision, OLDEST_READER)


def downgrade() -> None:
    """Revert this revision."""
    ${downgrades if downgrades else "pass"}
    forget_revision(revision)
