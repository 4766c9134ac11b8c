"""How well a moved camera is told (:mod:`calibration.movement`), measured on synthetic cups.

Each cup is rendered with its empty-tray photo (its own table, lamp and cup, the tray up to 1.5 px off, as
:class:`models.synth.scene.SceneOptions` draws it) and its cup region (:attr:`~models.synth.scene.CupScene.tray`,
what the station's calibration holds). The photo of the cup is then compared with the empty tray three ways:

- as taken: a camera where it was set up must not be called moved (a false alarm would flag every cup);
- nudged by at most 1.5 px: still within the tolerance;
- knocked: shifted 5 to 40 px in any direction, up to 4 % closer or farther and turned up to 3°, by warping the
  whole photo; every such move reaches past the tolerance at the rim and must be told.

What is expected of a moved photo is the applied move composed with the tray's own offset as the unmoved
comparison measured it. A cup whose surroundings offer nothing to recognise (a plain table) is counted apart:
nothing can be told there, which the station's ``doctor`` reports for the empty-tray photo.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass

import cv2
import numpy as np
from tqdm import tqdm

from calibration.movement import DEFAULT_MOVEMENT, SetupView, judged_points
from models.synth.mint import generate_mint
from models.synth.scene import SceneAssets, SceneOptions, render_cup

KNOCK_SHIFT_PX = (5.0, 40.0)
KNOCK_SCALE = 0.04
KNOCK_TURN_DEG = 3.0
NUDGE_PX = 1.5


@dataclass(frozen=True)
class MovementReport:
    """What :func:`bench_movement` measured.

    Attributes:
        cups: cups rendered.
        told: cups whose surroundings let the unmoved comparison find the camera (the rest: nothing to tell by).
        false_alarms: of ``told``, cups as taken that were called moved.
        nudged_alarms: of ``told``, cups nudged within the tolerance that were called moved.
        knocked: knocked cups (of ``told``) whose expected move at the rim exceeds the tolerance.
        caught: of ``knocked``, those called moved.
        lost: of ``knocked``, those where nothing could be told after the move.
        lost_features: the features the empty-tray photo of each such cup offered around the cup
            (:attr:`calibration.movement.SetupView.features`; ``doctor`` names a photo with few).
        centre_error_px: ``(median, 95th percentile, largest)`` distance between the measured and the expected
            shift of the cup's centre, over the knocked cups told (``nan`` when none was).
        scale_error: the largest difference between the measured and the applied scale (``nan`` when no knocked
            cup was told).
        compare_ms: median milliseconds of one comparison (``nan`` when no cup could be compared).
        forward_ms: median milliseconds of one bare detector forward pass on the same frames (``0``: not timed).
    """

    cups: int
    told: int
    false_alarms: int
    nudged_alarms: int
    knocked: int
    caught: int
    lost: int
    lost_features: tuple[int, ...]
    centre_error_px: tuple[float, float, float]
    scale_error: float
    compare_ms: float
    forward_ms: float

    def lines(self) -> list[str]:
        """The report as lines of text."""
        med, p95, top = self.centre_error_px
        out = [
            f"cups rendered: {self.cups}; the camera can be told on {self.told} "
            f"({self.cups - self.told} on tables with nothing to recognise)",
            f"as taken: {self.false_alarms} of {self.told} called moved (false alarms)",
            f"nudged <= {NUDGE_PX:g} px: {self.nudged_alarms} of {self.told} called moved",
            f"knocked (shift {KNOCK_SHIFT_PX[0]:g}-{KNOCK_SHIFT_PX[1]:g} px, scale ±{KNOCK_SCALE:.0%}, turn "
            f"±{KNOCK_TURN_DEG:g}°): {self.caught} of {self.knocked} told ({self.lost} could not be told"
            + (f": set-ups with {min(self.lost_features)}-{max(self.lost_features)} features" if self.lost else "")
            + ")",
            f"cup centre's shift: error median {_measured(med, '.2f', ' px')}, 95% {_measured(p95, '.2f', ' px')}, "
            f"largest {_measured(top, '.2f', ' px')}; scale error at most {_measured(self.scale_error, '.4f')}",
            f"one comparison: {_measured(self.compare_ms, '.1f', ' ms')}",
        ]
        if self.forward_ms > 0 and not math.isnan(self.compare_ms):
            out.append(
                f"bare detector forward pass on the same frames: {self.forward_ms:.1f} ms "
                f"(the comparison costs {self.compare_ms / self.forward_ms:.2f}x one)"
            )
        return out


def _measured(value: float, spec: str, unit: str = "") -> str:
    """``value`` formatted with its unit, or ``n/a`` when nothing was measured (``nan``): a cup set with nothing to
    tell the camera by has no error and no timing, and ``0.00 px`` would read as a perfect one."""
    return "n/a" if math.isnan(value) else f"{value:{spec}}{unit}"


def _similarity(dx: float, dy: float, scale: float, turn_deg: float, centre: tuple[float, float]) -> np.ndarray:
    """The 2x3 move about ``centre``: turned clockwise ``turn_deg``, scaled, then shifted by ``(dx, dy)``."""
    m = np.asarray(cv2.getRotationMatrix2D(centre, -turn_deg, scale), np.float64)
    m[:, 2] += np.array([dx, dy])
    return m


def _warp(image: np.ndarray, m: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return np.ascontiguousarray(
        cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT), np.uint8
    )


def bench_movement(
    n_cups: int = 120,
    *,
    seed: int = 41,
    image_size: int = 640,
    with_detector: bool = True,
    progress: bool = True,
) -> MovementReport:
    """Render ``n_cups`` synthetic cups and measure how their camera's moves are told (module docstring).

    Args:
        n_cups: cups to render (at least 1).
        seed: the synthetic world's seed (the mint and the cups).
        image_size: the photos' side in pixels.
        with_detector: also time the shipped detector's bare forward pass on the same frames, for a ratio.
        progress: show a progress bar.

    Raises:
        ValueError: ``n_cups`` below 1.
    """
    if n_cups < 1:
        raise ValueError(f"at least one cup, not {n_cups}")
    assets = SceneAssets(generate_mint(12, seed))
    opts = SceneOptions(image_size=image_size, max_coins=12, empty_reference=True)
    rng = np.random.default_rng([seed, 0x4D4F5645])
    tol = DEFAULT_MOVEMENT.tolerance_px
    told = false_alarms = nudged_alarms = knocked = caught = 0
    lost: list[int] = []
    errors: list[float] = []
    scale_errors: list[float] = []
    times: list[float] = []
    frames: list[np.ndarray] = []
    for index in tqdm(range(n_cups), desc="cups", unit="cup", disable=not progress):
        scene = render_cup(assets, seed, index, opts)
        assert scene.empty is not None
        view = SetupView(scene.empty, scene.tray)
        t0 = time.perf_counter()
        base = view.compare(scene.image)
        if view.features >= DEFAULT_MOVEMENT.min_matches:  # (with fewer there is nothing to compare)
            times.append((time.perf_counter() - t0) * 1000.0)
        if len(frames) < 20:
            frames.append(scene.image)
        if base is None:
            continue
        told += 1
        false_alarms += base.moved
        h, w = scene.image.shape[:2]
        centre = (w / 2.0, h / 2.0)
        a = rng.uniform(0.0, 2.0 * math.pi)
        r = rng.uniform(0.0, NUDGE_PX)
        nudge = view.compare(_warp(scene.image, _similarity(r * math.cos(a), r * math.sin(a), 1.0, 0.0, centre)))
        nudged_alarms += nudge is not None and nudge.moved
        a, r = rng.uniform(0.0, 2.0 * math.pi), rng.uniform(*KNOCK_SHIFT_PX)
        scale = 1.0 + rng.uniform(-KNOCK_SCALE, KNOCK_SCALE)
        m = _similarity(r * math.cos(a), r * math.sin(a), scale, rng.uniform(-KNOCK_TURN_DEG, KNOCK_TURN_DEG), centre)
        points = judged_points(scene.tray, w, h)
        offset = np.array([base.dx, base.dy])  # the tray's own offset against its empty photo
        expected = (points + offset) @ m[:, :2].T + m[:, 2] - points
        if float(np.max(np.hypot(*expected.T))) <= tol:
            continue
        knocked += 1
        move = view.compare(_warp(scene.image, m))
        if move is None:
            lost.append(view.features)
            continue
        caught += move.moved
        c = np.array([scene.tray.x, scene.tray.y]) if scene.tray is not None else np.array(centre)
        want = (c + offset) @ m[:, :2].T + m[:, 2] - c
        errors.append(float(np.hypot(move.dx - want[0], move.dy - want[1])))
        scale_errors.append(abs(move.scale - scale * base.scale))
    forward = _forward_ms(frames) if with_detector else 0.0
    return MovementReport(
        cups=n_cups,
        told=told,
        false_alarms=false_alarms,
        nudged_alarms=nudged_alarms,
        knocked=knocked,
        caught=caught,
        lost=len(lost),
        lost_features=tuple(lost),
        centre_error_px=_spread(errors),
        scale_error=max(scale_errors, default=math.nan),
        compare_ms=statistics.median(times) if times else math.nan,
        forward_ms=forward,
    )


def _spread(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (math.nan, math.nan, math.nan)
    arr = np.asarray(values)
    return (float(np.median(arr)), float(np.percentile(arr, 95)), float(arr.max()))


def _forward_ms(frames: list[np.ndarray]) -> float:
    """Median milliseconds of the shipped detector's bare forward pass over ``frames`` (after one warm-up)."""
    from models.detector import Detector

    detector = Detector.load()
    detector.boxes(frames[0])
    times = []
    for frame in frames:
        t0 = time.perf_counter()
        detector.boxes(frame)
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)
