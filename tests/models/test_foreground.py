"""The empty-tray check on real renders: everything explained gives nothing, a missed coin or object is found."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from calibration.camera import CupRoi
from models.foreground import ForegroundSettings, explained_mask, unexplained_regions
from models.synth.mint import generate_mint
from models.synth.scene import CupScene, SceneAssets, SceneOptions, render_cup
from models.types import CoinInstance, CupKind

SIZE = 320


@pytest.fixture(scope="module")
def scenes() -> list[CupScene]:
    assets = SceneAssets(generate_mint(12, 3))
    opts = SceneOptions(
        image_size=SIZE,
        kind_weights={CupKind.PURE: 2.0, CupKind.CONTAMINATED: 1.0, CupKind.FOREIGN_OBJECT: 1.0},
        max_coins=10,
        empty_reference=True,
    )
    return [render_cup(assets, 17, i, opts) for i in range(10)]


def _instances(scene: CupScene, drop: int | None = None) -> list[CoinInstance]:
    """The scene's true instances as the detector reports them (visible mask, fitted circle)."""
    out = []
    for k, inst in enumerate(scene.instances):
        if k == drop:
            continue
        x1, y1, x2, y2 = inst.bbox
        out.append(
            CoinInstance(
                bbox=np.array(inst.bbox, np.float32),
                mask=scene.mask(inst)[y1:y2, x1:x2],
                mask_origin=(x1, y1),
                confidence=0.9,
                center=inst.center,
                axes=(inst.diameter_px, inst.diameter_px),
                is_coin=inst.is_coin,
            )
        )
    return out


def _roi(scene: CupScene) -> CupRoi | None:
    return scene.tray


def test_a_cup_whose_every_instance_is_known_shows_nothing_unexplained(scenes: list[CupScene]) -> None:
    for scene in scenes:
        assert scene.empty is not None
        assert unexplained_regions(scene.image, scene.empty, _instances(scene), _roi(scene)) == ()


def test_a_coin_the_detector_missed_is_found_where_it_lies(scenes: list[CupScene]) -> None:
    found = 0
    for scene in scenes:
        loose = [k for k, i in enumerate(scene.instances) if i.is_coin and i.occlusion == 0 and not i.partial]
        if not loose or sum(i.is_coin for i in scene.instances) < 2:
            continue  # the share is of the other coins' size
        k = loose[0]
        assert scene.empty is not None
        regions = unexplained_regions(scene.image, scene.empty, _instances(scene, drop=k), _roi(scene))
        assert len(regions) == 1
        r, truth = regions[0], scene.instances[k]
        cx, cy = r.centre
        assert abs(cx - truth.center[0]) < 0.2 * truth.diameter_px
        assert abs(cy - truth.center[1]) < 0.2 * truth.diameter_px
        assert 0.3 < r.coin_share < 1.5 and r.contrast > 20
        found += 1
    assert found >= 5


def test_an_object_pasted_into_the_cup_is_found_despite_a_lamp_drift_and_a_shifted_tray(
    scenes: list[CupScene],
) -> None:
    scene = next(s for s in scenes if s.tray is not None and s.tray.shape == "round")
    assert scene.empty is not None
    # the empty photo 5 % brighter and one pixel off: still nothing unexplained
    drifted = np.roll(np.asarray(cv2.convertScaleAbs(scene.empty, alpha=1.05), np.uint8), 1, axis=1)
    assert unexplained_regions(scene.image, drifted, _instances(scene), scene.tray) == ()
    # a bottle cap where no coin lies
    tray = scene.tray
    assert tray is not None
    free = np.ones((SIZE, SIZE), bool) & ~explained_mask(_instances(scene), (SIZE, SIZE), 0.5)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    free &= tray.inset(xx, yy) > 30
    ys, xs = np.nonzero(free)
    pick = int(np.argmax(cv2.distanceTransform(free.astype(np.uint8), cv2.DIST_L2, 5)[ys, xs]))
    x, y = int(xs[pick]), int(ys[pick])
    frame = scene.image.copy()
    cv2.circle(frame, (x, y), 12, (20, 200, 230), -1, cv2.LINE_AA)
    regions = unexplained_regions(frame, drifted, _instances(scene), tray)
    assert len(regions) == 1
    r = regions[0]
    assert r.bbox[0] <= x < r.bbox[2] and r.bbox[1] <= y < r.bbox[3]
    # outside the cup's region it does not count
    outside = CupRoi(10.0, 10.0, 5.0)
    assert unexplained_regions(frame, drifted, _instances(scene), outside) == ()


def test_settings_and_inputs_are_checked(scenes: list[CupScene]) -> None:
    scene = scenes[0]
    assert scene.empty is not None
    grey = np.asarray(cv2.cvtColor(scene.empty, cv2.COLOR_BGR2GRAY), np.uint8)
    with pytest.raises(ValueError, match="empty-tray image must be a colour image"):
        unexplained_regions(scene.image, grey, _instances(scene))
    # another size is resized to the frame's
    bigger = np.asarray(cv2.resize(scene.empty, (2 * SIZE, 2 * SIZE), interpolation=cv2.INTER_LINEAR), np.uint8)
    assert unexplained_regions(scene.image, bigger, _instances(scene), scene.tray) == ()
    with pytest.raises(ValueError, match="scale"):
        ForegroundSettings(scale=2.0)
    with pytest.raises(ValueError, match="min contrast"):
        ForegroundSettings(min_contrast=0.0)


def test_explained_mask_grows_each_instance_by_its_halo(scenes: list[CupScene]) -> None:
    scene = next(s for s in scenes if s.instances)
    inst = _instances(scene)
    tight = explained_mask(inst, (SIZE, SIZE), 0.0)
    grown = explained_mask(inst, (SIZE, SIZE), 0.2)
    half = explained_mask(inst, (SIZE, SIZE), 0.2, (SIZE // 2, SIZE // 2))
    union = np.zeros((SIZE, SIZE), bool)
    for i in scene.instances:
        union |= scene.mask(i)
    one_px = cv2.dilate(union.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert (tight & ~one_px).sum() == 0 and (union & ~tight).sum() == 0  # one pixel of growth at most
    assert grown.sum() > 1.3 * union.sum() and (union & ~grown).sum() == 0
    assert half.shape == (SIZE // 2, SIZE // 2) and abs(half.mean() - grown.mean()) < 0.03
