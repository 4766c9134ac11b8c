"""models.reasons: the reasons a FLAG is written with, from plain findings, and the kind each one is read back as
(the pipeline's own reasons are run through it in tests/models/test_pipeline.py)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from models.reasons import (
    LABELS,
    MAX_LOOKALIKE_REASONS,
    CoinFinding,
    FlagFindings,
    ReasonKind,
    count_reason,
    flag_reasons,
    on_shared_face,
    reason_kind,
    reason_kinds,
)

CLEAN = CoinFinding(number=1, margin=0.2)
TWIN = CoinFinding(number=2, margin=-0.05, rival="t0085", rival_score=0.91)
FAR = CoinFinding(number=3, margin=-0.4, rival="t0085", rival_score=0.93, plain=True)
TURN = CoinFinding(number=4, margin=0.1, to_turn=True)
SLIVER = CoinFinding(number=9, margin=-0.3, rival="t0007", rival_score=0.84, partial=True)


def findings(*coins: CoinFinding, **kw: object) -> FlagFindings:
    base: dict[str, object] = {"expected": "t0042", "coins": coins, "p_correct": 0.5, "threshold": 0.97}
    return FlagFindings(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("found", "reasons", "turn_first"),
    [
        (findings(CLEAN), ["not sure enough: p_correct 0.500 is below the threshold 0.970"], False),
        (findings(), ["no coins found"], False),
        (findings(CLEAN, TWIN), ["coin 2 looks like t0085 (0.91)"], False),
        # a coin nothing enrolled resembles (an unenrolled coin, one mostly hidden) is not said to look like one
        (
            findings(CLEAN, replace(TWIN, rival_score=0.32, margin=-0.05)),
            ["coin 2 matches no enrolled type well (at best t0085, 0.32) — look"],
            False,
        ),
        (findings(CLEAN, TURN), ["coin 4 shows the shared obverse — turn it over"], True),
        (findings(TURN), ["only the shared obverse is visible — turn coin 4 over"], True),
        # every coin must show a side of its own to pass: all of them are named, and the side they show
        (
            findings(TURN, replace(TURN, number=5, side="reverse")),
            ["only a shared side is visible — turn coins 4, 5 over"],
            True,
        ),
        (findings(CLEAN, replace(TURN, side="reverse")), ["coin 4 shows the shared reverse — turn it over"], True),
        # an empty cup is told it is empty, not to read dates on its coins
        (findings(lookalike="t0008"), ["no coins found"], False),
        # a near lookalike beside a coin to turn: turn first, the turning reason before the lookalike
        (
            findings(TWIN, TURN),
            ["coin 4 shows the shared obverse — turn it over", "coin 2 looks like t0085 (0.91)"],
            True,
        ),
        # one that loses by far goes to a supervisor as the cup lies
        (
            findings(FAR, TURN),
            ["coin 3 looks like t0085 (0.93)", "coin 4 shows the shared obverse — turn it over"],
            False,
        ),
        # what turning cannot change comes first and keeps the operator from turning
        (
            findings(TURN, object_numbers=(5,), unchecked=((120.4, 87.6),)),
            [
                "object 5 is not a coin",
                "something at (120, 88) differs from the empty tray and was not checked — look",
                "only the shared obverse is visible — turn coin 4 over",
            ],
            False,
        ),
        (
            findings(CLEAN, TURN, lookalike="t0008"),
            [
                "the type t0042 has a lookalike (t0008) — check the date and mint mark by eye",
                "coin 4 shows the shared obverse — turn it over",
            ],
            False,
        ),
        (
            findings(TURN, fewest_coins=2),
            ["only the shared obverse is visible — turn coin 4 over", "too few coins visible"],
            False,
        ),
        (findings(CLEAN, focus_median=0.1, focus_min=0.3), ["coins are out of focus"], False),
        (findings(CLEAN, visible_mean=0.5), ["coins overlap too much — spread them out"], False),
        # a sliver of a coin at the edge is said to be cut, not to look like what it matches
        (
            findings(CLEAN, SLIVER),
            ["coin 9 is cut by the edge of the picture or the cup's rim — bring it into view"],
            False,
        ),
        (
            findings(TURN, SLIVER, replace(SLIVER, number=10)),
            [
                "coin 4 shows the shared obverse — turn it over",
                "coins 9, 10 are cut by the edge of the picture or the cup's rim — bring them into view",
            ],
            True,
        ),
        (findings(CLEAN, threshold=math.inf), ["no certified threshold: every cup goes to a person"], False),
        (
            findings(CLEAN, setup_problem="the camera has moved since it was set up"),
            ["the camera has moved since it was set up"],
            False,
        ),
    ],
)
def test_flag_reasons(found: FlagFindings, reasons: list[str], turn_first: bool) -> None:
    assert flag_reasons(found) == (reasons, turn_first)


def test_lookalikes_are_named_worst_first_and_the_rest_counted() -> None:
    coins = [CoinFinding(number=k, margin=-k / 100, rival=f"t{k:04d}", rival_score=0.9) for k in range(1, 7)]
    reasons, _ = flag_reasons(findings(*coins))
    assert reasons[:MAX_LOOKALIKE_REASONS] == [f"coin {k} looks like t{k:04d} (0.90)" for k in (6, 5, 4)]
    assert reasons[MAX_LOOKALIKE_REASONS:] == ["3 more coins look like other types"]
    reasons, _ = flag_reasons(findings(*coins[: MAX_LOOKALIKE_REASONS + 1]))
    assert reasons[-1] == "1 more coin looks like another type"


def test_at_most_eight_coins_are_named_to_turn() -> None:
    coins = [CoinFinding(number=k, to_turn=True) for k in range(1, 11)] + [CLEAN]
    reasons, turn_first = flag_reasons(findings(*coins))
    assert reasons == ["coins 1, 2, 3, 4, 5, 6, 7, 8, ... show the shared obverse — turn them over"] and turn_first


@pytest.mark.parametrize(
    ("seen", "ordered", "reason"),
    [
        (10, 10, ""),
        (7, None, ""),
        (9, 10, "9 coins seen, the order is for 10: 1 short, or hidden under others — spread them out"),
        (1, 20, "1 coin seen, the order is for 20: 19 short, or hidden under others — spread them out"),
        (12, 10, "12 coins seen, the order is for 10: 2 too many"),
    ],
)
def test_count_reason(seen: int, ordered: int | None, reason: str) -> None:
    assert count_reason(seen, ordered) == reason


def test_every_written_reason_is_read_back_as_its_kind() -> None:
    cases = [
        (findings(CLEAN), {ReasonKind.NOT_SURE}),
        (findings(), {ReasonKind.NO_COINS}),
        (
            findings(*[CoinFinding(number=k, margin=-0.1, rival="t1", rival_score=0.9) for k in range(1, 6)]),
            {ReasonKind.LOOKS_LIKE},
        ),
        (findings(TURN, CLEAN), {ReasonKind.TURN}),
        (findings(SLIVER, CLEAN), {ReasonKind.CUT}),
        (
            findings(
                CLEAN,
                TURN,
                fewest_coins=5,
                object_numbers=(3,),
                unchecked=((1.0, 2.0),),
                lookalike="t0008",
                focus_median=0.0,
                focus_min=1.0,
                visible_mean=0.1,
                threshold=math.inf,
            ),
            {
                ReasonKind.LOOKALIKE_TYPE,
                ReasonKind.OBJECT,
                ReasonKind.UNCHECKED,
                ReasonKind.TURN,
                ReasonKind.TOO_FEW,
                ReasonKind.FOCUS,
                ReasonKind.OVERLAP,
                ReasonKind.NO_THRESHOLD,
            },
        ),
    ]
    for found, kinds in cases:
        reasons, _ = flag_reasons(found)
        assert [reason_kind(r) for r in reasons].count(ReasonKind.OTHER) == 0
        assert reason_kinds(reasons) == kinds
    assert reason_kind(count_reason(3, 4)) is ReasonKind.COUNT


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("9 coins seen, the order is for 10: 1 short, or hidden under others — spread them out", ReasonKind.COUNT),
        ("1 coin seen, the order is for 20: 19 short, or hidden under others — spread them out", ReasonKind.COUNT),
        ("12 coins seen, the order is for 10: 2 too many", ReasonKind.COUNT),
        ("coins 1, 3 show the shared obverse — turn them over", ReasonKind.TURN),
        ("coin 2 shows the shared obverse — turn it over", ReasonKind.TURN),
        ("only the shared obverse is visible — turn a coin", ReasonKind.TURN),  # as older software wrote it
        ("only a shared side is visible — turn coins 1, 2 over", ReasonKind.TURN),
        ("coin 2 shows the shared reverse — turn it over", ReasonKind.TURN),
        ("coin 2 matches no enrolled type well (at best t0085, 0.32) — look", ReasonKind.LOOKS_LIKE),
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


@pytest.mark.parametrize(
    ("p", "threshold", "said"),
    [
        # three decimals would read "0.970 is below the threshold 0.970"
        (0.96952, 0.9695703244117454, "p_correct 0.9695 is below the threshold 0.9696"),
        (0.969568, 0.9695703244117454, "p_correct 0.969568 is below the threshold 0.969570"),
        (0.5, 0.97, "p_correct 0.500 is below the threshold 0.970"),  # apart at three decimals: three
    ],
)
def test_a_score_just_under_the_threshold_is_written_apart_from_it(p: float, threshold: float, said: str) -> None:
    reasons, _ = flag_reasons(findings(CLEAN, p_correct=p, threshold=threshold))
    assert reasons == [f"not sure enough: {said}"]
    assert reason_kind(reasons[0]) is ReasonKind.NOT_SURE


def test_coins_left_uncounted_that_resemble_nothing_enrolled_are_not_said_to_look_like_other_types() -> None:
    strong = [CoinFinding(number=k, margin=-0.2 - k / 100, rival="t0009", rival_score=0.9) for k in range(1, 5)]
    weak = [CoinFinding(number=k, margin=-0.01 * k, rival="t0003", rival_score=0.3) for k in range(5, 7)]
    reasons, _ = flag_reasons(findings(*strong, *weak))
    # three named worst first, then one more like another type and the two that match nothing well
    assert reasons[MAX_LOOKALIKE_REASONS:] == [
        "1 more coin looks like another type",
        "2 more coins match no enrolled type well",
    ]
    assert reason_kinds(reasons) == {ReasonKind.LOOKS_LIKE}


@pytest.mark.parametrize(
    ("missing", "said"),
    [
        (
            "reverse",
            "the type t0002 has no side of its own enrolled, no reverse photos — no coin can prove it: "
            "enrol its reverse",
        ),
        (
            "",
            "the type t0002 has no side of its own enrolled, both its sides are shared designs — no coin can "
            "prove it: enrol its own side",
        ),
    ],
)
def test_a_type_without_a_side_of_its_own_is_sent_to_be_enrolled_not_turned(missing: str, said: str) -> None:
    reasons, turn_first = flag_reasons(findings(CLEAN, CLEAN, expected="t0002", no_own_side=missing))
    assert reasons == [said] and not turn_first
    assert reason_kind(said) == ReasonKind.ENROLMENT
    assert flag_reasons(findings(expected="t0002", no_own_side=missing))[0] == ["no coins found"]


WON = CoinFinding(number=6, margin=-0.08, rival="t0000", rival_score=0.38)
"""A coin of a type not enrolled (a 10-won coin in a cup of a euro type): it matches every type poorly."""


@pytest.mark.parametrize(
    ("found", "reasons", "turn_first"),
    [
        # turning the coin on the shared obverse cannot clear a coin that matches nothing enrolled
        (
            findings(TURN, WON),
            [
                "coin 6 matches no enrolled type well (at best t0000, 0.38) — look",
                "coin 4 shows the shared obverse — turn it over",
            ],
            False,
        ),
        # ... nor one of them past the three named
        (
            findings(TURN, TWIN, replace(TWIN, number=5), replace(TWIN, number=7), replace(WON, margin=-0.01)),
            [
                "coin 2 looks like t0085 (0.91)",
                "coin 5 looks like t0085 (0.91)",
                "coin 7 looks like t0085 (0.91)",
                "1 more coin matches no enrolled type well",
                "coin 4 shows the shared obverse — turn it over",
            ],
            False,
        ),
        # a coin cut by the edge on a shared side: turned and brought into view, it settles the cup
        (
            findings(CLEAN, replace(TURN, number=3, partial=True)),
            [
                "coin 3 shows the shared obverse — turn it over",
                "coin 3 is cut by the edge of the picture or the cup's rim — bring it into view",
            ],
            True,
        ),
        # blurred coins: the focus first, and no rival named (whatever they seem to match rests on the blur)
        (
            findings(TWIN, replace(WON, number=5), focus_median=0.1, focus_min=0.3),
            ["coins are out of focus"],
            False,
        ),
        (
            findings(TURN, FAR, SLIVER, focus_median=0.1, focus_min=0.3, object_numbers=(12,)),
            [
                "coins are out of focus",
                "object 12 is not a coin",
                "coin 9 is cut by the edge of the picture or the cup's rim — bring it into view",
                "coin 4 shows the shared obverse — turn it over",
            ],
            False,
        ),
    ],
)
def test_turning_first_is_only_advised_where_turning_can_clear_the_cup(
    found: FlagFindings, reasons: list[str], turn_first: bool
) -> None:
    assert flag_reasons(found) == (reasons, turn_first)
    assert all(reason_kind(r) is not ReasonKind.OTHER for r in reasons)


HIDDEN = CoinFinding(number=7, margin=-0.06, rival="t0002", rival_score=0.78, visible=0.39)
"""A coin of the expected type mostly under others: what shows of it matches another type."""


@pytest.mark.parametrize(
    ("found", "reasons", "turn_first"),
    [
        (findings(CLEAN, HIDDEN), ["coin 7 is mostly hidden under others — spread the coins out"], False),
        # one reason for every hidden coin; a coin in plain view is still named
        (
            findings(HIDDEN, replace(HIDDEN, number=3, visible=0.5), TWIN),
            ["coins 3, 7 are mostly hidden under others — spread the coins out", "coin 2 looks like t0085 (0.91)"],
            False,
        ),
        # turning first is decided as before, on every coin a rival beats: a hidden near lookalike leaves it ...
        (
            findings(TURN, HIDDEN),
            [
                "coin 4 shows the shared obverse — turn it over",
                "coin 7 is mostly hidden under others — spread the coins out",
            ],
            True,
        ),
        # ... and a hidden coin whose rival matches it weakly still keeps the operator from turning
        (
            findings(TURN, replace(WON, visible=0.4)),
            [
                "coin 6 is mostly hidden under others — spread the coins out",
                "coin 4 shows the shared obverse — turn it over",
            ],
            False,
        ),
        # a hidden coin on a shared side is named to turn, as before
        (findings(CLEAN, replace(TURN, visible=0.3)), ["coin 4 shows the shared obverse — turn it over"], True),
    ],
)
def test_a_coin_mostly_hidden_under_others_is_said_to_be_hidden_and_named_to_no_rival(
    found: FlagFindings, reasons: list[str], turn_first: bool
) -> None:
    assert flag_reasons(found) == (reasons, turn_first)
    assert all(reason_kind(r) is not ReasonKind.OTHER for r in reasons)
    # read back as a cut coin's reason: a turn-first FLAG's reasons stay of the kinds the verdict log tells it by
    assert reason_kind("coin 7 is mostly hidden under others — spread the coins out") is ReasonKind.CUT
    if turn_first:
        assert reason_kinds(reasons) <= {ReasonKind.TURN, ReasonKind.LOOKS_LIKE, ReasonKind.CUT}


def test_a_hidden_coin_is_told_apart_by_its_own_share_not_the_cups_mean() -> None:
    """The cup's mean share stays high where one coin of many lies under the others (0.68-0.91 on rendered cups)."""
    reasons, _ = flag_reasons(findings(CLEAN, HIDDEN, visible_mean=0.85))
    assert reasons == ["coin 7 is mostly hidden under others — spread the coins out"]


