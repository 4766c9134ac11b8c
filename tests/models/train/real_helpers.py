"""A small real data root made of a few real crops of ``../shared/data/real`` (for the real-cup tests)."""

from __future__ import annotations

import shutil
from pathlib import Path

from models.train.crops_data import REAL_FOLDERS
from models.train.real_cups import crop_photo

TINY_TYPES: dict[str, tuple[str, ...]] = {"euro": ("10c", "1c", "1e"), "won": ("100won", "500won")}


def write_tiny_real_root(real: Path, out: Path, photos: int = 3, per_photo: int = 2) -> Path:
    """Copy ``per_photo`` crops of ``photos`` source photos per type and split of :data:`TINY_TYPES` into ``out``
    (the real data root's layout)."""
    for currency, types in TINY_TYPES.items():
        for split in ("train", "test"):
            for t in types:
                src = real / REAL_FOLDERS[currency] / split / t
                by_photo: dict[str, list[Path]] = {}
                for f in sorted(src.glob("*.jpg")):
                    by_photo.setdefault(crop_photo(f), []).append(f)
                dst = out / REAL_FOLDERS[currency] / split / t
                dst.mkdir(parents=True, exist_ok=True)
                for files in list(by_photo.values())[:photos]:
                    for f in files[:per_photo]:
                        shutil.copy2(f, dst / f.name)
    return out
