"""A consistent copy of a station's SQLite verdict log while the station may be writing to it (SQLite's online
backup), for ``cupcheck backup``. A PostgreSQL database is backed up by its server's own tools (``pg_dump``)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from db.session import DB_FILENAME, default_sqlite_url


def sqlite_file(url: str | None, home: Path) -> Path | None:
    """The SQLite file the station's database URL names (``None``: a server database)."""
    parsed = make_url(url or default_sqlite_url(home))
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


def backup_sqlite(source: Path, folder: Path) -> Path:
    """Copy the SQLite file ``source`` into ``folder/cupcheck.db``, page by page through SQLite's online backup
    (a station writing meanwhile waits for, or restarts, the copy; the copy is never half-written), then swap it
    into place. Returns the copy.

    Raises:
        FileNotFoundError: there is no such file.
        sqlite3.Error: it cannot be read.
    """
    if not source.is_file():
        raise FileNotFoundError(f"no verdict log at {source}")
    target = folder / DB_FILENAME
    tmp = target.with_name(f".{DB_FILENAME}.tmp")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=30)  # read only in effect: the backup reads pages
    try:
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
    os.replace(tmp, target)
    return target
