"""Enrolment: a catalogue folder of crops becomes gallery references; bad and duplicate files are reported."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.enroll import (
    GALLERY_LOCK,
    REFERENCE_CROPS,
    CatalogError,
    TypeInfo,
    catalog_lookalikes,
    enroll_catalog,
    gallery_state,
    is_crop_image,
    is_cut_crop,
    load_catalog,
    merge_catalog,
    read_image,
    save_catalog,
    save_enrolment,
    scan_catalog,
    shared_design_notes,
    side_from_name,
    thin_enrolment_notes,
)
from models.gallery import Gallery, GalleryEntry
from models.gallery_view import GalleryView
from models.template import SIG_SHAPE
from models.types import Side
from tests.models.embed_helpers import coin_image, other_family_index, tiny_embedder


def make_catalog(root: Path) -> Path:
    """Two types with sides in sub-folders (beta without coin.toml), one flat type, plus an unreadable file, a
    duplicate and a text file."""
    cat = root / "catalog"
    for tid, index in (("alpha", 0), ("beta", other_family_index())):
        for side in (Side.OBVERSE, Side.REVERSE):
            d = cat / tid / side.value
            d.mkdir(parents=True)
            for n, angle in enumerate((0.0, 120.0)):
                cv2.imwrite(str(d / f"{n}.png"), coin_image(index, side, 96, angle))
    (cat / "alpha" / "coin.toml").write_text('name = "Alpha 2 units"\ndiameter_mm = 23.25\nlookalikes = ["gamma"]\n')
    gamma = cat / "gamma"
    gamma.mkdir()
    cv2.imwrite(str(gamma / "gamma_rev.jpg"), coin_image(1, Side.REVERSE, 96))
    cv2.imwrite(str(gamma / "front.jpg"), coin_image(1, Side.OBVERSE, 96))
    (gamma / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    shutil.copy(cat / "alpha" / "obverse" / "0.png", gamma / "copy_of_alpha.png")
    (gamma / "notes.txt").write_text("hello")
    (cat / "empty_type").mkdir()
    return cat


def test_scan_catalog_reads_sides_and_metadata(tmp_path: Path) -> None:
    images, infos, warnings = scan_catalog(make_catalog(tmp_path))
    sides = {(i.type_id, i.path.name): i.side for i in images}
    assert sides[("alpha", "0.png")] in (Side.OBVERSE, Side.REVERSE)
    assert sides[("gamma", "gamma_rev.jpg")] == Side.REVERSE and sides[("gamma", "front.jpg")] == Side.OBVERSE
    assert infos["alpha"].name == "Alpha 2 units" and infos["alpha"].diameter_mm == pytest.approx(23.25)
    assert infos["beta"].diameter_mm is None and infos["beta"].name == "beta"
    text = "\n".join(warnings)
    assert "notes.txt: not an image" in text and "empty_type" in text
    with pytest.raises(FileNotFoundError):
        scan_catalog(tmp_path / "nope")


def test_a_misspelt_side_folder_is_named(tmp_path: Path) -> None:
    cat = make_catalog(tmp_path)
    (cat / "alpha" / "reverse").rename(cat / "alpha" / "revers")
    images, _, warnings = scan_catalog(cat)
    assert {i.side for i in images if i.path.parent.name == "revers"} == {Side.OBVERSE}  # as its names say
    (said,) = [w for w in warnings if "revers:" in w]
    assert said.startswith(f"{cat / 'alpha' / 'revers'}: not an 'obverse' or 'reverse' folder; the side of its 2 ")
    assert not [w for w in scan_catalog(make_catalog(tmp_path / "again"))[2] if "not an 'obverse'" in w]


def test_a_type_folder_given_as_the_catalogue_is_refused(tmp_path: Path) -> None:
    """Given ``catalog/alpha`` instead of ``catalog``, its side folders would become types 'obverse' and 'reverse'."""
    cat = make_catalog(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"holds side folders: it is one type's folder; give the catalogue"):
        scan_catalog(cat / "alpha")
    with pytest.raises(FileNotFoundError, match="is a file, not a folder"):
        scan_catalog(cat / "alpha" / "coin.toml")


def test_type_ids_and_diameters_a_catalogue_cannot_use_are_named_and_left_out(tmp_path: Path) -> None:
    cat = make_catalog(tmp_path)
    for bad in ("a,b", "-x"):
        shutil.copytree(cat / "alpha", cat / bad)
    cv2.imwrite(str(cat / "loose.png"), coin_image(0, Side.OBVERSE, 96))
    images, infos, warnings = scan_catalog(cat)
    assert {i.type_id for i in images} == {"alpha", "beta", "gamma"} and "a,b" not in infos
    text = "\n".join(warnings)
    assert f"{cat / 'a,b'}: skipped: the type id must be 1 to 64 letters" in text and f"{cat / '-x'}: skipped" in text
    assert f"{cat}: 1 image(s) beside the type folders (loose.png) skipped" in text
    (cat / "alpha" / "coin.toml").write_text("diameter_mm = -3\n")
    with pytest.raises(CatalogError, match=r"a coin's diameter is between 5 and 100 mm \(got -3\)"):
        scan_catalog(cat)


def test_linked_folders_are_followed_and_what_cannot_be_a_reference_is_named(tmp_path: Path) -> None:
    cat = make_catalog(tmp_path)
    kept = tmp_path / "kept_elsewhere"
    shutil.move(str(cat / "alpha" / "reverse"), kept)
    (cat / "alpha" / "reverse").symlink_to(kept, target_is_directory=True)  # photos kept elsewhere, linked in
    (kept / "loop").symlink_to(cat / "alpha", target_is_directory=True)  # a link back up the tree: once only
    (cat / "alpha" / "obverse" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (cat / "alpha" / "obverse" / "coin.gif").write_bytes(b"GIF89a")
    cv2.imwrite(str(cat / "alpha" / "obverse" / "dot.png"), np.zeros((16, 16, 3), np.uint8))
    images, _, warnings = scan_catalog(cat)
    alpha = [i for i in images if i.type_id == "alpha"]
    assert sorted((i.side.value, i.path.name) for i in alpha if i.side == Side.REVERSE) == [
        ("reverse", "0.png"),
        ("reverse", "1.png"),
    ]
    text = "\n".join(warnings)
    assert "gone.png: a link to nothing, skipped" in text
    assert "coin.gif: .gif photos are not read, skipped: save it as JPEG or PNG" in text
    emb = tiny_embedder()
    report, _ = enroll_catalog(cat, Gallery(emb.embed_dim, emb.version), emb, crops=True, progress=False)
    assert any(w.endswith("dot.png: 16×16 pixels, too small to show a coin, skipped") for w in report.warnings)


def test_enroll_catalog_adds_good_images_and_warns_about_bad_ones(tmp_path: Path) -> None:
    emb = tiny_embedder()
    gallery = Gallery(emb.embed_dim, emb.version)
    report, infos = enroll_catalog(make_catalog(tmp_path), gallery, emb, progress=False)
    assert report.enrolled == {
        "alpha": {"obverse": 2, "reverse": 2},
        "beta": {"obverse": 2, "reverse": 2},
        "gamma": {"obverse": 1, "reverse": 1},
    }
    assert [p.name for p in report.unreadable] == ["broken.jpg"]
    assert [p.name for p in report.duplicates] == ["copy_of_alpha.png"]
    assert any("duplicate of" in w for w in report.warnings) and any("cannot read" in w for w in report.warnings)
    assert len(gallery) == 10 and set(infos) == {"alpha", "beta", "gamma"}
    # Re-enrolling replaces a type instead of adding duplicates; the other types keep their references.
    ids_beta = sorted(i for i, e in gallery.entries.items() if e.type_id == "beta")
    shutil.rmtree(tmp_path / "catalog" / "gamma")
    report2, _ = enroll_catalog(tmp_path / "catalog", gallery, emb, progress=False)
    assert len(gallery) == 10 and report2.duplicates == []
    assert sorted(i for i, e in gallery.entries.items() if e.type_id == "beta") != ids_beta
    assert gallery.types()["gamma"] == {"obverse": 1, "reverse": 1}


def test_whole_photo_without_detector_is_skipped_with_a_warning(tmp_path: Path) -> None:
    cat = tmp_path / "cat" / "delta"
    cat.mkdir(parents=True)
    photo = np.zeros((480, 640, 3), np.uint8)
    photo[100:196, 100:196] = coin_image(0, Side.OBVERSE, 96)
    cv2.imwrite(str(cat / "photo.jpg"), photo)
    assert not is_crop_image(photo) and is_crop_image(coin_image(0, size=96))
    emb = tiny_embedder()
    report, _ = enroll_catalog(tmp_path / "cat", Gallery(emb.embed_dim, emb.version), emb, progress=False)
    assert report.enrolled == {} and any("no detector" in w for w in report.warnings)
    report, _ = enroll_catalog(tmp_path / "cat", Gallery(emb.embed_dim, emb.version), emb, crops=True, progress=False)
    assert report.enrolled == {"delta": {"obverse": 1}}


def test_catalog_json_round_trip(tmp_path: Path) -> None:
    _, infos, _ = scan_catalog(make_catalog(tmp_path))
    path = tmp_path / "g" / "catalog.json"
    save_catalog(path, merge_catalog({}, infos, ["alpha", "beta"]))
    loaded = load_catalog(path)
    assert set(loaded) == {"alpha", "beta"} and loaded["alpha"].diameter_mm == pytest.approx(23.25)
    assert loaded["alpha"].lookalikes == ("gamma",) and loaded["beta"].lookalikes == ()
    assert load_catalog(tmp_path / "missing.json") == {}


def _two_sided_type(cat: Path, tid: str, index: int, toml: str) -> None:
    for side in (Side.OBVERSE, Side.REVERSE):
        d = cat / tid / side.value
        d.mkdir(parents=True)
        cv2.imwrite(str(d / "a.png"), coin_image(index, side, 96, 30.0 * index))
    (cat / tid / "coin.toml").write_text(toml)


def test_declared_shared_designs_mark_the_side_shared_across_enrolments(tmp_path: Path) -> None:
    # two state quarters sharing Washington's obverse, and a cent with designs of its own
    _two_sided_type(tmp_path / "c1", "q-de", 0, 'obverse_design = "washington"\n')
    _two_sided_type(tmp_path / "c1", "cent", other_family_index(), "")
    _two_sided_type(tmp_path / "c2", "q-pa", 1, 'obverse_design = "washington"\nreverse_design = "keystone"\n')
    _, infos, warnings = scan_catalog(tmp_path / "c1")
    assert warnings == [] and infos["q-de"].obverse_design == "washington" and infos["q-de"].reverse_design is None
    assert infos["q-de"].design(Side.OBVERSE) == "washington" and infos["q-de"].design(Side.REVERSE) == "q-de/reverse"

    emb = tiny_embedder()
    gallery = Gallery(emb.embed_dim, emb.version)
    enroll_catalog(tmp_path / "c1", gallery, emb, progress=False)
    assert shared_design_notes(gallery) == []  # one type shows "washington" so far
    enroll_catalog(tmp_path / "c2", gallery, emb, progress=False)  # a later enrolment names the same design
    designs = {(e.type_id, e.side.value): e.design for e in gallery.entries.values()}
    assert designs == {
        ("q-de", "obverse"): "washington",
        ("q-de", "reverse"): "q-de/reverse",
        ("q-pa", "obverse"): "washington",
        ("q-pa", "reverse"): "keystone",
        ("cent", "obverse"): "cent/obverse",
        ("cent", "reverse"): "cent/reverse",
    }
    view = GalleryView.from_gallery(gallery)
    shared = {t: bool(view.obverse_shared[view.type_index[t]]) for t in view.types}
    assert shared == {"q-de": True, "q-pa": True, "cent": False}
    (note,) = shared_design_notes(gallery)
    assert "obverse design 'washington' is shared by 2 types (q-de, q-pa)" in note

    # kept in catalog.json with the rest of the metadata
    path = tmp_path / "catalog.json"
    save_catalog(path, infos.values())
    loaded = load_catalog(path)
    assert loaded["q-de"].obverse_design == "washington" and loaded["cent"].obverse_design is None


@pytest.mark.parametrize("value", ["1999", '""', '["washington"]'])
def test_a_design_name_that_is_not_a_name_is_refused(tmp_path: Path, value: str) -> None:
    """Left out, the design would make the side the type's own: a cup showing the shared design could PASS on it."""
    _two_sided_type(tmp_path / "cat", "q", 0, f'name = "Quarter"\nobverse_design = {value}\n')
    with pytest.raises(CatalogError, match="obverse_design must be a design name"):
        scan_catalog(tmp_path / "cat")


