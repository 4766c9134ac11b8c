"""VerdictRepository on real SQLite and real PostgreSQL: logging, idempotency, atomicity, review, relabel, export."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from db.records import audit_pick, pass_audit
from db.repository import (
    NotSupervisorError,
    OrderMismatchError,
    UnknownOperatorError,
    VerdictRepository,
)
from db.schema import AuditLogImmutableError, LabelKind, RelabelAudit
from db.session import make_session_factory
from db.store import ref_for, sha256_hex
from models.types import Decision, Side
from tests.db.factories import OPERATOR, OPERATOR_PIN, STATION, SUPERVISOR, make_record

TABLES = ("stations", "orders", "cups", "captures", "coins", "verdicts", "labels", "relabel_audit")


def counts(repo: VerdictRepository) -> dict[str, int]:
    with repo.engine.connect() as conn:
        return {t: int(conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()) for t in TABLES}


def store_files(repo: VerdictRepository) -> set[str]:
    return {ref for ref, _ in repo.store.iter_refs()}


def test_log_verdict_stores_rows_and_content_addressed_images(repo: VerdictRepository) -> None:
    record = make_record(1)
    verdict_id = repo.log_verdict(record)

    assert counts(repo) == {
        "stations": 1, "orders": 1, "cups": 1, "captures": 1, "coins": 3, "verdicts": 1, "labels": 0,
        "relabel_audit": 0,
    }  # fmt: skip
    with repo.engine.connect() as conn:
        cap = conn.execute(text("SELECT sha256, ref, width, height, size_bytes FROM captures")).one()
        v = conn.execute(text("SELECT id, decision, p_correct, idempotency_key, model_version FROM verdicts")).one()
        coin_refs = conn.execute(text('SELECT crop_ref, mask_ref FROM coins ORDER BY "index"')).all()
    assert v.id == verdict_id
    assert (v.decision, v.p_correct, v.idempotency_key, v.model_version) == (
        "pass",
        record.p_correct,
        record.idempotency_key,
        "m1",
    )
    digest = sha256_hex(record.image_jpeg)
    assert cap.sha256 == digest
    assert cap.ref == ref_for(digest, "jpg") == f"captures/{digest[:2]}/{digest[2:]}.jpg"
    assert (cap.width, cap.height, cap.size_bytes) == (64, 48, len(record.image_jpeg))
    assert repo.store.read(cap.ref) == record.image_jpeg
    for coin, (crop_ref, mask_ref) in zip(record.coins, coin_refs, strict=True):
        assert coin.crop_jpeg is not None and coin.mask_png is not None
        assert repo.store.read(crop_ref) == coin.crop_jpeg
        assert repo.store.read(mask_ref) == coin.mask_png
        assert mask_ref.endswith(".png")
    assert not list(repo.store.iter_temp_files())


def test_retry_with_same_idempotency_key_returns_existing_id(repo: VerdictRepository) -> None:
    record = make_record(2)
    first = repo.log_verdict(record)
    before = counts(repo)
    assert repo.log_verdict(record) == first
    assert counts(repo) == before
    assert repo.verdict_id_for_key(record.idempotency_key) == first
    assert repo.log_verdict(make_record(3)) != first


def test_concurrent_duplicates_store_one_verdict(repo: VerdictRepository) -> None:
    record = make_record(4)
    barrier = threading.Barrier(3)
    results: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(repo.log_verdict(record))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results)) == 1 and len(results) == 3
    assert counts(repo)["verdicts"] == 1


def test_failed_transaction_leaves_no_row_and_gc_removes_its_images(repo: VerdictRepository) -> None:
    bad = make_record(5, coin_indices=(0, 1, 1))  # duplicate coin index breaks uq_coins_cup_id_index
    with pytest.raises(IntegrityError):
        repo.log_verdict(bad)
    assert counts(repo) == dict.fromkeys(TABLES, 0)
    orphans = store_files(repo)
    assert ref_for(sha256_hex(bad.image_jpeg), "jpg") in orphans  # written first, harmless by its name
    assert len(orphans) == 1 + 3 + 3  # photo, crops, masks

    good = make_record(6)
    repo.log_verdict(good)
    assert repo.gc_orphan_images(min_age_s=3600.0) == []  # still inside the grace period
    removed = repo.gc_orphan_images(min_age_s=0.0)
    assert set(removed) == orphans
    kept = store_files(repo)
    assert ref_for(sha256_hex(good.image_jpeg), "jpg") in kept and len(kept) == 7
    assert repo.gc_orphan_images(min_age_s=0.0) == []


def test_failure_after_station_insert_rolls_it_back(repo: VerdictRepository) -> None:
    with pytest.raises(UnknownOperatorError):
        repo.log_verdict(make_record(7, operator="nobody", station="new-station"))
    assert counts(repo)["stations"] == 0


def test_order_keeps_its_expected_type(repo: VerdictRepository) -> None:
    repo.log_verdict(make_record(8, order="B-7", expected="eur_1"))
    with pytest.raises(OrderMismatchError):
        repo.log_verdict(make_record(9, order="B-7", expected="eur_2"))
    assert counts(repo)["cups"] == 1


def test_operator_pin_is_hashed_and_verified(repo: VerdictRepository) -> None:
    info = repo.verify_operator(OPERATOR, OPERATOR_PIN)
    assert info is not None and info.name == OPERATOR and info.role == "operator"
    assert repo.verify_operator(OPERATOR, "0000") is None
    assert repo.verify_operator("nobody", OPERATOR_PIN) is None
    with repo.engine.connect() as conn:
        hashes = conn.execute(text("SELECT pin_hash FROM operators")).scalars().all()
    assert len(set(hashes)) == 2 and all(OPERATOR_PIN not in h and h.startswith("scrypt$") for h in hashes)


def test_operator_cannot_relabel(repo: VerdictRepository) -> None:
    cup_id = _cup_of(repo, repo.log_verdict(make_record(10)))
    with pytest.raises(NotSupervisorError) as info:
        repo.relabel(OPERATOR, cup_id, LabelKind.CONFIRMED)
    assert isinstance(info.value, PermissionError)
    with pytest.raises(UnknownOperatorError):
        repo.relabel("nobody", cup_id, LabelKind.CONFIRMED)
    assert counts(repo)["labels"] == counts(repo)["relabel_audit"] == 0


def test_relabel_writes_label_and_audit_row(repo: VerdictRepository) -> None:
    cup_id = _cup_of(repo, repo.log_verdict(make_record(11)))
    repo.relabel(SUPERVISOR, cup_id, LabelKind.CONFIRMED, note="looks fine")
    repo.relabel(SUPERVISOR, cup_id, "corrected", coin_index=1, corrected_type="eur_2")
    last = repo.relabel(SUPERVISOR, cup_id, LabelKind.NOT_A_COIN, coin_index=1, note="a button")

    trail = repo.audit_trail(cup_id)
    assert [(e.old_value, e.new_value) for e in trail] == [
        (None, "confirmed"),
        (None, "corrected:eur_2"),
        ("corrected:eur_2", "not_a_coin"),
    ]
    assert trail[0].target == f"cup:{cup_id}" and trail[0].coin_id is None and trail[0].note == "looks fine"
    assert trail[2].operator == SUPERVISOR and trail[2].coin_id is not None
    with repo.engine.connect() as conn:
        rows = conn.execute(text("SELECT id, target, is_current FROM labels ORDER BY id")).all()
    assert len(rows) == 3
    assert [bool(r.is_current) for r in rows] == [True, False, True] and rows[2].id == last


def test_two_supervisors_ruling_the_same_cups_at_once_both_land_in_order(repo: VerdictRepository) -> None:
    """PostgreSQL runs both transactions at once: the second must wait for the first and record its ruling as the
    old value, not find no current label and collide with it."""
    repo.add_operator("rita", "supervisor", "9753")
    cups = [_cup_of(repo, repo.log_verdict(make_record(300 + n))) for n in range(8)]
    errors: list[BaseException] = []

    def rule(actor: str, corrected_type: str | None, barrier: threading.Barrier) -> None:
        kind = LabelKind.CONFIRMED if corrected_type is None else LabelKind.CORRECTED
        for cup_id in cups:
            barrier.wait()
            try:
                repo.relabel(actor, cup_id, kind, corrected_type=corrected_type)
            except BaseException as err:
                errors.append(err)

    barrier = threading.Barrier(2)
    threads = [
        threading.Thread(target=rule, args=(SUPERVISOR, None, barrier)),
        threading.Thread(target=rule, args=("rita", "eur_2", barrier)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for cup_id in cups:
        trail = repo.audit_trail(cup_id)
        assert len(trail) == 2 and trail[0].old_value is None and trail[1].old_value == trail[0].new_value
    assert counts(repo)["labels"] == 16


@pytest.mark.parametrize(
    ("kind", "coin_index", "corrected_type", "error"),
    [
        (LabelKind.NOT_A_COIN, None, None, ValueError),  # a cup is not "not a coin"
        (LabelKind.CORRECTED, 0, None, ValueError),  # corrected needs the type
        (LabelKind.CONFIRMED, 0, "eur_2", ValueError),  # only corrected takes a type
        (LabelKind.DAMAGED, 9, None, LookupError),  # no such coin
    ],
)
def test_relabel_refuses_bad_input(
    repo: VerdictRepository,
    kind: LabelKind,
    coin_index: int | None,
    corrected_type: str | None,
    error: type[Exception],
) -> None:
    cup_id = _cup_of(repo, repo.log_verdict(make_record(12)))
    with pytest.raises(error):
        repo.relabel(SUPERVISOR, cup_id, kind, coin_index=coin_index, corrected_type=corrected_type)
    with pytest.raises(LookupError):
        repo.relabel(SUPERVISOR, cup_id + 1000, LabelKind.CONFIRMED)
    assert counts(repo)["labels"] == 0


def test_audit_log_refuses_update_and_delete_in_the_database(repo: VerdictRepository, backend: str) -> None:
    cup_id = _cup_of(repo, repo.log_verdict(make_record(13)))
    repo.relabel(SUPERVISOR, cup_id, LabelKind.CONFIRMED, note="original")
    statements = ["UPDATE relabel_audit SET note = 'forged'", "DELETE FROM relabel_audit"]
    if backend == "postgresql":
        statements.append("TRUNCATE relabel_audit")
    else:  # a REPLACE deletes the row in the way without firing its DELETE trigger
        columns = "id, operator_id, created_at, cup_id, coin_id, target, old_value, new_value"
        statements += [
            f"INSERT OR REPLACE INTO relabel_audit ({columns}, note) SELECT {columns}, 'forged' FROM relabel_audit",
            "REPLACE INTO operator_audit SELECT * FROM operator_audit",
        ]
    for sql in statements:
        with pytest.raises(DBAPIError, match="append-only"), repo.engine.begin() as conn:
            conn.execute(text(sql))
    with repo.engine.connect() as conn:
        assert conn.execute(text("SELECT note FROM relabel_audit")).scalars().all() == ["original"]


def test_audit_log_refuses_update_and_delete_in_the_orm(repo: VerdictRepository) -> None:
    cup_id = _cup_of(repo, repo.log_verdict(make_record(14)))
    repo.relabel(SUPERVISOR, cup_id, LabelKind.CONFIRMED)
    factory = make_session_factory(repo.engine)
    with factory() as session:
        row = session.scalars(select(RelabelAudit)).one()
        row.note = "forged"
        with pytest.raises(AuditLogImmutableError):
            session.flush()
    with factory() as session:
        session.delete(session.scalars(select(RelabelAudit)).one())
        with pytest.raises(AuditLogImmutableError):
            session.flush()
    with factory() as session, pytest.raises(AuditLogImmutableError):
        session.execute(update(RelabelAudit).values(note="forged"))
    assert [e.note for e in repo.audit_trail()] == [""]


def test_review_queue_ranks_unlabelled_informative_cups_first(repo: VerdictRepository) -> None:
    def log(seed: int, **kw: object) -> int:
        return _cup_of(repo, repo.log_verdict(make_record(seed, threshold=0.9, **kw)))  # type: ignore[arg-type]

    log(20, p_correct=0.99)  # confident PASS, every coin matches: not a candidate
    b = log(21, decision=Decision.FLAG, p_correct=0.5, top_types=("eur_1", "eur_2"))
    c = log(22, decision=Decision.FLAG, p_correct=0.05, top_types=("eur_2", "eur_2", None))
    d = log(23, p_correct=0.92, top_types=("eur_1", "eur_2", "eur_2"))  # near threshold, coins disagree
    e = log(24, decision=Decision.FLAG, p_correct=0.5, top_types=("eur_1", "eur_2"))
    g = log(25, decision=Decision.FLAG, p_correct=0.05, expected="chf_5", order="C-1", top_types=("eur_2",))
    other = log(26, decision=Decision.FLAG, p_correct=0.5, station="station-2", top_types=("eur_1", "eur_2"))
    repo.relabel(SUPERVISOR, e, LabelKind.CONFIRMED)

    queue = repo.review_queue(limit=10, station=STATION, margin=0.25)
    assert [it.cup_id for it in queue] == [d, b, g, c, e]
    by_cup = {it.cup_id: it for it in queue}
    # a coin of another type makes the cup wrong by its coins, and the voter tosses a coin: half a disagreement
    assert by_cup[b].uncertainty == pytest.approx(1.0) and by_cup[b].disagreement == pytest.approx(0.5)
    assert by_cup[d].mismatch_share == pytest.approx(2 / 3)
    assert by_cup[c].mismatch_share == pytest.approx(1.0)  # no match counts as a mismatch
    assert by_cup[g].rarity == pytest.approx(1.0) and by_cup[c].rarity == pytest.approx(0.5)
    assert by_cup[e].labelled and not by_cup[d].labelled
    assert by_cup[b].reasons == ("a coin does not match",) and by_cup[d].reasons == ()  # what the operator read
    assert all(it.station == STATION and it.operator == OPERATOR for it in queue)
    assert (by_cup[g].order, by_cup[b].order) == ("C-1", "A-100")  # what the supervisor asks the operator about
    assert [it.cup_id for it in repo.review_queue(limit=2, station=STATION, margin=0.25)] == [d, b]
    assert other in {it.cup_id for it in repo.review_queue(limit=10, margin=0.25)}


def test_a_narrow_window_and_a_wide_one_rank_tied_cups_alike(repo: VerdictRepository) -> None:
    """Cups of one score and one instant: the window keeps the later ones, so the ranking must prefer them too, or
    the cup shown first depends on the window's size."""
    when = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    for n in range(4):
        repo.log_verdict(make_record(400 + n, decision=Decision.FLAG, p_correct=0.5, created_at=when))
    wide = [i.cup_id for i in repo.review_queue(limit=4, window=5000)]
    narrow = [i.cup_id for i in repo.review_queue(limit=2, window=2)]
    assert narrow == wide[:2] and wide == sorted(wide, reverse=True)


