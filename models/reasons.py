"""What kind of reason a FLAG gave, from its words: the reasons are written for the operator
(:meth:`models.pipeline.Pipeline.run`), and the activity report counts them by kind.

Each kind is recognised by a phrase its reason always holds; keep them in step with the reason texts in
``models/pipeline.py`` (``tests/models/test_reasons.py`` runs the pipeline's reasons through :func:`reason_kind`).
"""

from __future__ import annotations

from enum import StrEnum


class ReasonKind(StrEnum):
    """The kinds of reason a cup is flagged for."""

    COUNT = "count"
    TURN = "turn"
    LOOKS_LIKE = "looks_like"
    LOOKALIKE_TYPE = "lookalike_type"
    OBJECT = "object"
    UNCHECKED = "unchecked"
    NO_COINS = "no_coins"
    TOO_FEW = "too_few"
    FOCUS = "focus"
    OVERLAP = "overlap"
    CAMERA = "camera"
    NO_THRESHOLD = "no_threshold"
    NOT_SURE = "not_sure"
    OTHER = "other"


LABELS: dict[ReasonKind, str] = {
    ReasonKind.COUNT: "not the number of coins ordered",
    ReasonKind.TURN: "a coin on a shared face: turn it over",
    ReasonKind.LOOKS_LIKE: "a coin looks like another type",
    ReasonKind.LOOKALIKE_TYPE: "the type has a declared lookalike",
    ReasonKind.OBJECT: "an object that is not a coin",
    ReasonKind.UNCHECKED: "something the empty tray does not show",
    ReasonKind.NO_COINS: "no coins found",
    ReasonKind.TOO_FEW: "too few coins visible",
    ReasonKind.FOCUS: "coins out of focus",
    ReasonKind.OVERLAP: "coins overlap too much",
    ReasonKind.CAMERA: "the camera is not as it was set up",
    ReasonKind.NO_THRESHOLD: "no certified threshold",
    ReasonKind.NOT_SURE: "not sure enough",
    ReasonKind.OTHER: "other",
}
"""What the report calls each kind."""

_PHRASES: tuple[tuple[str, ReasonKind], ...] = (
    (", the order is for ", ReasonKind.COUNT),
    ("shared obverse", ReasonKind.TURN),
    ("has a lookalike (", ReasonKind.LOOKALIKE_TYPE),
    (" looks like ", ReasonKind.LOOKS_LIKE),
    ("look like other types", ReasonKind.LOOKS_LIKE),
    ("is not a coin", ReasonKind.OBJECT),
    ("differs from the empty tray", ReasonKind.UNCHECKED),
    ("no coins found", ReasonKind.NO_COINS),
    ("too few coins", ReasonKind.TOO_FEW),
    ("out of focus", ReasonKind.FOCUS),
    ("overlap too much", ReasonKind.OVERLAP),
    ("camera was set up at", ReasonKind.CAMERA),
    ("camera has moved since it was set up", ReasonKind.CAMERA),
    ("no certified threshold", ReasonKind.NO_THRESHOLD),
    ("not sure enough", ReasonKind.NOT_SURE),
)


def reason_kind(reason: str) -> ReasonKind:
    """The kind of one reason (:attr:`ReasonKind.OTHER` for words none of the kinds hold)."""
    for phrase, kind in _PHRASES:
        if phrase in reason:
            return kind
    return ReasonKind.OTHER


def reason_kinds(reasons: tuple[str, ...] | list[str]) -> set[ReasonKind]:
    """The kinds among a FLAG's reasons (each once)."""
    return {reason_kind(r) for r in reasons}


def only_the_count(reasons: tuple[str, ...] | list[str]) -> bool:
    """Whether a FLAG's only reason is the coin count (its coins passed: the operator corrects the count and checks
    the cup again, as a new cup)."""
    return bool(reasons) and all(reason_kind(r) is ReasonKind.COUNT for r in reasons)


def only_the_camera(reasons: tuple[str, ...] | list[str]) -> bool:
    """Whether a FLAG's only reason is the camera (:attr:`ReasonKind.CAMERA`: nothing was seen wrong with the cup;
    once the camera is as it was set up, the operator checks the same cup again)."""
    return bool(reasons) and all(reason_kind(r) is ReasonKind.CAMERA for r in reasons)
