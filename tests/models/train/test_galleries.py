"""A data set's mint enrolled from its own photos, cached by what it was enrolled from."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.train.galleries import ENROL_DIR, dataset_gallery, enrolment_gallery, mint_of
from models.types import Side
from tests.models.embed_helpers import tiny_embedder
from tests.models.train.synth_sets import write_set


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_set(tmp_path_factory.mktemp("voter_data"), seed=4, n_cups=2)
    write_set(root / ENROL_DIR, seed=4, n_cups=12, first_index=1000)
    return root


def test_gallery_is_enrolled_from_the_data_sets_photos(data: Path, tmp_path: Path) -> None:
    embedder = tiny_embedder()
    gallery, diameters = dataset_gallery(data, embedder, tmp_path)
    mint = mint_of(data)
    assert set(diameters) == {t.id for t in mint.types}
    sources = [e.source for e in gallery.entries.values()]
    assert any(s.startswith("photo:") for s in sources)
    for coin in mint.types:  # every type and side is enrolled, from photos or (where none) from renders
        for side in (Side.OBVERSE, Side.REVERSE):
            refs = [e for e in gallery.entries.values() if e.type_id == coin.id and e.side == side]
            assert 1 <= len(refs) <= 5
            assert {e.design for e in refs} == {coin.design(side).id}
    again, _ = dataset_gallery(data, embedder, tmp_path)  # cached
    assert len(again) == len(gallery)


def _photo_refs(gallery: object) -> dict[tuple[str, Side], int]:
    refs: dict[tuple[str, Side], int] = {}
    for e in gallery.entries.values():  # type: ignore[attr-defined]
        if e.source.startswith("photo:"):
            refs[(e.type_id, e.side)] = refs.get((e.type_id, e.side), 0) + 1
    return refs


def test_gallery_cache_is_keyed_by_photos_per_side_and_by_the_enrolment_set(data: Path, tmp_path: Path) -> None:
    embedder = tiny_embedder()
    five, _ = dataset_gallery(data, embedder, tmp_path)
    two, _ = dataset_gallery(data, embedder, tmp_path, per_side=2)
    assert max(_photo_refs(five).values()) > 2  # the enrolment set has more photos than two of some face
    assert max(_photo_refs(two).values()) == 2 and set(_photo_refs(two)) == set(_photo_refs(five))
    assert len({p.name for p in tmp_path.glob("gallery-*")}) == 2
    # a re-drawn enrolment set (here: one type's photos gone) is enrolled again, not served from the cache
    enrol = tmp_path / "redrawn" / data.name  # same name, so only the enrolment set tells the two apart
    shutil.copytree(data, enrol)
    index = enrol / ENROL_DIR / "crops" / "index.csv"
    gone = mint_of(data).types[0].id
    lines = index.read_text().splitlines(keepends=True)
    index.write_text("".join(line for line in lines if f",{gone}," not in line))
    cache = tmp_path / "cache"
    dataset_gallery(data, embedder, cache)
    redrawn, _ = dataset_gallery(enrol, embedder, cache)
    assert not any(t == gone for t, _ in _photo_refs(redrawn)) and any(t == gone for t, _ in _photo_refs(five))
    with pytest.raises(ValueError, match="per_side"):
        dataset_gallery(data, embedder, tmp_path, per_side=0)


def test_enrolment_photos_of_another_mint_are_refused(data: Path, tmp_path: Path) -> None:
    other = write_set(tmp_path / "other", seed=9, n_cups=1)
    with pytest.raises(ValueError, match="another mint"):
        enrolment_gallery(other, mint_of(data), tiny_embedder(), progress=False)
