"""Who may sign in (db.operators) on real SQLite and real PostgreSQL: add, PIN, role, deactivation, the last
supervisor, the append-only history and the per-person counts."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from db.operators import (
    LastSupervisorError,
    OperatorError,
    OperatorExistsError,
    OperatorRoster,
    UnknownOperatorError,
    check_name,
    local_account,
)
from db.repository import VerdictRepository
from db.schema import AuditLogImmutableError, OperatorAudit, Role
from db.session import make_session_factory
from tests.db.factories import OPERATOR, OPERATOR_PIN, SUPERVISOR, SUPERVISOR_PIN, make_record


def test_add_registers_a_person_who_can_sign_in_and_records_who_did_it(repo: VerdictRepository) -> None:
    roster = repo.operators
    info = roster.add("  Ana  ", "supervisor", "2468", by="it@office", note="new shift lead")
    assert (info.name, info.role, info.active) == ("Ana", "supervisor", True)
    assert roster.verify("Ana", "2468") == info
    assert roster.verify("Ana", "2469") is None
    (entry,) = roster.history("Ana")
    assert (entry.operator, entry.action, entry.old_value, entry.new_value) == ("Ana", "added", None, "supervisor")
    assert (entry.changed_by, entry.note) == ("it@office", "new shift lead")
    assert roster.add("Bo", Role.OPERATOR, "1357").name == "Bo"
    assert roster.history("Bo")[0].changed_by == local_account()  # the account and computer it ran on


@pytest.mark.parametrize(
    ("name", "role", "pin", "error", "match"),
    [
        (OPERATOR, "operator", "9999", OperatorExistsError, "already registered"),
        (OPERATOR.upper(), "operator", "9999", OperatorExistsError, "only in case"),
        ("   ", "operator", "9999", OperatorError, "cannot be empty"),
        ("x" * 65, "operator", "9999", OperatorError, "at most 64"),
        ("tab\there", "operator", "9999", OperatorError, "control characters"),
        ("new", "admin", "9999", OperatorError, "unknown role 'admin'"),
        ("new", "operator", "12", OperatorError, "at least 4"),
    ],
)
def test_add_refuses_bad_input_and_writes_nothing(
    repo: VerdictRepository, name: str, role: str, pin: str, error: type[Exception], match: str
) -> None:
    before = (repo.operators.summaries(), repo.operators.history())
    with pytest.raises(error, match=match):
        repo.operators.add(name, role, pin)
    assert (repo.operators.summaries(), repo.operators.history()) == before


def test_names_differing_only_in_the_case_of_accented_letters_are_one_name(repo: VerdictRepository) -> None:
    """SQLite's lower() folds ASCII letters only: 'émile' went in beside 'Émile' there, not on PostgreSQL."""
    repo.operators.add("Émile", "operator", "5555")
    for other in ("émile", "ÉMILE"):
        with pytest.raises(OperatorExistsError, match="only in case"):
            repo.operators.add(other, "operator", "5555")
    assert [s.name for s in repo.operators.summaries()].count("Émile") == 1


def test_a_new_pin_replaces_the_old_one_and_the_history_holds_no_pin(repo: VerdictRepository) -> None:
    roster = repo.operators
    roster.add("cy", "operator", "1111")
    roster.set_pin("cy", "2222", by="sam@desk")
    assert roster.verify("cy", "1111") is None
    assert roster.verify("cy", "2222") is not None
    changes = roster.history("cy")
    assert [(c.action, c.old_value, c.new_value) for c in changes] == [
        ("added", None, "operator"),
        ("pin_changed", None, None),
    ]
    with pytest.raises(OperatorError, match="at least 4"):
        roster.set_pin("cy", "1")
    with pytest.raises(UnknownOperatorError, match="'nobody' is not registered"):
        roster.set_pin("nobody", "3333")


def test_a_deactivated_person_cannot_sign_in_until_activated_again(repo: VerdictRepository) -> None:
    roster = repo.operators
    roster.add("di", "operator", "4444")
    assert roster.set_active("di", False, note="left").active is False
    assert roster.verify("di", "4444") is None
    assert repo.verify_operator("di", "4444") is None
    roster.set_active("di", False)  # already so: nothing recorded
    assert roster.set_active("di", True).active is True
    assert roster.verify("di", "4444") is not None
    assert [c.action for c in roster.history("di")] == ["added", "deactivated", "activated"]
    assert roster.history("di")[1].note == "left"


