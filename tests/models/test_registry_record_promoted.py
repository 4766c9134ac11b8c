""":func:`models.registry.record_promoted`: a retrain's candidate is recorded with its label mark and put in force in
one write of ``registry.json``, or, when the model in force changed meanwhile, not recorded at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.registry import (
    SHIPPED,
    InForceChanged,
    ModelEntry,
    RegistryError,
    load_registry,
    promote,
    record_promoted,
    record_version,
    registry_file,
    version_dir,
)
from tests.models.embed_helpers import write_tiny_checkpoint
from tests.models.verdict_world import write_bundle

MARK = "2026-03-01T02:00:00+00:00"


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    folder = tmp_path / "bundle"
    write_bundle(folder, embedder_file=write_tiny_checkpoint(tmp_path / "embedder.pt"))
    return folder


def test_the_candidate_is_recorded_with_its_mark_and_put_in_force_together(bundle: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    entry = ModelEntry("verdict-new", "2026-03-01T02:10:00+00:00", SHIPPED, "candidate", {"cups": 40}, MARK, "ok")
    reg = record_promoted(home, bundle, entry, replacing=SHIPPED)
    assert reg == load_registry(home)
    assert reg.current == "verdict-new" and (version_dir(home, "verdict-new") / "verdict.json").is_file()
    recorded = reg.get("verdict-new")
    assert (recorded.status, recorded.labels_until, recorded.metrics, recorded.note) == (
        "promoted",
        MARK,
        {"cups": 40},
        "ok",
    )
    assert [(h.action, h.previous, h.version) for h in reg.history] == [("promote", SHIPPED, "verdict-new")]


def test_a_dry_runs_entry_of_the_same_bundle_is_brought_up_to_date_and_put_in_force(
    bundle: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    record_version(home, bundle, ModelEntry("verdict-new", "2026-03-01T01:00:00+00:00", SHIPPED))  # no mark
    entry = ModelEntry("verdict-new", "2026-03-01T02:10:00+00:00", SHIPPED, "candidate", {}, MARK, "ok")
    reg = record_promoted(home, bundle, entry, replacing=SHIPPED)
    (recorded,) = reg.versions
    assert reg.current == "verdict-new" and recorded.labels_until == MARK and recorded.status == "promoted"
    assert recorded.created_at == "2026-03-01T01:00:00+00:00"  # registered when the dry run made it


def test_a_model_put_in_force_meanwhile_stands_and_nothing_is_recorded(bundle: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    record_version(home, bundle, ModelEntry("verdict-old", "2026-02-01T00:00:00+00:00", SHIPPED))
    promote(home, "verdict-old")  # a supervisor's promotion while the retrain compared with the shipped bundle
    before = registry_file(home).read_bytes()
    entry = ModelEntry("verdict-new", "2026-03-01T02:10:00+00:00", SHIPPED, "candidate", {}, MARK)
    with pytest.raises(InForceChanged) as caught:
        record_promoted(home, bundle, entry, replacing=SHIPPED)
    assert (caught.value.expected, caught.value.found) == (SHIPPED, "verdict-old")
    assert registry_file(home).read_bytes() == before and not version_dir(home, "verdict-new").exists()


def test_a_folder_without_a_bundle_records_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RegistryError, match=r"holds no verdict\.json"):
        record_promoted(home, empty, ModelEntry("verdict-new", "2026-03-01T02:10:00+00:00", SHIPPED), replacing=SHIPPED)
    assert not registry_file(home).exists()
