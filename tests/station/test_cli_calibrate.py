"""``cupcheck calibrate`` end to end on synthetic images written to disk."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.camera import (
    CameraCalibration,
    CupRoi,
    empty_tray_path,
    load_calibration,
    load_empty_tray,
    load_setup_view,
)
from calibration.scale import CalibrationError
from station.cli import main
from tests.calibration.reference_images import (
    EURO_1_MM,
    checkerboard_image,
    coin_image,
    draw_disc,
    finish,
    textured_background,
)
from tests.calibration.views import camera, exposure, table
from tests.models.oversized import write_oversized_png


@pytest.fixture(scope="module")
def coin_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    image, _ = coin_image(np.random.default_rng(21), 4.0)
    path = tmp_path_factory.mktemp("img") / "coin.png"
    cv2.imwrite(str(path), image)
    return path


def test_coin_writes_calibration_in_home(coin_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "station"
    overlay = tmp_path / "overlay.png"
    status = main(
        ["calibrate", str(coin_png), "--reference-mm", str(EURO_1_MM), "--home", str(home), "--overlay", str(overlay)]
    )
    assert status == 0
    out = capsys.readouterr().out
    px_per_mm = float(out.split()[0])
    assert px_per_mm == pytest.approx(4.0, rel=0.02)  # as the detector measures this drawn disc: 1.6 % large
    assert "px/mm" in out
    cal = load_calibration(home)
    assert cal is not None and cal.method == "coin" and cal.px_per_mm == pytest.approx(px_per_mm, abs=1e-4)
    written = cv2.imread(str(overlay))
    assert written is not None and written.shape == (480, 640, 3)
    # the cup region's size in millimetres, for a person to check with a ruler
    assert (
        main(
            ["calibrate", str(coin_png), "--reference-mm", str(EURO_1_MM), "--home", str(home), "--roi", "320,240,200"]
        )
        == 0
    )
    assert capsys.readouterr().out.splitlines()[1] == "cup region: cup x=320.0 y=240.0 r=200.0 px (98 mm across)"


def test_json_output_and_manual_roi_in_env_home(
    coin_png: Path, _temp_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["calibrate", str(coin_png), "--reference-mm", str(EURO_1_MM), "--roi", "320,240,200", "--json"])
    assert status == 0
    data = json.loads(capsys.readouterr().out)
    assert data["roi"] == {"x": 320.0, "y": 240.0, "radius": 200.0}
    assert Path(data["path"]) == _temp_home / "calibration.json"
    stored = CameraCalibration.load(data["path"])
    assert stored.roi == CupRoi(320.0, 240.0, 200.0)
    assert stored.px_per_mm == pytest.approx(data["px_per_mm"])


def test_a_square_tray_given_by_hand(coin_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["calibrate", str(coin_png), "--reference-mm", str(EURO_1_MM), "--home", str(tmp_path)]
    assert main([*argv, "--roi", "square:320,240,230"]) == 0
    assert "tray x=320.0 y=240.0 half side=230.0 px" in capsys.readouterr().out
    cal = load_calibration(tmp_path)
    assert cal is not None and cal.roi == CupRoi(320.0, 240.0, 230.0, "square")
    with pytest.raises(SystemExit):
        main([*argv, "--roi", "oval:1,2,3"])
    assert "unknown cup shape" in capsys.readouterr().err


def test_checkerboard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "board.png"
    cv2.imwrite(str(path), checkerboard_image(np.random.default_rng(1), 30.0, (8, 6)))
    status = main(
        ["calibrate", str(path), "--checkerboard", "7x5", "--square-mm", "12.5", "--no-roi", "--home", str(tmp_path)]
    )
    assert status == 0
    assert float(capsys.readouterr().out.split()[0]) == pytest.approx(30.0 / 12.5, rel=0.005)
    cal = load_calibration(tmp_path)
    assert cal is not None and cal.roi is None and cal.method == "checkerboard"


def test_nothing_found_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(2)
    path = tmp_path / "table.png"
    cv2.imwrite(str(path), finish(rng, textured_background(rng)))
    assert main(["calibrate", str(path), "--reference-mm", "23.25", "--home", str(tmp_path)]) == 2
    assert "no coin" in capsys.readouterr().err
    assert not (tmp_path / "calibration.json").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["calibrate", "{missing}", "--reference-mm", "23.25"],
        ["calibrate", "{garbage}", "--reference-mm", "23.25"],
        ["calibrate", "{coin}", "--checkerboard", "7x5"],
        ["calibrate", "{coin}", "--reference-mm", "23.25", "--square-mm", "10"],
    ],
)
def test_user_errors_exit_2(
    argv: list[str], coin_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"\x00not a png")
    paths = {"missing": tmp_path / "nope.png", "garbage": garbage, "coin": coin_png}
    argv = [a.format(**{k: str(v) for k, v in paths.items()}) for a in argv]
    assert main([*argv, "--home", str(tmp_path)]) == 2
    assert "error" in capsys.readouterr().err


def test_no_roi_never_measures_the_cups_outline_as_the_reference_coin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--no-roi`` keeps the whole image as the cup region, yet the rim is passed over as it is without it: a coin
    as pale as the cup's floor is not found, and the floor is not stored as a coin 415 px across."""
    pale = table().astype(np.float32)
    draw_disc(pale, 250.0, 200.0, EURO_1_MM * 2.0)
    path = tmp_path / "pale.png"
    cv2.imwrite(str(path), exposure(np.clip(pale, 0, 255).astype(np.uint8), 2))
    argv = ["calibrate", str(path), "--reference-mm", str(EURO_1_MM), "--home", str(tmp_path)]
    assert main([*argv, "--no-roi"]) == 2
    assert "no whole coin found" in capsys.readouterr().err  # the detector's outline of it is not round
    assert not (tmp_path / "calibration.json").exists()
    dark = table().astype(np.float32)
    draw_disc(dark, 250.0, 200.0, EURO_1_MM * 2.0, metallic=False, level=60.0)  # one that stands out: measured
    cv2.imwrite(str(path), exposure(np.clip(dark, 0, 255).astype(np.uint8), 1))
    assert main([*argv, "--no-roi"]) == 0
    out = capsys.readouterr().out
    assert float(out.split()[0]) == pytest.approx(4.0, rel=0.01) and "cup region: whole image" in out
    cal = load_calibration(tmp_path)
    assert cal is not None and cal.roi is None


