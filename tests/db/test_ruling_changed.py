"""Rulings that meet on real SQLite and real PostgreSQL: a ruling names the one it replaces and is refused when
another supervisor ruled meanwhile; R withdraws a coin's own ruling so its cup's ruling speaks for it; a coin ruled
alone leaves a suspected cup ruling suspect."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from db.repository import WITHDRAWN, RulingChanged, VerdictRepository
from db.schema import LabelKind
from models.types import Decision
from tests.db.factories import SUPERVISOR, make_record

ANA = "ana"


def ruling_rows(repo: VerdictRepository) -> tuple[int, int]:
    """How many labels and relabel audit rows the database holds."""
    with repo.engine.connect() as conn:
        labels = int(conn.execute(text("SELECT COUNT(*) FROM labels")).scalar_one())
        audits = int(conn.execute(text("SELECT COUNT(*) FROM relabel_audit")).scalar_one())
    return labels, audits


@pytest.fixture
def two(repo: VerdictRepository) -> VerdictRepository:
    """The repository with a second supervisor, ana."""
    repo.add_operator(ANA, "supervisor", "1357")
    return repo


def test_a_ruling_made_meanwhile_is_not_replaced_unseen(two: VerdictRepository) -> None:
    """Both windows showed the cup unruled; ana rules first. Sam's ruling, naming none as the one it replaces, is
    refused with who ruled what and when, and writes nothing; named as seen, it replaces ana's."""
    repo = two
    cup = repo.cup_of_verdict(repo.log_verdict(make_record(1, decision=Decision.FLAG, p_correct=0.3)))
    seen = repo.rulings_in_force(cup)
    assert seen == {}
    ana_label = repo.relabel(ANA, cup, LabelKind.CORRECTED, corrected_type="eur_2")

    with pytest.raises(RulingChanged, match=f"cup {cup} was ruled meanwhile by {ANA}: corrected:eur_2") as caught:
        repo.relabel(SUPERVISOR, cup, LabelKind.CONFIRMED, expected_label=seen.get(None))
    assert (caught.value.operator, caught.value.value) == (ANA, "corrected:eur_2")
    assert abs((datetime.now(UTC) - caught.value.at).total_seconds()) < 60
    assert ruling_rows(repo) == (1, 1)
    assert repo.rulings_in_force(cup) == {None: ana_label}

    seen = repo.rulings_in_force(cup)  # the window reads the cup again: ruling now replaces ana's knowingly
    repo.relabel(SUPERVISOR, cup, LabelKind.CONFIRMED, expected_label=seen[None])
    assert [(e.operator, e.old_value, e.new_value) for e in repo.audit_trail(cup)] == [
        (ANA, None, "corrected:eur_2"),
        (SUPERVISOR, "corrected:eur_2", "confirmed"),
    ]


def test_a_coin_ruled_meanwhile_is_refused_and_a_caller_naming_nothing_replaces_as_before(
    two: VerdictRepository,
) -> None:
    repo = two
    cup = repo.cup_of_verdict(repo.log_verdict(make_record(2, decision=Decision.FLAG, p_correct=0.3)))
    repo.relabel(SUPERVISOR, cup, LabelKind.CONFIRMED)
    seen = repo.rulings_in_force(cup)
    repo.relabel(ANA, cup, LabelKind.DAMAGED, coin_index=1)
    with pytest.raises(RulingChanged, match=f"coin 2 of cup {cup} was ruled meanwhile by {ANA}: damaged"):
        repo.relabel(SUPERVISOR, cup, LabelKind.NOT_A_COIN, coin_index=1, expected_label=seen.get(1))
    # the cup's own ruling is untouched by a coin's: ruling the cup again with the label seen goes through
    repo.relabel(SUPERVISOR, cup, LabelKind.CORRECTED, corrected_type="eur_2", expected_label=seen[None])
    repo.relabel(SUPERVISOR, cup, LabelKind.NOT_A_COIN, coin_index=1)  # no label named: today's behaviour
    assert [(e.operator, e.old_value, e.new_value) for e in repo.audit_trail(cup)] == [
        (SUPERVISOR, None, "confirmed"),
        (ANA, None, "damaged"),
        (SUPERVISOR, "confirmed", "corrected:eur_2"),
        (SUPERVISOR, "damaged", "not_a_coin"),
    ]


