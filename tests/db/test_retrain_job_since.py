"""What a model version has not been trained on: the rulings made after its labels were taken, as the registry
records them (:func:`station.retrain_job.labels_taken`), not after its first verdict."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from db.repository import VerdictRepository
from db.schema import LabelKind
from models.registry import SHIPPED, ModelEntry, RegistryError, register_version
from models.types import Decision
from station.retrain_job import labels_taken
from tests.db.factories import SUPERVISOR, make_record


def _register(models: Path, version: str, labels_until: datetime | None) -> None:
    folder = models.parent / f"src-{version}"
    folder.mkdir()
    (folder / "verdict.json").write_text(json.dumps({"name": version}))
    until = None if labels_until is None else labels_until.isoformat()
    entry = ModelEntry(version=version, created_at="2026-01-01T00:00:00+00:00", parent=SHIPPED, labels_until=until)
    register_version(models, folder, entry)


def test_rulings_made_between_a_model_s_build_and_its_first_verdict_are_new_to_it(
    repo: VerdictRepository, tmp_path: Path
) -> None:
    """v2 was built from the rulings so far; cups 2 and 3 and a coin of cup 1 were ruled on before its first verdict.
    Taking ``since`` from v2's first verdict exported cup 4 alone, so v2's successor was never told these rulings
    were new to it."""
    models = tmp_path / "models-home"
    flag = {"decision": Decision.FLAG, "p_correct": 0.5, "order": None, "model_version": "v1"}
    yesterday = datetime.now(UTC) - timedelta(hours=10)
    cups = [repo.cup_of_verdict(repo.log_verdict(make_record(i, created_at=yesterday, **flag))) for i in (1, 2, 3)]  # type: ignore[arg-type]
    repo.relabel(SUPERVISOR, cups[0], LabelKind.CONFIRMED)
    built_from = repo.training_export()  # the night's retrain: v2 learns cup 1 and records its newest ruling
    _register(models, "v2", max([c.labelled_at for c in built_from.cups] + [c.labelled_at for c in built_from.coins]))

    repo.relabel(SUPERVISOR, cups[1], LabelKind.CONFIRMED)  # the night shift, before v2 judged a cup
    repo.relabel(SUPERVISOR, cups[2], LabelKind.CORRECTED, corrected_type="eur_2")
    repo.relabel(SUPERVISOR, cups[0], LabelKind.NOT_A_COIN, coin_index=0)
    first_of_v2 = make_record(4, decision=Decision.FLAG, p_correct=0.5, order=None, model_version="v2")
    cup4 = repo.cup_of_verdict(repo.log_verdict(first_of_v2))
    repo.relabel(SUPERVISOR, cup4, LabelKind.CONFIRMED)

    new = repo.training_export(since=labels_taken(models, "v2"))
    # cup 1 comes whole, its cup ruling beside its coin's new one (db.export: freshness picks cups, not rulings)
    assert [c.cup_id for c in new.cups] == [cups[0], cups[1], cups[2], cup4]
    assert (cups[0], 0, LabelKind.NOT_A_COIN) in {(c.cup_id, c.index, c.label) for c in new.coins}
    assert labels_taken(models, SHIPPED) is None  # the shipped bundle learnt no ruling: every one is new to it


def test_a_version_whose_labels_are_unknown_or_unregistered_is_named(tmp_path: Path) -> None:
    models = tmp_path / "models-home"
    _register(models, "dry", None)  # a dry run's candidate leaves its labels to the next night
    with pytest.raises(LookupError, match=r"'dry' .* does not say when its labels were taken"):
        labels_taken(models, "dry")
    with pytest.raises(RegistryError, match="'v9' is not registered"):
        labels_taken(models, "v9")