def test_a_photo_claiming_too_many_pixels_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = write_oversized_png(tmp_path / "huge.png")  # OpenCV raises on it rather than returning nothing
    assert main(["calibrate", str(huge), "--reference-mm", "23.25", "--home", str(tmp_path)]) == 2
    assert f"{huge}: not a readable image (OpenCV refused it: its header claims" in capsys.readouterr().err
    assert not (tmp_path / "calibration.json").exists()


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--reference-mm", "2426"], "a reference coin of 2426 mm? Coins measure 5 to 120 mm"),
        (["--reference-mm", "1e300"], "a reference coin of 1e+300 mm?"),
        (["--reference-mm", "23.25", "--roi", "99999,99999,5"], "lies outside the"),
        (["--reference-mm", "23.25", "--roi=-5,-5,10"], "centre (-5, -5) lies outside the"),
        (["--reference-mm", "23.25", "--overlay", "overlay.txt"], "cannot write an overlay picture to overlay.txt"),
    ],
)
def test_a_slip_of_the_keyboard_is_refused_and_nothing_stored(
    extra: list[str], coin_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], said: str
) -> None:
    assert main(["calibrate", str(coin_png), *extra, "--home", str(tmp_path)]) == 2
    assert said in capsys.readouterr().err and not (tmp_path / "calibration.json").exists()


@pytest.mark.parametrize(
    "extra",
    [
        ["--reference-mm", "-3"],
        ["--checkerboard", "7by5", "--square-mm", "10"],
        ["--reference-mm", "23.25", "--roi", "1,2"],
        ["--reference-mm", "23.25", "--aruco-mm", "20"],
    ],
)
def test_bad_arguments_exit_2(extra: list[str], coin_png: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["calibrate", str(coin_png), *extra])
    assert info.value.code == 2
    assert capsys.readouterr().err


