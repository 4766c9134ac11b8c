"""Drawing a verdict's evidence on the cup photograph, and the plain-words summary of a verdict (no Qt here).

Colours are BGR (OpenCV order). A coin is outlined green when its best match is the expected type and nothing is
suspicious about it, amber when it is suspicious, cut by the edge or the rim, or its best match is another type,
grey while no verdict has been made for the frame. What differs from the empty tray where nothing was found is
boxed red with a "?".
"""

from __future__ import annotations

import math
import re
import textwrap
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from calibration.movement import CameraMove
from db.records import StoredCoin
from models.enroll_tray import TrayLook
from models.reasons import ReasonKind, only_the_camera, reason_kind, score_decimals
from models.types import CoinEvidence, Decision, UInt8Array, Verdict

PASS_BGR = (60, 170, 40)
FLAG_BGR = (0, 165, 255)
NEUTRAL_BGR = (170, 170, 170)
UNCHECKED_BGR = (40, 40, 230)
PASS_HEX = "#2e9e3a"
FLAG_HEX = "#f0a000"
IDLE_HEX = "#5a6270"


def coin_ok(coin: CoinEvidence, expected_type: str) -> bool:
    """Whether one coin supports a PASS: wholly in view (a coin cut by the edge or the rim is named in the reasons,
    and what it matches says little), not suspicious, not on a side other types show too (it must be turned over,
    whichever of them its best match names), and its best match is the expected type."""
    return (
        not coin.partial
        and not coin.suspicious
        and not coin.shared
        and bool(coin.matches)
        and coin.matches[0].type_id == expected_type
    )


def coin_colour(coin: CoinEvidence, expected_type: str) -> tuple[int, int, int]:
    """The coin's outline colour (BGR)."""
    return PASS_BGR if coin_ok(coin, expected_type) else FLAG_BGR


def draw_evidence(image: UInt8Array, verdict: Verdict | None, *, thickness: int | None = None) -> UInt8Array:
    """Outline each coin of ``verdict`` on a copy of ``image``, coloured by its evidence, with its number.

    Args:
        image: ``(H, W, 3)`` uint8 BGR, the photographed cup.
        verdict: the verdict for this photograph, ``None`` to draw nothing.
        thickness: line width in pixels (default: scaled to the image).

    Returns:
        ``(H, W, 3)`` uint8 BGR.
    """
    out = image.copy()
    if verdict is None:
        return out
    h, w = out.shape[:2]
    lw = thickness or line_width(out)
    rings = [
        (c.bbox, c.index, coin_colour(c, verdict.expected_type), not coin_ok(c, verdict.expected_type))
        for c in verdict.coins
    ]
    _outline(out, rings, lw)
    for x1, y1, x2, y2 in verdict.unchecked:
        cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), UNCHECKED_BGR, lw, cv2.LINE_AA)
        scale = max(0.5, min(h, w) / 700)
        (tw, th), _ = cv2.getTextSize("?", cv2.FONT_HERSHEY_SIMPLEX, scale, lw)
        org = (int(np.clip(x1 + 3, 0, w - tw - 4)), int(np.clip(y1 + th + 4, th + 2, h - 2)))
        cv2.putText(out, "?", org, cv2.FONT_HERSHEY_SIMPLEX, scale, UNCHECKED_BGR, lw, cv2.LINE_AA)
    return out


def line_width(image: UInt8Array) -> int:
    """The width of the outlines drawn on ``image``, in pixels: 2 up to a 720-pixel side, thicker on larger ones."""
    return max(2, round(min(image.shape[:2]) / 240))


Ring = tuple[Sequence[float] | np.ndarray, int, tuple[int, int, int], bool]
"""One coin to outline: its box, its index (numbered ``index + 1``), its colour, and whether it is marked."""


