"""The real denominations whose training crops go into scenes, and each crop cut to its coin's disc."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from models.synth.real_coins import REAL_DIAMETERS_MM, fit_crop_disc, list_real_types, real_face, rupee_is_train


def test_real_types_use_training_crops_only(real_data: Path) -> None:
    types = list_real_types(real_data)
    ids = {t.id for t in types}
    assert {"real-euro-1e", "real-won-100won", "real-rupee-2_rupee"} <= ids
    for t in types:
        assert all("/test/" not in str(p) for p in t.files)
    rupee = [p for p in sorted((real_data / "rupee_somanna/crops/2_rupee").glob("*.jpg"))]
    share = np.mean([rupee_is_train(p) for p in rupee])
    assert 0.7 < share < 0.9


def test_crop_disc_fit_on_real_crops(real_data: Path) -> None:
    for rel in ("euro_kaa/crops/train/1e", "won_cho0h5/crops/train/100won", "rupee_somanna/crops/2_rupee"):
        path = sorted((real_data / rel).glob("*.jpg"))[0]
        crop = cv2.imread(str(path))
        assert crop is not None
        cx, cy, r = fit_crop_disc(np.asarray(crop, np.uint8))
        h, w = crop.shape[:2]
        assert 0.25 * w < r < 0.55 * w
        assert abs(cx - w / 2) < 0.2 * w and abs(cy - h / 2) < 0.2 * h


def test_a_real_face_is_its_disc_on_a_feathered_alpha(real_data: Path) -> None:
    (one_euro,) = [t for t in list_real_types(real_data) if t.id == "real-euro-1e"]
    assert one_euro.diameter_mm == REAL_DIAMETERS_MM["euro"]["1e"]
    face = real_face(one_euro.files[0], 96)
    assert face.shape == (96, 96, 4) and face.dtype == np.uint8
    alpha = face[..., 3]
    assert alpha[48, 48] == 255 and alpha[0, 0] == 0 and alpha[48, 0] < 255  # opaque inside, clear outside


def test_no_real_data_gives_no_real_types(tmp_path: Path) -> None:
    assert list_real_types(None) == () and list_real_types(tmp_path / "missing") == ()