def test_the_empty_tray_photo_is_stored_beside_the_calibration(
    coin_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "station"
    tray = np.clip(textured_background(np.random.default_rng(3), 480, 640), 0, 255).astype(np.uint8)
    empty_png = tmp_path / "empty.png"
    cv2.imwrite(str(empty_png), tray)
    args = ["calibrate", str(coin_png), "--reference-mm", str(EURO_1_MM), "--home", str(home)]
    assert main([*args, "--empty-tray", str(empty_png), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["empty_tray"] == str(empty_tray_path(home))
    stored = load_empty_tray(home)
    assert stored is not None and np.array_equal(stored, tray)  # lossless
    # another size than the calibration image: refused, the stored photo kept
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), tray[:240, :320])
    assert main([*args, "--empty-tray", str(small)]) == 2
    assert "is 320x240 px but the calibration image is 640x480" in capsys.readouterr().err
    kept = load_empty_tray(home)
    assert kept is not None and np.array_equal(kept, tray)
    # an unreadable file
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main([*args, "--empty-tray", str(bad)]) == 2
    assert "bad.png" in capsys.readouterr().err
    # a damaged stored photo is reported, not ignored
    empty_tray_path(home).write_bytes(b"broken")
    with pytest.raises(CalibrationError, match="take the empty-tray photo again"):
        load_empty_tray(home)


def test_a_new_empty_tray_photo_alone_keeps_the_calibration(
    coin_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "station"
    assert main(["calibrate", str(coin_png), "--reference-mm", str(EURO_1_MM), "--home", str(home)]) == 0
    before = (home / "calibration.json").read_bytes()
    capsys.readouterr()
    tray = np.clip(textured_background(np.random.default_rng(4), 480, 640), 0, 255).astype(np.uint8)
    empty_png = tmp_path / "empty.png"
    cv2.imwrite(str(empty_png), tray)
    assert main(["calibrate", "--empty-tray", str(empty_png), "--home", str(home)]) == 0
    assert str(empty_tray_path(home)) in capsys.readouterr().out
    stored = load_empty_tray(home)
    assert stored is not None and np.array_equal(stored, tray)
    assert (home / "calibration.json").read_bytes() == before
    # another size than the calibration image, nothing at all, or a reference without an image: refused
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), tray[:100, :100])
    assert main(["calibrate", "--empty-tray", str(small), "--home", str(home)]) == 2
    assert "but the station was calibrated on 640x480" in capsys.readouterr().err
    assert main(["calibrate", "--home", str(home)]) == 2
    assert "--empty-tray IMAGE alone" in capsys.readouterr().err
    assert main(["calibrate", str(coin_png), "--home", str(home)]) == 2
    assert "needs --reference-mm" in capsys.readouterr().err