@pytest.mark.parametrize(
    ("toml", "said"),
    [
        ('lookalike = ["beta"]\n', "unknown key 'lookalike': did you mean 'lookalikes'?"),
        ('obverse-design = "crest"\n', "unknown key 'obverse-design': did you mean 'obverse_design'?"),
        ("Diameter = 21.5\n", "unknown key 'Diameter': did you mean 'diameter_mm'?"),
        ('colour = "gold"\n', "unknown key 'colour': a coin.toml knows only name, diameter_mm, lookalikes, "),
    ],
)
def test_a_misspelt_key_in_coin_toml_is_refused_and_nothing_is_enrolled(tmp_path: Path, toml: str, said: str) -> None:
    """A key nobody reads would declare nothing: a lookalike pair or a shared design meant, and cups passed as if the
    catalogue had never said so."""
    _two_sided_type(tmp_path / "cat", "alpha", 0, 'name = "Alpha"\n' + toml)
    _two_sided_type(tmp_path / "cat", "beta", other_family_index(), "")
    toml_path = tmp_path / "cat" / "alpha" / "coin.toml"
    with pytest.raises(CatalogError) as refused:
        scan_catalog(tmp_path / "cat")
    assert str(refused.value).startswith(f"{toml_path}: {said}")
    assert "name, diameter_mm, lookalikes, obverse_design, reverse_design" in str(refused.value)
    emb = tiny_embedder()
    gallery = Gallery(emb.embed_dim, emb.version)
    with pytest.raises(CatalogError, match="unknown key"):
        enroll_catalog(tmp_path / "cat", gallery, emb, progress=False)
    assert len(gallery) == 0