def _outline(out: UInt8Array, coins: Sequence[Ring], lw: int) -> None:
    """Draw coins on ``out`` in place: each the ellipse in its box, a second thinner ring around it when marked,
    and its number on a patch of its colour at the box's top left. The numbers go on after every ring, so no
    neighbour's ring crosses one out."""
    h, w = out.shape[:2]
    for bbox, _, colour, ring in coins:
        x1, y1, x2, y2 = bbox
        centre = (round((x1 + x2) / 2), round((y1 + y2) / 2))
        axes = (max(1, round((x2 - x1) / 2)), max(1, round((y2 - y1) / 2)))
        cv2.ellipse(out, centre, axes, 0, 0, 360, colour, lw, cv2.LINE_AA)
        if ring:
            cv2.ellipse(out, centre, (axes[0] + 2 * lw, axes[1] + 2 * lw), 0, 0, 360, colour, max(1, lw // 2))
    scale = max(0.4, min(h, w) / 900)
    for bbox, index, colour, _ in coins:
        x1, y1 = bbox[0], bbox[1]
        label = str(index + 1)
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, lw)
        org = (int(np.clip(x1, 0, w - tw - 4)), int(np.clip(y1 + th + 2, th + 2, h - 2)))
        cv2.rectangle(out, (org[0] - 2, org[1] - th - 3), (org[0] + tw + 2, org[1] + 3), colour, -1)
        cv2.putText(out, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), max(1, lw // 2), cv2.LINE_AA)


def needs(threshold: float, p: float | None = None) -> str:
    """The acceptance threshold in words (``inf`` when no threshold reached the target precision), written with
    as many decimals as ``p`` is (:func:`score_of`), so that a score just under it never reads the same."""
    if not math.isfinite(threshold) or threshold > 1.0:
        return "no threshold certified: every cup is flagged"
    d = score_decimals(threshold if p is None else p, threshold)
    return f"needs ≥ {threshold:.{d}f}"


def score_of(p: float, threshold: float) -> str:
    """A cup's ``p_correct`` as the detail line writes it beside :func:`needs`: the same decimals, enough to tell it
    from the threshold (``0.9695`` under ``0.9696``, where three decimals would read ``0.970`` for both)."""
    return f"{p:.{score_decimals(p, threshold)}f}"


SHOWN_REASONS = 3
"""A FLAG's reason line shows at most this many of its reasons (the label draws a longer text smaller to fit)."""
_NAMES_A_COIN = re.compile(r"\b(?:coins?|object) \d")


def shown_reasons(reasons: Sequence[str]) -> list[str]:
    """The reasons shown for a cup that goes to a supervisor as it lies, as sentences: the camera's first (it is
    what every other finding rests on), then those that name a coin (or an object) before the notes about the type
    or the cup as a whole, so the coin to look at is never the one left out, at most :data:`SHOWN_REASONS` of them.
    A cut or hidden coin is said without its advice ("bring it into view"): the operator puts the cup aside, and
    does not put it right."""
    ranked = sorted(reasons, key=_rank)  # (stable: the pipeline's order within each rank)
    shown = []
    for reason in ranked[:SHOWN_REASONS]:
        if reason_kind(reason) is ReasonKind.CUT:
            reason = reason.partition(" — ")[0]
        shown.append(_sentence(reason))
    return shown


def _rank(reason: str) -> int:
    """Where :func:`shown_reasons` puts ``reason``: 0 the camera or the focus (what every match rests on), 1 a coin
    or object named, 2 anything else."""
    if reason_kind(reason) in (ReasonKind.CAMERA, ReasonKind.FOCUS):
        return 0
    return 1 if _NAMES_A_COIN.search(reason) else 2


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def draw_cup_region(image: UInt8Array, region: tuple[float, float, float] | None) -> UInt8Array:
    """Draw the cup's inner circle ``(cx, cy, radius)`` (pixels) as a thin dashed guide, in place; return ``image``."""
    if region is None:
        return image
    cx, cy, r = region
    lw = max(1, round(min(image.shape[:2]) / 480))
    for start in range(0, 360, 12):
        cv2.ellipse(image, (round(cx), round(cy)), (round(r), round(r)), 0, start, start + 7, (235, 235, 235), lw)
    return image


def draw_camera_move(image: UInt8Array, move: CameraMove) -> UInt8Array:
    """Show a moved camera on the live picture, in place; return ``image``: the cup region where it was set up
    (dashed white) and where it now appears (orange, with an arrow to where it belongs), so the camera can be
    nudged until the two circles meet."""
    cx, cy = move.centre
    draw_cup_region(image, (cx, cy, move.radius))
    nx, ny, nr = move.cup_now
    lw = line_width(image)
    cv2.circle(image, (round(nx), round(ny)), round(nr), FLAG_BGR, lw, cv2.LINE_AA)
    gap = math.hypot(cx - nx, cy - ny)
    if gap > 3:  # a tip of at least 10 px, however short the way
        tip = max(0.3, 10.0 / gap)
        cv2.arrowedLine(image, (round(nx), round(ny)), (round(cx), round(cy)), FLAG_BGR, lw, cv2.LINE_AA, 0, tip)
    return image


@dataclass(frozen=True)
class Summary:
    """What the banner shows for a verdict.

    Attributes:
        headline: ``PASS`` or ``FLAG``.
        colour: the banner's background, ``#rrggbb``.
        reason: one or two plain sentences for the operator.
        detail: the numbers, small print.
    """

    headline: str
    colour: str
    reason: str
    detail: str


def summarise(verdict: Verdict, *, turned: bool = False, camera_back: bool = False) -> Summary:
    """Turn a verdict into the banner's words.

    Args:
        verdict: the check's verdict.
        turned: the cup was checked with the coins an earlier FLAG named turned over, so a FLAG goes to a
            supervisor whatever it names.
        camera_back: the cup was checked again because its earlier check was flagged for the camera alone, which
            is as it was set up now.
    """
    n = verdict.n_coins
    suspicious = [c for c in verdict.coins if not coin_ok(c, verdict.expected_type)]
    if verdict.decision is Decision.PASS:
        headline, colour = "PASS", PASS_HEX
        reason = f"All {n} coin{'s' if n != 1 else ''} match {verdict.expected_type}."
        if turned:
            reason += " Checked again after turning."
        elif camera_back:
            reason += " Checked again with the camera back in place."
    elif verdict.count_is_wrong:  # the operator's to put right first: with coins added or taken out it is a new cup
        headline, colour = "FLAG", FLAG_HEX
        reason = " ".join(_sentence(r) for r in verdict.reasons[:2]) + " Correct the count, then check the cup again."
    elif only_the_camera(verdict.reasons):
        # nothing is wrong with the cup that anyone saw: the station's camera is not as it was set up (the same
        # test arms the check after the camera is back as this cup's re-check, CheckResult.follow_up)
        headline, colour = "FLAG", FLAG_HEX
        reason = " ".join(_sentence(r) for r in verdict.reasons[:2]) + " Then check the cup again."
    elif turned:
        headline, colour = "FLAG", FLAG_HEX
        reason = " ".join(shown_reasons(verdict.reasons))
        reason = (reason + " " if reason else "") + "Flagged again after turning: put it aside for a supervisor."
    else:
        headline, colour = "FLAG", FLAG_HEX
        if verdict.turn_first and verdict.reasons:  # the turning reason first, as the pipeline put it
            reason = " ".join(_sentence(r) for r in verdict.reasons[:2])
        elif verdict.reasons:
            reason = " ".join(shown_reasons(verdict.reasons))
        elif suspicious:
            reason = f"{len(suspicious)} of {n} coins may not be {verdict.expected_type}."
        else:
            reason = "Not sure enough to pass this cup."
        if verdict.turn_first:  # the turning reason comes first: turning may settle the cup
            reason += (
                " Then check the cup again; if it is flagged again, put it aside for a supervisor."
                if len(verdict.reasons) > 1
                else " Then check the cup again."
            )
        else:
            reason += " Put it aside for a supervisor."
    score = f"p = {score_of(verdict.p_correct, verdict.threshold)} ({needs(verdict.threshold, verdict.p_correct)})"
    detail = f"{n} coins · {len(suspicious)} marked · {score} · {sum(verdict.timings_ms.values()):.0f} ms"
    return Summary(headline, colour, reason, detail)


def draw_coins(image: UInt8Array, coins: Sequence[StoredCoin], expected_type: str) -> UInt8Array:
    """Outline the logged coins on a copy of the photo, numbered as the operator's window numbered them: green when
    the best match is the expected type."""
    out = image.copy()
    lw = line_width(out)
    _outline(out, [(c.bbox, c.index, PASS_BGR if c.top_type == expected_type else FLAG_BGR, False) for c in coins], lw)
    return out


def draw_tray(look: TrayLook) -> UInt8Array:
    """Outline the coins of a tray photograph for enrolment, numbered as :func:`draw_evidence` numbers a cup's coins:
    green the references, orange and ringed the coins left out (the summary says why, by number)."""
    out = look.image.copy()
    lw = line_width(out)
    kept = set(look.references)
    rings = [(c.bbox, k, PASS_BGR if k in kept else FLAG_BGR, k not in kept) for k, c in enumerate(look.coins)]
    _outline(out, rings, lw)
    return out


_ASCII = {"—": "-", "–": "-", "×": "x", "≥": ">=", "≤": "<=", "…": "...", "·": "-", "’": "'", "“": '"', "”": '"'}
"""What OpenCV's Hershey fonts, which draw ASCII alone, are given for the few other characters reasons use."""


def ascii_text(text: str) -> str:
    """``text`` in characters OpenCV can draw: the dashes, signs and quotes reasons use replaced, accents dropped,
    anything else a ``?``."""
    text = unicodedata.normalize("NFKD", "".join(_ASCII.get(ch, ch) for ch in text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.encode("ascii", "replace").decode("ascii")


def verdict_picture(image: UInt8Array, verdict: Verdict, name: str = "") -> UInt8Array:
    """The cup photograph with the verdict's evidence (:func:`draw_evidence`: each coin numbered as the reasons
    number it) above a caption: the verdict word in its colour with ``name``, the expected type and ``p``, then
    each reason on its own lines.

    Returns:
        ``(H + caption, W, 3)`` uint8 BGR.
    """
    photo = draw_evidence(image, verdict)
    return np.vstack([photo, _caption(photo.shape[1], verdict, name)])


CROP_TILE_PX = 128
"""Side of each coin's tile in :func:`crops_picture`."""
CROPS_PER_ROW = 8


def crops_picture(crops: Sequence[UInt8Array], verdict: Verdict, name: str = "") -> UInt8Array:
    """A cup given as single-coin crops: the crops side by side in their order, each framed in its coin's colour
    (:func:`coin_colour`) and numbered as the reasons number it, above the caption of :func:`verdict_picture`.

    Returns:
        ``(rows * tile + caption, columns * tile, 3)`` uint8 BGR (at least four tiles wide, for the caption).
    """
    tile = CROP_TILE_PX
    columns = max(4, min(CROPS_PER_ROW, len(crops)))
    rows = max(1, math.ceil(len(crops) / columns))
    sheet = np.full((rows * tile, columns * tile, 3), 32, np.uint8)
    evidence = {c.index: c for c in verdict.coins if c.is_coin}
    rings: list[Ring] = []
    for k, crop in enumerate(crops):
        y, x = (k // columns) * tile, (k % columns) * tile
        face = crop if crop.ndim == 3 else cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
        sheet[y : y + tile, x : x + tile] = cv2.resize(face[..., :3], (tile, tile), interpolation=cv2.INTER_AREA)
        coin = evidence.get(k)
        colour = NEUTRAL_BGR if coin is None else coin_colour(coin, verdict.expected_type)
        marked = coin is not None and not coin_ok(coin, verdict.expected_type)
        rings.append(((x + 6, y + 6, x + tile - 6, y + tile - 6), k, colour, marked))
    _outline(sheet, rings, 2)
    return np.vstack([sheet, _caption(sheet.shape[1], verdict, name)])


def _caption(width: int, verdict: Verdict, name: str) -> UInt8Array:
    """The verdict word in its colour with ``name``, the expected type and ``p``, then each reason, wrapped to
    ``width`` pixels, on a dark band."""
    scale = max(0.45, width / 1400)
    thick = max(1, round(scale * 1.6))
    (_, th), base = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    step = th + base + round(6 * scale)
    (cw, _), _ = cv2.getTextSize("m", cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    chars = max(20, (width - 20) // max(cw, 1))
    colour = PASS_BGR if verdict.decision is Decision.PASS else FLAG_BGR
    word = verdict.decision.value.upper()
    score = f"p={score_of(verdict.p_correct, verdict.threshold)} ({needs(verdict.threshold, verdict.p_correct)})"
    head = f"{word}  {verdict.expected_type}  {score}  {name}"
    lines: list[tuple[str, tuple[int, int, int]]] = [(ascii_text(head.rstrip()), colour)]
    for reason in verdict.reasons:
        wrapped = textwrap.wrap(ascii_text(reason), chars, initial_indent="- ", subsequent_indent="  ")
        lines.extend((line, (235, 235, 235)) for line in wrapped)
    caption = np.full((step * len(lines) + round(10 * scale), width, 3), 32, np.uint8)
    for k, (text, bgr) in enumerate(lines):
        org = (10, step * k + th + round(6 * scale))
        cv2.putText(caption, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, bgr, thick, cv2.LINE_AA)
    return caption
