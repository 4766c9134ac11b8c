"""Coin-crop data sets for the embedder: the synthetic ``crops/index.csv`` and the real crop folders.

Every crop becomes a :class:`CropRecord`. Its ``label`` is the design it shows: for synthetic crops the
``design_id`` column (a family's shared obverse is one class for all of its types), for real crops the
denomination (``real-<currency>-<denomination>``, both sides mixed, the same ids the synthetic scenes use).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.synth.real_coins import rupee_is_train
from models.types import Side

REAL_FOLDERS: dict[str, str] = {"euro": "euro_kaa/crops", "won": "won_cho0h5/crops", "rupee": "rupee_somanna/crops"}
"""Currency → crop folder under the real data root."""

SPLIT_CURRENCIES: tuple[str, ...] = ("euro", "won")
"""Currencies whose crop folders come split in two (``train/<denomination>``, ``test/<denomination>``): the euro
crops by source photo, the won crops by crop (each of the 9 won photos gave crops to both, so a won test crop is not
held out from the train crops)."""

RUPEE_CLASSES: tuple[str, ...] = ("1_rupee", "2_rupee", "5_rupee", "reverse")
"""Rupee crop classes used as coin classes (``invalid`` holds fakes and is left out)."""

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


@dataclass(frozen=True)
class CropRecord:
    """One labelled coin crop on disk.

    Attributes:
        path: the image file.
        label: the class key (design id for synthetic crops, ``real-<currency>-<denom>`` for real ones).
        type_id: the coin type.
        side: the face shown, ``None`` where unknown (real crops mix both sides).
        family: the synthetic family, or the currency for real crops.
        group: where it was cut from (synthetic cup id, real source photo): crops of one group are correlated.
        source: ``"synthetic"`` or ``"real"``.
        partial: cut by the image edge.
        occlusion: hidden fraction (synthetic only).
    """

    path: Path
    label: str
    type_id: str
    side: Side | None
    family: str
    group: str
    source: str
    partial: bool = False
    occlusion: float = 0.0


def stable_fraction(key: str, salt: str = "") -> float:
    """A deterministic pseudo-random number in ``[0, 1)`` for ``key``."""
    return int(hashlib.sha1(f"{salt}{key}".encode()).hexdigest()[:12], 16) / float(1 << 48)


def is_heldout_family(family: str, fraction: float, salt: str = "holdout") -> bool:
    """Whether a synthetic family is held out of training (never seen), by a hash of its name."""
    return stable_fraction(family, salt) < fraction


def read_synth_crops(
    folder: str | Path, *, max_occlusion: float = 0.35, include_real: bool = False
) -> list[CropRecord]:
    """Read a synthetic data set's ``crops/index.csv``.

    Args:
        folder: the data set root (holding ``crops/index.csv`` and ``mint.json``).
        max_occlusion: crops hidden more than this are skipped.
        include_real: keep the rows whose coin was pasted from a real crop (``source == real``).

    Returns:
        The records, in file order.

    Raises:
        FileNotFoundError: no ``crops/index.csv``.
    """
    root = Path(folder)
    index = root / "crops" / "index.csv"
    if not index.is_file():
        raise FileNotFoundError(f"{index} not found (expected a synthetic data set from `cupcheck synth`)")
    out = []
    with index.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["source"] == "real" and not include_real:
                continue
            occ = float(row.get("occlusion") or 0.0)
            if occ > max_occlusion:
                continue
            side = Side(row["side"]) if row.get("side") in ("obverse", "reverse") else None
            out.append(
                CropRecord(
                    path=root / row["path"],
                    label=row["design_id"] if row["source"] != "real" else row["type_id"],
                    type_id=row["type_id"],
                    side=side,
                    family=row["family"],
                    group=f"{root.name}:{row['cup_id']}",
                    source="real" if row["source"] == "real" else "synthetic",
                    partial=row.get("partial", "0") in ("1", "True", "true"),
                    occlusion=occ,
                )
            )
    return out


def read_mint(folder: str | Path) -> dict[str, Any]:
    """The ``mint.json`` of a synthetic data set (``{}`` when absent)."""
    path = Path(folder) / "mint.json"
    return dict(json.loads(path.read_text())) if path.is_file() else {}


def _photo_of(path: Path) -> str:
    stem = path.stem
    return stem.rsplit("_", 1)[0] if "_" in stem else stem


def read_real_crops(
    root: str | Path, split: str, currencies: Sequence[str] = ("euro", "won", "rupee")
) -> list[CropRecord]:
    """Read the real crop folders.

    Euro and won come with a train/test split (the euro crops by source photo; the won crops by crop, every won photo
    giving crops to both); rupee crops are split 80/20 by a file-name hash.

    Args:
        root: the real data root (``.../data/real``).
        split: ``"train"`` or ``"test"``.
        currencies: which currencies to read.

    Returns:
        Records sorted by path; empty when ``root`` is absent.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be train or test, got {split!r}")
    base = Path(root)
    out: list[CropRecord] = []
    for cur in currencies:
        folder = base / REAL_FOLDERS[cur]
        if not folder.is_dir():
            continue
        if cur == "rupee":
            classes = [(c, folder / c) for c in RUPEE_CLASSES]
        else:
            classes = (
                [(d.name, d) for d in sorted((folder / split).iterdir()) if d.is_dir()]
                if (folder / split).is_dir()
                else []
            )
        for denom, d in classes:
            for p in sorted(d.iterdir()) if d.is_dir() else []:
                if p.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                if cur == "rupee" and rupee_is_train(p) != (split == "train"):
                    continue
                out.append(
                    CropRecord(
                        path=p,
                        label=f"real-{cur}-{denom}",
                        type_id=f"real-{cur}-{denom}",
                        side=None,
                        family=cur,
                        group=f"{cur}:{_photo_of(p)}" if cur != "rupee" else f"{cur}:{p.stem}",
                        source="real",
                    )
                )
    return out


def split_heldout(records: Sequence[CropRecord], fraction: float) -> tuple[list[CropRecord], list[CropRecord]]:
    """Split synthetic records by family: ``(train, heldout)``; real records always go to train."""
    train, held = [], []
    for r in records:
        if r.source == "synthetic" and is_heldout_family(r.family, fraction):
            held.append(r)
        else:
            train.append(r)
    return train, held
