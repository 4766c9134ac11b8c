"""A small real data root made of a few real crops of ``../shared/data/real`` (for the real-cup tests)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from models.train.crops_data import REAL_FOLDERS
from models.train.real_cups import crop_files, crop_photo, scene_groups

TINY_TYPES: dict[str, tuple[str, ...]] = {"euro": ("10c", "1c", "1e"), "won": ("100won", "500won")}


def write_tiny_real_root(real: Path, out: Path, photos: int = 3, per_photo: int = 2) -> Path:
    """Copy ``per_photo`` crops of ``photos`` source photos per type and split of :data:`TINY_TYPES` into ``out``
    (the real data root's layout), each photo of another scene (pile of coins, :func:`scene_groups`) where the
    split has that many, so that the real cups' folds and validation scenes have coins to draw."""
    for currency, types in TINY_TYPES.items():
        for split in ("train", "test"):
            files = crop_files(real / REAL_FOLDERS[currency] / split)
            photo = np.array([crop_photo(f) for f in files])
            scenes = scene_groups(photo, np.array([f.parent.name for f in files]))
            scene = dict(zip(photo.tolist(), scenes.tolist(), strict=True))
            for t in types:
                by_photo: dict[str, list[Path]] = {}
                for f in files:
                    if f.parent.name == t:
                        by_photo.setdefault(crop_photo(f), []).append(f)
                chosen: dict[str, str] = {}
                for p in by_photo:
                    chosen.setdefault(scene[p], p)
                picked = list(chosen.values())[:photos]
                picked += [p for p in by_photo if p not in picked][: photos - len(picked)]
                dst = out / REAL_FOLDERS[currency] / split / t
                dst.mkdir(parents=True, exist_ok=True)
                for p in picked:
                    for f in by_photo[p][:per_photo]:
                        shutil.copy2(f, dst / f.name)
    return out
