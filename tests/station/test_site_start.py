"""A station that starts while its site's PostgreSQL is away, after a software upgrade: the journal keeps its
verdicts, and the database is upgraded the first time it is reached, before anything is replayed or written."""

from __future__ import annotations

from pathlib import Path

from db.embedded_pg import running_server
from db.operators import OperatorRoster
from db.session import current_revision, make_engine, schema_revisions, upgrade
from models.types import Decision
from station.app import open_repository
from tests.db.factories import make_record


def test_a_station_started_while_the_database_was_away_upgrades_it_once_reached(tmp_path: Path) -> None:
    with running_server(tmp_path / "pg") as server:
        url = server.url(server.create_database())
        engine = make_engine(url)
        upgrade(engine, "0004")  # as the software before this one left it
        OperatorRoster(engine).add("olga", "operator", "1357")
        head = schema_revisions(engine)[0]
        with server.stopped():
            spooling = open_repository(tmp_path / "home", url)
            assert spooling.away_at_start  # the window says so before the first cup
            first = make_record(1, station="packing-6", operator="olga", order=None, decision=Decision.FLAG)
            assert spooling.log_verdict(first) is None  # journalled
        try:
            second = make_record(2, station="packing-6", operator="olga", order=None, decision=Decision.FLAG)
            assert spooling.log_verdict(second) is not None  # the journal replayed first, then this one
            assert spooling.pending_count() == 0 and spooling.spool.rejected() == []
            assert current_revision(engine) == head
            assert spooling.repository.count_verdicts() == 2
        finally:
            spooling.repository.engine.dispose()
            engine.dispose()
