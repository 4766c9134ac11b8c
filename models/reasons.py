"""The words of a FLAG: written for the operator from what the pipeline found (:func:`flag_reasons`,
:func:`count_reason`), and read back by kind for the activity report (:func:`reason_kind`).

Each kind is recognised by a phrase its reason always holds; the texts and the phrases live side by side here
(``tests/models/test_reasons.py`` runs every written reason through :func:`reason_kind`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

MAX_LOOKALIKE_REASONS = 3
"""At most this many "coin k looks like ..." reasons per verdict."""
OVERLAP_VISIBLE = 0.6
"""Below this mean share of each coin's disc in view, the coins are said to overlap too much; a coin with less than
this share of its own disc in view is said to be mostly hidden, and no rival is named for it (on 48 rendered test
cups, 14 of the 15 coins of the expected type named as looking like another type were 38-85 % hidden)."""
WEAK_MATCH = 0.5
"""A coin whose best match, the candidate's or its rival's, is under this cosine resembles no enrolled type: it is
not said to look like its rival (a won coin in a euro cup scores about 0.3 to everything), but to match nothing
well. An enrolled coin in plain view scores about 0.8 or more to its own type."""
SCORE_DECIMALS = 3
"""Decimals a score and the threshold are written with, unless they need more to differ (:func:`score_decimals`)."""


@dataclass(frozen=True)
class CoinFinding:
    """One coin, as the reasons speak of it.

    Attributes:
        number: the coin's number on the operator's picture (from 1, objects counted).
        margin: the candidate's similarity minus the best other type's (negative: another type matches better).
        rival: the type a reason names for a coin another type beats (``None``: none): the first of the coin's listed
            matches that does not match it through a design the candidate shows, so the reason and the coin's
            evidence name one type (:func:`models.pipeline.name_rival`).
        rival_score: that type's similarity (as its match lists it).
        rival_shared_by: the types showing the design ``rival`` matched the coin through, when that design is shared
            (several enrolled types show it, or the catalogue declares it) and the candidate does not show it (another
            family's obverse: the coin is said to show it, not to look like one member); ``()``: the rival's own.
        rival_side: the rival's side the coin matched (``"obverse"`` or ``"reverse"``).
        call_score: the score the verdict weighed the coin's rival at (its best cosine among the types not sharing
            the matched design), which decides whether turning first is advised; ``None``: ``rival_score``.
        to_turn: the coin lies on a design the candidate shares with other types: turning it over settles it.
        side: the candidate's side the coin matched (``"obverse"`` or ``"reverse"``): the shared face a coin to turn
            is said to show.
        plain: it loses to ``rival`` by so much that turning cannot be what settles the cup.
        partial: it is cut by the edge of the picture or the cup's rim: what it matches says little, so no rival is
            named for it; one on a shared side is still named to turn (the operator turns it, and brings it into view).
        visible: the share of its disc in view; under :data:`OVERLAP_VISIBLE` it is mostly hidden under others, and
            a rival is named for it no more than for a cut coin.
    """

    number: int
    margin: float = 0.0
    rival: str | None = None
    rival_score: float = 0.0
    to_turn: bool = False
    side: str = "obverse"
    plain: bool = False
    partial: bool = False
    rival_shared_by: tuple[str, ...] = ()
    rival_side: str = "obverse"
    call_score: float | None = None
    visible: float = 1.0

    @property
    def looks_like_rival(self) -> bool:
        """Named as looking like its rival: beaten by it, and not a coin to turn over."""
        return self.rival is not None and self.margin < 0 and not self.to_turn

    @property
    def hidden(self) -> bool:
        """Mostly hidden under other coins (:data:`OVERLAP_VISIBLE`)."""
        return self.visible < OVERLAP_VISIBLE

    @property
    def weak_call(self) -> bool:
        """The rival the verdict weighed matches the coin under :data:`WEAK_MATCH`."""
        return (self.rival_score if self.call_score is None else self.call_score) < WEAK_MATCH


@dataclass(frozen=True)
class FlagFindings:
    """What a FLAG's reasons are written from.

    Attributes:
        expected: the expected type.
        coins: the coins, in the pipeline's order.
        p_correct: the voter's score.
        threshold: the threshold applied: the certified one, or the floor of 0.5 where that is higher
            (:data:`calibration.risk.PASS_FLOOR`; infinite: the model can pass nothing).
        target: the PASS precision the threshold was chosen for (``None``: not known), named when the model cannot
            certify it.
        rules_pass: the voter's hard rules let the cup pass: a score under the threshold is then said too, whatever
            else is.
        fewest_coins: fewest coins a passing cup shows.
        object_numbers: the foreign objects' numbers on the picture.
        unchecked: centres of what differs from the empty tray where nothing was found.
        setup_problem: why the frame is not the station's camera as set up (``""``: none).
        lookalike: the expected type's declared lookalike (``None``: none).
        no_own_side: the expected type shows no design of its own in the gallery, so no coin can prove it:
            the side it has no photos of (``"reverse"``, ``"obverse"``), or ``""`` when both its enrolled sides
            are shared designs (``None``: it has a design of its own).
        focus_median: the coins' median focus measure, and ``focus_min`` the floor under which they are blurred.
        visible_mean: the mean share of each coin's disc in view.
    """

    expected: str
    coins: tuple[CoinFinding, ...]
    p_correct: float
    threshold: float
    fewest_coins: int = 1
    object_numbers: tuple[int, ...] = ()
    unchecked: tuple[tuple[float, float], ...] = ()
    setup_problem: str = ""
    lookalike: str | None = None
    no_own_side: str | None = None
    focus_median: float = 1.0
    focus_min: float = 0.0
    visible_mean: float = 1.0
    target: float | None = None
    rules_pass: bool = False


def flag_reasons(f: FlagFindings) -> tuple[list[str], bool]:
    """A FLAG's reasons, and whether the operator should turn the named coins over and check the cup again first.

    The operator turns first when coins are named to turn and nothing that turning cannot change stops the cup
    (a setup problem, a declared lookalike, no coin, an object, something unchecked, too few coins, blur, overlap,
    no threshold), nor a coin that plainly looks like another type, nor one said to match no enrolled type well (a
    coin of a type not enrolled stays one however the others lie). The turning reason then comes first. A coin cut
    by the edge or the rim is said to be cut and named to no rival; on a shared side it is named to turn as well
    (turned and brought into view, it settles the cup as a whole coin does: in ``simulate-day`` leaving cut coins
    unturned sent 6 of 47 turned cups to a supervisor).

    Coins out of focus are said to be first, and no coin is then said to look like another type or to match
    nothing well: a blurred coin matches every type poorly, and naming a rival would send a person after the
    wrong coin (cut coins are treated the same way, for the same reason, and so are coins mostly hidden under others:
    they are said to be hidden instead). Whether the operator turns first is decided on every coin a rival beats,
    hidden or not, and on the rival the verdict weighed (:attr:`CoinFinding.call_score`), not the one named: which
    coins are named to turn, and when, is what the station's re-checks were measured on.

    Where the hard rules let the cup pass and its score is under the threshold, that is said last, whatever else is:
    a cut coin is no reason to flag a cup the rules allow, so a FLAG naming one alone would hide what decided it (a
    camera problem aside: the cup is judged again once the camera is back, and its reason stays the camera's alone).
    """
    front: list[str] = []  # what no turning changes
    if f.setup_problem:
        front.append(f.setup_problem)
    n = len(f.coins)
    if n == 0:
        front.append("no coins found")
    front.extend(f"object {k} is not a coin" for k in f.object_numbers)
    front.extend(
        f"something at ({x:.0f}, {y:.0f}) differs from the empty tray and was not checked — look"
        for x, y in f.unchecked
    )
    if f.lookalike is not None and n:  # a date to read needs a coin to read it on
        front.append(f"the type {f.expected} has a lookalike ({f.lookalike}) — check the date and mint mark by eye")
    if f.no_own_side is not None and n:
        front.append(
            f"the type {f.expected} has no side of its own enrolled, "
            + (f"no {f.no_own_side} photos" if f.no_own_side else "both its sides are shared designs")
            + f" — no coin can prove it: enrol its {f.no_own_side or 'own side'}"
        )
    bad = sorted((c for c in f.coins if c.looks_like_rival), key=lambda c: c.margin)
    cut = [c.number for c in f.coins if c.partial]
    edge = []
    if cut:  # a sliver of a coin is said to be cut, not to look like whatever it matches
        edge.append(
            f"coin {_numbers(cut)} is cut by the edge of the picture or the cup's rim — bring it into view"
            if len(cut) == 1
            else f"coins {_numbers(cut)} are cut by the edge of the picture or the cup's rim — bring them into view"
        )
    blurred = bool(n) and f.focus_median < f.focus_min
    weighed = _weighed(f)  # what turning first is decided on
    hidden = sorted(c.number for c in weighed if c.hidden)
    under = []
    if hidden:  # what shows of a coin under others matches whatever it resembles: it is said to be hidden
        under.append(
            f"coin {_numbers(hidden)} is mostly hidden under others — spread the coins out"
            if len(hidden) == 1
            else f"coins {_numbers(hidden)} are mostly hidden under others — spread the coins out"
        )
    named = [c for c in weighed if not c.hidden]
    looks = [_looks(c, f.expected) for c in named[:MAX_LOOKALIKE_REASONS]]
    rest = named[MAX_LOOKALIKE_REASONS:]
    alike = sum(1 for c in rest if c.rival_score >= WEAK_MATCH)
    if alike:
        looks.append(
            "1 more coin looks like another type" if alike == 1 else f"{alike} more coins look like other types"
        )
    if len(rest) > alike:  # the others resemble nothing enrolled (:func:`_looks`)
        weak = len(rest) - alike
        looks.append(
            "1 more coin matches no enrolled type well"
            if weak == 1
            else f"{weak} more coins match no enrolled type well"
        )
    to_turn = [c for c in f.coins if c.to_turn]
    shared = [c.number for c in to_turn]
    face = _shared_face({c.side for c in to_turn})
    turn: list[str] = []
    if n and len(shared) == n:  # every coin must show a side of its own to pass: turning one is not enough
        turn.append(
            f"only {face} is visible — turn coin {_numbers(shared)} over"
            if n == 1
            else f"only {face} is visible — turn coins {_numbers(shared)} over"
        )
    elif shared:
        turn.append(
            f"coin {_numbers(shared)} shows {face} — turn it over"
            if len(shared) == 1
            else f"coins {_numbers(shared)} show {face} — turn them over"
        )
    back: list[str] = []  # nor these
    if blurred:  # first after the camera's own problem: what the coins are said to match rests on blurred pictures
        front.insert(1 if f.setup_problem else 0, "coins are out of focus")
    if 0 < n < f.fewest_coins:
        back.append("too few coins visible")
    if n and f.visible_mean < OVERLAP_VISIBLE:
        back.append("coins overlap too much — spread them out")
    if not math.isfinite(f.threshold):
        back.append(
            "no certified threshold: every cup goes to a person"
            if f.target is None
            else f"{f.target * 100:.4g} % cannot be certified by this model: every cup goes to a person"
        )
    # a coin said to match nothing enrolled well (:func:`_looks`) is no coin that turning the others makes pass
    unknown = any(c.weak_call for c in weighed)
    turn_first = bool(turn) and not front and not back and not any(c.plain for c in bad) and not unknown
    reasons = [*turn, *looks, *edge, *under] if turn_first else [*front, *edge, *under, *looks, *turn, *back]
    unsure = f.rules_pass and not f.setup_problem and math.isfinite(f.threshold) and f.p_correct < f.threshold
    if unsure or not reasons:
        d = score_decimals(f.p_correct, f.threshold)
        reasons.append(f"not sure enough: p_correct {f.p_correct:.{d}f} is below the threshold {f.threshold:.{d}f}")
    return reasons, turn_first


def _weighed(f: FlagFindings) -> list[CoinFinding]:
    """The coins a rival beats that a FLAG speaks of, worst first: none that is cut, and none while the coins are
    out of focus (what they seem to match rests on the blur)."""
    if f.coins and f.focus_median < f.focus_min:
        return []
    return sorted((c for c in f.coins if c.looks_like_rival and not c.partial), key=lambda c: c.margin)


def on_shared_face(f: FlagFindings) -> frozenset[int]:
    """The numbers of the coins a FLAG says show a design several other types share (:func:`_looks`), named or
    counted: their evidence is marked as lying on a shared side."""
    return frozenset(
        c.number for c in _weighed(f) if not c.hidden and c.rival_shared_by and c.rival_score >= WEAK_MATCH
    )


def score_decimals(p: float, threshold: float, most: int = 12) -> int:
    """Decimals that write ``p`` and ``threshold`` apart: :data:`SCORE_DECIMALS`, or more while the two would read
    the same (a FLAG at 0.96952 under the threshold 0.9695703 reads "0.9695 is below the threshold 0.9696", not
    "0.970 is below the threshold 0.970"), at most ``most``. Rounding keeps their order, so a score under the
    threshold never reads above it."""
    d = SCORE_DECIMALS
    if not (math.isfinite(p) and math.isfinite(threshold)) or p == threshold:
        return d
    while d < most and f"{p:.{d}f}" == f"{threshold:.{d}f}":
        d += 1
    return d


def _looks(c: CoinFinding, expected: str) -> str:
    """What a coin beaten by its rival is said to look like: the rival, or the design several types share that the
    rival matched it through (naming one of them would be a guess), or nothing enrolled when even the rival matches
    it weakly."""
    if c.rival_score < WEAK_MATCH:
        return f"coin {c.number} matches no enrolled type well (at best {c.rival}, {c.rival_score:.2f}) — look"
    if c.rival_shared_by:
        return f"coin {c.number} shows the shared {c.rival_side} of {_types(c.rival_shared_by)} — not {expected}"
    return f"coin {c.number} looks like {c.rival} ({c.rival_score:.2f})"


def _types(types: tuple[str, ...], most: int = 3) -> str:
    """Types as a reason lists them: ``t1``, ``t1 and t2``, ``t1, t2 and t3``; past ``most``, the first two and how
    many more."""
    if len(types) > most:
        return f"{types[0]}, {types[1]} and {len(types) - 2} more"
    return types[0] if len(types) == 1 else f"{', '.join(types[:-1])} and {types[-1]}"


def _shared_face(sides: set[str]) -> str:
    """What coins to turn are said to show: ``the shared obverse`` (or reverse), or, both sides among them,
    ``a shared side``."""
    return f"the shared {next(iter(sides))}" if len(sides) == 1 else "a shared side"


def _numbers(numbers: list[int], most: int = 8) -> str:
    """Coin numbers as a reason names them: the first ``most``, then ``...``."""
    return ", ".join(str(k) for k in numbers[:most]) + (", ..." if len(numbers) > most else "")


def count_reason(seen: int, ordered: int | None) -> str:
    """The reason a cup of ``seen`` coins does not fill an order for ``ordered`` (``""``: it does, or the order
    names no count). Fewer coins may be hidden under others rather than missing."""
    if ordered is None or seen == ordered:
        return ""
    coins = f"{seen} coin{'s' if seen != 1 else ''} seen, the order is for {ordered}"
    if seen < ordered:
        return f"{coins}: {ordered - seen} short, or hidden under others — spread them out"
    return f"{coins}: {seen - ordered} too many"


class ReasonKind(StrEnum):
    """The kinds of reason a cup is flagged for."""

    COUNT = "count"
    TURN = "turn"
    LOOKS_LIKE = "looks_like"
    LOOKALIKE_TYPE = "lookalike_type"
    ENROLMENT = "enrolment"
    OBJECT = "object"
    UNCHECKED = "unchecked"
    NO_COINS = "no_coins"
    TOO_FEW = "too_few"
    FOCUS = "focus"
    OVERLAP = "overlap"
    CUT = "cut"
    CAMERA = "camera"
    NO_THRESHOLD = "no_threshold"
    NOT_SURE = "not_sure"
    OTHER = "other"


LABELS: dict[ReasonKind, str] = {
    ReasonKind.COUNT: "not the number of coins ordered",
    ReasonKind.TURN: "a coin on a shared face: turn it over",
    ReasonKind.LOOKS_LIKE: "a coin looks like another type",
    ReasonKind.LOOKALIKE_TYPE: "the type has a declared lookalike",
    ReasonKind.ENROLMENT: "the type has no side of its own enrolled",
    ReasonKind.OBJECT: "an object that is not a coin",
    ReasonKind.UNCHECKED: "something the empty tray does not show",
    ReasonKind.NO_COINS: "no coins found",
    ReasonKind.TOO_FEW: "too few coins visible",
    ReasonKind.FOCUS: "coins out of focus",
    ReasonKind.OVERLAP: "coins overlap too much",
    ReasonKind.CUT: "a coin cut by the edge or the rim, or mostly hidden under others",
    ReasonKind.CAMERA: "the camera is not as it was set up",
    ReasonKind.NO_THRESHOLD: "no certified threshold",
    ReasonKind.NOT_SURE: "not sure enough",
    ReasonKind.OTHER: "other",
}
"""What the report calls each kind."""

_PHRASES: tuple[tuple[str, ReasonKind], ...] = (
    (", the order is for ", ReasonKind.COUNT),
    ("shows the shared obverse of ", ReasonKind.LOOKS_LIKE),  # another family's face: before the turning phrases
    ("shows the shared reverse of ", ReasonKind.LOOKS_LIKE),
    ("shared obverse", ReasonKind.TURN),
    ("shared reverse", ReasonKind.TURN),
    ("a shared side", ReasonKind.TURN),
    ("has a lookalike (", ReasonKind.LOOKALIKE_TYPE),
    (" looks like ", ReasonKind.LOOKS_LIKE),
    (" matches no enrolled type", ReasonKind.LOOKS_LIKE),
    ("look like other types", ReasonKind.LOOKS_LIKE),
    ("looks like another type", ReasonKind.LOOKS_LIKE),
    (" match no enrolled type", ReasonKind.LOOKS_LIKE),
    ("has no side of its own enrolled", ReasonKind.ENROLMENT),
    ("is not a coin", ReasonKind.OBJECT),
    ("differs from the empty tray", ReasonKind.UNCHECKED),
    ("no coins found", ReasonKind.NO_COINS),
    ("too few coins", ReasonKind.TOO_FEW),
    ("out of focus", ReasonKind.FOCUS),
    ("overlap too much", ReasonKind.OVERLAP),
    ("cut by the edge of the picture", ReasonKind.CUT),
    # a coin not wholly in view, as a cut coin is: it stands beside the turning reason of a turn-first FLAG as the
    # cut coins do, and the verdict log tells such a FLAG by those kinds (db.activity)
    ("mostly hidden under others", ReasonKind.CUT),
    ("camera was set up at", ReasonKind.CAMERA),
    ("camera has moved since it was set up", ReasonKind.CAMERA),
    ("no certified threshold", ReasonKind.NO_THRESHOLD),
    ("cannot be certified by this model", ReasonKind.NO_THRESHOLD),
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
