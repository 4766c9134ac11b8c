"""The field of a coin's face: the motifs (bust, eagle, shield, ...), the near-twin's detail, and the whole design.

:func:`draw_design` draws a :class:`~models.synth.mint.Design` into a height map: the beaded border, the legend
around it, the motif, the date or value and the near-twin's detail, each placed from the design's seed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from models.synth.relief import FONTS, Relief, arc_text, glyph, star_pts, straight_text
from models.types import FloatArray

if TYPE_CHECKING:
    from models.synth.mint import Design


# --- motifs: each draws into ``rel`` inside the circle of radius ``s`` (coin-radius units) around (ox, oy)


def _motif_bust(rel: Relief, rng: np.random.Generator, ox: float, oy: float, s: float) -> None:
    def q(x: float, y: float) -> tuple[float, float]:
        return (ox + x * s, oy + y * s)

    nose = float(rng.uniform(0.08, 0.16))
    chin = float(rng.uniform(-0.02, 0.05))
    head_w = float(rng.uniform(0.36, 0.44))
    m = rel.mask()
    cv2.ellipse(m, rel.p(*q(0.08, -0.25)), (int(head_w * s * rel.r), int(0.5 * s * rel.r)), -15, 0, 360, 255, -1)
    face = [
        q(-0.18, -0.72),
        q(-0.34, -0.38),
        q(-0.36, -0.25),
        q(-0.36 - nose, -0.05),
        q(-0.36, 0.0),
        q(-0.37, 0.06),
        q(-0.33, 0.1),
        q(-0.36, 0.14),
        q(-0.3 - chin, 0.27),
        q(-0.16, 0.33),
        q(0.1, 0.2),
        q(0.2, -0.3),
    ]
    cv2.fillPoly(m, [rel.pts(face)], 255, cv2.LINE_AA)
    neck = [q(-0.17, 0.25), q(0.22, 0.1), q(0.28, 0.62), q(-0.12, 0.66)]
    cv2.fillPoly(m, [rel.pts(neck)], 255, cv2.LINE_AA)
    bust = rel.mask()
    cv2.ellipse(bust, rel.p(*q(0.08, 0.95)), (int(0.62 * s * rel.r), int(0.42 * s * rel.r)), 0, 180, 360, 255, -1)
    cut = float(rng.uniform(0.78, 0.86))
    bust[rel.p(0, oy + cut * s)[1] :, :] = 0
    m = np.maximum(m, bust)
    m[rel.p(0, oy + cut * s)[1] :, :] = 0
    rel.pillow(m, 9.0, 26.0)
    # features: eye, brow, ear, lips, hair
    d = rel.mask()
    cv2.ellipse(d, rel.p(*q(-0.22, -0.2)), (int(0.05 * s * rel.r), int(0.022 * s * rel.r)), -5, 0, 360, 255, 2)
    cv2.ellipse(d, rel.p(*q(-0.2, -0.27)), (int(0.08 * s * rel.r), int(0.03 * s * rel.r)), -10, 190, 330, 255, 3)
    cv2.line(d, rel.p(*q(-0.36, 0.06)), rel.p(*q(-0.29, 0.065)), 255, 2, cv2.LINE_AA)
    cv2.ellipse(d, rel.p(*q(0.1, -0.12)), (int(0.06 * s * rel.r), int(0.1 * s * rel.r)), 0, -70, 250, 255, 3)
    cv2.line(d, rel.p(*q(-0.16, 0.33)), rel.p(*q(0.14, 0.3)), 255, 2, cv2.LINE_AA)
    for _ in range(int(rng.integers(2, 6))):
        x0 = float(rng.uniform(-0.3, 0.45))
        cv2.ellipse(
            d,
            rel.p(*q(x0, 0.95)),
            (int(0.25 * s * rel.r), int(0.2 * s * rel.r)),
            float(rng.uniform(-30, 30)),
            200,
            300,
            255,
            2,
        )
    if rng.random() < 0.3:  # beard
        beard = rel.mask()
        cv2.fillPoly(
            beard,
            [rel.pts([q(-0.3, 0.12), q(-0.34, 0.3), q(-0.16, 0.4), q(0.1, 0.25), q(0.05, -0.02)])],
            255,
            cv2.LINE_AA,
        )
        rel.pillow(beard, 2.0, 4.0, base=7.0)
        for k in range(6):
            cv2.line(d, rel.p(*q(-0.25 + 0.06 * k, 0.12)), rel.p(*q(-0.28 + 0.06 * k, 0.36)), 255, 2, cv2.LINE_AA)
    rel.groove(d, 2.5, 1.2)
    hair = rel.mask()
    style = int(rng.integers(4))
    if style == 0:  # curls
        for _ in range(38):
            a = float(rng.uniform(-2.6, 0.5))
            rr = float(rng.uniform(0.15, 0.42))
            c = q(0.1 + rr * np.cos(a), -0.32 + rr * np.sin(a))
            cv2.circle(hair, rel.p(*c), int(0.045 * s * rel.r), 255, 2, cv2.LINE_AA)
    elif style == 1:  # swept waves
        for k in range(9):
            y0 = -0.68 + 0.06 * k
            pts = [q(-0.1 + 0.05 * j, y0 + 0.04 * np.sin(j * 1.3 + k) + 0.012 * j * j) for j in range(10)]
            cv2.polylines(hair, [rel.pts(pts)], False, 255, 2, cv2.LINE_AA)
    elif style == 2:  # laurel wreath
        for k in range(11):
            a = -2.7 + 0.27 * k
            c = q(0.1 + 0.4 * np.cos(a), -0.28 + 0.45 * np.sin(a))
            ax = (int(0.075 * s * rel.r), int(0.03 * s * rel.r))
            cv2.ellipse(hair, rel.p(*c), ax, float(np.degrees(a)) + 60, 0, 360, 255, -1, cv2.LINE_AA)
        rel.pillow(hair, 3.0, 5.0, base=7.0)
        hair = rel.mask()
    else:  # crown
        base_y = -0.66
        pts = [q(-0.2, base_y + 0.12), q(0.36, base_y + 0.04)]
        for k in range(5):
            x = 0.36 - 0.14 * k
            pts.append(q(x - 0.07, base_y - 0.28 + 0.02 * k))
            pts.append(q(x - 0.14, base_y - 0.02))
        crown = rel.mask()
        cv2.fillPoly(crown, [rel.pts(pts)], 255, cv2.LINE_AA)
        rel.pillow(crown, 4.0, 6.0, base=5.0)
        for k in range(5):
            x = 0.29 - 0.14 * k
            cv2.circle(hair, rel.p(*q(x, base_y - 0.27 + 0.02 * k)), int(0.035 * s * rel.r), 255, -1)
        rel.pillow(hair, 2.0, 3.0, base=8.0)
        hair = rel.mask()
        for k in range(7):
            cv2.line(hair, rel.p(*q(0.05 + 0.04 * k, -0.5)), rel.p(*q(0.2 + 0.03 * k, 0.05)), 255, 2)
    rel.groove(hair, 2.0, 1.0)


def _motif_eagle(rel: Relief, rng: np.random.Generator, ox: float, oy: float, s: float) -> None:
    def q(x: float, y: float) -> tuple[float, float]:
        return (ox + x * s, oy + y * s)

    n_feathers = int(rng.integers(5, 9))
    lift = float(rng.uniform(-0.15, 0.2))
    wings = rel.mask()
    lines = rel.mask()
    for side in (-1, 1):
        sh = q(0.08 * side, -0.28)
        wrist = q(0.5 * side, -0.62 - lift)
        tip = q(0.98 * side, -0.42 - lift)
        edge = [sh, wrist, tip]
        root = (0.12, 0.2)
        for k in range(1, n_feathers + 1):
            t = k / (n_feathers + 1)
            fx = 0.98 - (0.98 - root[0]) * t
            fy = -0.42 - lift + (root[1] + 0.42 + lift) * t
            edge.append(q((fx - 0.02) * side, fy + 0.1))
            edge.append(q((fx - 0.09) * side, fy + 0.02))
            cv2.line(
                lines,
                rel.p(*q((fx - 0.09) * side, fy + 0.02)),
                rel.p(*q(0.42 * side, -0.45 - lift * 0.5)),
                255,
                2,
                cv2.LINE_AA,
            )
        edge.append(q(root[0] * side, root[1]))
        cv2.fillPoly(wings, [rel.pts(edge)], 255, cv2.LINE_AA)
        cv2.polylines(
            lines,
            [rel.pts([q(0.15 * side, -0.3), q(0.45 * side, -0.5 - lift), q(0.85 * side, -0.4 - lift)])],
            False,
            255,
            2,
            cv2.LINE_AA,
        )
    rel.pillow(wings, 5.0, 14.0)
    rel.groove(lines, 1.8, 1.0)
    body = rel.mask()
    cv2.ellipse(body, rel.p(*q(0, 0.05)), (int(0.17 * s * rel.r), int(0.36 * s * rel.r)), 0, 0, 360, 255, -1)
    tail = [q(-0.08, 0.3), q(0.08, 0.3), q(0.2, 0.72), q(-0.2, 0.72)]
    cv2.fillConvexPoly(body, rel.pts(tail), 255, cv2.LINE_AA)
    rel.pillow(body, 8.0, 18.0)
    head = rel.mask()
    face = 1 if rng.random() < 0.5 else -1
    cv2.circle(head, rel.p(*q(0, -0.42)), int(0.12 * s * rel.r), 255, -1, cv2.LINE_AA)
    cv2.fillConvexPoly(head, rel.pts([q(0.08 * face, -0.48), q(0.25 * face, -0.4), q(0.08 * face, -0.35)]), 255)
    rel.pillow(head, 4.0, 8.0, base=6.0)
    det = rel.mask()
    cv2.circle(det, rel.p(*q(0.04 * face, -0.45)), int(0.02 * s * rel.r) + 1, 255, -1)
    for k in range(5):
        cv2.line(det, rel.p(*q(-0.1 + 0.05 * k, 0.42)), rel.p(*q(-0.16 + 0.08 * k, 0.7)), 255, 2)
    for k in range(4):
        cv2.ellipse(
            det, rel.p(*q(0, -0.1 + 0.12 * k)), (int(0.1 * s * rel.r), int(0.05 * s * rel.r)), 0, 20, 160, 255, 2
        )
    rel.groove(det, 2.0, 1.0)


def shield_pts(rel: Relief, q: Any, w: float, top: float, bottom: float) -> np.ndarray:
    pts = [q(-w, top), q(w, top), q(w, 0.1)]
    for k in range(1, 10):
        t = k / 10
        pts.append(q(w * (1 - t) ** 0.8, 0.1 + (bottom - 0.1) * np.sin(t * np.pi / 2)))
    pts.append(q(0, bottom))
    for k in range(9, 0, -1):
        t = k / 10
        pts.append(q(-w * (1 - t) ** 0.8, 0.1 + (bottom - 0.1) * np.sin(t * np.pi / 2)))
    pts.append(q(-w, 0.1))
    return rel.pts(pts)


def _motif_shield(rel: Relief, rng: np.random.Generator, ox: float, oy: float, s: float) -> None:
    def q(x: float, y: float) -> tuple[float, float]:
        return (ox + x * s, oy + y * s)

    m = rel.mask()
    outline = shield_pts(rel, q, 0.55, -0.55, 0.8)
    cv2.fillPoly(m, [outline], 255, cv2.LINE_AA)
    rel.pillow(m, 3.5, 10.0)
    o = rel.mask()
    cv2.polylines(o, [shield_pts(rel, q, 0.48, -0.48, 0.7)], True, 255, 4, cv2.LINE_AA)
    rel.ridge(o, 2.5)
    div = rel.mask()
    kind = int(rng.integers(4))
    if kind == 0:
        for k in range(1, 6):
            x = -0.48 + 0.16 * k
            cv2.line(div, rel.p(*q(x, -0.48)), rel.p(*q(x, 0.6 - abs(x) * 0.6)), 255, 3)
    elif kind == 1:
        cv2.polylines(div, [rel.pts([q(-0.48, 0.35), q(0, -0.1), q(0.48, 0.35)])], False, 255, 10, cv2.LINE_AA)
    elif kind == 2:
        cv2.line(div, rel.p(*q(0, -0.48)), rel.p(*q(0, 0.7)), 255, 10)
        cv2.line(div, rel.p(*q(-0.48, 0.05)), rel.p(*q(0.48, 0.05)), 255, 10)
    else:
        cv2.line(div, rel.p(*q(-0.48, -0.15)), rel.p(*q(0.48, -0.15)), 255, 4)
        for k in range(3):
            cv2.circle(div, rel.p(*q(-0.3 + 0.3 * k, 0.15 + 0.12 * (k % 2))), int(0.07 * s * rel.r), 255, -1)
    rel.ridge(div, 2.5)
    st = rel.mask()
    n_stars = int(rng.integers(0, 4))
    for k in range(n_stars):
        cv2.fillPoly(st, [star_pts(rel, *q(-0.25 + 0.25 * k, -0.32), 0.08 * s, 5, 0.0)], 255, cv2.LINE_AA)
    rel.pillow(st, 2.0, 3.0, base=3.5)
    if rng.random() < 0.5:  # crown on top
        cr = rel.mask()
        pts = [q(-0.4, -0.6), q(0.4, -0.6), q(0.45, -0.9), q(0.22, -0.72), q(0, -0.95), q(-0.22, -0.72), q(-0.45, -0.9)]
        cv2.fillPoly(cr, [rel.pts(pts)], 255, cv2.LINE_AA)
        rel.pillow(cr, 4.0, 6.0)


def _motif_star(rel: Relief, rng: np.random.Generator, ox: float, oy: float, s: float) -> None:
    n = int(rng.integers(5, 9))
    m = rel.mask()
    cv2.fillPoly(m, [star_pts(rel, ox, oy, 0.75 * s, n, float(rng.uniform(0, 0.5)), 0.42)], 255, cv2.LINE_AA)
    rel.pillow(m, 8.0, 30.0)
    ring = rel.mask()
    k = int(rng.integers(8, 16))
    for i in range(k):
        a = 2 * np.pi * i / k
        cv2.fillPoly(ring, [star_pts(rel, ox + 0.9 * s * np.cos(a), oy + 0.9 * s * np.sin(a), 0.07 * s, 5, a)], 255)
    rel.pillow(ring, 3.0, 3.0)
    c = rel.mask()
    cv2.circle(c, rel.p(ox, oy), int(0.16 * s * rel.r), 255, 3, cv2.LINE_AA)
    rel.groove(c, 2.0)


def _motif_tree(rel: Relief, rng: np.random.Generator, ox: float, oy: float, s: float) -> None:
    trunk = rel.mask()
    lines: list[tuple[float, float, float, float, int]] = []

    def branch(x: float, y: float, a: float, length: float, depth: int) -> None:
        x2, y2 = x + length * np.cos(a), y + length * np.sin(a)
        lines.append((x, y, x2, y2, depth))
        if depth > 0:
            for da in (-float(rng.uniform(0.3, 0.6)), float(rng.uniform(0.3, 0.6))):
                branch(x2, y2, a + da, length * float(rng.uniform(0.6, 0.78)), depth - 1)

    branch(ox, oy + 0.8 * s, -np.pi / 2, 0.55 * s, 4)
    for x, y, x2, y2, depth in lines:
        cv2.line(trunk, rel.p(x, y), rel.p(x2, y2), 255, max(2, 3 * depth + 2), cv2.LINE_AA)
    leaves = rel.mask()
    for _x, _y, x2, y2, depth in lines:
        if depth == 0:
            cv2.circle(leaves, rel.p(x2, y2), int(0.13 * s * rel.r), 255, -1, cv2.LINE_AA)
    rel.pillow(leaves, 6.0, 12.0)
    rel.pillow(trunk, 6.0, 5.0)
    g = rel.mask()
    cv2.ellipse(g, rel.p(ox, oy + 0.82 * s), (int(0.6 * s * rel.r), int(0.08 * s * rel.r)), 0, 0, 360, 255, -1)
    rel.pillow(g, 3.0, 6.0)


def _motif_building(rel: Relief, rng: np.random.Generator, ox: float, oy: float, s: float) -> None:
    def q(x: float, y: float) -> tuple[float, float]:
        return (ox + x * s, oy + y * s)

    n_col = int(rng.integers(4, 9))
    w = 0.75
    m = rel.mask()
    for k in range(3):  # steps
        cv2.rectangle(
            m, rel.p(*q(-w - 0.05 * (3 - k), 0.62 + 0.07 * k)), rel.p(*q(w + 0.05 * (3 - k), 0.69 + 0.07 * k)), 255, -1
        )
    cv2.rectangle(m, rel.p(*q(-w, -0.32)), rel.p(*q(w, -0.18)), 255, -1)
    cv2.fillPoly(m, [rel.pts([q(-w - 0.06, -0.32), q(w + 0.06, -0.32), q(0, -0.72)])], 255, cv2.LINE_AA)
    rel.pillow(m, 4.0, 6.0)
    cols = rel.mask()
    cw = 2 * w / (n_col * 1.8)
    for k in range(n_col):
        x = -w + cw * 0.6 + k * (2 * w - 1.2 * cw) / max(n_col - 1, 1)
        cv2.rectangle(cols, rel.p(*q(x - cw / 2, -0.18)), rel.p(*q(x + cw / 2, 0.62)), 255, -1)
    rel.pillow(cols, 5.0, 7.0)
    det = rel.mask()
    cv2.polylines(det, [rel.pts([q(-w + 0.1, -0.36), q(w - 0.1, -0.36), q(0, -0.64)])], True, 255, 2, cv2.LINE_AA)
    cv2.line(det, rel.p(*q(-w, -0.25)), rel.p(*q(w, -0.25)), 255, 2)
    rel.groove(det, 1.5)
    if rng.random() < 0.5:
        dome = rel.mask()
        cv2.ellipse(dome, rel.p(*q(0, -0.5)), (int(0.32 * s * rel.r), int(0.4 * s * rel.r)), 0, 180, 360, 255, -1)
        rel.pillow(dome, 4.0, 10.0)


def _motif_rosette(rel: Relief, rng: np.random.Generator, ox: float, oy: float, s: float) -> None:
    n = int(rng.integers(6, 14))
    petals = rel.mask()
    for k in range(n):
        a = 2 * np.pi * k / n
        c = rel.p(ox + 0.42 * s * np.cos(a), oy + 0.42 * s * np.sin(a))
        cv2.ellipse(petals, c, (int(0.36 * s * rel.r), int(0.12 * s * rel.r)), float(np.degrees(a)), 0, 360, 255, -1)
    rel.pillow(petals, 5.0, 10.0)
    lines = rel.mask()
    for k in range(n):
        a = 2 * np.pi * (k + 0.5) / n
        cv2.line(lines, rel.p(ox, oy), rel.p(ox + 0.8 * s * np.cos(a), oy + 0.8 * s * np.sin(a)), 255, 2, cv2.LINE_AA)
    rel.groove(lines, 2.0)
    rings = rel.mask()
    for rr in (0.9, 0.97):
        cv2.circle(rings, rel.p(ox, oy), int(rr * s * rel.r), 255, 2, cv2.LINE_AA)
    rel.ridge(rings, 2.0)
    hub = rel.mask()
    cv2.circle(hub, rel.p(ox, oy), int(0.18 * s * rel.r), 255, -1, cv2.LINE_AA)
    rel.pillow(hub, 4.0, 8.0, base=3.0)
    dots = rel.mask()
    for k in range(n):
        a = 2 * np.pi * k / n
        cv2.circle(dots, rel.p(ox + 0.1 * s * np.cos(a), oy + 0.1 * s * np.sin(a)), 3, 255, -1)
    rel.groove(dots, 2.0)


def _motif_ship(rel: Relief, rng: np.random.Generator, ox: float, oy: float, s: float) -> None:
    def q(x: float, y: float) -> tuple[float, float]:
        return (ox + x * s, oy + y * s)

    hull = [q(-0.75, 0.2), q(0.75, 0.2), q(0.55, 0.42), q(-0.55, 0.42)]
    m = rel.mask()
    cv2.fillPoly(m, [rel.pts(hull)], 255, cv2.LINE_AA)
    rel.pillow(m, 6.0, 8.0)
    n_mast = int(rng.integers(1, 4))
    sails = rel.mask()
    masts = rel.mask()
    for k in range(n_mast):
        x = -0.4 + 0.8 * (k + 0.5) / n_mast
        cv2.line(masts, rel.p(*q(x, 0.2)), rel.p(*q(x, -0.8)), 255, 4)
        h = 0.8 / n_mast + 0.25
        for j in range(2):
            y0 = -0.75 + j * 0.45
            sail = [
                q(x - 0.24 / n_mast - 0.08, y0),
                q(x + 0.24 / n_mast + 0.08, y0),
                q(x + 0.3 / n_mast + 0.1, y0 + 0.38),
                q(x - 0.3 / n_mast - 0.1, y0 + 0.38),
            ]
            _ = h
            cv2.fillPoly(sails, [rel.pts(sail)], 255, cv2.LINE_AA)
    rel.pillow(sails, 5.0, 12.0)
    rel.ridge(masts, 3.0)
    waves = rel.mask()
    for j in range(3):
        pts = [q(-0.85 + 0.05 * i, 0.5 + 0.1 * j + 0.03 * np.sin(i * 0.9 + j)) for i in range(35)]
        cv2.polylines(waves, [rel.pts(pts)], False, 255, 3, cv2.LINE_AA)
    rel.ridge(waves, 2.5)


def _motif_wreath(rel: Relief, rng: np.random.Generator, ox: float, oy: float, s: float, value: str) -> None:
    leaves = rel.mask()
    n = int(rng.integers(7, 12))
    for side in (-1, 1):
        for k in range(n):
            a = np.pi / 2 + side * (0.55 + 2.1 * k / n)
            c = rel.p(ox + 0.8 * s * np.cos(a), oy + 0.82 * s * np.sin(a))
            ang = float(np.degrees(a)) + 90 + side * 30
            cv2.ellipse(leaves, c, (int(0.13 * s * rel.r), int(0.05 * s * rel.r)), ang, 0, 360, 255, -1, cv2.LINE_AA)
    rel.pillow(leaves, 4.0, 5.0)
    num = rel.mask()
    font = FONTS[int(rng.integers(len(FONTS)))]
    sc = 0.75 * s * rel.r / 22.0 * min(1.0, 1.6 / max(len(value), 1))
    straight_text(num, value, rel.c + ox * rel.r, rel.c + oy * rel.r, font, sc, max(3, int(sc * 2.5)))
    rel.pillow(num, 6.0, 5.0)


def _motif_sun(rel: Relief, rng: np.random.Generator, ox: float, oy: float, s: float) -> None:
    n = int(rng.integers(10, 20))
    rays = rel.mask()
    for k in range(n):
        a = 2 * np.pi * k / n
        b = np.pi / n * 0.6
        pts = [
            (ox + 0.35 * s * np.cos(a - b), oy + 0.35 * s * np.sin(a - b)),
            (ox + 0.85 * s * np.cos(a), oy + 0.85 * s * np.sin(a)),
            (ox + 0.35 * s * np.cos(a + b), oy + 0.35 * s * np.sin(a + b)),
        ]
        cv2.fillConvexPoly(rays, rel.pts(pts), 255, cv2.LINE_AA)
    rel.pillow(rays, 4.0, 6.0)
    disc = rel.mask()
    cv2.circle(disc, rel.p(ox, oy), int(0.38 * s * rel.r), 255, -1, cv2.LINE_AA)
    rel.pillow(disc, 8.0, 28.0)
    f = rel.mask()
    for dx in (-0.13, 0.13):
        cv2.ellipse(
            f, rel.p(ox + dx * s, oy - 0.08 * s), (int(0.06 * s * rel.r), int(0.03 * s * rel.r)), 0, 0, 360, 255, 2
        )
    cv2.ellipse(f, rel.p(ox, oy + 0.12 * s), (int(0.15 * s * rel.r), int(0.08 * s * rel.r)), 0, 20, 160, 255, 3)
    rel.groove(f, 2.5)


def _motif_flower(rel: Relief, rng: np.random.Generator, ox: float, oy: float, s: float) -> None:
    stem = rel.mask()
    pts = [(ox + 0.08 * s * np.sin(t * 3.0), oy + s * (0.85 - 0.85 * t)) for t in np.linspace(0, 1, 20)]
    cv2.polylines(stem, [rel.pts(pts)], False, 255, 7, cv2.LINE_AA)
    for side in (-1, 1):
        c = rel.p(ox + side * 0.22 * s, oy + 0.5 * s)
        cv2.ellipse(stem, c, (int(0.24 * s * rel.r), int(0.08 * s * rel.r)), -side * 30, 0, 360, 255, -1, cv2.LINE_AA)
    rel.pillow(stem, 5.0, 6.0)
    n = int(rng.integers(5, 10))
    petals = rel.mask()
    cy = oy - 0.25 * s
    for k in range(n):
        a = 2 * np.pi * k / n
        c = rel.p(ox + 0.25 * s * np.cos(a), cy + 0.25 * s * np.sin(a))
        cv2.ellipse(petals, c, (int(0.26 * s * rel.r), int(0.12 * s * rel.r)), float(np.degrees(a)), 0, 360, 255, -1)
    rel.pillow(petals, 6.0, 12.0)
    centre = rel.mask()
    cv2.circle(centre, rel.p(ox, cy), int(0.13 * s * rel.r), 255, -1, cv2.LINE_AA)
    rel.pillow(centre, 3.0, 6.0, base=5.0)


_EMBLEM_R = 0.07
_MARK_SCALE = 0.032


def _draw_detail(rel: Relief, detail: str, x: float, y: float) -> None:
    """The near-twin mark: a mint-mark letter or a small emblem centred on ``(x, y)`` (coin-radius units)."""
    if not detail:
        return
    m = rel.mask()
    kind, what = detail.split(":", 1)
    r = _EMBLEM_R
    if kind == "mm":
        glyph(m, what, rel.c + x * rel.r, rel.c + y * rel.r, 0.0, cv2.FONT_HERSHEY_DUPLEX, _MARK_SCALE * rel.r / 8.0, 2)
        rel.flat(cv2.GaussianBlur(m, (0, 0), 0.8), 3.5)
        return
    if what == "star":
        cv2.fillPoly(m, [star_pts(rel, x, y, r, 5, 0.0, 0.42)], 255, cv2.LINE_AA)
    elif what == "dot":
        cv2.circle(m, rel.p(x, y), int(0.6 * r * rel.r), 255, -1, cv2.LINE_AA)
    elif what == "leaf":
        cv2.ellipse(m, rel.p(x, y), (int(r * rel.r), int(0.45 * r * rel.r)), -35, 0, 360, 255, -1, cv2.LINE_AA)
    elif what == "cross":
        cv2.line(m, rel.p(x - r, y), rel.p(x + r, y), 255, 5)
        cv2.line(m, rel.p(x, y - r), rel.p(x, y + r), 255, 5)
    else:  # ring
        cv2.circle(m, rel.p(x, y), int(0.7 * r * rel.r), 255, 4, cv2.LINE_AA)
    rel.pillow(m, 3.5, 3.0)


def draw_design(design: Design) -> FloatArray:
    """The design's height map, ``(BASE_PX, BASE_PX)`` float32, base-pixel units, without the coin's rim."""
    rng = np.random.default_rng([design.seed & 0x7FFFFFFF, 0x44455349])
    rel = Relief()
    font = FONTS[int(rng.integers(len(FONTS)))]
    legend_scale = float(rng.uniform(0.95, 1.15))
    legend_r = 0.8 * rel.r
    # beaded or lined inner border
    border = rel.mask()
    beads = rng.random() < 0.7
    br = 0.905
    if beads:
        nb = int(rng.integers(70, 130))
        for k in range(nb):
            a = 2 * np.pi * k / nb
            cv2.circle(border, rel.p(br * np.cos(a), br * np.sin(a)), int(rng.integers(3, 5)), 255, -1, cv2.LINE_AA)
        rel.pillow(border, 2.5, 3.0)
    else:
        cv2.circle(border, rel.p(0, 0), int(br * rel.r), 255, 3, cv2.LINE_AA)
        rel.ridge(border, 2.0)
    top, _, bottom = design.legend.partition("|")
    text = rel.mask()
    th = 1
    arc_text(rel, text, top, legend_r, font, legend_scale, th, True)
    arc_text(rel, text, bottom, legend_r, font, legend_scale * 0.9, th, False)
    rel.flat(cv2.GaussianBlur(text, (0, 0), 0.6), 2.4)
    # layout of the field: motif, date and detail slots depend only on the seed
    has_bottom = bool(bottom)
    date_y = 0.5 if not has_bottom else 0.45
    motif_s = 0.56 if design.numeral else 0.66
    motif_y = -0.1 if design.numeral else 0.0
    side = 1 if rng.random() < 0.5 else -1
    # the mark sits beside the date, or low in the field between the motif and the legend
    low = np.radians(float(rng.uniform(28.0, 42.0)))
    detail_x, detail_y = side * 0.57 * float(np.cos(low)), 0.57 * float(np.sin(low))
    if rng.random() < 0.5 and design.numeral:
        detail_x, detail_y = 0.34 * side, date_y
    motif_rng = np.random.default_rng([design.seed & 0x7FFFFFFF, 0x4D4F5449])
    layer = Relief()
    if design.motif == "wreath":
        _motif_wreath(layer, motif_rng, 0.0, motif_y, motif_s, str((1, 2, 5, 10, 20, 25, 50)[design.seed % 7]))
    else:
        draw = {
            "bust": _motif_bust,
            "eagle": _motif_eagle,
            "shield": _motif_shield,
            "star": _motif_star,
            "tree": _motif_tree,
            "building": _motif_building,
            "rosette": _motif_rosette,
            "ship": _motif_ship,
            "sun": _motif_sun,
            "flower": _motif_flower,
        }[design.motif]
        draw(layer, motif_rng, 0.0, motif_y, motif_s)
    if design.motif != "wreath":
        if rng.random() < 0.5:
            layer.h = np.ascontiguousarray(layer.h[:, ::-1])
        tilt = float(rng.uniform(-10.0, 10.0))
        zoom = float(rng.uniform(0.92, 1.06))
        centre = (rel.c, rel.c + motif_y * rel.r)
        warp = cv2.getRotationMatrix2D(centre, tilt, zoom)
        layer.h = np.asarray(cv2.warpAffine(layer.h, warp, (rel.n, rel.n), flags=cv2.INTER_LINEAR), np.float32)
    np.maximum(rel.h, layer.h, out=rel.h)
    if design.numeral:
        num = rel.mask()
        nscale = float(rng.uniform(0.85, 1.05))
        straight_text(num, design.numeral, rel.c, rel.c + date_y * rel.r, font, nscale, th)
        rel.flat(cv2.GaussianBlur(num, (0, 0), 0.6), 2.4)
    _draw_detail(rel, design.detail, detail_x, detail_y)
    h = cv2.GaussianBlur(rel.h, (0, 0), 0.8)
    return np.asarray(h, np.float32)