@pytest.mark.parametrize(
    ("toml", "said"),
    [
        (b'name = "Alpha \\ud83e\\ude99"\nlookalikes = ["beta"]\n', "is not valid TOML (Escaped character is not a"),
        (b'name = [broken\nlookalikes = ["beta"]\n', "is not valid TOML ("),
        ('name = "Pièce"\nlookalikes = ["beta"]\n'.encode("latin-1"), "is not UTF-8 text (invalid"),
        (b'lookalikes = "beta"\n', "holds a value it cannot use (lookalikes must be a list of type ids)"),
        (b"diameter_mm = 250\n", "holds a value it cannot use (a coin's diameter is between 5 and 100 mm"),
        (b'obverse_design = ""\n', "holds a value it cannot use (obverse_design must be a design name"),
    ],
)
def test_a_coin_toml_that_cannot_be_read_is_refused_and_the_type_keeps_its_references(
    tmp_path: Path, toml: bytes, said: str
) -> None:
    """Enrolled without its coin.toml, the type would lose the lookalikes and shared designs it declares, and a cup
    of it could PASS on the camera's word: the enrolment is refused, naming the file and the error."""
    emb = tiny_embedder()
    gallery = Gallery(emb.embed_dim, emb.version)
    _two_sided_type(tmp_path / "first", "alpha", 0, 'name = "Alpha"\nlookalikes = ["beta"]\n')
    enroll_catalog(tmp_path / "first", gallery, emb, progress=False)
    before = dict(gallery.entries)
    _two_sided_type(tmp_path / "cat", "alpha", 1, "")
    _two_sided_type(tmp_path / "cat", "beta", other_family_index(), 'name = "Beta"\n')
    toml_path = tmp_path / "cat" / "alpha" / "coin.toml"
    toml_path.write_bytes(toml)
    with pytest.raises(CatalogError) as refused:
        scan_catalog(tmp_path / "cat")
    assert str(refused.value).startswith(f"{toml_path}: {said}")
    assert str(refused.value).endswith(
        "enrol again; alpha is not enrolled without it (its name, diameter, lookalikes and designs would be left out)"
    )
    with pytest.raises(CatalogError, match="alpha is not enrolled without it"):
        enroll_catalog(tmp_path / "cat", gallery, emb, progress=False)
    assert gallery.entries == before  # alpha's references as they were, and beta not enrolled either


