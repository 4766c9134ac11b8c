"""Never lose a verdict: journal records locally while the database is unreachable, replay them when it is back.

The journal is an append-only JSON-lines file (one :meth:`VerdictRecord.to_json` per line, images base64-encoded,
so it does not depend on the image store). Every append is flushed and fsync'd before ``log_verdict`` returns.
Replay sends the records in their original order; because each carries its idempotency key, a replay interrupted
after a commit but before the journal was trimmed simply finds the verdict already stored. A torn last line (the
process died mid-append, before the call returned) is discarded; any other unreadable line (a damaged disk block)
is moved, as it was, to ``*.damaged.jsonl`` for a person to look at, so that it blocks neither the records around it
nor the verdicts after it. A record the database refuses outright (not a connection problem), on replay or as it
is logged, is kept in a second journal, ``*.rejected.jsonl``, so it cannot block the records after it and is not
lost; that journal too cuts off a torn last line before it appends, and moves a line it cannot read to
``*.damaged.jsonl``. One process writes a journal at a time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from db.records import VerdictRecord
from db.repository import VerdictRepository
from db.store import StoreUnreachable

SPOOL_FILENAME = "verdict-spool.jsonl"
UNREACHABLE_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout, StoreUnreachable)
"""A database that cannot be reached (or gives no connection in time), or a site's shared image folder that is not
mounted: the verdict, with its images, waits in the journal."""

DATABASE = "database"
IMAGE_SHARE = "image share"

_log = logging.getLogger(__name__)
_Item = TypeVar("_Item")


class SpoolCorruptError(RuntimeError):
    """A journal line in the middle of the file cannot be read."""


class VerdictSpool:
    """The append-only journal file.

    Args:
        path: the ``.jsonl`` file (created on first append).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, record: VerdictRecord) -> None:
        """Append ``record`` as one line and fsync it (a torn tail from an earlier crash is cut off first)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = _line(record)
        with open(self.path, "ab+") as fh:
            _drop_torn_tail(fh)
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    @property
    def rejected_path(self) -> Path:
        """The journal of records the database refused, ``<name>.rejected.jsonl`` beside the spool."""
        return self.path.with_name(self.path.stem + ".rejected.jsonl")

    def reject(self, record: VerdictRecord, error: BaseException) -> None:
        """Append ``record`` with the error it met to the rejected journal (fsync'd).

        A torn last line (an earlier append that died half-way, say on a full disk) is cut off first, as
        :meth:`append` does, so this record is not glued onto it; an append that fails half-way is cut back off,
        where the disk still lets it, so it leaves no torn line behind.
        """
        entry = {"error": f"{error.__class__.__name__}: {error}", "record": record.to_json()}
        self.rejected_path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(entry, separators=(",", ":")).encode() + b"\n"
        with open(self.rejected_path, "ab+", buffering=0) as fh:  # unbuffered: nothing left to write on close
            _drop_torn_tail(fh)
            start = fh.tell()
            try:
                _write_all(fh.fileno(), line)
                os.fsync(fh.fileno())
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fh.fileno(), start)
                raise

    @property
    def damaged_path(self) -> Path:
        """Where unreadable journal lines are moved, ``<name>.damaged.jsonl`` beside the spool."""
        return self.path.with_name(self.path.stem + ".damaged.jsonl")

    def readable(self) -> list[VerdictRecord]:
        """The journalled records in order, each line read once; a complete line that cannot be read (a damaged
        block) is moved, as it was, to :attr:`damaged_path` (fsync'd), and the journal keeps the others."""
        lines, tail = self._lines()
        return self._keep_readable(self.path, lines, tail, lambda raw: VerdictRecord.from_json(json.loads(raw)))

    def _keep_readable(
        self, path: Path, lines: list[bytes], tail: bytes, parse: Callable[[bytes], _Item]
    ) -> list[_Item]:
        """Every complete line of the file ``path`` read by ``parse``; those it cannot read are moved, as they
        were, to :attr:`damaged_path`, and ``path`` keeps the others (and ``tail``, a torn last line)."""
        out: list[_Item] = []
        good: list[bytes] = []
        bad: list[bytes] = []
        for raw in lines:
            try:
                out.append(parse(raw))
                good.append(raw)
            except (ValueError, KeyError, TypeError):
                bad.append(raw)
        if bad:
            self._set_aside(bad)
            _rewrite(path, b"".join(raw + b"\n" for raw in good) + tail)
            _log.error("%d unreadable lines of %s moved to %s", len(bad), path, self.damaged_path)
        return out

    def _set_aside(self, lines: list[bytes]) -> None:
        """Append unreadable ``lines``, as they were, to :attr:`damaged_path` (fsync'd)."""
        with open(self.damaged_path, "ab+") as fh:
            _drop_torn_tail(fh)
            fh.write(b"".join(raw + b"\n" for raw in lines))
            fh.flush()
            os.fsync(fh.fileno())

    def rejected(self) -> list[tuple[str, VerdictRecord]]:
        """Return ``(error, record)`` for every record set aside, in order.

        A complete line that cannot be read (a damaged block) is moved, as it was, to :attr:`damaged_path` with the
        journal's own unreadable lines (fsync'd), and the rejected journal keeps the others; a torn last line is
        left for the next :meth:`reject` to cut off.
        """
        if not self.rejected_path.exists():
            return []
        lines = self.rejected_path.read_bytes().split(b"\n")
        tail = lines.pop()

        def parse(raw: bytes) -> tuple[str, VerdictRecord]:
            entry = json.loads(raw)
            return str(entry["error"]), VerdictRecord.from_json(entry["record"])

        return self._keep_readable(self.rejected_path, lines, tail, parse)

    def records(self) -> list[VerdictRecord]:
        """Return the journalled records in order.

        Raises:
            SpoolCorruptError: a complete line cannot be parsed.
        """
        out = []
        for number, raw in enumerate(self._lines()[0], start=1):
            try:
                out.append(VerdictRecord.from_json(json.loads(raw)))
            except (ValueError, KeyError, TypeError) as err:
                raise SpoolCorruptError(f"{self.path}:{number}: {err}") from err
        return out

    def _lines(self) -> tuple[list[bytes], bytes]:
        """The journal's complete lines, and its torn last line (``b""`` when it ends with a newline)."""
        if not self.path.exists():
            return [], b""
        lines = self.path.read_bytes().split(b"\n")
        tail = lines.pop()
        if tail:
            _log.warning("discarding a torn last line (%d bytes) in %s", len(tail), self.path)
        return lines, tail

    def __len__(self) -> int:
        if not self.path.exists():
            return 0
        return self.path.read_bytes().count(b"\n")

    def keep_last(self, records: list[VerdictRecord]) -> None:
        """Atomically replace the journal with ``records`` (removing the file when empty)."""
        if not records:
            self.path.unlink(missing_ok=True)
            return
        _rewrite(self.path, b"".join(_line(rec) for rec in records))


def _line(record: VerdictRecord) -> bytes:
    """One journal line: the record's JSON, compact, and a newline."""
    return json.dumps(record.to_json(), separators=(",", ":")).encode() + b"\n"


class SpoolingRepository:
    """A :class:`VerdictRepository` front that journals verdicts while the database is down.

    Args:
        repository: the database-backed repository.
        spool_path: the journal file; ``<station home>/verdict-spool.jsonl`` by default.
    """

    def __init__(self, repository: VerdictRepository, spool_path: Path | None = None) -> None:
        self.repository = repository
        self.spool = VerdictSpool(spool_path or repository.home / SPOOL_FILENAME)  # local, even with a shared store
        self._pending = len(self.spool)
        self.waiting_on = DATABASE
        """What the journalled verdicts wait for: :data:`DATABASE` or :data:`IMAGE_SHARE` (the last outage seen)."""
        self.away_at_start = False
        """Whether the database could not be reached when the station opened it (the station sets it, so that its
        window says so before the first verdict is journalled)."""

    def log_verdict(self, record: VerdictRecord) -> int | None:
        """Store ``record``; return its verdict id, or ``None`` when it was journalled instead.

        Earlier journalled records are replayed first so the log keeps its order; if the database is still
        unreachable the new record joins the journal.

        Raises:
            Whatever :meth:`VerdictRepository.log_verdict` raises other than an unreachable database; the record is
            then kept in the rejected journal (:attr:`VerdictSpool.rejected_path`).
        """
        if self._pending:
            try:
                self.replay()
            except UNREACHABLE_ERRORS as err:
                self._note(err)
                self._journal(record)
                return None
            except Exception:  # whatever stopped the replay, this verdict waits behind the others, kept
                _log.exception("the verdict journal could not be replayed; verdict %s joins it", record.idempotency_key)
                self._journal(record)
                return None
        try:
            return self.repository.log_verdict(record)
        except UNREACHABLE_ERRORS as err:
            self._note(err)
            _log.warning("%s unreachable (%s); journalling verdict %s", self.waiting_on, err, record.idempotency_key)
            self._journal(record)
            return None
        except Exception as err:  # refused (an order keyed with another type, a store that refuses writes): kept
            _log.error("verdict %s refused by the database, set aside: %s", record.idempotency_key, err)
            self.spool.reject(record, err)
            raise

    def _note(self, err: Exception) -> None:
        self.waiting_on = IMAGE_SHARE if isinstance(err, StoreUnreachable) else DATABASE

    def _journal(self, record: VerdictRecord) -> None:
        self.spool.append(record)
        self._pending += 1

    def replay(self) -> list[int]:
        """Send every journalled record to the database in order; return the stored verdicts' ids.

        If the database becomes unreachable again, replay stops there, keeps that record and the ones after it
        in the journal, and re-raises. A record the database refuses for any other reason (say its operator was
        removed meanwhile) would block every later verdict, so it is moved to the rejected journal
        (:attr:`VerdictSpool.rejected_path`) with the error, for a person to look at, and replay goes on.
        """
        records = self.spool.readable()
        ids: list[int] = []
        handled = 0
        try:
            for rec in records:
                try:
                    ids.append(self.repository.log_verdict(rec))
                except UNREACHABLE_ERRORS as err:
                    self._note(err)
                    raise
                except Exception as err:
                    _log.error("verdict %s refused by the database, set aside: %s", rec.idempotency_key, err)
                    self.spool.reject(rec, err)
                handled += 1
        finally:
            self.spool.keep_last(records[handled:])
            self._pending = len(records) - handled
        return ids

    def pending_count(self) -> int:
        """How many verdicts wait in the journal."""
        return self._pending


def _rewrite(path: Path, data: bytes) -> None:
    """Atomically replace a journal file's contents with ``data`` (fsync'd before it takes the file's place)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to the file descriptor (a write may take only part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _drop_torn_tail(fh: BinaryIO) -> None:
    """Truncate an open ``ab+`` file back to its last newline when it does not end with one (a torn last line)."""
    size = fh.seek(0, os.SEEK_END)
    if size == 0:
        return
    fh.seek(size - 1)
    if fh.read(1) == b"\n":
        return
    fh.seek(0)
    data = fh.read()
    cut = data.rfind(b"\n") + 1
    fh.truncate(cut)
    fh.seek(0, os.SEEK_END)
