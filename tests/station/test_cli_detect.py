"""``cupcheck detect``: JSON schema, table, overlays, calibration in the home, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.camera import CameraCalibration, save_calibration
from models.synth.mint import generate_mint
from models.synth.scene import CupScene, SceneAssets, SceneOptions, render_cup
from station.cli import main
from tests.models.oversized import write_oversized_png

COIN_KEYS = {"bbox": list, "confidence": float, "center": list, "diameter_px": float, "partial": bool}


@pytest.fixture(scope="module")
def cup() -> CupScene:
    assets = SceneAssets(generate_mint(6, 99))
    for i in range(20):
        scene = render_cup(assets, 99, i, SceneOptions(image_size=640, max_coins=10))
        if sum(s.is_coin and not s.partial for s in scene.instances) >= 3:
            return scene
    raise AssertionError("the renderer gave no cup with coins")


@pytest.fixture
def cup_file(tmp_path: Path, cup: CupScene) -> Path:
    path = tmp_path / "cup.png"
    cv2.imwrite(str(path), cup.image)
    return path


def _check_coin(coin: dict[str, object], calibrated: bool) -> None:
    assert set(coin) == {*COIN_KEYS, "diameter_mm"}
    for key, kind in COIN_KEYS.items():
        assert isinstance(coin[key], kind), key
    bbox, center = coin["bbox"], coin["center"]
    assert isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, float) for v in bbox)
    assert bbox[0] < bbox[2] and bbox[1] < bbox[3]
    assert isinstance(center, list) and len(center) == 2
    assert 0.0 <= coin["confidence"] <= 1.0  # type: ignore[operator]
    assert coin["diameter_px"] > 0  # type: ignore[operator]
    if calibrated:
        assert isinstance(coin["diameter_mm"], float) and coin["diameter_mm"] > 0
    else:
        assert coin["diameter_mm"] is None


def test_json_schema(cup_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", str(cup_file), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(doc) == ["images"]
    (image,) = doc["images"]
    assert image["path"] == str(cup_file)
    assert image["coins"], "no coin found in a rendered cup"
    for coin in image["coins"]:
        _check_coin(coin, calibrated=False)


def test_calibrated_home_gives_mm(
    cup_file: Path, cup: CupScene, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "station"
    cal = CameraCalibration(px_per_mm=cup.px_per_mm, image_width=640, image_height=640, method="manual")
    save_calibration(cal, home)
    assert main(["detect", str(cup_file), "--json", "--home", str(home)]) == 0
    coins = json.loads(capsys.readouterr().out)["images"][0]["coins"]
    assert coins
    for coin in coins:
        _check_coin(coin, calibrated=True)
        assert coin["diameter_mm"] == pytest.approx(coin["diameter_px"] / cup.px_per_mm, rel=1e-3)
    # a photo of another size than the calibration image: its millimetres would be wrong, so there are none
    half = tmp_path / "half.png"
    image = cv2.imread(str(cup_file))
    assert image is not None
    cv2.imwrite(str(half), cv2.resize(image, (320, 320)))
    assert main(["detect", str(half), "--json", "--home", str(home)]) == 0
    captured = capsys.readouterr()
    assert f"warning: {half} is 320×320 pixels, not the 640×640 the station was calibrated at" in captured.err
    assert all(c["diameter_mm"] is None for c in json.loads(captured.out)["images"][0]["coins"])


def test_table_and_overlay(cup_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overlays = tmp_path / "overlays"
    assert main(["detect", str(cup_file), "--overlay", str(overlays)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{cup_file}: ") and "coins" in out and "d_px" in out
    rows = [line.split()[0] for line in out.splitlines()[2:]]
    assert rows == [str(k + 1) for k in range(len(rows))]  # numbered from 1, as the overlay and verify number coins
    png = cv2.imread(str(overlays / "cup.png"))
    assert png is not None and png.shape == (640, 640, 3)
    original = cv2.imread(str(cup_file))
    assert original is not None and not np.array_equal(png, original)


def test_bad_files_are_named_and_others_still_reported(
    cup_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image\n", encoding="utf-8")
    missing = tmp_path / "missing.jpg"
    status = main(["detect", str(empty), str(cup_file), str(text), str(missing), "--json"])
    captured = capsys.readouterr()
    assert status == 2
    for bad in (empty, text, missing):
        assert str(bad) in captured.err
    assert f"cannot read image {text}: not a readable image\n" in captured.err  # the path said once
    doc = json.loads(captured.out)
    assert [i["path"] for i in doc["images"]] == [str(cup_file)]
    assert doc["images"][0]["coins"]


def test_a_photo_claiming_too_many_pixels_is_named_and_the_others_still_reported(
    cup_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = write_oversized_png(tmp_path / "huge.png")  # OpenCV raises on it rather than returning nothing
    status = main(["detect", str(cup_file), str(huge), str(cup_file), "--json"])
    captured = capsys.readouterr()
    assert status == 2
    assert f"cannot read image {huge}: not a readable image (OpenCV refused it: its header claims" in captured.err
    assert "Traceback" not in captured.err
    assert [i["path"] for i in json.loads(captured.out)["images"]] == [str(cup_file), str(cup_file)]


def test_missing_weights_is_a_clear_error(cup_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", str(cup_file), "--weights", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
