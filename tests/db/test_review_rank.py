"""The review queue's rows: PASSes drawn for audit never push the FLAGs out, and a threshold of ``inf`` (nothing
could be certified) still ranks the FLAGs by how unsure the voter was, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from db.repository import VerdictRepository
from db.review import AUDIT_EVERY, ReviewWeights, informativeness, rank_queue, uncertainty
from db.schema import LabelKind
from models.types import Decision
from tests.db.factories import SUPERVISOR, make_record

W = ReviewWeights()
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def log_week(repo: VerdictRepository, flags: int, passes: int) -> None:
    """``flags`` FLAGs waiting for a supervisor, then ``passes`` confident PASSes checked after them."""
    for k in range(flags):
        repo.log_verdict(make_record(k, decision=Decision.FLAG, p_correct=0.3, top_types=(), order=None, created_at=T0))
    for k in range(passes):
        later = T0 + timedelta(hours=1, minutes=k)
        repo.log_verdict(make_record(1000 + k, p_correct=0.999, threshold=0.97, top_types=(), created_at=later))


def test_audits_leave_the_flags_in_the_queue(repo: VerdictRepository) -> None:
    log_week(repo, flags=20, passes=110)
    every = repo.review_queue(10_000, audit_share=1.0)  # every PASS drawn: 110 audits against 20 FLAGs
    rows = rank_queue(every, 100)
    flags = [it for it in rows if it.decision is Decision.FLAG]
    assert len(rows) == 100 and len(flags) == 20  # every FLAG waiting is there
    # the FLAGs lead, one audit after every three of them, and the audits fill the rows the FLAGs leave
    assert [it.audit for it in rows[:8]] == [False, False, False, True] * 2
    assert all(it.audit for it in rows[26:])
    assert rank_queue(list(reversed(every)), 100) == rows  # the same rows whatever order the database gave


def test_audits_take_at_most_one_row_in_four_while_flags_wait(repo: VerdictRepository) -> None:
    log_week(repo, flags=90, passes=40)
    rows = rank_queue(repo.review_queue(10_000, audit_share=1.0), 100)
    assert sum(it.audit for it in rows) == 100 // AUDIT_EVERY
    assert sum(it.decision is Decision.FLAG for it in rows) == 100 - 100 // AUDIT_EVERY
    # a supervisor's ruling sends a cup below the unlabelled ones, audit or FLAG
    ruled = rows[0].cup_id
    repo.relabel(SUPERVISOR, ruled, LabelKind.CONFIRMED)
    assert ruled not in {it.cup_id for it in rank_queue(repo.review_queue(10_000, audit_share=1.0), 100)}


def test_an_infinite_threshold_ranks_flags_by_the_coin_toss_term(repo: VerdictRepository) -> None:
    for k, p in enumerate((0.5, 0.02, 0.98)):
        repo.log_verdict(make_record(k, decision=Decision.FLAG, p_correct=p, threshold=math.inf))
    queue = repo.review_queue(10)
    # 0.02 and 0.98 are as unsure as each other; on 0.02 the coins, all of the expected type, disagree with the voter
    assert [it.p_correct for it in queue] == [0.5, 0.02, 0.98]
    assert [it.uncertainty for it in queue] == pytest.approx([1.0, 0.04, 0.04])
    assert all(math.isinf(it.threshold) for it in queue)


@pytest.mark.parametrize("threshold", [math.inf, -math.inf, math.nan, None])
def test_a_threshold_that_is_not_a_number_leaves_the_coin_toss_term(threshold: float | None) -> None:
    assert uncertainty(0.5, threshold) == pytest.approx(1.0)
    assert uncertainty(0.9, threshold) == pytest.approx(0.2)
    assert informativeness(0.02, threshold, 0.0, 0, W).uncertainty == pytest.approx(0.04)


def test_a_p_that_is_not_a_number_scores_nothing() -> None:
    info = informativeness(math.nan, 0.97, 0.0, 0, W)
    assert (info.uncertainty, info.disagreement) == (0.0, 0.0) and not math.isnan(info.score)