@pytest.mark.parametrize(
    ("found", "reasons"),
    [
        (
            findings(CLEAN, SLIVER, rules_pass=True, p_correct=0.8444),
            [
                "coin 9 is cut by the edge of the picture or the cup's rim — bring it into view",
                "not sure enough: p_correct 0.844 is below the threshold 0.970",
            ],
        ),
        (
            findings(TWIN, HIDDEN, rules_pass=True, p_correct=0.898),
            [
                "coin 7 is mostly hidden under others — spread the coins out",
                "coin 2 looks like t0085 (0.91)",
                "not sure enough: p_correct 0.898 is below the threshold 0.970",
            ],
        ),
        # said once, where it is the only reason
        (findings(CLEAN, rules_pass=True), ["not sure enough: p_correct 0.500 is below the threshold 0.970"]),
        # the rules refuse the cup: its score decided nothing
        (
            findings(CLEAN, SLIVER, p_correct=0.8444),
            ["coin 9 is cut by the edge of the picture or the cup's rim — bring it into view"],
        ),
        # a camera not as set up: the cup is judged again once it is back, for the camera alone
        (
            findings(CLEAN, rules_pass=True, setup_problem="the camera has moved since it was set up"),
            ["the camera has moved since it was set up"],
        ),
        # nothing is certified: every cup goes to a person, which is said instead
        (
            findings(CLEAN, rules_pass=True, threshold=math.inf, target=0.999),
            ["99.9 % cannot be certified by this model: every cup goes to a person"],
        ),
    ],
)
def test_a_score_under_the_threshold_is_said_whenever_the_rules_allow_the_cup(
    found: FlagFindings, reasons: list[str]
) -> None:
    assert flag_reasons(found) == (reasons, False)
    assert all(reason_kind(r) is not ReasonKind.OTHER for r in reasons)