def test_an_order_lists_every_check_of_it_newest_first_passes_too(repo: VerdictRepository) -> None:
    def log(seed: int, **kw: object) -> int:
        return _cup_of(repo, repo.log_verdict(make_record(seed, threshold=0.9, **kw)))  # type: ignore[arg-type]

    sure = log(80, p_correct=0.999, order="Z-7")  # a confident PASS: never in the queue by itself
    flag = log(81, decision=Decision.FLAG, p_correct=0.3, order="Z-7", station="station-2")
    other = log(82, decision=Decision.FLAG, p_correct=0.3, order="Z-8")
    assert {it.cup_id for it in repo.review_queue(limit=10)} == {flag, other}
    found = repo.review_queue(limit=10, order="Z-7")
    assert [it.cup_id for it in found] == [flag, sure]  # newest first, from every station
    assert [it.order for it in found] == ["Z-7", "Z-7"] and found[1].decision is Decision.PASS
    assert [it.cup_id for it in repo.review_queue(limit=10, order="Z-7", station=STATION)] == [sure]
    assert [it.cup_id for it in repo.review_queue(limit=1, order="Z-7")] == [flag]
    assert repo.review_queue(limit=10, order="Z-9") == []
    repo.relabel(SUPERVISOR, sure, LabelKind.CORRECTED, corrected_type="eur_2")  # the customer found a wrong coin
    assert [(it.cup_id, it.labelled) for it in repo.review_queue(limit=10, order="Z-7")] == [
        (flag, False),
        (sure, True),
    ]  # still newest first: a ruling does not move a cup of an order


