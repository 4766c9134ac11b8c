"""The spool keeps verdicts while the database is really unreachable and replays them, in order, once it is back."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from db.repository import UnknownOperatorError, VerdictRepository
from db.spool import SpoolCorruptError, SpoolingRepository, VerdictSpool
from models.types import Decision
from tests.db.conftest import EmbeddedPostgres
from tests.db.factories import make_record
from tests.db.full_disk import files_limited_to


@pytest.fixture
def outage(backend: str, db_url: str, request: pytest.FixtureRequest) -> contextlib.AbstractContextManager[None]:
    """A context manager during which the database cannot be reached.

    PostgreSQL: the server is stopped. SQLite: the folder holding the database file is moved away, as when a
    network share drops.
    """
    if backend == "postgresql":
        server: EmbeddedPostgres = request.getfixturevalue("pg_server")
        return server.stopped()
    db_file = Path(db_url.removeprefix("sqlite:///"))
    repo: VerdictRepository = request.getfixturevalue("repo")

    @contextlib.contextmanager
    def moved() -> Iterator[None]:
        aside = db_file.parent.with_name("moved-away")
        repo.engine.dispose()  # pooled connections hold the file open
        os.rename(db_file.parent, aside)
        try:
            yield
        finally:
            os.rename(aside, db_file.parent)

    return moved()


def verdict_keys(repo: VerdictRepository) -> list[str]:
    with repo.engine.connect() as conn:
        return list(conn.execute(text("SELECT idempotency_key FROM verdicts ORDER BY id")).scalars())


def test_spools_while_unreachable_and_replays_in_order(
    repo: VerdictRepository, outage: contextlib.AbstractContextManager[None], tmp_path: Path
) -> None:
    spooling = SpoolingRepository(repo, tmp_path / "spool" / "journal.jsonl")
    records = [make_record(i) for i in range(4)]
    # the cup of records[1] is flagged, its coins turned and checked again while the database is down
    records[1] = make_record(1, decision=Decision.FLAG, p_correct=0.5)
    records[2] = make_record(2, recheck_of=records[1].idempotency_key)
    assert spooling.log_verdict(records[0]) is not None

    with outage:
        assert spooling.log_verdict(records[1]) is None
        assert spooling.log_verdict(records[2]) is None
        assert spooling.pending_count() == 2
        with pytest.raises(OperationalError):
            spooling.replay()
        assert spooling.pending_count() == 2
        assert [r.idempotency_key for r in spooling.spool.records()] == [r.idempotency_key for r in records[1:3]]

    assert SpoolingRepository(repo, spooling.spool.path).pending_count() == 2  # survives a restart
    last_id = spooling.log_verdict(records[3])  # replays the journal first, then logs
    assert last_id is not None
    assert spooling.pending_count() == 0 and not spooling.spool.path.exists()
    assert verdict_keys(repo) == [r.idempotency_key for r in records]
    assert repo.verdict_id_for_key(records[3].idempotency_key) == last_id
    cups = [repo.cup_of_verdict(repo.verdict_id_for_key(r.idempotency_key) or 0) for r in records]
    queue = {it.cup_id: it for it in repo.review_queue(limit=10, margin=1.0)}  # every PASS as well
    assert cups[1] not in queue and queue[cups[2]].recheck_of == cups[1]  # the replay kept the link


def test_replay_after_crash_between_commit_and_trim_is_idempotent(repo: VerdictRepository, tmp_path: Path) -> None:
    spooling = SpoolingRepository(repo, tmp_path / "journal.jsonl")
    record = make_record(10)
    first = repo.log_verdict(record)
    spooling.spool.append(record)  # journalled and committed, trim never happened
    assert SpoolingRepository(repo, spooling.spool.path).replay() == [first]
    assert verdict_keys(repo) == [record.idempotency_key]


def test_errors_other_than_unreachable_are_raised_not_spooled(repo: VerdictRepository, tmp_path: Path) -> None:
    spooling = SpoolingRepository(repo, tmp_path / "journal.jsonl")
    refused = make_record(11, operator="nobody")
    with pytest.raises(UnknownOperatorError):
        spooling.log_verdict(refused)
    assert spooling.pending_count() == 0
    # refused, but not lost: kept beside the journal for a person, as a refused replay is
    [(error, kept)] = spooling.spool.rejected()
    assert kept == refused and error.startswith("UnknownOperatorError")


def test_replay_sets_aside_a_record_the_database_refuses(repo: VerdictRepository, tmp_path: Path) -> None:
    spooling = SpoolingRepository(repo, tmp_path / "journal.jsonl")
    good, orphan, later = make_record(12), make_record(13, operator="deleted-meanwhile"), make_record(14)
    for rec in (good, orphan, later):
        spooling.spool.append(rec)
    spooling = SpoolingRepository(repo, spooling.spool.path)
    assert len(spooling.replay()) == 2
    assert spooling.pending_count() == 0
    assert verdict_keys(repo) == [good.idempotency_key, later.idempotency_key]
    [(error, kept)] = spooling.spool.rejected()
    assert kept == orphan and error.startswith("UnknownOperatorError")


def test_journal_discards_torn_tail_and_refuses_corrupt_middle(tmp_path: Path) -> None:
    spool = VerdictSpool(tmp_path / "journal.jsonl")
    a, b = make_record(20), make_record(21)
    spool.append(a)
    with open(spool.path, "ab") as fh:
        fh.write(b'{"station": "half a li')  # the process died mid-append
    assert spool.records() == [a]
    spool.append(b)
    assert spool.records() == [a, b]
    assert len(spool) == 2

    lines = spool.path.read_bytes().split(b"\n")
    spool.path.write_bytes(lines[0] + b"\n{not json}\n" + lines[1] + b"\n")
    with pytest.raises(SpoolCorruptError, match=":2:"):
        spool.records()


def test_a_damaged_journal_line_is_set_aside_and_blocks_no_verdict(repo: VerdictRepository, tmp_path: Path) -> None:
    """One unreadable line in the middle of the journal: the lines around it are replayed, the next verdict is
    stored, and the line itself is kept as it was for a person to look at."""
    spooling = SpoolingRepository(repo, tmp_path / "journal.jsonl")
    a, b, c = make_record(30), make_record(31), make_record(32)
    spooling.spool.append(a)
    spooling.spool.append(b)
    lines = spooling.spool.path.read_bytes().split(b"\n")
    spooling.spool.path.write_bytes(lines[0] + b"\n{damaged}\n" + lines[1] + b"\n")
    spooling = SpoolingRepository(repo, spooling.spool.path)
    assert spooling.pending_count() == 3
    assert spooling.log_verdict(c) is not None
    assert verdict_keys(repo) == [a.idempotency_key, b.idempotency_key, c.idempotency_key]
    assert spooling.pending_count() == 0 and not spooling.spool.path.exists()
    assert spooling.spool.damaged_path.read_bytes() == b"{damaged}\n"


def test_a_database_that_gives_no_connection_in_time_is_waited_for(repo: VerdictRepository, tmp_path: Path) -> None:
    """Every pooled connection taken (a site's server at its limit): the verdict waits in the journal."""
    from sqlalchemy import create_engine

    busy = create_engine(repo.engine.url, pool_size=1, max_overflow=0, pool_timeout=0.1)
    spooling = SpoolingRepository(VerdictRepository(busy, repo.home), tmp_path / "journal.jsonl")
    record = make_record(40)
    with busy.connect():
        assert spooling.log_verdict(record) is None
    assert spooling.pending_count() == 1
    assert spooling.replay() and verdict_keys(repo)[-1] == record.idempotency_key
    busy.dispose()


def test_a_refusal_the_full_disk_cut_short_leaves_no_torn_line(tmp_path: Path) -> None:
    """The disk fills while a refused verdict is set aside: that line is cut back off, a torn line left by a crash
    is cut off before the next one, and each later refusal is a line of its own (``doctor`` counts them by line)."""
    spool = VerdictSpool(tmp_path / "journal.jsonl")
    first, torn, crashed, after = (make_record(i, operator="gone") for i in (50, 51, 52, 53))
    refused = UnknownOperatorError("operator 'gone' is not registered")
    spool.reject(first, refused)
    with files_limited_to(spool.rejected_path.stat().st_size + 100), pytest.raises(OSError) as full:
        spool.reject(torn, refused)
    assert full.value.errno == errno.EFBIG and spool.rejected_path.read_bytes().endswith(b"\n")
    spool.reject(crashed, refused)
    size = spool.rejected_path.stat().st_size
    with open(spool.rejected_path, "ab") as fh:
        fh.write(b'{"error":"half a li')  # the process died mid-append
    spool.reject(after, refused)
    assert [rec for _, rec in spool.rejected()] == [first, crashed, after]
    assert spool.rejected_path.read_bytes().count(b"\n") == 3
    assert spool.rejected_path.stat().st_size > size


def test_an_unreadable_refused_line_is_set_aside_not_raised(tmp_path: Path) -> None:
    spool = VerdictSpool(tmp_path / "journal.jsonl")
    a, b = make_record(60, operator="gone"), make_record(61, operator="gone")
    for rec in (a, b):
        spool.reject(rec, UnknownOperatorError("operator 'gone' is not registered"))
    lines = spool.rejected_path.read_bytes().split(b"\n")
    spool.rejected_path.write_bytes(lines[0] + b"\n{damaged}\n" + lines[1] + b"\n")
    assert [rec for _, rec in spool.rejected()] == [a, b]
    assert spool.damaged_path.read_bytes() == b"{damaged}\n"
    assert spool.rejected_path.read_bytes() == lines[0] + b"\n" + lines[1] + b"\n"
