"""Enrolling from the windows (:func:`station.controllers.enrol.enrol_folder`, the tray dialog's enrolment): what
``cupcheck enroll`` warns about reaches the window, and a type enrolled again keeps its declared shared design."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from models.enroll import load_catalog, whole_image_coin
from models.enroll_tray import TrayLook, TrayType
from models.gallery import Gallery
from models.types import Side
from station.controllers.enrol import Enrolment, enrol_folder
from station.controllers.enrol_tray import TrayEnrolment
from tests.models.embed_helpers import coin_image, other_family_index, tiny_embedder


def _catalog(cat: Path, types: dict[str, int], n: int = 3) -> Path:
    for tid, index in types.items():
        for side in (Side.OBVERSE, Side.REVERSE):
            (cat / tid / side.value).mkdir(parents=True)
            for k in range(n):
                cv2.imwrite(str(cat / tid / side.value / f"{k}.png"), coin_image(index, side, 96, angle=40.0 * k))
    return cat


def test_the_window_is_told_what_the_command_warns_about_and_counts_only_files_skipped(tmp_path: Path) -> None:
    """Two types the tiny embedder cannot tell apart, nothing declared: the CLI warns that a cup of one may PASS as
    another, and notes three photos a side; the window's summary says both. Enrolled again from a folder without
    coin.toml, the "kept" line skips no file; an unreadable photo does."""
    emb = tiny_embedder()
    enrolment = Enrolment(tmp_path / "gallery", lambda: emb, per_side=15)
    cat = _catalog(tmp_path / "cat", {"alpha": 0, "beta": other_family_index()})
    first = enrol_folder(cat, enrolment)
    assert first.lookalikes and all("look like one design to the camera" in w for w in first.lookalikes)
    assert len(first.thin) == 2 and first.skipped == 0
    summary = first.summary()
    assert "Warning: " in summary and "a cup of one may PASS as another" in summary and "skipped" not in summary
    assert "Note: 2 types have fewer references a side than the verdict model was calibrated with" in summary
    (cat / "alpha" / "coin.toml").write_text('name = "Alpha"\nlookalikes = ["beta"]\n')
    enrol_folder(cat, enrolment)
    (cat / "alpha" / "coin.toml").unlink()
    (cat / "beta" / "obverse" / "x.png").write_bytes(b"junk")
    again = enrol_folder(cat, enrolment)
    assert any("no coin.toml" in w for w in again.warnings) and again.skipped == 1
    assert ", 1 file skipped;" in again.summary() and not again.lookalikes  # declared lookalikes: no warning


def test_a_type_enrolled_again_from_the_tray_keeps_the_shared_design_it_declared(tmp_path: Path) -> None:
    """alpha enrolled first of its family with obverse_design = "crest", then again from the tray with the dialog's
    box left unticked: its obverse stays the shared "crest", not alpha's own design (a sibling not yet enrolled,
    obverse up, could PASS as alpha)."""
    emb = tiny_embedder()
    gallery_dir = tmp_path / "home" / "gallery"
    cat = _catalog(tmp_path / "cat", {"alpha": 0})
    (cat / "alpha" / "coin.toml").write_text('name = "Alpha"\nobverse_design = "crest"\n')
    enrol_folder(cat, Enrolment(gallery_dir, lambda: emb))

    def look(side: Side) -> TrayLook:
        crops = tuple(coin_image(0, side, 128, angle=30.0 * k) for k in range(4))
        coins = tuple(whole_image_coin(c)[0] for c in crops)
        return TrayLook(side, np.zeros((480, 640, 3), np.uint8), coins, crops, (0, 1, 2, 3), {}, None, None, 0)

    looks = {side: look(side) for side in (Side.OBVERSE, Side.REVERSE)}
    TrayEnrolment(tmp_path / "home", gallery_dir).enrol(lambda: emb)(TrayType("alpha"), looks)
    assert load_catalog(gallery_dir / "catalog.json")["alpha"].obverse_design == "crest"
    designs = {(e.side, e.design) for e in Gallery.load(gallery_dir).entries.values()}
    assert designs == {(Side.OBVERSE, "crest"), (Side.REVERSE, "alpha/reverse")}
