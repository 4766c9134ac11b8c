"""Every motif draws a relief inside its circle, the same for the same seed; a design's detail tells twins apart."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from models.synth import motifs
from models.synth.mint import MOTIFS, generate_mint
from models.synth.relief import Relief


def _draw(name: str, seed: int, size: float = 0.6) -> np.ndarray:
    rel = Relief()
    rng = np.random.default_rng(seed)
    if name == "wreath":
        motifs._motif_wreath(rel, rng, 0.0, 0.0, size, "25")
    else:
        getattr(motifs, f"_motif_{name}")(rel, rng, 0.0, 0.0, size)
    return rel.h


@pytest.mark.parametrize("name", MOTIFS)
def test_a_motif_is_raised_inside_its_circle_and_drawn_again_alike(name: str) -> None:
    h = _draw(name, 1)
    rel = Relief()
    yy, xx = np.mgrid[0 : rel.n, 0 : rel.n]
    radius = np.hypot(xx - rel.c, yy - rel.c) / rel.r
    raised = h > 0.1
    assert 0.03 < raised.mean() < 0.3  # a figure, neither a speck nor the whole field
    assert radius[raised].max() < 1.2 * 0.6  # it keeps clear of the legend around the field
    assert np.array_equal(h, _draw(name, 1))
    assert not np.array_equal(h, _draw(name, 2))


def test_a_near_twins_design_differs_from_its_base_only_by_its_small_detail() -> None:
    mint = generate_mint(30, 0)
    twin = next(t for t in mint.types if t.twin_of)
    assert twin.twin_of is not None
    base = mint.by_id(twin.twin_of)
    if not twin.reverse.detail.startswith(("mm:", "em:")):
        twin_design = replace(base.reverse, detail="mm:D")  # a digit twin: give the base a mint mark instead
    else:
        twin_design = twin.reverse
    a = motifs.draw_design(replace(twin_design, detail=""))
    b = motifs.draw_design(twin_design)
    changed = np.abs(a - b) > 0.5
    assert 0 < changed.mean() < 0.01  # the detail, a small mark
