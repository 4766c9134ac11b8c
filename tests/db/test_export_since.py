"""``training_export(since=...)`` picks the cups with a new ruling and exports each whole, every coin under its ruling
in force whenever that ruling was made: what the full export says of those cups, on real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from db.records import TrainingExport
from db.repository import VerdictRepository
from db.schema import LabelKind
from models.types import Decision
from tests.db.factories import SUPERVISOR, make_record

FLAG = {"decision": Decision.FLAG, "p_correct": 0.5}
FOUR = ("eur_1", "eur_1", "eur_1", "eur_1")

CupRow = tuple[int, LabelKind, str, int, datetime]
CoinRow = tuple[int, int, LabelKind, str | None, bool, datetime]


def _cup_rows(export: TrainingExport, cups: set[int] | None = None) -> list[CupRow]:
    return sorted(
        (c.cup_id, c.label, c.true_type, c.split_id, c.labelled_at)
        for c in export.cups
        if cups is None or c.cup_id in cups
    )


def _coin_rows(export: TrainingExport, cups: set[int] | None = None) -> list[CoinRow]:
    return sorted(
        (c.cup_id, c.index, c.label, c.true_type, c.inherited, c.labelled_at)
        for c in export.coins
        if cups is None or c.cup_id in cups
    )


def _newest(repo: VerdictRepository) -> datetime:
    """The newest ruling so far, as a retrain records it (``labels_until``)."""
    export = repo.training_export()
    return max([c.labelled_at for c in export.cups] + [c.labelled_at for c in export.coins])


def _as_in_full(repo: VerdictRepository, since: datetime, cups: set[int]) -> None:
    """The export since ``since`` holds ``cups`` and says of them what the export of everything says."""
    new, full = repo.training_export(since=since), repo.training_export()
    assert {c.cup_id for c in new.cups} | {c.cup_id for c in new.coins} == cups
    assert _cup_rows(new) == _cup_rows(full, cups)
    assert _coin_rows(new) == _coin_rows(full, cups)


def _flagged(repo: VerdictRepository, seed: int, *, recheck_of: str | None = None) -> tuple[int, str]:
    record = make_record(seed, top_types=FOUR, recheck_of=recheck_of, **FLAG)  # type: ignore[arg-type]
    return repo.cup_of_verdict(repo.log_verdict(record)), record.idempotency_key


def test_a_coin_corrected_before_since_stays_in_a_cup_ruled_after_it(repo: VerdictRepository) -> None:
    """Coin 1 is another type, ruled before the mark; the cup is confirmed after it. Without coin 1's ruling the
    cup looked clean: four coins of the expected type."""
    cup, _ = _flagged(repo, 1)
    repo.relabel(SUPERVISOR, cup, LabelKind.CORRECTED, coin_index=1, corrected_type="eur_9")
    mark = _newest(repo)
    repo.relabel(SUPERVISOR, cup, LabelKind.CONFIRMED)

    new = repo.training_export(since=mark)
    assert [(c.index, c.true_type, c.label) for c in new.coins] == [
        (0, "eur_1", LabelKind.CONFIRMED),
        (1, "eur_9", LabelKind.CORRECTED),
        (2, "eur_1", LabelKind.CONFIRMED),
        (3, "eur_1", LabelKind.CONFIRMED),
    ]
    _as_in_full(repo, mark, {cup})


def test_a_cup_ruled_before_since_comes_with_a_coin_corrected_after_it(repo: VerdictRepository) -> None:
    cup, _ = _flagged(repo, 2)
    repo.relabel(SUPERVISOR, cup, LabelKind.CONFIRMED)
    mark = _newest(repo)
    repo.relabel(SUPERVISOR, cup, LabelKind.CORRECTED, coin_index=2, corrected_type="eur_9")

    new = repo.training_export(since=mark)
    assert [(c.cup_id, c.label) for c in new.cups] == [(cup, LabelKind.CONFIRMED)]
    assert [(c.index, c.true_type) for c in new.coins] == [(0, "eur_1"), (1, "eur_1"), (2, "eur_9"), (3, "eur_1")]
    _as_in_full(repo, mark, {cup})


def test_a_coin_ruling_withdrawn_after_since_brings_its_cup_back_under_the_cup_ruling(repo: VerdictRepository) -> None:
    """Coin 3 was ruled another type by mistake before the mark, and the ruling withdrawn after it: the last model
    learnt the mistake, so the cup is new, its coin under the cup's ruling again."""
    cup, _ = _flagged(repo, 7)
    repo.relabel(SUPERVISOR, cup, LabelKind.CONFIRMED)
    mistake = repo.relabel(SUPERVISOR, cup, LabelKind.CORRECTED, coin_index=2, corrected_type="eur_9")
    mark = _newest(repo)
    repo.withdraw_ruling(SUPERVISOR, cup, coin_index=2, expected_label=mistake)

    new = repo.training_export(since=mark)
    assert [(c.index, c.true_type, c.inherited) for c in new.coins] == [
        (0, "eur_1", True),
        (1, "eur_1", True),
        (2, "eur_1", True),
        (3, "eur_1", True),
    ]
    _as_in_full(repo, mark, {cup})


def test_a_first_check_and_its_recheck_come_together_under_the_rulings_in_force(repo: VerdictRepository) -> None:
    """The re-check was confirmed (the first check takes its rulings); after the mark one of its coins is corrected.
    Both checks come, the first check's coin lying there corrected too, in the re-check's split."""
    first, key = _flagged(repo, 3)
    again, _ = _flagged(repo, 4, recheck_of=key)
    untouched, _ = _flagged(repo, 5)
    repo.relabel(SUPERVISOR, untouched, LabelKind.CONFIRMED)
    repo.relabel(SUPERVISOR, again, LabelKind.CONFIRMED)
    mark = _newest(repo)
    repo.relabel(SUPERVISOR, again, LabelKind.CORRECTED, coin_index=3, corrected_type="eur_9")

    new = repo.training_export(since=mark)
    assert {(c.cup_id, c.split_id) for c in new.cups} == {(first, again), (again, again)}
    assert [(c.index, c.true_type) for c in new.coins if c.cup_id == first] == [
        (0, "eur_1"),
        (1, "eur_1"),
        (2, "eur_1"),
        (3, "eur_9"),
    ]
    _as_in_full(repo, mark, {first, again})


def test_a_first_check_ruled_after_since_keeps_its_recheck_and_split(repo: VerdictRepository) -> None:
    """The re-check was ruled before the mark; the first check gets a newer ruling of its own after it."""
    first, key = _flagged(repo, 6)
    again, _ = _flagged(repo, 7, recheck_of=key)
    repo.relabel(SUPERVISOR, again, LabelKind.CONFIRMED)
    repo.relabel(SUPERVISOR, again, LabelKind.NOT_A_COIN, coin_index=0)
    mark = _newest(repo)
    repo.relabel(SUPERVISOR, first, LabelKind.CORRECTED, corrected_type="eur_2")

    new = repo.training_export(since=mark)
    assert {(c.cup_id, c.label, c.split_id) for c in new.cups} == {
        (first, LabelKind.CORRECTED, again),
        (again, LabelKind.CONFIRMED, again),
    }
    _as_in_full(repo, mark, {first, again})
