"""Small synthetic data sets (four types, 256 px cups) written for the voter's training tests."""

from __future__ import annotations

from pathlib import Path

from models.synth.dataset import SynthConfig, write_dataset
from models.synth.scene import SceneOptions
from models.types import CupKind

SCENE = SceneOptions(image_size=256, max_coins=8, kind_weights={CupKind.PURE: 1.0})


def write_set(out: Path, seed: int, n_cups: int, first_index: int = 0) -> Path:
    """Write ``n_cups`` cups of the four-type mint of ``seed`` into ``out`` (cup indices from ``first_index``)."""
    write_dataset(
        SynthConfig(n_types=4, n_cups=n_cups, seed=seed, scene=SCENE, crop_size=64, first_index=first_index),
        out,
        progress=False,
    )
    return out