def test_a_strict_threshold_makes_only_close_calls_of_passes_and_a_count_flag_is_its_coins_pass(
    repo: VerdictRepository,
) -> None:
    def log(seed: int, p: float, decision: Decision = Decision.PASS, reasons: tuple[str, ...] = ()) -> int:
        record = make_record(seed, p_correct=p, threshold=0.97, decision=decision)
        return _cup_of(repo, repo.log_verdict(dataclasses.replace(record, reasons=reasons)))

    sure = log(40, 0.998)  # with a 0.97 threshold every PASS lay within 0.15 of it, and all were queued
    close = log(41, 0.975)
    count = "3 coins seen, the order is for 4: 1 short, or hidden under others — spread them out"
    count_only = log(42, 0.998, Decision.FLAG, (count,))
    count_and_more = log(43, 0.40, Decision.FLAG, (count, "coin 2 looks like eur_2 (0.91)"))
    flag = log(44, 0.60, Decision.FLAG, ("not sure enough: p_correct 0.600 is below the threshold 0.970",))
    queue = repo.review_queue(limit=10)
    assert [it.cup_id for it in queue] == [count_and_more, flag, close]  # by score: the coins disagree most first
    by_cup = {it.cup_id: it for it in queue}
    assert by_cup[close].uncertainty == pytest.approx(1 - 0.005 / 0.03)  # the room above the threshold is 0.03
    assert by_cup[flag].uncertainty == pytest.approx(1 - 2 * 0.1)
    every = {it.cup_id for it in repo.review_queue(limit=10, margin=1.0)}
    assert every == {sure, close, count_only, count_and_more, flag}


