"""The records that cross the database boundary: validation, JSON round trip, conversion from a Verdict."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from datetime import datetime

import numpy as np
import pytest

from db.records import TrainingCoin, TrainingCup, TrainingExport, VerdictRecord, jpeg_size
from db.schema import LabelKind
from models.types import CoinEvidence, Decision, Match, Side, Verdict
from tests.db.factories import make_jpeg, make_png_mask, make_record


@pytest.mark.parametrize(("height", "width"), [(48, 64), (31, 7), (600, 800)])
def test_jpeg_size_reads_the_frame_header(height: int, width: int) -> None:
    assert jpeg_size(make_jpeg(0, (height, width))) == (width, height)


@pytest.mark.parametrize("data", [b"", b"\x89PNG\r\n", make_png_mask(0), b"\xff\xd8\xff\xd9"])
def test_jpeg_size_refuses_other_bytes(data: bytes) -> None:
    with pytest.raises(ValueError):
        jpeg_size(data)


def test_record_round_trips_through_json() -> None:
    record = make_record(3, top_types=("eur_1", None))
    assert VerdictRecord.from_json(record.to_json()) == record
    recheck = make_record(5, recheck_of=record.idempotency_key)
    assert VerdictRecord.from_json(recheck.to_json()) == recheck
    counted = replace(make_record(6), expected_count=20)
    assert VerdictRecord.from_json(counted.to_json()) == counted


def test_a_journal_line_written_before_rechecks_reads_as_a_first_check() -> None:
    data = make_record(3).to_json()
    del data["recheck_of"], data["expected_count"]  # a journal line written before either was kept
    assert VerdictRecord.from_json(data).recheck_of is None and VerdictRecord.from_json(data).expected_count is None


@pytest.mark.parametrize(
    "change",
    [
        {"p_correct": 1.5},
        {"p_correct": float("nan")},
        {"created_at": datetime(2026, 1, 1)},
        {"idempotency_key": "not-a-uuid"},
        {"image_jpeg": b"GIF89a"},
        {"station": ""},
        {"recheck_of": "not-a-uuid"},
        {"recheck_of": "self"},
    ],
)
def test_record_refuses_bad_fields(change: dict[str, object]) -> None:
    record = make_record(4)
    if change.get("recheck_of") == "self":
        change = {"recheck_of": record.idempotency_key}
    with pytest.raises(ValueError):
        dataclasses.replace(record, **change)  # type: ignore[arg-type]


def test_from_verdict_keeps_the_top_match_and_blobs() -> None:
    verdict = Verdict(
        decision=Decision.FLAG,
        expected_type="eur_1",
        p_correct=0.3,
        threshold=0.9,
        reasons=("coin 1 looks like eur_2",),
        coins=(
            CoinEvidence(0, (1.0, 2.0, 3.0, 4.0), (Match("eur_1", Side.OBVERSE, 0.9),), 23.2, 0.95, False),
            CoinEvidence(
                1,
                (5.0, 6.0, 7.0, 8.0),
                (Match("eur_2", Side.REVERSE, 0.7), Match("eur_1", Side.REVERSE, 0.6)),
                None,
                0.8,
                True,
            ),
            CoinEvidence(2, (9.0, 9.0, 12.0, 12.0), (), None, 0.5, False),
        ),
        model_version="bundle-7",
        timings_ms={"detect": 10.0},
    )
    emb = np.arange(3, dtype=np.float32)
    record = VerdictRecord.from_verdict(
        verdict, make_jpeg(5), station="s", operator="o", order="A-1", crops_jpeg={1: make_jpeg(6, (8, 8))},
        embeddings={0: emb},
    )  # fmt: skip
    assert (record.decision, record.p_correct, record.model_version) == (Decision.FLAG, 0.3, "bundle-7")
    assert record.reasons == verdict.reasons and dict(record.timings_ms) == {"detect": 10.0}
    c0, c1, c2 = record.coins
    assert (c0.top_type, c0.top_side, c0.diameter_mm) == ("eur_1", Side.OBVERSE, 23.2)
    assert (c1.top_type, c1.top_side, c1.top_score, c1.partial) == ("eur_2", Side.REVERSE, 0.7, True)
    assert (c2.top_type, c2.top_side, c2.top_score) == (None, None, None)
    assert c1.crop_jpeg is not None and c0.crop_jpeg is None
    assert c0.embedding is not None and np.array_equal(np.frombuffer(c0.embedding, dtype="<f4"), emb)
    again = VerdictRecord.from_verdict(verdict, make_jpeg(5), station="s", operator="o")
    assert again.idempotency_key != record.idempotency_key


def _cup(cup_id: int, day: int, split: int | None = None) -> TrainingCup:
    return TrainingCup(
        cup_id, "s", None, "t1", LabelKind.CONFIRMED, "t1", "m", Decision.FLAG, datetime(2026, 1, day), split
    )


def _coin(cup_id: int, day: int) -> TrainingCoin:
    return TrainingCoin(
        cup_id,
        100 + cup_id,
        0,
        "s",
        None,
        None,
        LabelKind.CONFIRMED,
        "t1",
        None,
        True,
        None,
        "m",
        datetime(2026, 1, day),
    )


def test_a_training_window_keeps_the_newest_cups_with_their_coins_and_rechecks() -> None:
    cups = (_cup(1, 1), _cup(2, 2), _cup(3, 3), _cup(4, 4, split=5), _cup(5, 5), _cup(6, 6))
    coins = (*(_coin(c.cup_id, c.labelled_at.day) for c in cups), _coin(1, 9))  # cup 1's coin was ruled on last
    export = TrainingExport(cups, coins)
    assert export.newest(6) is export and export.newest(99) is export
    three = export.newest(3)  # cup 1 (a ruling on day 9), then cup 6, then the turned cup 5 with its first check 4
    assert [c.cup_id for c in three.cups] == [1, 6]  # 4 and 5 go together: the pair would make four
    assert {c.cup_id for c in three.coins} == {1, 6} and len(three.coins) == 3
    four = export.newest(4)
    assert [c.cup_id for c in four.cups] == [1, 4, 5, 6]
    assert export.newest(0).cups == () and export.newest(0).coins == ()
