"""models.reasons: the kind of each reason the pipeline writes (its texts here as the operator reads them; the
pipeline's own reasons are run through it in tests/models/test_pipeline.py)."""

from __future__ import annotations

import pytest

from models.reasons import LABELS, ReasonKind, reason_kind, reason_kinds


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("9 coins seen, the order is for 10: 1 short, or hidden under others — spread them out", ReasonKind.COUNT),
        ("1 coin seen, the order is for 20: 19 short, or hidden under others — spread them out", ReasonKind.COUNT),
        ("12 coins seen, the order is for 10: 2 too many", ReasonKind.COUNT),
        ("coins 1, 3 show the shared obverse — turn them over", ReasonKind.TURN),
        ("coin 2 shows the shared obverse — turn it over", ReasonKind.TURN),
        ("only the shared obverse is visible — turn a coin", ReasonKind.TURN),
        ("coin 4 looks like t0085 (0.91)", ReasonKind.LOOKS_LIKE),
        ("3 more coins look like other types", ReasonKind.LOOKS_LIKE),
        ("1 more coin looks like another type", ReasonKind.LOOKS_LIKE),
        ("the type t0011 has a lookalike (t0008) — check the date and mint mark by eye", ReasonKind.LOOKALIKE_TYPE),
        ("object 2 is not a coin", ReasonKind.OBJECT),
        ("something at (120, 88) differs from the empty tray and was not checked — look", ReasonKind.UNCHECKED),
        ("no coins found", ReasonKind.NO_COINS),
        ("too few coins visible", ReasonKind.TOO_FEW),
        ("coins are out of focus", ReasonKind.FOCUS),
        ("coins overlap too much — spread them out", ReasonKind.OVERLAP),
        (
            "the photo is 640×480 pixels, not the 1280×720 the station's camera was set up at — set the camera back",
            ReasonKind.CAMERA,
        ),
        (
            "the camera has moved since it was set up (the view: 14 px right, 2% closer) — put it back, or calibrate "
            "again (cupcheck calibrate); its cup region, millimetres and empty tray were not used",
            ReasonKind.CAMERA,
        ),
        ("no certified threshold: every cup goes to a person", ReasonKind.NO_THRESHOLD),
        ("not sure enough: p_correct 0.812 is below the threshold 0.970", ReasonKind.NOT_SURE),
        ("a coin does not match", ReasonKind.OTHER),
    ],
)
def test_reason_kind(reason: str, kind: ReasonKind) -> None:
    assert reason_kind(reason) is kind


def test_a_declared_lookalike_is_not_taken_for_a_coin_that_looks_like_another_type() -> None:
    reasons = (
        "the type t0011 has a lookalike (t0008) — check the date and mint mark by eye",
        "coin 5 looks like t0008 (0.95)",
    )
    assert reason_kinds(reasons) == {ReasonKind.LOOKALIKE_TYPE, ReasonKind.LOOKS_LIKE}


def test_every_kind_has_a_label() -> None:
    assert set(LABELS) == set(ReasonKind)