def test_review_queue_draws_confident_passes_for_audit_and_counts_their_rulings(repo: VerdictRepository) -> None:
    passes = [_cup_of(repo, repo.log_verdict(make_record(100 + k, p_correct=0.999))) for k in range(40)]
    flagged = _cup_of(repo, repo.log_verdict(make_record(99, decision=Decision.FLAG, p_correct=0.5)))
    assert [it.cup_id for it in repo.review_queue(limit=50, margin=0.25)] == [flagged]  # confident: no audit

    drawn = [c for c in passes if audit_pick(c, 0.25)]
    assert 3 < len(drawn) < len(passes)  # about a quarter, by a stable hash of the cup id (ids vary with test order)
    queue = repo.review_queue(limit=50, margin=0.25, audit_share=0.25)
    assert queue[0].cup_id == flagged and not queue[0].audit  # the FLAG first, then an audit after every three
    assert sorted(it.cup_id for it in queue if it.audit) == sorted(drawn)
    assert [it.cup_id for it in repo.review_queue(limit=50, margin=0.25, audit_share=0.25)] == [
        it.cup_id for it in queue
    ]  # the same draw on every reload

    # the supervisor checks three drawn PASSes: one right, one with a wrong coin, one of another type
    right, wrong_coin, wrong_cup = drawn[:3]
    repo.relabel(SUPERVISOR, right, LabelKind.CONFIRMED)
    repo.relabel(SUPERVISOR, wrong_coin, LabelKind.CONFIRMED)
    repo.relabel(SUPERVISOR, wrong_coin, LabelKind.CORRECTED, coin_index=1, corrected_type="eur_2")
    repo.relabel(SUPERVISOR, wrong_cup, LabelKind.CORRECTED, corrected_type="eur_2")
    repo.relabel(SUPERVISOR, flagged, LabelKind.CONFIRMED)  # a FLAG is not a PASS audit
    # a PASS the draw did not pick (a customer's complaint, say) ruled wrong: no random sample, not in the audit
    complaint = next(c for c in passes if c not in drawn)
    repo.relabel(SUPERVISOR, complaint, LabelKind.CORRECTED, corrected_type="eur_2")
    audit = pass_audit(repo.training_export(), 0.25)
    assert (audit.audited, audit.wrong, audit.wrong_cups) == (3, 2, tuple(sorted((wrong_coin, wrong_cup))))
    assert audit.precision == pytest.approx(1 / 3)
    unchecked = len(drawn) - 3
    still = repo.review_queue(limit=unchecked, margin=0.25, audit_share=0.25)  # the unchecked draws come first
    assert sorted(it.cup_id for it in still) == sorted(drawn[3:]) and not any(it.labelled for it in still)


