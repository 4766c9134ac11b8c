"""Frozen dataclasses passed between the pipeline's stages.

Third-party results (ultralytics, faiss, LightGBM) are converted into these once, at the module that calls the
library; every other module sees only these types. Array shapes are stated in each docstring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

UInt8Array = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]


class Side(StrEnum):
    """Which face of a coin is up."""

    OBVERSE = "obverse"
    REVERSE = "reverse"


class CupKind(StrEnum):
    """How a (synthetic or labelled) cup was filled."""

    PURE = "pure"
    CONTAMINATED = "contaminated"
    OBVERSE_ONLY = "obverse_only"
    FOREIGN_OBJECT = "foreign_object"
    EMPTY = "empty"


class Decision(StrEnum):
    """The station's answer for one cup."""

    PASS = "pass"
    FLAG = "flag"


@dataclass(frozen=True)
class Frame:
    """One camera image.

    Attributes:
        image: ``(H, W, 3)`` uint8, BGR (OpenCV order).
        timestamp: seconds since the epoch when it was captured.
        source: where it came from (camera index, file path, ``"simulator"``).
    """

    image: UInt8Array
    timestamp: float = 0.0
    source: str = ""

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(f"Frame.image must be (H, W, 3) uint8, got {self.image.shape} {self.image.dtype}")


@dataclass(frozen=True)
class CoinInstance:
    """One coin (or coin-like object) found in a frame.

    Attributes:
        bbox: ``(4,)`` float32 ``x1, y1, x2, y2`` in frame pixels.
        mask: ``(y2 - y1, x2 - x1)`` bool, the instance's visible pixels inside its integer box
            ``mask_origin``.
        mask_origin: ``(x, y)`` integer top-left corner of ``mask`` in the frame.
        confidence: detector score in ``[0, 1]``.
        center: ``(x, y)`` of the fitted ellipse in frame pixels.
        axes: ``(major, minor)`` full axis lengths of the fitted ellipse in pixels.
        angle: ellipse rotation in degrees (OpenCV convention).
        diameter_mm: the major axis in millimetres when the camera is calibrated, else ``None``.
        partial: the coin is cut by the image edge or the cup rim.
        is_coin: ``False`` for a foreign object (anything in the cup that is not a coin).
    """

    bbox: FloatArray
    mask: BoolArray
    mask_origin: tuple[int, int]
    confidence: float
    center: tuple[float, float]
    axes: tuple[float, float]
    angle: float = 0.0
    diameter_mm: float | None = None
    partial: bool = False
    is_coin: bool = True

    @property
    def diameter_px(self) -> float:
        """The fitted ellipse's major axis, the best estimate of the coin's diameter in pixels."""
        return float(max(self.axes))


@dataclass(frozen=True)
class CoinCrop:
    """A square cut around one coin with its background removed.

    Attributes:
        image: ``(S, S, 3)`` uint8 BGR, pixels outside the coin set to the background value.
        mask: ``(S, S)`` bool, the coin's pixels.
        index: position of the source instance in the frame's instance list.
        partial: copied from the instance.
    """

    image: UInt8Array
    mask: BoolArray
    index: int
    partial: bool = False


@dataclass(frozen=True)
class Match:
    """One gallery hit for one coin.

    Attributes:
        type_id: the coin type.
        side: the side of the type's best reference.
        score: cosine similarity of the coin's embedding to that reference.
        template: best rotation-invariant template correlation with the type's references
            (:mod:`models.template`), when the search compared templates; matches are then ordered by
            ``score + TEMPLATE_WEIGHT * template``.
    """

    type_id: str
    side: Side
    score: float
    template: float | None = None


@dataclass(frozen=True)
class CoinEvidence:
    """What the pipeline knows about one coin of a cup, for the verdict and the UI.

    ``shared``: the coin shows a design other enrolled types show too (a family's obverse): that side says nothing
    of its type, and turning the coin over lets it count.
    """

    index: int
    bbox: tuple[float, float, float, float]
    matches: tuple[Match, ...]
    diameter_mm: float | None
    confidence: float
    partial: bool
    attention: float = 0.0
    suspicious: bool = False
    is_coin: bool = True
    shared: bool = False


@dataclass(frozen=True)
class Verdict:
    """The answer for one cup.

    Attributes:
        decision: PASS only when the calibrated policy accepts the expected type.
        expected_type: the coin type the order asks for.
        p_correct: the voter's calibrated probability that every coin is the expected type.
        threshold: the acceptance threshold in force.
        reasons: plain-language reasons a person can act on (empty for a clean PASS).
        coins: per-coin evidence, in the detector's order.
        model_version: the bundle version that produced it.
        timings_ms: stage name to milliseconds.
        unchecked: ``(x1, y1, x2, y2)`` boxes of what differs from the station's empty tray where no coin or
            object was found (:mod:`models.foreground`); any of them flags the cup.
        turn_first: a FLAG that names coins to turn over (:attr:`CoinEvidence.shared`) and nothing that turning
            cannot change (a declared lookalike, a foreign object, something unchecked, too few coins, focus,
            overlap, a coin that plainly looks like another type): the operator turns them and checks the cup
            again before a supervisor looks; the turning reason comes first.
        expected_count: how many coins the order asks for (``None``: any number); a cup showing another number is
            flagged (:attr:`count_is_wrong`), the count's reason first.
    """

    decision: Decision
    expected_type: str
    p_correct: float
    threshold: float
    reasons: tuple[str, ...]
    coins: tuple[CoinEvidence, ...]
    model_version: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    unchecked: tuple[tuple[int, int, int, int], ...] = ()
    turn_first: bool = False
    expected_count: int | None = None

    @property
    def n_coins(self) -> int:
        """How many coins were found (objects are not coins)."""
        return sum(1 for c in self.coins if c.is_coin)

    @property
    def count_is_wrong(self) -> bool:
        """Whether the order asks for another number of coins than the cup shows (objects are not coins)."""
        return self.expected_count is not None and self.n_coins != self.expected_count
