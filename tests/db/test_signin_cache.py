"""Sign-in while the database is away (db.signin_cache), on real SQLite and real PostgreSQL; the away database is a
real connection refused (a closed port), not a stand-in."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from db.operators import OperatorRoster
from db.repository import VerdictRepository
from db.session import make_engine
from db.signin_cache import CACHE_FILENAME, SignInCache, SignInDirectory
from station.controllers.auth import sign_in
from tests.db.factories import OPERATOR, OPERATOR_PIN, SUPERVISOR, SUPERVISOR_PIN

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
    cache = SignInCache(tmp_path / CACHE_FILENAME)
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
    cache = SignInCache(tmp_path / CACHE_FILENAME)
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
    cache = SignInCache(tmp_path / CACHE_FILENAME)
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