def test_a_day_of_passes_does_not_push_the_flags_out_of_the_audited_queue(repo: VerdictRepository) -> None:
    flags = [
        _cup_of(repo, repo.log_verdict(make_record(200 + k, decision=Decision.FLAG, p_correct=0.3))) for k in (0, 1)
    ]
    passes = [_cup_of(repo, repo.log_verdict(make_record(210 + k, p_correct=0.999))) for k in range(12)]  # newer
    # the draw hangs on the cup ids, which on a database shared by the tests depend on what was logged before:
    # more PASSes until the window's newest four hold a drawn one
    while not any(audit_pick(c, 0.5) for c in passes[-4:]):
        passes.append(_cup_of(repo, repo.log_verdict(make_record(210 + len(passes), p_correct=0.999))))
    queue = repo.review_queue(limit=50, margin=0.25, audit_share=0.5, window=4)
    assert sorted(it.cup_id for it in queue if not it.audit) == flags  # the FLAGs' window is their own
    drawn = [it.cup_id for it in queue if it.audit]
    # the audit draws among the newest PASSes of its window, and only there
    assert sorted(drawn) == sorted(c for c in passes[-4:] if audit_pick(c, 0.5))


def test_review_queue_shows_suspected_rulings_first_until_someone_rules_again(repo: VerdictRepository) -> None:
    confident = _cup_of(repo, repo.log_verdict(make_record(70, p_correct=0.999)))  # never a candidate by itself
    flagged = _cup_of(repo, repo.log_verdict(make_record(71, decision=Decision.FLAG, p_correct=0.5)))
    repo.relabel(SUPERVISOR, confident, LabelKind.CORRECTED, corrected_type="eur_2")
    assert [it.cup_id for it in repo.review_queue(limit=10, margin=0.25)] == [flagged]
    ranked_at = datetime.now(UTC)

    queue = repo.review_queue(limit=10, margin=0.25, suspects=[confident], suspects_since=ranked_at)
    assert [(it.cup_id, it.suspect, it.labelled) for it in queue] == [(confident, True, True), (flagged, False, False)]
    assert [it.cup_id for it in repo.review_queue(limit=1, margin=0.25, suspects=[confident])] == [confident]

    repo.relabel(SUPERVISOR, confident, LabelKind.CONFIRMED, note="second look")  # ruled again after the ranking
    again = repo.review_queue(limit=10, margin=0.25, suspects=[confident], suspects_since=ranked_at)
    assert [it.cup_id for it in again] == [flagged]