def test_a_turn_first_flag_keeps_its_turning_reason_first_beside_the_score() -> None:
    reasons, turn_first = flag_reasons(findings(TURN, TWIN, rules_pass=True, p_correct=0.9))
    assert turn_first and reasons[0] == "coin 4 shows the shared obverse — turn it over"
    assert reasons[-1] == "not sure enough: p_correct 0.900 is below the threshold 0.970"


FAMILY = ("t0014", "t0016", "t0017", "t0018", "t0019", "t0020", "t0022")


@pytest.mark.parametrize(
    ("shared_by", "said"),
    [
        (FAMILY, "coin 1 shows the shared obverse of t0014, t0016 and 5 more — not t0006"),
        (FAMILY[:3], "coin 1 shows the shared obverse of t0014, t0016 and t0017 — not t0006"),
        (FAMILY[:2], "coin 1 shows the shared obverse of t0014 and t0016 — not t0006"),
    ],
)
def test_a_coin_on_another_familys_shared_face_is_said_to_show_it_not_to_look_like_one_member(
    shared_by: tuple[str, ...], said: str
) -> None:
    coin = CoinFinding(number=1, margin=-0.3, rival="t0022", rival_score=0.93, plain=True, rival_shared_by=shared_by)
    found = findings(coin, CLEAN, expected="t0006")
    assert flag_reasons(found) == ([said], False)
    assert reason_kind(said) is ReasonKind.LOOKS_LIKE
    assert on_shared_face(found) == {1}
    # on the reverse, hidden, cut or weakly matched: said otherwise, and not marked
    assert flag_reasons(findings(replace(coin, rival_side="reverse"), expected="t0006"))[0] == [
        said.replace("obverse", "reverse")
    ]
    for other in (replace(coin, visible=0.4), replace(coin, partial=True), replace(coin, rival_score=0.4)):
        assert on_shared_face(findings(other, expected="t0006")) == frozenset()


def test_the_target_a_model_cannot_certify_is_named() -> None:
    reasons, _ = flag_reasons(findings(CLEAN, threshold=math.inf, target=0.995))
    assert reasons == ["99.5 % cannot be certified by this model: every cup goes to a person"]
    assert reason_kind(reasons[0]) is ReasonKind.NO_THRESHOLD