def test_two_supervisors_ruling_an_unruled_cup_at_once_one_is_told(two: VerdictRepository) -> None:
    """Both saw the cup unruled and press at the same moment: the database lets one ruling in and refuses the other
    (PostgreSQL runs both transactions at once; the cup's row lock makes the second find the first's label)."""
    repo = two
    cups = [repo.cup_of_verdict(repo.log_verdict(make_record(300 + n))) for n in range(4)]
    refused: list[RulingChanged] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def rule(actor: str, corrected_type: str | None) -> None:
        kind = LabelKind.CONFIRMED if corrected_type is None else LabelKind.CORRECTED
        for cup in cups:
            barrier.wait()
            try:
                repo.relabel(actor, cup, kind, corrected_type=corrected_type, expected_label=None)
            except RulingChanged as err:
                refused.append(err)
            except BaseException as err:
                errors.append(err)

    threads = [
        threading.Thread(target=rule, args=(SUPERVISOR, None)),
        threading.Thread(target=rule, args=(ANA, "eur_2")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(refused) == len(cups)
    for cup in cups:
        trail = repo.audit_trail(cup)
        assert len(trail) == 1 and trail[0].old_value is None
    assert ruling_rows(repo) == (len(cups), len(cups))


def test_r_withdraws_a_coin_ruling_and_the_cup_ruling_speaks_for_the_coin(repo: VerdictRepository) -> None:
    """A cup ordered eur_1 holds three eur_2 coins. Coin 2 ruled 'not a coin' by mistake, withdrawn, then the cup
    corrected to eur_2: coin 2 is exported as a cup ruled without the slip exports it."""
    three = ("eur_2", "eur_2", "eur_2")
    slip = repo.cup_of_verdict(
        repo.log_verdict(make_record(1, decision=Decision.FLAG, p_correct=0.02, top_types=three))
    )
    clean = repo.cup_of_verdict(
        repo.log_verdict(make_record(2, decision=Decision.FLAG, p_correct=0.02, top_types=three))
    )
    mistake = repo.relabel(SUPERVISOR, slip, LabelKind.NOT_A_COIN, coin_index=1)
    withdrawn = repo.withdraw_ruling(SUPERVISOR, slip, coin_index=1, note="wrong coin", expected_label=mistake)
    assert withdrawn == mistake and repo.rulings_in_force(slip) == {}
    repo.relabel(SUPERVISOR, slip, LabelKind.CORRECTED, corrected_type="eur_2")
    repo.relabel(SUPERVISOR, clean, LabelKind.CORRECTED, corrected_type="eur_2")

    coins = repo.training_export().coins
    exported = {
        cup: [(c.index, c.true_type, c.label.value, c.inherited) for c in coins if c.cup_id == cup]
        for cup in (slip, clean)
    }
    assert exported[slip] == exported[clean] == [(i, "eur_2", "corrected", True) for i in range(3)]
    # the audit log keeps the mistake and its withdrawal, who and when
    trail = repo.audit_trail(slip)
    assert [(e.what, e.old_value, e.new_value, e.note) for e in trail] == [
        ("coin 2", None, "not_a_coin", ""),
        ("coin 2", "not_a_coin", WITHDRAWN, "wrong coin"),
        ("cup", None, "corrected:eur_2", ""),
    ]
    assert trail[1].operator == SUPERVISOR and trail[1].created_at >= trail[0].created_at
    assert ruling_rows(repo) == (3, 4)  # the withdrawn label stays, no longer current


def test_withdrawing_refuses_what_it_cannot_undo_and_writes_nothing(two: VerdictRepository) -> None:
    repo = two
    cup = repo.cup_of_verdict(repo.log_verdict(make_record(3)))
    repo.relabel(SUPERVISOR, cup, LabelKind.CONFIRMED)
    with pytest.raises(LookupError, match=f"coin 1 of cup {cup} has no ruling of its own to withdraw"):
        repo.withdraw_ruling(SUPERVISOR, cup, coin_index=0)
    seen = repo.relabel(SUPERVISOR, cup, LabelKind.DAMAGED, coin_index=0)
    repo.withdraw_ruling(ANA, cup, coin_index=0)
    # sam undoes his own ruling, which ana withdrew meanwhile: told so, nothing written
    with pytest.raises(RulingChanged, match=f"coin 1 of cup {cup} was ruled meanwhile by {ANA}: {WITHDRAWN}"):
        repo.withdraw_ruling(SUPERVISOR, cup, coin_index=0, expected_label=seen)
    assert ruling_rows(repo) == (2, 3)


def test_a_coin_ruled_alone_leaves_a_suspected_cup_ruling_suspect(repo: VerdictRepository) -> None:
    """The retrain doubts the cup's 'confirmed' (coin 2 matched eur_2). Ruling coin 1 alone re-examines nothing of
    that ruling: the cup stays SUSPECT until its whole-cup ruling is made again."""
    record = make_record(4, decision=Decision.FLAG, p_correct=0.5, top_types=("eur_1", "eur_2", "eur_1"))
    cup = repo.cup_of_verdict(repo.log_verdict(record))
    repo.relabel(SUPERVISOR, cup, LabelKind.CONFIRMED)
    since = datetime.now(UTC)  # the retrain ranks the rulings after they were made

    def suspect() -> bool:
        queue = repo.review_queue(100, suspects=[cup], suspects_since=since)
        return next(it.suspect for it in queue if it.cup_id == cup)

    assert suspect()
    repo.relabel(SUPERVISOR, cup, LabelKind.NOT_A_COIN, coin_index=0)
    assert suspect()
    repo.relabel(SUPERVISOR, cup, LabelKind.CONFIRMED, note="second look")
    assert not suspect()