def test_a_recheck_after_turning_answers_the_check_it_follows(
    repo: VerdictRepository, caplog: pytest.LogCaptureFixture
) -> None:
    flag = {"decision": Decision.FLAG, "p_correct": 0.5}
    turned = make_record(40, **flag)  # type: ignore[arg-type]
    passed = make_record(41, p_correct=0.99, recheck_of=turned.idempotency_key)
    again = make_record(42, **flag)  # type: ignore[arg-type]
    still = make_record(43, **flag, recheck_of=again.idempotency_key)  # type: ignore[arg-type]
    cups = [_cup_of(repo, repo.log_verdict(r)) for r in (turned, passed, again, still)]
    assert _cup_of(repo, repo.log_verdict(passed)) == cups[1]  # a retried re-check stays one row

    queue = repo.review_queue(limit=10, margin=0.25)
    assert [it.cup_id for it in queue] == [cups[3]]  # the turned cup passed; the other waits as its re-check
    assert queue[0].recheck_of == cups[2]

    with repo.engine.connect() as conn:
        links = {int(a): b for a, b in conn.execute(text("SELECT id, recheck_of_id FROM cups")).all()}
    assert [links[c] for c in cups] == [None, cups[0], None, cups[2]]

    # a link that cannot stand is dropped, the verdict kept
    unknown = make_record(44, **flag, recheck_of="00000000-0000-4000-8000-000000000000")  # type: ignore[arg-type]
    other_type = make_record(45, **flag, expected="chf_5", order="C-2", recheck_of=turned.idempotency_key)  # type: ignore[arg-type]
    with caplog.at_level("WARNING", logger="db.repository"):
        kept = [_cup_of(repo, repo.log_verdict(r)) for r in (unknown, other_type)]
    assert "which is not logged" in caplog.text and "expected to be eur_1, not chf_5" in caplog.text
    queue = repo.review_queue(limit=10, margin=0.25)
    assert {it.cup_id for it in queue} == {cups[3], *kept} and all(
        it.recheck_of is None for it in queue if it.cup_id in kept
    )


def test_a_first_check_takes_the_rulings_of_its_labelled_recheck_coin_by_coin(repo: VerdictRepository) -> None:
    flag = {"decision": Decision.FLAG, "p_correct": 0.5}
    first = make_record(60, top_types=("eur_1", "eur_1", "eur_2", "eur_1"), **flag)  # type: ignore[arg-type]
    # the same coins photographed again, detected in another order, coin 3 of the first photograph not found
    again = make_record(61, top_types=("eur_2", "eur_1", "eur_1"), recheck_of=first.idempotency_key, **flag)  # type: ignore[arg-type]
    boxes = [first.coins[k].bbox for k in (2, 0, 1)]
    again = dataclasses.replace(
        again, coins=tuple(dataclasses.replace(c, bbox=b) for c, b in zip(again.coins, boxes, strict=True))
    )
    first_cup, again_cup = (_cup_of(repo, repo.log_verdict(r)) for r in (first, again))
    assert repo.training_export().cups == ()  # nobody has ruled yet
    repo.relabel(SUPERVISOR, again_cup, LabelKind.CONFIRMED)
    repo.relabel(SUPERVISOR, again_cup, LabelKind.CORRECTED, coin_index=0, corrected_type="eur_2")

    export = repo.training_export()
    cups = {c.cup_id: c for c in export.cups}
    assert set(cups) == {first_cup, again_cup}
    assert cups[first_cup].split_id == again_cup and cups[again_cup].split_id == again_cup
    assert (cups[first_cup].label, cups[first_cup].true_type) == (LabelKind.CONFIRMED, "eur_1")
    carried = sorted((c.index, c.true_type, c.side, c.label) for c in export.coins if c.cup_id == first_cup)
    assert carried == [
        (0, "eur_1", Side.OBVERSE, LabelKind.CONFIRMED),  # its own best match is the expected type: its side stands
        (1, "eur_1", Side.OBVERSE, LabelKind.CONFIRMED),
        (2, "eur_2", None, LabelKind.CORRECTED),  # the re-check's coin 0 lies where it lies
    ]  # coin 3 has no twin in the re-check: no ruling
    assert all(c.inherited for c in export.coins if c.cup_id == first_cup)

    # a newer ruling of its own wins: the first check is exported once, as itself, in its re-check's split (the same
    # coins in train and holdout would judge the model on what it learnt)
    repo.relabel(SUPERVISOR, first_cup, LabelKind.CONFIRMED)
    mine = [c for c in repo.training_export().cups if c.cup_id == first_cup]
    assert len(mine) == 1 and mine[0].split_cup_id == again_cup and mine[0].split_id == again_cup
    assert {c.true_type for c in repo.training_export().coins if c.cup_id == first_cup} == {"eur_1"}
    since = max(c.labelled_at for c in repo.training_export().cups)
    repo.relabel(SUPERVISOR, again_cup, LabelKind.CONFIRMED, note="looked again")  # a newer cup ruling
    later = repo.training_export(since=since)
    assert sorted(c.cup_id for c in later.cups) == [first_cup, again_cup]
    # the re-check's ruling, now the newer, speaks for the first check again, coin by coin, the corrected coin's
    # ruling with it though it is older than ``since`` (without it the first check would look clean)
    again_carried = sorted((c.index, c.true_type) for c in later.coins if c.cup_id == first_cup)
    assert again_carried == [(0, "eur_1"), (1, "eur_1"), (2, "eur_2")]
    whole = sorted((c.index, c.true_type) for c in repo.training_export().coins if c.cup_id == first_cup)
    assert whole == again_carried