def test_declared_lookalikes_are_symmetric_and_checked(tmp_path: Path) -> None:
    infos = {"a": TypeInfo("a", "a", None, ("b",)), "b": TypeInfo("b", "b", None), "c": TypeInfo("c", "c", None)}
    assert catalog_lookalikes(infos) == {"a": ("b",), "b": ("a",)}
    d = tmp_path / "cat" / "delta"
    d.mkdir(parents=True)
    cv2.imwrite(str(d / "x.png"), coin_image(0, Side.REVERSE, 96))
    (d / "coin.toml").write_text('lookalikes = "alpha"\n')  # a string, not a list
    with pytest.raises(CatalogError, match="lookalikes must be a list"):
        scan_catalog(tmp_path / "cat")


def _on_table(crop: np.ndarray, side: int = 150) -> np.ndarray:
    """``crop`` pasted off-centre on a wood-coloured square with a neighbour's edge: a crop that shows background."""
    out = np.zeros((side, side, 3), np.uint8)
    out[:] = (40, 70, 120)
    h = crop.shape[0]
    y0, x0 = (side - h) // 2 + 6, (side - h) // 2 - 8
    patch = out[y0 : y0 + h, x0 : x0 + h]
    coin = crop.max(axis=2) > 0
    patch[coin] = crop[coin]
    cv2.circle(out, (side + 20, side // 2), 45, (60, 160, 200), -1)
    return out


def test_is_cut_crop_tells_cut_crops_from_crops_with_background() -> None:
    cut = coin_image(0, Side.OBVERSE, 96)
    assert is_cut_crop(cut)
    assert not is_cut_crop(_on_table(cut))
    assert not is_cut_crop(np.full((96, 96, 3), 200, np.uint8))


def test_recut_crop_cuts_the_coin_like_the_station(real_data: Path) -> None:
    from models.detector import Detector
    from models.enroll import recut_crop

    det = Detector.load()
    crops = sorted((real_data / "euro_kaa" / "crops" / "train" / "1e").glob("*.jpg"))[:3]
    assert crops
    for path in crops:
        raw = read_image(path)
        assert raw is not None and not is_cut_crop(raw)
        cut = recut_crop(raw, det, 128)
        assert cut is not None and cut.shape == (128, 128, 3)
        assert is_cut_crop(cut)
        # The coin fills the crop: most of the inscribed disc is coin, not background.
        yy, xx = np.mgrid[:128, :128]
        disc = (xx - 63.5) ** 2 + (yy - 63.5) ** 2 <= 60**2
        assert float((cut.max(axis=2) > 0)[disc].mean()) > 0.9
    # A blank crop holds no coin.
    assert recut_crop(np.full((150, 150, 3), 128, np.uint8), det, 128) is None


def test_enrolment_recuts_crops_with_background_only(tmp_path: Path, real_data: Path) -> None:
    from models.detector import Detector

    cat = tmp_path / "cat"
    (cat / "e1" / "obverse").mkdir(parents=True)
    (cat / "syn" / "obverse").mkdir(parents=True)
    for path in sorted((real_data / "euro_kaa" / "crops" / "train" / "1e").glob("*.jpg"))[:2]:
        shutil.copy(path, cat / "e1" / "obverse" / path.name)
    cv2.imwrite(str(cat / "syn" / "obverse" / "0.png"), coin_image(0, Side.OBVERSE, 96))
    emb = tiny_embedder()
    det = Detector.load()
    recut_gallery = Gallery(emb.embed_dim, emb.version)
    report, _ = enroll_catalog(cat, recut_gallery, emb, crops=True, detector=lambda: det, progress=False)
    assert report.recut == 2 and report.uncut == []
    raw_gallery = Gallery(emb.embed_dim, emb.version)
    report, _ = enroll_catalog(cat, raw_gallery, emb, crops=True, detector=lambda: det, recut=False, progress=False)
    assert report.recut == 0

    def vectors(g: Gallery, tid: str) -> np.ndarray:
        vecs, ids = g.vectors()
        return vecs[[n for n, i in enumerate(ids) if g.entries[i].type_id == tid]]

    # The already cut synthetic crop is embedded as it is; the real crops with background are not.
    np.testing.assert_allclose(vectors(recut_gallery, "syn"), vectors(raw_gallery, "syn"), atol=1e-6)
    assert not np.allclose(vectors(recut_gallery, "e1"), vectors(raw_gallery, "e1"), atol=1e-3)


def test_thin_enrolment_notes_name_the_sides_with_fewer_photos_than_the_model_was_calibrated_with() -> None:
    enrolled = {"t1": {"obverse": 15, "reverse": 15}, "t2": {"obverse": 3, "reverse": 20}, "t3": {"reverse": 4}}
    notes = thin_enrolment_notes(enrolled, 15)
    assert len(notes) == 2
    assert notes[0].startswith("t2 has 3 obverse reference(s); the verdict model was calibrated with 15 a side")
    assert notes[1].startswith("t3 has 0 obverse and 4 reverse reference(s)")
    assert thin_enrolment_notes(enrolled, 3) == [
        "t3 has 0 obverse reference(s); the verdict model was calibrated "
        "with 3 a side: enrol more photos of it for its precision guarantee "
        "to hold"
    ]


def _refs(gallery: Gallery, type_id: str, seed: int) -> None:
    """Two unit references of ``type_id`` (one a side), with template signatures."""
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(2, gallery.dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    entries = [GalleryEntry(type_id, side, f"{type_id}/{side.value}", f"photo-{seed}") for side in Side]
    gallery.add(emb, entries, rng.random((2, *SIG_SHAPE)).astype(np.float32))


def test_two_enrolments_into_a_shared_gallery_keep_each_others_types(tmp_path: Path) -> None:
    folder = tmp_path / "share" / "gallery"
    base = Gallery(8, "emb-1")
    _refs(base, "old", 0)
    save_enrolment(folder, base, {"old": TypeInfo("old", "Old", 20.0)}, ["old"], None)
    before = gallery_state(folder)
    on_pc1, on_pc2 = Gallery.load(folder), Gallery.load(folder)  # both PCs load, then embed for minutes
    _refs(on_pc2, "beta", 2)
    save_enrolment(folder, on_pc2, {"beta": TypeInfo("beta", "Beta", 22.0)}, ["beta"], before)
    _refs(on_pc1, "alpha", 1)
    saved, catalog = save_enrolment(folder, on_pc1, {"alpha": TypeInfo("alpha", "Alpha", 21.0)}, ["alpha"], before)
    assert set(saved.types()) == set(Gallery.load(folder).types()) == {"old", "alpha", "beta"}
    assert {i.type_id for i in catalog} == {"old", "alpha", "beta"} and Gallery.load(folder).has_signatures
    mine, _ = on_pc1.vectors()
    theirs, ids = Gallery.load(folder).vectors()
    alpha = [k for k, i in enumerate(ids) if Gallery.load(folder).entries[i].type_id == "alpha"]
    np.testing.assert_allclose(theirs[alpha], mine[-2:])  # pc 1's references, as embedded
    assert not (folder / GALLERY_LOCK).exists()

    state = gallery_state(folder)  # the same type enrolled again on another PC meanwhile: the later one wins
    _refs(on_pc2, "alpha", 5)  # pc 2 (still holding its older load) re-enrols alpha
    save_enrolment(folder, on_pc2, {"alpha": TypeInfo("alpha", "Alpha", 21.0)}, ["alpha"], before)
    latest = Gallery.load(folder)
    assert latest.types()["alpha"] == {"obverse": 1, "reverse": 1} and set(latest.types()) == {"old", "alpha", "beta"}
    vecs, ids = latest.vectors()
    alpha = [k for k, i in enumerate(ids) if latest.entries[i].type_id == "alpha"]
    np.testing.assert_allclose(vecs[alpha], on_pc2.vectors()[0][-2:])
    fresh = Gallery(8, "emb-1")  # enroll --rebuild: a new gallery replaces whatever was saved
    _refs(fresh, "gamma", 7)
    info = {"gamma": TypeInfo("gamma", "G", None)}
    rebuilt, _ = save_enrolment(folder, fresh, info, ["gamma"], state, replace_all=True)
    assert set(Gallery.load(folder).types()) == {"gamma"} == set(rebuilt.types())


def test_a_tray_photo_gives_every_whole_coin_as_a_reference(tmp_path: Path) -> None:
    """Two photos of a tray, one a side, each with six coins of the type: twelve references (the shipped
    detector cuts them), each naming its own cut coin; without ``every_coin`` neither photo is enrolled (which of
    six coins is the type's cannot be told: the largest was whichever was largest), and each is named."""
    from models.detector import Detector
    from models.synth.mint import generate_mint
    from tests.station.nearest_type_pipeline import compose_cup

    coin = generate_mint(12, 0).types[0]
    cat = tmp_path / "cat"
    for side in (Side.OBVERSE, Side.REVERSE):
        (cat / "t0" / side.value).mkdir(parents=True)
        cv2.imwrite(str(cat / "t0" / side.value / "tray.png"), compose_cup([(coin, side)] * 6, size=640))
    emb = tiny_embedder()
    det = Detector.load()
    crops = tmp_path / "gallery" / REFERENCE_CROPS
    every = Gallery(emb.embed_dim, emb.version)
    report, _ = enroll_catalog(
        cat, every, emb, crops=False, detector=lambda: det, every_coin=True, crop_dir=crops, progress=False
    )
    assert report.enrolled == {"t0": {"obverse": 6, "reverse": 6}}
    sources = {e.source for e in every.entries.values()}
    size = emb.prep.input_size  # each a picture of one cut coin, at the embedder's input size
    pictures = [cv2.imread(s) for s in sources]
    assert sources and all(Path(s).parent == crops for s in sources)
    assert all(p is not None and p.shape[:2] == (size, size) for p in pictures)
    one_coin = Gallery(emb.embed_dim, emb.version)  # taken for photos of one coin: which coin is t0's is unknown
    report, _ = enroll_catalog(cat, one_coin, emb, crops=False, detector=lambda: det, progress=False)
    assert report.enrolled == {} and len(one_coin) == 0 and report.skipped == 2
    assert report.several_coins == [cat / "t0" / side.value / "tray.png" for side in (Side.OBVERSE, Side.REVERSE)]
    said = [w for w in report.warnings if "photo shows 6 coins" in w]
    assert len(said) == 2 and all("skipped. Use --every-coin" in w for w in said)


def test_a_stray_coin_on_a_tray_photo_is_left_out_and_named(tmp_path: Path) -> None:
    """Six coins of the type and one of another family, smaller or larger, on the reverse photo: six references a
    side, and the stray named in the report."""
    from models.detector import Detector
    from models.synth.mint import generate_mint
    from tests.station.nearest_type_pipeline import FACE_PX, compose_cup, face_bgr

    mint = generate_mint(12, 0)
    coin, stray = mint.types[0], mint.types[other_family_index()]
    cat = tmp_path / "cat"
    for side in (Side.OBVERSE, Side.REVERSE):
        (cat / "t0" / side.value).mkdir(parents=True)
        tray = compose_cup([(coin, side)] * 6, size=640)  # two rows of three cells, 213 px each
        if side == Side.REVERSE:  # the stray, 20 % smaller, in the third row
            face = round(0.8 * min(FACE_PX, 213 - 12))
            tray[460 : 460 + face, 40 : 40 + face] = face_bgr(stray, side, face)
        cv2.imwrite(str(cat / "t0" / side.value / "tray.png"), tray)
    emb = tiny_embedder()
    gallery = Gallery(emb.embed_dim, emb.version)
    det = Detector.load()
    report, _ = enroll_catalog(cat, gallery, emb, crops=False, detector=lambda: det, every_coin=True, progress=False)
    assert report.enrolled == {"t0": {"obverse": 6, "reverse": 6}}
    (warning,) = report.warnings
    assert warning.startswith(f"{cat / 't0' / 'reverse' / 'tray.png'}: coin ")
    assert "is 20% smaller than the others (another type?), left out" in warning


def test_coins_are_numbered_by_their_place_among_all_instances() -> None:
    from models.enroll import numbered_coins
    from models.types import CoinInstance, Frame

    def instance(cx: float, is_coin: bool) -> CoinInstance:
        mask = np.ones((30, 30), bool)
        bbox = np.array([cx - 15, 20, cx + 15, 50], np.float32)
        x0 = int(cx) - 15
        return CoinInstance(bbox, mask, (x0, 20), 0.9, (cx, 35.0), (30.0, 30.0), is_coin=is_coin)

    frame = Frame(image=np.full((80, 200, 3), 100, np.uint8))
    found = [instance(30, True), instance(100, False), instance(170, True)]
    coins = numbered_coins(frame, found, 32)
    assert [(n, inst is found[n - 1]) for n, inst, _ in coins] == [(1, True), (3, True)]  # the object counts
    assert all(crop.image.shape[:2] == (32, 32) for _, _, crop in coins)


def test_a_photo_of_one_coin_gives_its_whole_coin_not_a_larger_one_cut_by_the_edge(tmp_path: Path) -> None:
    """A catalogue photo of one coin with a larger one cut by the photo's edge: the whole coin is the reference (the
    largest was the cut one, showing part of its face); a photo of one coin alone is still enrolled."""
    from models.detector import Detector
    from models.enroll import detect_coins
    from models.synth.mint import generate_mint
    from tests.station.nearest_type_pipeline import TABLE_BGR, face_bgr

    mint = generate_mint(12, 0)
    photo = np.full((480, 640, 3), TABLE_BGR, np.uint8)
    photo[180:320, 300:440] = face_bgr(mint.types[0], Side.OBVERSE, 140)
    photo[120:320, 0:120] = face_bgr(mint.types[other_family_index()], Side.OBVERSE, 200)[:, 80:]  # cut by the edge
    alone = np.full((480, 640, 3), TABLE_BGR, np.uint8)
    alone[170:310, 250:390] = face_bgr(mint.types[0], Side.REVERSE, 140)
    cat = tmp_path / "cat" / "t0"
    (cat / "obverse").mkdir(parents=True)
    (cat / "reverse").mkdir()
    cv2.imwrite(str(cat / "obverse" / "photo.png"), photo)
    cv2.imwrite(str(cat / "reverse" / "photo.png"), alone)
    emb, det = tiny_embedder(), Detector.load()
    coins = detect_coins(photo, det, emb.prep.input_size)
    whole = [crop for inst, crop in coins if not inst.partial]
    largest = max(coins, key=lambda c: c[0].diameter_px)[0]
    assert len(whole) == 1 and largest.partial  # the largest coin found is the one cut by the edge
    gallery = Gallery(emb.embed_dim, emb.version)
    report, _ = enroll_catalog(cat.parent, gallery, emb, crops=False, detector=lambda: det, progress=False)
    assert report.enrolled == {"t0": {"obverse": 1, "reverse": 1}} and report.skipped == 0
    vectors, ids = gallery.vectors()
    (row,) = [k for k, i in enumerate(ids) if gallery.entries[i].side == Side.OBVERSE]
    assert float(vectors[row] @ emb.embed([whole[0].image])[0]) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    ("stem", "side"),
    [
        ("coinReverse", Side.REVERSE),
        ("2euroRev", Side.REVERSE),
        ("t1Back", Side.REVERSE),
        ("t1_reverse", Side.REVERSE),
        ("Tails", Side.REVERSE),
        ("coin-REV-2", Side.REVERSE),
        ("front", Side.OBVERSE),
        ("backup_3", Side.OBVERSE),
        ("revolution", Side.OBVERSE),
        ("coinObverse", Side.OBVERSE),
    ],
)
def test_a_file_name_says_the_reverse_by_a_whole_word_camel_case_included(stem: str, side: Side) -> None:
    assert side_from_name(stem) == side


def test_sides_guessed_from_names_are_counted_and_hidden_folders_are_not_walked(tmp_path: Path) -> None:
    """Photos beside no side folder: a camelCase reverse is read as one, and a warning counts the sides guessed.
    A viewer's ``.thumbnails``, a NAS's ``@eaDir`` and a zip's ``__MACOSX`` are not walked into, in a type's folder
    or beside the types."""
    cat = tmp_path / "cat"
    flat = cat / "t1"
    flat.mkdir(parents=True)
    for name in ("coinReverse.jpg", "2euroRev.jpg", "coinFront.jpg"):
        cv2.imwrite(str(flat / name), coin_image(0, Side.OBVERSE, 96))
    obverse = cat / "t2" / "obverse"
    for hidden in (obverse / ".thumbnails", cat / "t2" / "@eaDir", cat / "t2" / "__MACOSX", cat / "__MACOSX"):
        hidden.mkdir(parents=True)
        cv2.imwrite(str(hidden / "a.jpg"), coin_image(1, Side.OBVERSE, 96))
    cv2.imwrite(str(obverse / "a.jpg"), coin_image(1, Side.OBVERSE, 96))
    images, infos, warnings = scan_catalog(cat)
    assert {(i.type_id, i.path.name): i.side for i in images} == {
        ("t1", "coinReverse.jpg"): Side.REVERSE,
        ("t1", "2euroRev.jpg"): Side.REVERSE,
        ("t1", "coinFront.jpg"): Side.OBVERSE,
        ("t2", "a.jpg"): Side.OBVERSE,
    }
    assert [i.path for i in images if i.type_id == "t2"] == [obverse / "a.jpg"] and set(infos) == {"t1", "t2"}
    assert warnings == [
        f"{flat}: in no 'obverse' or 'reverse' folder; the side of its 3 photos was taken from the file names "
        "(2 reverse, named rev, reverse, back or tails; 1 obverse): put its photos in obverse/ and reverse/ folders "
        "if a name does not say its side"
    ]
