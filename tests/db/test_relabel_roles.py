"""Who may rule on a cup (VerdictRepository.relabel) on real SQLite and real PostgreSQL: a supervisor who was
deactivated, or made an operator, since signing in is refused, and nothing of the ruling is written."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from db.repository import NotSupervisorError, VerdictRepository
from db.schema import LabelKind
from tests.db.factories import SUPERVISOR, make_record

OTHER_SUPERVISOR = "rita"


def ruling_rows(repo: VerdictRepository) -> tuple[int, int]:
    """How many labels and relabel audit rows the database holds."""
    with repo.engine.connect() as conn:
        labels = int(conn.execute(text("SELECT COUNT(*) FROM labels")).scalar_one())
        audits = int(conn.execute(text("SELECT COUNT(*) FROM relabel_audit")).scalar_one())
    return labels, audits


def current_rulings(repo: VerdictRepository, cup_id: int) -> list[tuple[str, str | None]]:
    """The cup's current labels as (target, kind), in target order."""
    with repo.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT target, kind FROM labels WHERE cup_id = :c AND is_current ORDER BY target"), {"c": cup_id}
        ).all()
    return [(r.target, r.kind) for r in rows]


@pytest.mark.parametrize("change", ["deactivated", "made an operator"])
def test_a_supervisor_who_lost_the_right_cannot_rule(repo: VerdictRepository, change: str) -> None:
    """The review window signed them in earlier; the ruling they make now, on the cup or a coin, is refused and
    neither a label nor an audit row is written, and the ruling made before stays the current one."""
    repo.add_operator(OTHER_SUPERVISOR, "supervisor", "9753")
    cup_id = repo.cup_of_verdict(repo.log_verdict(make_record(1)))
    repo.relabel(SUPERVISOR, cup_id, LabelKind.CONFIRMED, note="before")
    before, rulings = ruling_rows(repo), current_rulings(repo, cup_id)
    if change == "deactivated":
        repo.operators.set_active(SUPERVISOR, False, by=OTHER_SUPERVISOR, acting=OTHER_SUPERVISOR)
    else:
        repo.operators.set_role(SUPERVISOR, "operator", by=OTHER_SUPERVISOR, acting=OTHER_SUPERVISOR)

    with pytest.raises(NotSupervisorError, match=f"'{SUPERVISOR}' is not an active supervisor"):
        repo.relabel(SUPERVISOR, cup_id, LabelKind.CORRECTED, corrected_type="eur_2", note="after")
    with pytest.raises(NotSupervisorError):
        repo.relabel(SUPERVISOR, cup_id, LabelKind.NOT_A_COIN, coin_index=1)
    assert ruling_rows(repo) == before == (1, 1)
    assert current_rulings(repo, cup_id) == rulings
    assert [(e.operator, e.new_value, e.note) for e in repo.audit_trail(cup_id)] == [
        (SUPERVISOR, "confirmed", "before")
    ]


def test_a_reactivated_supervisor_may_rule_again(repo: VerdictRepository) -> None:
    """The refusal follows the roster as it is now: given back the right, the same person's ruling is stored."""
    repo.add_operator(OTHER_SUPERVISOR, "supervisor", "9753")
    cup_id = repo.cup_of_verdict(repo.log_verdict(make_record(2)))
    repo.operators.set_active(SUPERVISOR, False, by=OTHER_SUPERVISOR)
    with pytest.raises(NotSupervisorError):
        repo.relabel(SUPERVISOR, cup_id, LabelKind.CONFIRMED)
    repo.operators.set_active(SUPERVISOR, True, by=OTHER_SUPERVISOR)
    repo.relabel(SUPERVISOR, cup_id, LabelKind.CONFIRMED)
    assert ruling_rows(repo) == (1, 1)
    assert [(e.operator, e.old_value, e.new_value) for e in repo.audit_trail(cup_id)] == [
        (SUPERVISOR, None, "confirmed")
    ]