def test_an_object_takes_no_type_from_a_ruling_on_its_cup_and_a_moved_camera_carries_no_ruling(
    repo: VerdictRepository,
) -> None:
    flag = {"decision": Decision.FLAG, "p_correct": 0.5}
    cup = _cup_of(repo, repo.log_verdict(make_record(70, top_types=("eur_1", None, "eur_1"), **flag)))  # type: ignore[arg-type]
    repo.relabel(SUPERVISOR, cup, LabelKind.CONFIRMED)
    truth = {c.index: c.true_type for c in repo.training_export().coins if c.cup_id == cup}
    assert truth == {0: "eur_1", 1: None, 2: "eur_1"}  # the washer stays an object, not a coin of the cup's type
    # a cup checked again because the camera had moved: the coins lie elsewhere, nothing is carried by place
    camera = make_record(71, **flag)  # type: ignore[arg-type]
    camera = dataclasses.replace(camera, reasons=("the camera has moved since it was set up — put it back",))
    again = make_record(72, recheck_of=camera.idempotency_key, **flag)  # type: ignore[arg-type]
    first_cup, again_cup = (_cup_of(repo, repo.log_verdict(r)) for r in (camera, again))
    repo.relabel(SUPERVISOR, again_cup, LabelKind.CORRECTED, coin_index=0, corrected_type="eur_2")
    repo.relabel(SUPERVISOR, again_cup, LabelKind.CONFIRMED)
    export = repo.training_export()
    assert again_cup in {c.cup_id for c in export.cups}
    assert first_cup not in {c.cup_id for c in export.cups} | {c.cup_id for c in export.coins}


def test_training_export_resolves_labels(repo: VerdictRepository) -> None:
    cup1 = _cup_of(repo, repo.log_verdict(make_record(30)))
    cup2 = _cup_of(repo, repo.log_verdict(make_record(31)))
    cup3 = _cup_of(repo, repo.log_verdict(make_record(32, decision=Decision.FLAG, p_correct=0.2)))
    _cup_of(repo, repo.log_verdict(make_record(33)))  # never labelled
    repo.relabel(SUPERVISOR, cup1, LabelKind.CONFIRMED)
    repo.relabel(SUPERVISOR, cup2, LabelKind.CORRECTED, coin_index=0, corrected_type="eur_2")
    repo.relabel(SUPERVISOR, cup2, LabelKind.WRONG_SIDE, coin_index=2)
    repo.relabel(SUPERVISOR, cup3, LabelKind.CORRECTED, corrected_type="eur_2")
    repo.relabel(SUPERVISOR, cup3, LabelKind.DAMAGED, coin_index=0)

    export = repo.training_export()
    assert [(c.cup_id, c.label, c.true_type) for c in export.cups] == [
        (cup1, LabelKind.CONFIRMED, "eur_1"),
        (cup3, LabelKind.CORRECTED, "eur_2"),
    ]
    coins = {(c.cup_id, c.index): c for c in export.coins}
    assert sorted(coins) == [(cup1, 0), (cup1, 1), (cup1, 2), (cup2, 0), (cup2, 2), (cup3, 0), (cup3, 1), (cup3, 2)]
    assert (coins[cup1, 1].true_type, coins[cup1, 1].side, coins[cup1, 1].inherited) == ("eur_1", Side.OBVERSE, True)
    assert (coins[cup2, 0].true_type, coins[cup2, 0].inherited) == ("eur_2", False)
    assert (coins[cup2, 2].label, coins[cup2, 2].side) == (LabelKind.WRONG_SIDE, Side.REVERSE)
    assert (coins[cup3, 0].label, coins[cup3, 0].true_type) == (LabelKind.DAMAGED, None)
    assert (coins[cup3, 2].true_type, coins[cup3, 2].inherited) == ("eur_2", True)
    emb = coins[cup1, 2].embedding
    assert emb is not None and np.array_equal(emb, np.full(4, 2, dtype=np.float32))
    crop = coins[cup1, 0].crop_ref
    assert crop is not None and repo.store.exists(crop)

    # the newest ruling a model built now learns from
    mark = max([c.labelled_at for c in export.cups] + [c.labelled_at for c in export.coins])
    newer = make_record(34, model_version="m2", created_at=datetime.now(UTC))
    cup4 = _cup_of(repo, repo.log_verdict(newer))
    repo.relabel(SUPERVISOR, cup4, LabelKind.CONFIRMED)
    since_mark = repo.training_export(since=mark)
    assert [c.cup_id for c in since_mark.cups] == [cup4] and {c.cup_id for c in since_mark.coins} == {cup4}
    assert repo.training_export(since=datetime.now(UTC)).cups == ()
    with pytest.raises(ValueError, match="timezone-aware"):
        repo.training_export(since=datetime.now())  # a naive time: refused


