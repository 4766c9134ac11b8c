"""Sign-in while the database is away (db.signin_cache), on real SQLite and real PostgreSQL; the away database is a
real connection refused (a closed port), not a stand-in."""

from __future__ import annotations

import errno
import json
import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from db.operators import OperatorRoster
from db.repository import VerdictRepository
from db.session import make_engine
from db.signin_cache import CACHE_FILENAME, SignInCache, SignInDirectory, database_identity
from station.controllers.auth import sign_in
from tests.db.factories import OPERATOR, OPERATOR_PIN, SUPERVISOR, SUPERVISOR_PIN
from tests.db.full_disk import files_limited_to

AWAY = "postgresql+psycopg://cupcheck@127.0.0.1:9/cupcheck"
"""Nothing listens on port 9: every connection is refused, as when the database server is down."""


@pytest.fixture
def away() -> Iterator[OperatorRoster]:
    engine = make_engine(AWAY)
    yield OperatorRoster(engine)
    engine.dispose()


def test_who_signed_in_here_can_sign_in_while_the_database_is_away(
    repo: VerdictRepository, away: OperatorRoster, tmp_path: Path
) -> None:
    cache = SignInCache(tmp_path / CACHE_FILENAME, database=database_identity(repo.engine))
    online = SignInDirectory(repo.operators, cache)
    assert online.verify_operator(OPERATOR, OPERATOR_PIN) is not None and not online.offline
    assert online.verify_operator(SUPERVISOR, "0000") is None  # a wrong PIN is not kept
    kept = json.loads(cache.path.read_text())
    assert [p["name"] for p in kept["people"]] == [OPERATOR]
    assert OPERATOR_PIN not in cache.path.read_text() and kept["people"][0]["pin_hash"].startswith("scrypt$")
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600

    offline = SignInDirectory(away, cache)
    info = offline.verify_operator(OPERATOR, OPERATOR_PIN)
    assert info is not None and (info.name, info.role) == (OPERATOR, "operator") and offline.offline
    assert offline.verify_operator(OPERATOR, "9999") is None
    assert offline.verify_operator(SUPERVISOR, SUPERVISOR_PIN) is None  # never signed in here
    refused = sign_in(offline, SUPERVISOR, SUPERVISOR_PIN)
    assert not refused.allowed and "only people who signed in at this station before" in refused.message
    assert not offline.refresh()  # nothing to compare with: the cache stays
    assert list(cache.people()) == [OPERATOR]


def test_refresh_takes_over_new_pins_and_drops_who_may_no_longer_sign_in(
    repo: VerdictRepository, tmp_path: Path
) -> None:
    cache = SignInCache(tmp_path / CACHE_FILENAME, database=database_identity(repo.engine))
    directory = SignInDirectory(repo.operators, cache)
    repo.operators.add("ana", "operator", "1111")
    repo.operators.add("bo", "operator", "2222")
    for name, pin in (("ana", "1111"), ("bo", "2222"), (OPERATOR, OPERATOR_PIN)):
        assert directory.verify_operator(name, pin) is not None
    repo.operators.set_active(OPERATOR, False)
    assert directory.verify_operator(OPERATOR, OPERATOR_PIN) is None  # refused online, and forgotten at once
    assert OPERATOR not in cache.people()
    repo.operators.set_active(OPERATOR, True)
    assert directory.verify_operator(OPERATOR, OPERATOR_PIN) is not None
    repo.operators.set_pin("ana", "3333")
    repo.operators.set_active("bo", False)
    assert directory.refresh()
    assert sorted(cache.people()) == ["ana", OPERATOR]
    assert cache.verify("ana", "3333") is not None and cache.verify("ana", "1111") is None


def test_a_damaged_cache_holds_nobody(tmp_path: Path, away: OperatorRoster) -> None:
    cache = SignInCache(tmp_path / CACHE_FILENAME, database=AWAY)
    cache.path.write_text("{not json")
    assert cache.people() == {}
    assert SignInDirectory(away, cache).verify_operator(OPERATOR, OPERATOR_PIN) is None


def test_a_window_without_the_cache_says_the_database_is_away(tmp_path: Path) -> None:
    repo = VerdictRepository(make_engine(AWAY), tmp_path)
    try:
        result = sign_in(repo, SUPERVISOR, SUPERVISOR_PIN, role="supervisor")
    finally:
        repo.engine.dispose()
    assert not result.allowed and result.message == "The database cannot be reached: try again once it is back."