def test_the_station_file_names_the_home(coin_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "from-config"
    config = tmp_path / "station.toml"
    config.write_text(f'home = "{home}"\n')
    assert main(["calibrate", str(coin_png), "--reference-mm", str(EURO_1_MM), "--config", str(config)]) == 0
    capsys.readouterr()
    assert load_calibration(home) is not None
    assert main(["calibrate", str(coin_png), "--reference-mm", "23.25", "--config", str(tmp_path / "none.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_camera_may_not_move_between_the_calibration_and_the_empty_tray_photo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _table_photos(
        tmp_path,
        5,  # a table the detector finds nothing on (on seed 8's, a corner of the weave scores 0.44 as a coin)
        {
            "coin": ("coin", 0.0, 0.0),
            "empty": ("empty", 0.0, 0.0),
            "moved": ("empty", 10.0, 0.0),
            "again": ("empty", 0.0, 0.0),
        },
    )
    home = tmp_path / "station"
    args = ["calibrate", str(files["coin"]), "--reference-mm", str(EURO_1_MM), "--home", str(home)]
    assert main([*args, "--empty-tray", str(files["moved"])]) == 2
    err = capsys.readouterr().err
    assert "the camera moved between the calibration image and the empty-tray photo" in err
    assert "(the photo's view: 10 px right): take both without moving the camera" in err
    assert load_calibration(home) is None and load_empty_tray(home) is None  # nothing stored
    assert main([*args, "--empty-tray", str(files["coin"])]) == 2  # the reference coin still lies on the tray
    assert f"the tray in {files['coin']} is not empty (1 coin seen)" in capsys.readouterr().err
    assert load_calibration(home) is None and load_empty_tray(home) is None
    assert main([*args, "--empty-tray", str(files["empty"])]) == 0
    capsys.readouterr()
    # later the camera is knocked: a new empty-tray photo alone would hide it, and is refused
    assert main(["calibrate", "--empty-tray", str(files["moved"]), "--home", str(home)]) == 2
    err = capsys.readouterr().err
    assert "the camera has moved since the station was calibrated (the view: 10 px right)" in err
    assert f"cupcheck calibrate IMAGE --reference-mm MM --empty-tray {files['moved']}" in err
    kept = load_empty_tray(home)
    assert kept is not None and np.array_equal(kept, np.asarray(cv2.imread(str(files["empty"])), np.uint8))
    # from where it was, a new photo (another lamp, another day) is taken
    assert main(["calibrate", "--empty-tray", str(files["again"]), "--home", str(home)]) == 0
    capsys.readouterr()
    assert main(["calibrate", "--empty-tray", str(files["coin"]), "--home", str(home)]) == 2  # a coin left on it
    assert "is not empty (1 coin seen)" in capsys.readouterr().err


def test_the_calibration_photo_is_kept_to_check_the_first_empty_tray_and_a_stale_one_goes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _table_photos(
        tmp_path,
        9,
        {
            "coin": ("coin", 0.0, 0.0),
            "empty": ("empty", 0.0, 0.0),
            "moved": ("empty", 0.0, -9.0),
            "coin-moved": ("coin", 0.0, -9.0),
        },
    )
    home = tmp_path / "station"
    assert main(["calibrate", str(files["coin"]), "--reference-mm", str(EURO_1_MM), "--home", str(home)]) == 0
    kept = load_setup_view(home)
    assert kept is not None and kept.shape == (480, 640)  # the calibration photo, in grey
    capsys.readouterr()
    # the first empty-tray photo is checked against it
    assert main(["calibrate", "--empty-tray", str(files["moved"]), "--home", str(home)]) == 2
    assert "the camera has moved since the station was calibrated (the view: 9 px up)" in capsys.readouterr().err
    assert load_empty_tray(home) is None
    assert main(["calibrate", "--empty-tray", str(files["empty"]), "--home", str(home)]) == 0
    capsys.readouterr()
    # calibrated again from where the camera was: the empty-tray photo still fits and stays
    assert main(["calibrate", str(files["coin"]), "--reference-mm", str(EURO_1_MM), "--home", str(home)]) == 0
    assert "removed the old empty-tray photo" not in capsys.readouterr().err and load_empty_tray(home) is not None
    # calibrated again after the camera was moved: the old empty-tray photo would flag every cup, and goes
    assert main(["calibrate", str(files["coin-moved"]), "--reference-mm", str(EURO_1_MM), "--home", str(home)]) == 0
    err = capsys.readouterr().err
    assert "removed the old empty-tray photo: it was taken from another camera position (its view: 9 px down)" in err
    assert "take a new one" in err and load_empty_tray(home) is None


def _table_photos(tmp_path: Path, seed: int, shots: dict[str, tuple[str, float, float]]) -> dict[str, Path]:
    """Photographs of a textured table written to ``tmp_path``, by name: ``(what, dx, dy)`` is ``"coin"`` (a 1-euro
    reference at 4 px/mm on it) or ``"empty"``, seen by a camera moved ``dx, dy`` pixels since set-up."""
    rng = np.random.default_rng(seed)
    table = textured_background(rng)
    with_coin = table.copy()
    draw_disc(with_coin, 300.0, 220.0, EURO_1_MM * 4.0 / 2)
    files = {}
    for name, (what, dx, dy) in shots.items():
        files[name] = tmp_path / f"{name}.png"
        cv2.imwrite(str(files[name]), finish(rng, camera(with_coin if what == "coin" else table, dx=dx, dy=dy)))
    return files


@pytest.mark.parametrize(
    ("pattern", "said"),
    [
        ("3x3", "the 3x3 corners found are not a regular grid"),  # OpenCV's fallback finds a wrong grid
        ("6x5", "the 6x5 corners found are not a regular grid"),
        ("2x5", "need at least 3x3 inner corners, got '2x5'"),  # OpenCV itself failed with a traceback
        ("3x2", "need at least 3x3 inner corners, got '3x2'"),
    ],
)
def test_a_board_given_the_wrong_pattern_size_is_refused_and_nothing_stored(
    pattern: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], said: str
) -> None:
    path = tmp_path / "board.png"
    cv2.imwrite(str(path), checkerboard_image(np.random.default_rng(5), 20.0, (10, 7)))  # 9x6 inner corners
    argv = ["calibrate", str(path), "--checkerboard", pattern, "--square-mm", "5", "--no-roi", "--home", str(tmp_path)]
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse refuses the pattern itself
        status = int(str(exit_.code))
    assert status == 2
    assert said in capsys.readouterr().err and not (tmp_path / "calibration.json").exists()


def _rendered(mint_seed: int, index: int, max_coins: int, path: Path) -> tuple[Path, float, list[float]]:
    """A rendered cup written to ``path``: its true px/mm and the diameters of its coins in mm."""
    from models.synth.mint import generate_mint
    from models.synth.scene import CupKind, SceneAssets, SceneOptions, render_cup

    options = SceneOptions(image_size=640, max_coins=max_coins, kind_weights={CupKind.PURE: 1.0})
    scene = render_cup(SceneAssets(generate_mint(6, mint_seed)), mint_seed, index, options)
    cv2.imwrite(str(path), scene.image)
    return path, scene.px_per_mm, [c.diameter_mm for c in scene.instances if c.is_coin]


def test_a_coins_centre_dot_is_never_measured_as_the_reference_coin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Four 26.86 mm coins 226 px across: the only clean circle in the photo is a coin's 21 px centre dot, once
    measured as the coin (0.78 px/mm, every later diameter 11 times too large, no warning). The detector finds no
    coin that small: the coins it finds are measured."""
    path, truth, _ = _rendered(99, 3, 8, tmp_path / "pure3.png")
    assert main(["calibrate", str(path), "--reference-mm", "26.86", "--home", str(tmp_path)]) == 0
    assert float(capsys.readouterr().out.split()[0]) == pytest.approx(truth, rel=0.02)


@pytest.mark.parametrize("index", [10, 29])
def test_the_reference_coin_is_measured_as_the_detector_measures_coins(
    index: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A single rendered coin: on 29 the edge fit alone read the scale 5 % low (the coin then read 24.4 mm for
    23.24), on 10 (a silver coin on a speckled floor) it found no clean outline and refused. The detector's circle
    is the measure: the scale is right, and the coin reads its own diameter in its own photo."""
    from models.detector import Detector
    from models.types import Frame

    path, truth, (reference,) = _rendered(7, index, 1, tmp_path / f"single{index}.png")
    home = tmp_path / "station"
    assert main(["calibrate", str(path), "--reference-mm", str(reference), "--home", str(home)]) == 0
    assert float(capsys.readouterr().out.split()[0]) == pytest.approx(truth, rel=0.015)
    cal = load_calibration(home)
    image = np.asarray(cv2.imread(str(path)), np.uint8)
    (coin,) = [c for c in Detector.load(calibration=cal).detect(Frame(image=image)) if c.is_coin]
    assert coin.diameter_mm == pytest.approx(reference, rel=0.005)