def test_two_stations_share_one_database(repo: VerdictRepository, db_url: str, tmp_path: object) -> None:
    from pathlib import Path

    from db.session import make_engine

    engine = make_engine(db_url)
    other = VerdictRepository(engine, Path(str(tmp_path)) / "home2")
    try:
        a = repo.log_verdict(make_record(40, decision=Decision.FLAG, p_correct=0.5))
        b = other.log_verdict(make_record(41, decision=Decision.FLAG, p_correct=0.5, station="station-2"))
        assert a != b
        assert [it.verdict_id for it in other.review_queue(station="station-2")] == [b]
        assert {it.verdict_id for it in repo.review_queue()} == {a, b}
    finally:
        engine.dispose()


def _cup_of(repo: VerdictRepository, verdict_id: int) -> int:
    with repo.engine.connect() as conn:
        return int(conn.execute(text("SELECT cup_id FROM verdicts WHERE id = :v"), {"v": verdict_id}).scalar_one())


def test_cup_coins_returns_logged_coins_in_order_with_readable_crops(repo: VerdictRepository) -> None:
    record = make_record(31, top_types=("eur_1", None, "eur_2"))
    verdict_id = repo.log_verdict(record)
    with repo.engine.connect() as conn:
        cup_id = conn.execute(text("SELECT cup_id FROM verdicts WHERE id = :v"), {"v": verdict_id}).scalar_one()

    coins = repo.cup_coins(cup_id)

    assert [c.index for c in coins] == [0, 1, 2]
    assert [c.top_type for c in coins] == ["eur_1", None, "eur_2"]
    assert coins[0].bbox == record.coins[0].bbox
    for stored, logged in zip(coins, record.coins, strict=True):
        assert stored.crop_ref is not None
        assert repo.read_blob(stored.crop_ref) == logged.crop_jpeg
    assert repo.cup_coins(cup_id + 1000) == []


def test_cup_of_verdict_names_the_cup_each_verdict_judged(repo: VerdictRepository) -> None:
    ids = [repo.log_verdict(make_record(k)) for k in (31, 32)]
    with repo.engine.connect() as conn:
        want: dict[int, int] = {int(v): int(c) for v, c in conn.execute(text("SELECT id, cup_id FROM verdicts")).all()}
    assert [repo.cup_of_verdict(v) for v in ids] == [want[v] for v in ids]
    assert len(set(want.values())) == 2
    with pytest.raises(LookupError, match="no verdict 999999"):
        repo.cup_of_verdict(999999)


def test_station_models_name_the_model_of_each_stations_newest_cup(repo: VerdictRepository) -> None:
    assert repo.station_models() == []
    repo.log_verdict(make_record(1, station="packing-2", model_version="m1"))
    repo.log_verdict(make_record(2, station="packing-1", model_version="m1"))
    repo.log_verdict(make_record(3, station="packing-1", model_version="m2"))  # promoted overnight
    repo.log_verdict(make_record(0, station="packing-2", model_version="m0"))  # replayed late from a journal: older
    got = repo.station_models()
    assert [(m.station, m.model_version) for m in got] == [("packing-1", "m2"), ("packing-2", "m1")]
    assert got[0].at == datetime(2026, 1, 1, 0, 3, tzinfo=UTC)
