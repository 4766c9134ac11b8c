"""Shared helpers for the embedder, gallery and enrolment tests: a tiny untrained embedder and rendered coins."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from models.embedder import Embedder, Preprocessing, build_network, checkpoint_dict, save_checkpoint
from models.synth.mint import generate_mint, render_face
from models.types import Side, UInt8Array


@lru_cache(maxsize=1)
def tiny_checkpoint() -> dict:
    """An untrained mobilenetv2_050 embedder (32-d, 64 px input), built once per session."""
    import torch

    torch.manual_seed(0)
    net = build_network("mobilenetv2_050", 32)
    return checkpoint_dict(net, "mobilenetv2_050", 32, Preprocessing(input_size=64), {"note": "test"})


def tiny_embedder() -> Embedder:
    """A fresh :class:`Embedder` from :func:`tiny_checkpoint`."""
    return Embedder.from_checkpoint(tiny_checkpoint())


def write_tiny_checkpoint(path: Path) -> Path:
    """Save the tiny checkpoint to ``path``."""
    return save_checkpoint(tiny_checkpoint(), path)


def coin_image(type_index: int, side: Side = Side.REVERSE, size: int = 128, angle: float = 0.0) -> UInt8Array:
    """A rendered synthetic coin face on black, ``(size, size, 3)`` uint8 BGR, rotated by ``angle`` degrees."""
    mint = generate_mint(12, seed=5)
    face = render_face(mint.types[type_index], side, size)
    bgr: np.ndarray = np.ascontiguousarray(face[..., :3])
    if angle:
        m = cv2.getRotationMatrix2D((size / 2, size / 2), angle, 1.0)
        bgr = cv2.warpAffine(bgr, m, (size, size), borderMode=cv2.BORDER_CONSTANT)
    return np.asarray(bgr, np.uint8)


def other_family_index() -> int:
    """Index of a type (in :func:`coin_image`'s mint) from a different family than type 0."""
    mint = generate_mint(12, seed=5)
    return next(i for i, t in enumerate(mint.types) if t.family != mint.types[0].family)
