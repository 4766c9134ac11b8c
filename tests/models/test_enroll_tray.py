"""Enrolling a type from two tray photographs: which coins become references, the design a side shares, the files."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from models.bundle import load_bundle
from models.enroll import CatalogError, TypeInfo, enroll_catalog, scan_catalog
from models.enroll_tray import (
    LOOKS_UNLIKE,
    PARTIAL,
    DesignGuess,
    TrayError,
    TrayLook,
    TrayType,
    look_at_tray,
    toml_string,
    write_tray_catalog,
)
from models.gallery import Gallery
from models.pipeline import Pipeline
from models.types import Decision, Frame, Side
from tests.models.tray_world import HELD_OUT, TrayWorld, true_type


@pytest.fixture(scope="module")
def world(tray_world: TrayWorld) -> TrayWorld:
    return tray_world


@pytest.fixture(scope="module")
def looks(world: TrayWorld) -> dict[Side, TrayLook]:
    return {
        Side.OBVERSE: look_at_tray(world.pipeline, world.obverse, Side.OBVERSE),
        Side.REVERSE: look_at_tray(world.pipeline, world.reverse, Side.REVERSE),
    }


def test_whole_coins_apart_become_references_and_cut_ones_do_not(looks: dict[Side, TrayLook]) -> None:
    for look in looks.values():
        assert len(look.coins) >= 8 and len(look.crops) == len(look.coins)
        assert len(look.references) >= 6
        for k in look.references:
            assert not look.coins[k].partial
            crop = look.crops[k]
            assert crop.shape[0] == crop.shape[1] and (crop[0, 0] == 0).all()  # cut: black outside the coin
        for k, why in look.left_out.items():
            assert k not in look.references
            assert why != PARTIAL or look.coins[k].partial
        assert LOOKS_UNLIKE not in look.left_out.values()  # one type, one side: nobody stands out
        assert look.n_objects == 0


def test_the_obverse_is_offered_as_the_family_design_the_gallery_holds(
    world: TrayWorld, looks: dict[Side, TrayLook]
) -> None:
    family = world.mint.types[0].design(Side.OBVERSE).id
    guess = looks[Side.OBVERSE].guess
    assert guess is not None and guess.design == family and guess.likely_same
    assert HELD_OUT not in guess.types and len(guess.types) == len(world.mint.types) - 1
    assert guess.describe().startswith(f"{family}, shown by t0000, t0001, t0002, t0003 and 9 more (100% of the coins")
    reverse = looks[Side.REVERSE].guess  # its own design: never pre-ticked as another's
    assert reverse is None or not reverse.likely_same


def test_a_stray_coin_of_another_type_is_left_out(world: TrayWorld) -> None:
    look = look_at_tray(world.pipeline, Frame(world.stray.image), Side.REVERSE)
    expected = world.stray.expected_type
    unlike = [k for k, why in look.left_out.items() if why == LOOKS_UNLIKE]
    assert unlike and all(true_type(world.stray, look.coins[k].center) != expected for k in unlike)
    assert all(true_type(world.stray, look.coins[k].center) == expected for k in look.references)
    assert "looks unlike the others" in look.summary()


def test_the_catalogue_written_enrols_the_type_with_its_shared_obverse(
    world: TrayWorld, looks: dict[Side, TrayLook], tmp_path: Path
) -> None:
    family = world.mint.types[0].design(Side.OBVERSE).id
    coin = TrayType(HELD_OUT, "State twelve", 24.26, {Side.OBVERSE: family})
    catalog = write_tray_catalog(tmp_path / "enrolment", coin, looks)
    assert (tmp_path / "enrolment" / "tray-obverse.jpg").is_file()
    assert (tmp_path / "enrolment" / "tray-reverse.jpg").is_file()
    doc = tomllib.loads((catalog / HELD_OUT / "coin.toml").read_text())
    assert doc == {"name": "State twelve", "diameter_mm": 24.26, "obverse_design": family}
    images, _, warnings = scan_catalog(catalog)
    assert not warnings
    per_side = {s: sum(1 for i in images if i.side == s) for s in Side if s in looks}
    assert per_side == {s: len(looks[s].references) for s in looks}
    embedder = world.pipeline.embedder.without_adapter()
    gallery = Gallery.load(world.gallery_dir, embedder_version=embedder.version)
    report, _ = enroll_catalog(catalog, gallery, embedder, progress=False)  # cut crops: no detector needed
    assert report.enrolled == {HELD_OUT: {s.value: n for s, n in per_side.items()}}
    designs = {e.side: e.design for e in gallery.entries.values() if e.type_id == HELD_OUT}
    assert designs == {Side.OBVERSE: family, Side.REVERSE: f"{HELD_OUT}/reverse"}
    # a cup of the new type checked afterwards: its coins, reverse up, are matched to it
    bundle = load_bundle(None)
    station = Pipeline.from_parts(bundle, gallery, embedder=embedder, detector=world.pipeline.detector)
    obs = station.observe(Frame(world.fresh.image))
    best = [station.view.types[t] for t in np.argmax(obs.type_best, axis=1)]
    assert best.count(HELD_OUT) >= 0.8 * len(best) >= 4
    assert station.run(Frame(world.fresh.image), HELD_OUT).decision is Decision.PASS  # no retraining
    with pytest.raises(TrayError, match="exists already"):
        write_tray_catalog(tmp_path / "enrolment", coin, looks)


@pytest.mark.parametrize(
    ("coin", "message"),
    [
        (TrayType(""), "type id must be"),
        (TrayType("../up"), "type id must be"),
        (TrayType("ok", diameter_mm=250.0), "between 5 and 100 mm"),
    ],
)
def test_bad_details_are_refused(coin: TrayType, message: str, looks: dict[Side, TrayLook], tmp_path: Path) -> None:
    with pytest.raises(TrayError, match=message):
        write_tray_catalog(tmp_path / "e", coin, looks)
    assert not (tmp_path / "e").exists()


def test_an_empty_tray_gives_no_reference_and_nothing_is_written(world: TrayWorld, tmp_path: Path) -> None:
    blank = Frame(np.full((480, 640, 3), 128, np.uint8))
    look = look_at_tray(world.pipeline, blank, Side.OBVERSE)
    assert not look.coins and not look.references and look.guess is None
    assert look.summary().startswith("No coin found")
    with pytest.raises(TrayError, match="no coin to enrol"):
        write_tray_catalog(tmp_path / "e", TrayType("t9"), {Side.OBVERSE: look})
    assert not (tmp_path / "e").exists()


def test_a_type_enrolled_again_keeps_its_lookalikes_and_the_details_left_blank() -> None:
    """The dialog asks for no lookalikes, and a blank name or diameter means "as before": enrolled again, a type keeps
    what its catalogue entry declared (else a cup of it or of its lookalike could PASS on the camera's word)."""
    saved = TypeInfo("t0012", "State twelve", 24.26, ("t0005",), "f000-obv")
    again = TrayType("t0012", designs={Side.OBVERSE: "f000-obv"}).over(saved)
    assert again == TrayType("t0012", "State twelve", 24.26, {Side.OBVERSE: "f000-obv"}, ("t0005",))
    doc = tomllib.loads(again.toml())
    assert doc == {"name": "State twelve", "diameter_mm": 24.26, "obverse_design": "f000-obv", "lookalikes": ["t0005"]}
    given = TrayType("t0012", "Delaware", 24.3).over(saved)  # what the person typed wins; the design declared stays
    assert (given.name, given.diameter_mm, given.lookalikes) == ("Delaware", 24.3, ("t0005",))
    assert given.designs == {Side.OBVERSE: "f000-obv"}
    assert TrayType("t0013").over(saved) == TrayType("t0013") and TrayType("t0013").over(None) == TrayType("t0013")


def test_a_side_left_unticked_keeps_the_shared_design_its_type_declared() -> None:
    """A family's design declared with one member enrolled is offered as that member's alone: enrolled again from the
    tray with the box unticked, the type kept it only if the dialog ticked it, and its obverse became its own design
    (a sibling not yet enrolled, obverse up, could then PASS as it). The declared design stays on a side not ticked,
    and is offered ticked; a side ticked takes the design ticked."""
    saved = TypeInfo("alpha", "Alpha", None, (), "crest", None)
    assert TrayType("alpha").over(saved).designs == {Side.OBVERSE: "crest"}
    ticked = TrayType("alpha", designs={Side.REVERSE: "eagle"}).over(saved)
    assert ticked.designs == {Side.OBVERSE: "crest", Side.REVERSE: "eagle"}
    assert TrayType("alpha", designs={Side.OBVERSE: "arms"}).over(saved).designs == {Side.OBVERSE: "arms"}
    assert tomllib.loads(TrayType("alpha").over(saved).toml())["obverse_design"] == "crest"
    assert TrayType("alpha").over(TypeInfo("alpha", "Alpha", None)).designs is None  # nothing declared: none kept
    assert DesignGuess("crest", ("alpha",), 1.0, 0.99).likely_same  # declared: shared with one member enrolled
    assert not DesignGuess("crest", ("alpha",), 1.0, 0.8).likely_same  # not close enough
    assert not DesignGuess("beta/obverse", ("beta",), 1.0, 0.99).likely_same  # another type's own: never ticked
    assert DesignGuess("f000-obv", ("t0000", "t0001"), 1.0, 0.95).likely_same


@pytest.mark.parametrize(
    "name",
    [
        "State twelve \U0001fa99",  # above U+FFFF: json.dumps wrote it as two surrogate halves, which TOML refuses
        'The "Keystone" quarter',
        "back\\slash \\u0041 \\U0001F600 \\n",
        "two\nlines\r\nand a\ttab",
        "bell \x07, nul \x00, delete \x7f, next line \x85, form \x0c",
        "Ελλάδα 2 €, ünïcödé, 日本",
        "''' quotes: ' '' \"\"\"",
    ],
)
def test_coin_toml_reads_back_every_name_as_typed(name: str) -> None:
    """Whatever the person types as the name, ``coin.toml`` reads back as written: a file TOML cannot read would
    enrol the type without its shared designs and lookalikes."""
    coin = TrayType("t0012", name, 24.26, {Side.OBVERSE: 'f"0\\0-obv', Side.REVERSE: "t0012/rév 🪙"}, ("t0005", "t-ü"))
    doc = tomllib.loads(coin.toml())
    assert doc == {
        "name": name.strip(),
        "diameter_mm": 24.26,
        "obverse_design": 'f"0\\0-obv',
        "reverse_design": "t0012/rév 🪙",
        "lookalikes": ["t-ü", "t0005"],
    }
    assert toml_string(name).isprintable()  # control characters escaped, on one line


def test_a_name_with_an_emoji_is_enrolled_with_its_designs_and_lookalikes(
    world: TrayWorld, looks: dict[Side, TrayLook], tmp_path: Path
) -> None:
    """The catalogue folder written from the tray reads back with the name as typed, the side's shared design and the
    lookalikes kept: they are what keeps a cup of the type from passing on the family's obverse or as its lookalike."""
    family = world.mint.types[0].design(Side.OBVERSE).id
    coin = TrayType(HELD_OUT, "State twelve \U0001fa99", None, {Side.OBVERSE: family}, ("t0005",))
    catalog = write_tray_catalog(tmp_path / "enrolment", coin, looks)
    _, infos, warnings = scan_catalog(catalog)
    assert not warnings
    assert infos[HELD_OUT] == TypeInfo(HELD_OUT, "State twelve \U0001fa99", None, ("t0005",), family)


def test_a_name_that_is_not_text_is_refused_before_anything_is_written(
    looks: dict[Side, TrayLook], tmp_path: Path
) -> None:
    coin = TrayType("t0012", "half a coin \ud83e")  # a lone surrogate: no UTF-8 file can hold it
    assert "holds a character that is not text" in coin.problem()
    with pytest.raises(TrayError, match="not text"):
        write_tray_catalog(tmp_path / "e", coin, looks)
    with pytest.raises(TrayError, match="U\\+DE99"):
        toml_string("\ude99")
    assert not (tmp_path / "e").exists()


def test_photos_of_the_other_side_declared_the_shared_design_are_refused_as_sides_swapped(
    world: TrayWorld, looks: dict[Side, TrayLook], tmp_path: Path
) -> None:
    """The reverse photographed as the obverse and the obverse as the reverse, the obverse declared the family's: the
    family's design would become the type's own, and a cup of any family member lying obverse up PASS as it."""
    family = world.mint.types[0].design(Side.OBVERSE).id
    coin = TrayType(HELD_OUT, "State twelve", 24.26, {Side.OBVERSE: family})
    swapped = {Side.OBVERSE: looks[Side.REVERSE], Side.REVERSE: looks[Side.OBVERSE]}
    catalog = write_tray_catalog(tmp_path / "swapped", coin, swapped)
    embedder = world.pipeline.embedder.without_adapter()
    gallery = Gallery.load(world.gallery_dir, embedder_version=embedder.version)
    before = len(gallery)
    with pytest.raises(CatalogError) as refused:
        enroll_catalog(catalog, gallery, embedder, progress=False)
    said = str(refused.value)
    assert said.startswith(f"{catalog / HELD_OUT}: {HELD_OUT}'s obverse photos do not look like the design {family!r}")
    assert "but its reverse photos do" in said and "sides swapped?" in said
    assert len(gallery) == before and HELD_OUT not in gallery.types()  # nothing enrolled

    # one side only, and not the design declared: nothing to say it is swapped, but it is named
    alone = write_tray_catalog(tmp_path / "alone", coin, {Side.OBVERSE: looks[Side.REVERSE]})
    report, _ = enroll_catalog(alone, gallery, embedder, progress=False)
    (warned,) = [w for w in report.warnings if "do not look like the design" in w]
    assert "take obverse_design out of its coin.toml" in warned and "swapped" not in warned

    # the sides as photographed: no word about the design
    straight = write_tray_catalog(tmp_path / "straight", coin, looks)
    report, _ = enroll_catalog(straight, gallery, embedder, progress=False)
    assert report.enrolled and not [w for w in report.warnings if "look like the design" in w]