def test_every_check_the_database_answers_brings_that_name_in_line(
    repo: VerdictRepository, away: OperatorRoster, tmp_path: Path
) -> None:
    """A PIN changed, a person deactivated or a supervisor made an operator on another PC while this station runs
    counts at the next outage, once the database has answered a check of that name, refused or not."""
    cache = SignInCache(tmp_path / CACHE_FILENAME, database=database_identity(repo.engine))
    online = SignInDirectory(repo.operators, cache)
    repo.operators.add("ana", "operator", "1111")
    repo.operators.add("bo", "operator", "2222")
    repo.operators.add("cy", "supervisor", "3333")
    for name, pin in (("ana", "1111"), ("bo", "2222"), ("cy", "3333")):
        assert sign_in(online, name, pin).allowed
    repo.operators.set_pin("ana", "9999")  # someone learnt her PIN
    repo.operators.set_active("bo", False)  # he left
    repo.operators.set_role("cy", "operator")
    assert not sign_in(online, "ana", "1111").allowed  # the old PIN, tried while the database is there
    assert not sign_in(online, "bo", "2222").allowed
    assert not sign_in(online, "cy", "0000", role="supervisor").allowed  # a wrong PIN: still her entry is renewed
    offline = SignInDirectory(away, cache)
    assert not sign_in(offline, "ana", "1111").allowed and offline.offline
    assert sign_in(offline, "ana", "9999").allowed
    assert not sign_in(offline, "bo", "2222").allowed and "bo" not in cache.people()
    demoted = sign_in(offline, "cy", "3333", role="supervisor")
    assert not demoted.allowed and demoted.message.startswith("cy is signed up as operator")


def test_a_cache_from_another_database_lets_nobody_in(
    repo: VerdictRepository, away: OperatorRoster, tmp_path: Path
) -> None:
    """A station home carrying another site's cache (a PC moved, a home restored from another site's backup): while
    this site's database is away, the other site's people are not let in under this site's names."""
    (tmp_path / "site-a").mkdir()
    other_site = VerdictRepository.open(tmp_path / "site-a", None)
    try:
        other_site.operators.add(OPERATOR, "supervisor", "5555")  # their olga, with their PIN
        there = SignInCache(tmp_path / "site-a" / CACHE_FILENAME, database=database_identity(other_site.engine))
        assert SignInDirectory(other_site.operators, there).verify_operator(OPERATOR, "5555") is not None
    finally:
        other_site.engine.dispose()
    here = SignInCache(tmp_path / "station-b" / CACHE_FILENAME, database=database_identity(repo.engine))
    here.path.parent.mkdir()
    here.path.write_bytes(there.path.read_bytes())  # the other site's file in this station's home
    offline = SignInDirectory(away, here)
    refused = sign_in(offline, OPERATOR, "5555")
    assert not refused.allowed and "only people who signed in at this station before" in refused.message
    offline.refresh()
    assert here.people() == {}
    online = SignInDirectory(repo.operators, here)  # once this site's own olga signs in, the file is this site's
    assert online.verify_operator(OPERATOR, OPERATOR_PIN) is not None
    assert json.loads(here.path.read_text())["database"] == database_identity(repo.engine)
    assert sign_in(SignInDirectory(away, here), OPERATOR, OPERATOR_PIN).allowed
    with_password = database_identity("postgresql+psycopg://cupcheck:secret@dbhost/cupcheck")
    assert "secret" not in with_password and with_password == database_identity(
        "postgresql+psycopg://cupcheck:changed@dbhost/cupcheck"
    )


def test_a_file_from_before_the_cache_named_its_database_is_taken_over_by_a_refresh(
    repo: VerdictRepository, away: OperatorRoster, tmp_path: Path
) -> None:
    cache = SignInCache(tmp_path / CACHE_FILENAME, database=database_identity(repo.engine))
    entry = {"id": 1, "name": OPERATOR, "role": "supervisor", "pin_hash": "scrypt$16384$8$1$00$00"}
    cache.path.write_text(json.dumps({"format": "cupcheck-sign-in-cache/1", "people": [entry]}))
    assert cache.people() == {}  # its hashes are not trusted while the database is away
    assert not SignInDirectory(away, cache).refresh()
    assert SignInDirectory(repo.operators, cache).refresh()
    kept = cache.people()[OPERATOR]
    assert kept.role == "operator" and cache.verify(OPERATOR, OPERATOR_PIN) is not None


def test_a_full_home_disk_stops_no_sign_in(
    repo: VerdictRepository, away: OperatorRoster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The cache is written best-effort: a home whose disk is full lets the database's answer stand."""
    cache = SignInCache(tmp_path / CACHE_FILENAME, database=database_identity(repo.engine))
    directory = SignInDirectory(repo.operators, cache)
    assert sign_in(directory, OPERATOR, OPERATOR_PIN).allowed  # kept yesterday; connects before the disk fills
    repo.operators.set_role(OPERATOR, "supervisor")
    full = cache.path.stat().st_size + 1  # the role the refresh takes over is longer
    with caplog.at_level(logging.WARNING, logger="db.signin_cache"), files_limited_to(full):
        assert directory.refresh()
        supervisor = sign_in(directory, SUPERVISOR, SUPERVISOR_PIN, role="supervisor")
        assert supervisor.allowed and supervisor.message == f"Signed in as {SUPERVISOR} (supervisor)."
    assert "could not be written" in caplog.text and f"[Errno {errno.EFBIG}]" in caplog.text
    # olga's entry could not be brought in line (made a supervisor): the out-of-date file went rather than stayed
    assert OPERATOR not in cache.people() and not sign_in(SignInDirectory(away, cache), OPERATOR, OPERATOR_PIN).allowed
