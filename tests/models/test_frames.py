"""Reading a photo into a frame, and drawing what the detector found on it, numbered as the CLI lists it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from models.frames import draw_overlay, instance_record, read_frame
from models.types import CoinInstance
from tests.models.oversized import write_oversized_png


def _instance(cx: float, is_coin: bool = True) -> CoinInstance:
    yy, xx = np.mgrid[0:40, 0:40]
    mask = np.asarray((xx - 20) ** 2 + (yy - 20) ** 2 <= 18**2)
    x0 = int(cx) - 20
    return CoinInstance(
        bbox=np.array([x0, 30, x0 + 40, 70], np.float32),
        mask=mask,
        mask_origin=(x0, 30),
        confidence=0.9,
        center=(cx, 50.0),
        axes=(37.0, 37.0),
        is_coin=is_coin,
    )


def test_every_instance_is_numbered_and_only_coins_are_named() -> None:
    image = np.full((100, 300, 3), 60, np.uint8)
    found = [_instance(50), _instance(150, is_coin=False), _instance(250)]
    plain = draw_overlay(image, found, "3 found")
    named = draw_overlay(image, found, "3 found", ["t0001", "t0002"])  # one name a coin: the object has none
    assert plain.shape == image.shape and not np.array_equal(plain, image)
    differs = np.abs(named.astype(int) - plain.astype(int)).sum(axis=2) > 0
    assert differs[:, :100].any() and differs[:, 200:].any() and not differs[:, 110:190].any()
    with pytest.raises(ValueError, match="1 names for 2 coins"):
        draw_overlay(image, found, names=["t0001"])


def test_a_photo_is_read_and_a_bad_one_named(tmp_path: Path) -> None:
    good, empty, text = tmp_path / "cup.png", tmp_path / "empty.jpg", tmp_path / "notes.jpg"
    cv2.imwrite(str(good), np.full((20, 30), 128, np.uint8))  # grey: read as three channels
    empty.write_bytes(b"")
    text.write_text("not an image")
    frame = read_frame(good)
    assert frame.image.shape == (20, 30, 3) and frame.image.dtype == np.uint8 and frame.source == str(good)
    for path, message in ((tmp_path / "missing.png", "no such file"), (empty, "empty file"), (text, "not a readable")):
        with pytest.raises((FileNotFoundError, ValueError), match=message):
            read_frame(path)


def test_an_instance_record_is_the_detect_json_coin() -> None:
    record = instance_record(_instance(50.123456))
    assert set(record) == {"bbox", "confidence", "center", "diameter_px", "diameter_mm", "partial"}
    assert record["center"] == [50.12, 50.0] and record["diameter_mm"] is None and record["partial"] is False


@pytest.mark.parametrize("bits", [10, 12, 16])
def test_a_16_bit_photo_reads_as_its_8_bit_picture(tmp_path: Path, bits: int) -> None:
    """A 16-bit PNG of a 10- or 12-bit camera (values up to 1023 or 4095) is not read nearly black; a photo using
    all 16 bits reads as OpenCV has always read it."""
    rng = np.random.default_rng(bits)
    picture = rng.integers(0, 256, (24, 32, 3), dtype=np.uint16)
    picture[0, 0] = 255  # the brightest the sensor gave
    path = tmp_path / f"cup{bits}.png"
    assert cv2.imwrite(str(path), picture << (bits - 8) | rng.integers(0, 1 << (bits - 8), picture.shape, np.uint16))
    image = read_frame(path).image
    assert image.dtype == np.uint8 and np.array_equal(image, picture.astype(np.uint8))
    if bits == 16:
        before = cv2.imread(str(path), cv2.IMREAD_COLOR)
        assert before is not None and np.array_equal(image, before)
    grey = tmp_path / f"grey{bits}.png"
    assert cv2.imwrite(str(grey), picture[..., 1] << (bits - 8))
    assert np.array_equal(read_frame(grey).image, np.repeat(picture[..., 1:2].astype(np.uint8), 3, axis=2))


def test_a_photo_claiming_more_pixels_than_opencv_reads_is_named_not_a_crash(tmp_path: Path) -> None:
    huge = write_oversized_png(tmp_path / "huge.png")
    assert huge.stat().st_size < 100
    with pytest.raises(
        ValueError,
        match=r"huge\.png: not a readable image \(OpenCV refused it: its header claims more than 2\^30 pixels",
    ):
        read_frame(huge)
