"""Small synthetic data sets written for the training tests: four types, 256 px cups for the voter's; six 160 px
cups for the detector's."""

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


def write_detector_set(out: Path) -> Path:
    """Six small cups of four types (two in the val split), 160 px: enough for a YOLO or segmenter epoch in seconds."""
    scene = SceneOptions(image_size=160, max_coins=4)
    write_dataset(SynthConfig(n_types=4, n_cups=6, seed=3, scene=scene, val_fraction=0.34), out, progress=False)
    return out
