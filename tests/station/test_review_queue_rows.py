"""The review window's queue list: a week of PASSes drawn for audit does not push the flagged cups out of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pytestqt.qtbot import QtBot

from db.records import OperatorInfo
from db.review import AUDIT_EVERY
from models.types import Decision
from station.controllers.auth import SUPERVISOR as SUPERVISOR_ROLE
from station.controllers.auth import sign_in
from station.controllers.catalog import TypeCatalog
from station.controllers.review import QUEUE_LIMIT
from station.review_window import ReviewWindow
from tests.db.factories import make_record
from tests.station.conftest import SUPERVISOR, SUPERVISOR_PIN, Database, settle

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def shown_rows(qtbot: QtBot, database: Database, catalog: TypeCatalog, audit_share: float) -> list[str]:
    """The queue list's lines as a supervisor's review window shows them."""
    signed = sign_in(database.repository, SUPERVISOR, SUPERVISOR_PIN, role=SUPERVISOR_ROLE)
    assert isinstance(signed.operator, OperatorInfo)
    win = ReviewWindow(database.repository, supervisor=signed.operator, catalog=catalog, audit_share=audit_share)
    qtbot.addWidget(win)
    try:
        settle(qtbot, win.controller)
        return [win.view.queue.item(row).text() for row in range(win.view.queue.count())]
    finally:
        win.shutdown()


def test_passes_drawn_for_audit_leave_the_flags_in_the_window(
    qtbot: QtBot, database: Database, catalog: TypeCatalog
) -> None:
    repo = database.repository
    for k in range(20):  # the week's FLAGs, set aside at the bench for a supervisor
        repo.log_verdict(make_record(k, decision=Decision.FLAG, p_correct=0.3, top_types=(), created_at=T0))
    for k in range(QUEUE_LIMIT + 10):  # the confident PASSes checked after them, every one drawn for audit
        later = T0 + timedelta(hours=1, minutes=k)
        repo.log_verdict(make_record(100 + k, p_correct=0.999, threshold=0.97, top_types=(), created_at=later))
    rows = shown_rows(qtbot, database, catalog, audit_share=1.0)
    assert len(rows) == QUEUE_LIMIT
    assert sum("FLAG" in row for row in rows) == 20  # before: 100 audits, and no FLAG
    # the FLAGs lead, with one audit after every three; the audits fill the rows the FLAGs leave
    assert ["AUDIT" in row for row in rows[:AUDIT_EVERY]] == [False] * (AUDIT_EVERY - 1) + [True]
    assert all(row.startswith("AUDIT · cup") for row in rows[26:])
