"""Polar template signatures: rotation invariance, the FFT correlation against a brute-force one, bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.synth.mint import generate_mint
from models.template import ANGLES, SIG_SHAPE, correlate, signature, signatures, spectra
from models.train.galleries import reference_crops
from models.types import Side


@pytest.fixture(scope="module")
def faces() -> list[np.ndarray]:
    """Reverse renders of three distinct types, two each: the same light, different render seeds."""
    mint = generate_mint(6, 4)
    out: list[np.ndarray] = []
    for coin in mint.types[:3]:
        out.extend(reference_crops(coin, Side.REVERSE, 1, seed=s)[0] for s in (0, 1))
    return out


def rotate(image: np.ndarray, deg: float) -> np.ndarray:
    s = image.shape[0]
    m = cv2.getRotationMatrix2D((s / 2, s / 2), deg, 1.0)  # the crop centre, as models.crops places the coin
    return np.asarray(cv2.warpAffine(image, m, (s, s)), np.uint8)


def test_signature_is_unit_norm_with_centred_rings(faces: list[np.ndarray]) -> None:
    sig = signature(faces[0])
    assert sig.shape == SIG_SHAPE and sig.dtype == np.float32
    assert np.linalg.norm(sig) == pytest.approx(1.0, abs=1e-5)
    assert np.abs(sig.mean(axis=0)).max() < 1e-6
    blank = signature(np.zeros((96, 96, 3), np.uint8))
    assert not blank.any()
    assert signatures([]).shape == (0, *SIG_SHAPE)


def test_bad_crops_are_refused_and_odd_shapes_stretched(faces: list[np.ndarray]) -> None:
    for bad in (np.zeros((0, 0, 3), np.uint8), np.zeros((64, 64, 4), np.uint8), np.zeros(64, np.uint8)):
        with pytest.raises(ValueError, match="grey or BGR"):
            signature(bad)
    wide = np.asarray(cv2.resize(faces[0], (160, 120)), np.uint8)
    grey = np.asarray(cv2.cvtColor(faces[0], cv2.COLOR_BGR2GRAY), np.uint8)
    assert correlate(signatures([wide, grey]), signatures([faces[0]])).min() > 0.8


def test_a_rotated_coin_matches_its_own_type_best(faces: list[np.ndarray]) -> None:
    refs = signatures(faces[0::2])  # one reference per type
    queries = signatures([rotate(faces[k], deg) for k, deg in ((1, 73.0), (3, 200.0), (5, 311.0))])
    cc = correlate(queries, refs)
    assert cc.shape == (3, 3)
    assert cc.argmax(axis=1).tolist() == [0, 1, 2]
    assert np.diag(cc).min() > cc[~np.eye(3, dtype=bool)].max()
    # the same crop turned by any angle correlates almost perfectly with itself
    same = correlate(signatures([rotate(faces[0], 137.0)]), signatures([faces[0]]))
    assert same[0, 0] > 0.9


def test_fft_correlation_is_the_best_circular_shift(faces: list[np.ndarray]) -> None:
    q = signatures(faces[:2])
    r = signatures(faces[2:5])
    brute = np.array(
        [[max(float((np.roll(a, k, axis=0) * b).sum()) for k in range(ANGLES)) for b in r] for a in q], np.float32
    )
    np.testing.assert_allclose(correlate(q, r), brute, atol=1e-5)
    np.testing.assert_allclose(correlate(spectra(q), spectra(r)), brute, atol=1e-5)
    assert correlate(q[:0], r).shape == (0, 3)
