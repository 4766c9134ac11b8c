"""Dropping the images of old cups nobody will look at again, on real SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from db.records import audit_pick
from db.repository import PRUNED_REF, OrphanSweepRefused, VerdictRepository
from db.schema import LabelKind
from db.store import STORE_DIR
from models.types import Decision
from tests.db.factories import SUPERVISOR, make_record

BEFORE = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)  # make_record(seed) is checked at seed minutes past midnight


def files_of(repo: VerdictRepository, cup_id: int) -> dict[str, str | None]:
    with repo.engine.connect() as conn:
        cap = conn.execute(text("SELECT ref FROM captures WHERE cup_id = :c"), {"c": cup_id}).scalar_one()
        coins = conn.execute(
            text('SELECT "index", crop_ref, mask_ref FROM coins WHERE cup_id = :c ORDER BY "index"'), {"c": cup_id}
        ).all()
    out = {"capture": cap}
    for idx, crop, mask in coins:
        out[f"crop{idx}"], out[f"mask{idx}"] = crop, mask
    return out


def test_only_old_unruled_passes_lose_their_images(repo: VerdictRepository) -> None:
    def log(seed: int, **kw: object) -> int:
        record = make_record(seed, **kw)  # type: ignore[arg-type]
        return repo.cup_of_verdict(repo.log_verdict(record))

    plain = log(1)  # an old PASS nobody looked at: pruned
    flagged = log(2, decision=Decision.FLAG, p_correct=0.2)
    ruled = log(3)
    repo.relabel(SUPERVISOR, ruled, LabelKind.CONFIRMED)
    chains = []  # a FLAG asking to turn coins, answered by a PASS after turning; nobody, or a person, ruled
    for seed in (4, 10, 12):
        first = make_record(seed, decision=Decision.FLAG, p_correct=0.3)
        chains.append((repo.cup_of_verdict(repo.log_verdict(first)), log(seed + 1, recheck_of=first.idempotency_key)))
    (turned_first, turned), (ruled_first, its_recheck), (first_of_ruled, ruled_recheck) = chains
    repo.relabel(SUPERVISOR, ruled_first, LabelKind.CONFIRMED)
    repo.relabel(SUPERVISOR, ruled_recheck, LabelKind.CONFIRMED)
    recent = log(40)  # checked after BEFORE
    twin = make_record(6)
    sharing = repo.cup_of_verdict(repo.log_verdict(dataclasses.replace(twin, coins=make_record(2).coins)))
    kept_cups = (flagged, ruled, ruled_first, its_recheck, first_of_ruled, ruled_recheck, recent)
    kept = {c: files_of(repo, c) for c in kept_cups}
    plain_files, sharing_files = files_of(repo, plain), files_of(repo, sharing)
    turned_files = [files_of(repo, c) for c in (turned_first, turned)]
    assert all(plain_files.values()) and all(sharing_files.values())

    dry = repo.prune_images(BEFORE, dry_run=True, min_age_s=0)
    assert files_of(repo, plain) == plain_files  # nothing changed
    report = repo.prune_images(BEFORE, min_age_s=0)
    assert report == dry
    # the plain PASS, the one sharing its coins with the FLAG, and the turned cup's two checks
    assert report.cups == 4
    assert report.files == 4 + 3 * 6  # four photographs, three crops and three masks of each cup but the sharing one
    for cup in (plain, sharing):
        after = files_of(repo, cup)
        assert after["capture"] == PRUNED_REF and all(v is None for k, v in after.items() if k != "capture")
        photo = (plain_files if cup == plain else sharing_files)["capture"]
        assert photo is not None and not repo.store.exists(photo)
    for ref in (v for k, v in plain_files.items() if k != "capture"):
        assert ref is not None and not repo.store.exists(ref)
    for ref in (v for k, v in sharing_files.items() if k != "capture"):
        assert ref is not None and repo.store.exists(ref)  # the FLAG's coins name the same bytes
    for before in turned_files:
        assert all(v is not None and not repo.store.exists(v) for v in before.values())
    assert {c: files_of(repo, c) for c in kept} == kept
    assert all(repo.store.exists(r) for files in kept.values() for r in files.values() if r)
    with repo.engine.connect() as conn:  # the verdict and the coins' embeddings stay
        assert conn.execute(text("SELECT COUNT(*) FROM coins WHERE cup_id = :c AND embedding IS NOT NULL"),
                            {"c": plain}).scalar_one() == 3  # fmt: skip
        assert (
            conn.execute(text("SELECT decision FROM verdicts WHERE cup_id = :c"), {"c": plain}).scalar_one() == "pass"
        )
    assert repo.prune_images(BEFORE, min_age_s=0).cups == 0  # once


def test_audited_young_and_other_stations_files_stay(repo: VerdictRepository) -> None:
    cups = [repo.cup_of_verdict(repo.log_verdict(make_record(seed))) for seed in range(1, 9)]
    drawn = [c for c in cups if audit_pick(c, 0.5)]
    assert 0 < len(drawn) < len(cups)
    young = repo.prune_images(BEFORE, station="station-1", audit_share=0.5)  # files written just now
    assert young.cups == len(cups) - len(drawn) and young.files == 0  # their files are left for the orphan sweep
    assert repo.prune_images(BEFORE, station="station-2").cups == 0
    assert all(files_of(repo, c)["capture"] for c in drawn)


def test_a_dry_run_counts_what_a_run_removes_when_bytes_are_shared_across_batches(
    repo: VerdictRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("db.repository._GC_BATCH", 2)  # batches of two cups: the bytes below span two batches
    for seed in (1, 2, 3):
        repo.log_verdict(make_record(seed))
    repo.log_verdict(dataclasses.replace(make_record(4), coins=make_record(1).coins))  # cup 1's coins, same bytes
    dry = repo.prune_images(BEFORE, dry_run=True, min_age_s=0)
    assert repo.prune_images(BEFORE, min_age_s=0) == dry and dry.cups == 4


def test_a_ruling_made_while_prune_runs_keeps_its_cup(repo: VerdictRepository, monkeypatch: pytest.MonkeyPatch) -> None:
    cup = repo.cup_of_verdict(repo.log_verdict(make_record(1)))
    photo = files_of(repo, cup)["capture"]
    real_pick = audit_pick

    def rule_meanwhile(cup_id: int, share: float) -> bool:  # called after prune read the cups, before it writes
        if not repo.training_export().cups:
            repo.relabel(SUPERVISOR, cup, LabelKind.CORRECTED, corrected_type="eur_2")
        return real_pick(cup_id, share)

    monkeypatch.setattr("db.repository.audit_pick", rule_meanwhile)
    assert repo.prune_images(BEFORE, min_age_s=0).cups == 0
    assert files_of(repo, cup)["capture"] == photo and photo is not None and repo.store.exists(photo)


def test_the_orphan_sweep_of_a_shared_folder_needs_the_sites_database(repo: VerdictRepository, tmp_path: Path) -> None:
    share = tmp_path / "share"
    (share / STORE_DIR).mkdir(parents=True)  # the folder a site's stations share
    shared = VerdictRepository(repo.engine, repo.home, share)
    other = shared.store.put(b"another station's photograph", "jpg").ref  # named in another station's database
    if repo.engine.dialect.name == "sqlite":  # a station's own log: it names none of the others' images
        with pytest.raises(OrphanSweepRefused, match="does not name their images"):
            shared.gc_orphan_images(min_age_s=0)
    else:  # the site's database, with no verdict yet: the same
        with pytest.raises(OrphanSweepRefused, match="one with no verdict"):
            shared.gc_orphan_images(min_age_s=0)
    assert shared.store.exists(other)
