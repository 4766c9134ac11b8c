"""A contact sheet of synthetic cups with their ground-truth masks, for a person to look at."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from models.types import UInt8Array

_KIND_COLORS: dict[str, tuple[int, int, int]] = {
    "pure": (60, 200, 60),
    "contaminated": (40, 40, 230),
    "obverse_only": (230, 160, 40),
    "foreign_object": (200, 60, 200),
    "empty": (160, 160, 160),
}


def render_sheet(dataset: Path, n: int = 16, tile: int = 480, columns: int = 4) -> UInt8Array:
    """Draw ``n`` cups of a synthetic data set side by side with outlines and type labels.

    Coins of the expected type are outlined green, other coins red, foreign objects magenta; each label gives
    the type and side (``o``/``r``/``?``), and a header names the cup kind, px/mm and contaminant relation.

    Args:
        dataset: the folder written by ``cupcheck synth`` (with ``manifest.json``).
        n: how many cups (the first ``n``, spread evenly over the data set when it has more).
        tile: side of one cup in the sheet.
        columns: cups per row.

    Returns:
        ``(rows * tile, columns * tile, 3)`` uint8 BGR.

    Raises:
        FileNotFoundError: when the manifest or an image is missing.
    """
    manifest = json.loads((dataset / "manifest.json").read_text())
    cups = manifest["cups"]
    if not cups:
        raise ValueError(f"{dataset} holds no cups")
    n = max(1, min(n, len(cups)))
    picks = [cups[int(i)] for i in np.linspace(0, len(cups) - 1, n).round().astype(int)]
    rows = (n + columns - 1) // columns
    sheet = np.full((rows * tile, columns * tile, 3), 30, np.uint8)
    for k, cup in enumerate(picks):
        img = cv2.imread(str(dataset / cup["image"]), cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(dataset / cup["image"])
        sc = tile / max(img.shape[:2])
        img = cv2.resize(img, (int(img.shape[1] * sc), int(img.shape[0] * sc)), interpolation=cv2.INTER_AREA)
        for inst in cup["instances"]:
            if not inst["is_coin"]:
                color = (200, 60, 200)
            elif inst["type_id"] == cup["expected_type"]:
                color = (60, 220, 60)
            else:
                color = (40, 40, 240)
            poly = (np.asarray(inst["polygon"], np.float32) * sc).round().astype(np.int32)
            cv2.polylines(img, [poly], True, color, 1, cv2.LINE_AA)
            side = {"obverse": "o", "reverse": "r"}.get(inst["side"], "?")
            label = f"{inst['type_id'].replace('real-', 'R:')}{side}"
            x, y = inst["center"]
            org = (int(x * sc) - 4 * len(label) // 2, int(y * sc) + 4)
            cv2.putText(img, label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 2, cv2.LINE_AA)
            cv2.putText(img, label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.33, color, 1, cv2.LINE_AA)
        head = f"{cup['id']} {cup['kind']} exp={cup['expected_type']} {cup['px_per_mm']:.1f}px/mm"
        if cup.get("contaminant"):
            head += f" ({cup['contaminant']})"
        cv2.rectangle(img, (0, 0), (img.shape[1], 18), (0, 0, 0), -1)
        cv2.putText(
            img, head, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, _KIND_COLORS.get(cup["kind"], (255, 255, 255)), 1
        )
        r, c = divmod(k, columns)
        sheet[r * tile : r * tile + img.shape[0], c * tile : c * tile + img.shape[1]] = img
    return sheet