def test_the_last_active_supervisor_stays(repo: VerdictRepository) -> None:
    roster = repo.operators
    assert roster.count_active(Role.SUPERVISOR) == 1
    seeded = roster.history(SUPERVISOR)
    with pytest.raises(LastSupervisorError, match=f"{SUPERVISOR} is the only active supervisor"):
        roster.set_active(SUPERVISOR, False)
    with pytest.raises(LastSupervisorError, match="cannot be made an operator"):
        roster.set_role(SUPERVISOR, "operator")
    assert roster.verify(SUPERVISOR, SUPERVISOR_PIN) is not None

    roster.add("eve", "operator", "5555")
    roster.set_role("eve", "supervisor", by="sam@desk")
    assert roster.count_active(Role.SUPERVISOR) == 2
    assert roster.set_active("eve", False).active is False  # another supervisor remains
    with pytest.raises(LastSupervisorError):
        roster.set_role(SUPERVISOR, Role.OPERATOR)
    roster.set_active("eve", True)
    roster.set_role("eve", "operator")  # an operator again: sam remains
    assert [(c.action, c.old_value, c.new_value) for c in roster.history("eve")] == [
        ("added", None, "operator"),
        ("role_changed", "operator", "supervisor"),
        ("deactivated", None, None),
        ("activated", None, None),
        ("role_changed", "supervisor", "operator"),
    ]
    assert roster.history(SUPERVISOR) == seeded  # the refusals changed nothing


def test_two_computers_taking_away_the_last_two_supervisors_leave_one(repo: VerdictRepository, db_url: str) -> None:
    """Each change runs in its own engine, as on two PCs; the supervisors' rows are locked while one decides."""
    from db.session import make_engine

    repo.operators.add("fay", "supervisor", "6666")
    engines = [make_engine(db_url) for _ in range(2)]
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def take_away(engine_index: int, name: str) -> None:
        barrier.wait()
        try:
            OperatorRoster(engines[engine_index]).set_active(name, False)
            outcomes.append("done")
        except LastSupervisorError:
            outcomes.append("refused")

    threads = [threading.Thread(target=take_away, args=(i, n)) for i, n in enumerate((SUPERVISOR, "fay"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for engine in engines:
        engine.dispose()
    assert sorted(outcomes) == ["done", "refused"]
    assert repo.operators.count_active(Role.SUPERVISOR) == 1


def test_summaries_count_each_persons_cups(repo: VerdictRepository) -> None:
    repo.log_verdict(make_record(1))
    latest = make_record(2)
    repo.log_verdict(latest)
    repo.operators.add("gil", "operator", "7777")
    rows = {s.name: s for s in repo.operators.summaries()}
    assert list(rows) == sorted(rows)
    assert (rows[OPERATOR].cups, rows[OPERATOR].last_check) == (2, latest.created_at)
    assert (rows["gil"].cups, rows["gil"].last_check, rows["gil"].role, rows["gil"].active) == (
        0,
        None,
        "operator",
        True,
    )
    assert rows[SUPERVISOR].cups == 0
    assert repo.operators.count_active() == 3
    assert repo.verify_operator(OPERATOR, OPERATOR_PIN) is not None


def test_the_history_refuses_update_and_delete(repo: VerdictRepository, backend: str) -> None:
    repo.operators.add("hal", "operator", "8888", note="original")
    notes = "SELECT note FROM operator_audit ORDER BY id"
    with repo.engine.connect() as conn:
        before = conn.execute(text(notes)).scalars().all()
    assert before[-1] == "original"
    statements = ["UPDATE operator_audit SET note = 'forged'", "DELETE FROM operator_audit"]
    if backend == "postgresql":
        statements.append("TRUNCATE operator_audit")
    for sql in statements:
        with pytest.raises(DBAPIError, match="append-only"), repo.engine.begin() as conn:
            conn.execute(text(sql))
    sessions = make_session_factory(repo.engine)
    with sessions() as session:
        row = session.query(OperatorAudit).order_by(OperatorAudit.id.desc()).first()
        assert row is not None
        row.note = "forged"
        with pytest.raises(AuditLogImmutableError, match="operator_audit is append-only"):
            session.commit()
    with repo.engine.connect() as conn:
        assert conn.execute(text(notes)).scalars().all() == before


def test_check_name_strips_blanks() -> None:
    assert check_name("  Olga B.  ") == "Olga B."
