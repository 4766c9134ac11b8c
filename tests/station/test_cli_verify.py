"""``cupcheck verify``: the JSON contract on crop folders, and its bad inputs (exit status 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.enroll import CATALOG_FILE, TypeInfo, save_catalog
from models.synth.mint import generate_mint
from models.synth.scene import SceneAssets, SceneOptions, render_cup
from models.types import CupKind, Side
from station.cli import main
from station.controllers.overlay import CROP_TILE_PX, FLAG_BGR, PASS_BGR
from tests.models.embed_helpers import write_tiny_checkpoint
from tests.models.verdict_world import PIPE_MINT_SEED, PIPE_TYPES, enrolled_gallery, reference_image, write_bundle


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """``(home, bundle, cups)``: an enrolled home, a bundle, and two crop folders (pure and mixed)."""
    root = tmp_path_factory.mktemp("verify")
    emb_file = write_tiny_checkpoint(root / "bundle" / "embedder.pt")
    bundle, embedder = write_bundle(root / "bundle", embedder_file=emb_file)
    home = root / "home"
    enrolled_gallery(embedder).save(home / "gallery")
    save_catalog(home / "gallery" / CATALOG_FILE, [TypeInfo(t, t, 25.0) for t in PIPE_TYPES])
    cups = root / "cups"
    for name, types in (("pure", ["t0000"] * 5), ("mixed", ["t0000"] * 3 + ["t0009", "t0000"])):
        (cups / name).mkdir(parents=True)
        for k, t in enumerate(types):
            side = Side.REVERSE  # reverse up: a coin on its family's shared obverse keeps any cup from passing
            cv2.imwrite(str(cups / name / f"coin{k}.png"), reference_image(t, side))
    (cups / "turn").mkdir()  # the pure cup with its third coin lying on the family's shared obverse
    (cups / "intruder").mkdir()  # ... and with its last coin another family's, on that family's shared obverse
    for k in range(5):
        side = Side.OBVERSE if k == 2 else Side.REVERSE
        cv2.imwrite(str(cups / "turn" / f"coin{k}.png"), reference_image("t0000", side))
        intruder = reference_image("t0009", Side.OBVERSE) if k == 4 else reference_image("t0000", side)
        cv2.imwrite(str(cups / "intruder" / f"coin{k}.png"), intruder)
    return home, bundle, cups


def _verify(station: tuple[Path, Path, Path], *args: str) -> list[str]:
    home, bundle, _ = station
    return ["verify", *args, "--home", str(home), "--bundle", str(bundle)]


def test_json_contract_for_crop_folders(station, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, cups = station
    argv = _verify(station, str(cups / "pure"), str(cups / "mixed"), "--crops", "--expect", "t0000", "--json")
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [c["path"] for c in doc["cups"]] == [str(cups / "pure"), str(cups / "mixed")]
    pure, mixed = doc["cups"]
    for cup in doc["cups"]:
        assert cup["verdict"] in ("pass", "flag")
        assert cup["expected"] == "t0000"
        assert 0.0 <= cup["p_correct"] <= 1.0
        assert cup["n_coins"] == 5 == len(cup["coins"])
        assert isinstance(cup["reasons"], list)
        assert cup["unchecked"] == []  # crops: no frame to compare with an empty tray
        for k, coin in enumerate(cup["coins"]):
            assert coin["file"] == f"coin{k}.png"
            assert len(coin["bbox"]) == 4
            assert coin["match"] in PIPE_TYPES and coin["side"] in ("obverse", "reverse")
            assert -1.0 <= coin["score"] <= 1.0001
    assert not any(coin["shared"] for cup in doc["cups"] for coin in cup["coins"])
    assert not any(cup["turn_first"] for cup in doc["cups"])
    assert mixed["verdict"] == "flag"
    assert any("looks like t0009" in r for r in mixed["reasons"])
    assert mixed["coins"][3]["match"] == "t0009"  # its reverse (obverses are shared)
    assert pure["p_correct"] > mixed["p_correct"]


def test_a_crop_folder_with_a_file_that_is_not_a_readable_crop_is_not_judged(
    station, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The mixed cup's intruder in a sub-folder, or saved as a GIF, was skipped without a word and the rest PASSed:
    such a cup is now refused, naming the file, and the other cups are still judged."""
    _, _, cups = station
    intruder = cv2.imread(str(cups / "mixed" / "coin3.png"))
    assert intruder is not None
    nested, gif = tmp_path / "nested", tmp_path / "gif"
    for folder in (nested, gif):
        shutil.copytree(cups / "mixed", folder)
        (folder / "coin3.png").unlink()
        (folder / ".DS_Store").write_bytes(b"\0")  # a file manager's: not a coin, skipped
    (nested / "more").mkdir()
    cv2.imwrite(str(nested / "more" / "coin3.png"), intruder)
    (gif / "coin3.gif").write_bytes(b"GIF89a" + bytes(64))
    argv = _verify(station, str(nested), str(gif), str(cups / "pure"), "--crops", "--expect", "t0000", "--json")
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert [c["path"] for c in json.loads(out)["cups"]] == [str(cups / "pure")]
    assert f"{nested} holds a folder, more" in err and f"cannot read {gif / 'coin3.gif'} as a coin crop" in err


def test_a_coin_on_a_shared_side_is_named_to_turn_over(
    station, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, cups = station
    assert main(_verify(station, str(cups / "turn"), "--crops", "--expect", "t0000", "--json")) == 0
    (cup,) = json.loads(capsys.readouterr().out)["cups"]
    assert cup["verdict"] == "flag" and [c["shared"] for c in cup["coins"]] == [False, False, True, False, False]
    assert cup["reasons"][0] == "coin 3 shows the shared obverse — turn it over" and cup["turn_first"] is True
    # the same cup read by a person: the reasons, then what to do next
    assert main(_verify(station, str(cups / "turn"), "--crops", "--expect", "t0000")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{cups / 'turn'}: FLAG t0000 p=0.000 (5 coins)")
    assert lines[1:] == [
        "  - coin 3 shows the shared obverse — turn it over",
        "  next: turn the coins named over and check the cup again before a supervisor looks",
    ]

    # another family's coin on that family's shared obverse: the type it looks like wins through a design several
    # types show, narrowly here, so it is named to turn over too (its own side settles it) ...
    assert main(_verify(station, str(cups / "intruder"), "--crops", "--expect", "t0000", "--json")) == 0
    (cup,) = json.loads(capsys.readouterr().out)["cups"]
    assert cup["verdict"] == "flag" and [c["shared"] for c in cup["coins"]] == [False, False, True, False, True]
    assert cup["coins"][4]["suspicious"] and cup["coins"][4]["match"] in ("t0009", "t0010")
    assert "coins 3, 5 show the shared obverse — turn them over" in cup["reasons"]
    assert not any(r.startswith("coin 5 looks like") for r in cup["reasons"])

    # ... and, beaten by more than the turning margin, it is said to show that family's face, not sent to be turned
    # nor said to look like whichever member its cosine favours; it is marked as on a shared side
    monkeypatch.setattr("models.pipeline.TURN_MARGIN", 0.0)
    assert main(_verify(station, str(cups / "intruder"), "--crops", "--expect", "t0000", "--json")) == 0
    (cup,) = json.loads(capsys.readouterr().out)["cups"]
    assert cup["verdict"] == "flag" and not cup["turn_first"]
    assert [c["shared"] for c in cup["coins"]] == [False, False, True, False, True]
    assert cup["reasons"] == [
        "coin 5 shows the shared obverse of t0009 and t0010 — not t0000",
        "coin 3 shows the shared obverse — turn it over",
    ]


def test_target_precision_rechooses_the_threshold(station, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, cups = station
    base = _verify(station, str(cups / "pure"), "--crops", "--expect", "t0000", "--json")
    assert main(base) == 0
    strict = json.loads(capsys.readouterr().out)["cups"][0]["threshold"]
    assert main([*base, "--target-precision", "0.9"]) == 0
    loose = json.loads(capsys.readouterr().out)["cups"][0]["threshold"]
    assert loose <= strict


def test_a_loose_target_never_passes_a_cup_the_voter_scores_under_one_half(
    station, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, cups = station
    base = _verify(station, str(cups / "mixed"), "--crops", "--expect", "t0000", "--json")
    assert main([*base, "--target-precision", "0.6"]) == 0  # a threshold near 0 is certified for 60 %
    out = capsys.readouterr()
    (cup,) = json.loads(out.out)["cups"]
    assert 0.0 < cup["p_correct"] < 0.5 and cup["verdict"] == "flag"
    assert cup["threshold"] == 0.5  # the threshold the cup was held to, not the one certified
    assert any(r.startswith("coin 4 looks like t0009") for r in cup["reasons"])
    (warning,) = [line for line in out.err.splitlines() if line.startswith("warning:")]
    assert "precision 60.00%" in warning and "under the floor 0.5" in warning and "0.5 applies" in warning
    # the bundle's own threshold lies above the floor: nothing said, and it is the one shown
    assert main(base) == 0
    out = capsys.readouterr()
    assert "floor" not in out.err and json.loads(out.out)["cups"][0]["threshold"] > 0.5


def test_a_target_the_model_cannot_certify_is_warned_of_once_and_named_in_each_reason(
    station, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, cups = station
    argv = _verify(station, str(cups / "pure"), str(cups / "mixed"), "--crops", "--expect", "t0000", "--json")
    assert main([*argv, "--target-precision", "0.999"]) == 0  # 1500 toy calibration pairs cannot show 99.9 %
    out = capsys.readouterr()
    (warning,) = [line for line in out.err.splitlines() if line.startswith("warning:")]
    assert warning.startswith("warning: a PASS precision of 99.9 % cannot be certified by this model: its 1500 ")
    assert "certify at most " in warning and "or less" in warning
    for cup in json.loads(out.out)["cups"]:
        assert cup["verdict"] == "flag" and cup["threshold"] is None
        assert cup["reasons"][-1] == "99.9 % cannot be certified by this model: every cup goes to a person"


def test_crops_are_numbered_in_natural_order_and_each_coin_names_its_file(
    station, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from station.commands.verify import natural_key

    cup = tmp_path / "ten"  # coin1 ... coin12, the intruder in coin2 (text order puts it fifth)
    cup.mkdir()
    for k in range(1, 13):
        cv2.imwrite(str(cup / f"coin{k}.png"), reference_image("t0009" if k == 2 else "t0000", Side.REVERSE))
    assert main(_verify(station, str(cup), "--crops", "--expect", "t0000", "--json")) == 0
    (doc,) = json.loads(capsys.readouterr().out)["cups"]
    assert [c["file"] for c in doc["coins"]] == [f"coin{k}.png" for k in range(1, 13)]
    assert doc["coins"][1]["match"] == "t0009" and doc["coins"][1]["suspicious"]
    assert any(r.startswith("coin 2 looks like t0009") for r in doc["reasons"])
    names = ["b10.png", "B2.png", "a.png", "b1.png", "x2y10.png", "x2y9.png", "x10.png"]
    assert sorted(names, key=natural_key) == [
        "a.png",
        "b1.png",
        "B2.png",
        "b10.png",
        "x2y9.png",
        "x2y10.png",
        "x10.png",
    ]


def test_count_flags_a_cup_of_another_number_of_coins(station, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, cups = station
    base = _verify(station, str(cups / "pure"), "--crops", "--expect", "t0000")
    assert main([*base, "--json", "--count", "5"]) == 0
    (five,) = json.loads(capsys.readouterr().out)["cups"]
    assert (five["verdict"], five["expected_count"], five["reasons"]) == ("pass", 5, [])
    assert main([*base, "--count", "6"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{cups / 'pure'}: FLAG t0000")
    assert out[1] == "  - 5 coins seen, the order is for 6: 1 short, or hidden under others — spread them out"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unknown_type", "not enrolled"),
        ("unreadable", "cannot read image"),
        ("no_bundle", "bundle"),
        ("no_gallery", "gallery"),
        ("bad_precision", "--target-precision"),
        ("bad_count", "--count is the coins an order asks for, from 1 to 10000, not 0"),
        ("huge_count", "from 1 to 10000, not 99999999999999999999"),
    ],
)
def test_bad_inputs_exit_2(
    station, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, message: str
) -> None:
    home, bundle, cups = station
    junk = tmp_path / "cup.jpg"
    junk.write_text("not an image")
    argv = {
        "unknown_type": _verify(station, str(cups / "pure"), "--crops", "--expect", "t9999"),
        "unreadable": _verify(station, str(junk), "--expect", "t0000"),
        "no_bundle": [
            "verify",
            str(cups / "pure"),
            "--crops",
            "--expect",
            "t0000",
            "--home",
            str(home),
            "--bundle",
            str(tmp_path / "missing.json"),
        ],
        "no_gallery": [
            "verify",
            str(cups / "pure"),
            "--crops",
            "--expect",
            "t0000",
            "--home",
            str(tmp_path / "h"),
            "--bundle",
            str(bundle),
        ],
        "bad_precision": _verify(
            station, str(cups / "pure"), "--crops", "--expect", "t0000", "--target-precision", "1.5"
        ),
        "bad_count": _verify(station, str(cups / "pure"), "--crops", "--expect", "t0000", "--count", "0"),
        "huge_count": _verify(
            station, str(cups / "pure"), "--crops", "--expect", "t0000", "--count", "99999999999999999999"
        ),
    }[case]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cupcheck verify: error:" in err and message in err


def test_overlay_writes_each_photo_with_its_coins_numbered_and_its_verdict_under_it(
    station, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scene = render_cup(SceneAssets(generate_mint(12, PIPE_MINT_SEED)), 0, 3, SceneOptions(image_size=320, max_coins=4))
    photos = [tmp_path / "a" / "cup.png", tmp_path / "b" / "cup.png"]  # the same name twice: neither overwritten
    for photo in photos:
        photo.parent.mkdir()
        cv2.imwrite(str(photo), scene.image)
    pics = tmp_path / "pics"
    assert main(_verify(station, *map(str, photos), "--expect", "t0000", "--json", "--overlay", str(pics))) == 0
    said = capsys.readouterr()
    cups = json.loads(said.out)["cups"]
    assert f"pictures: 2 in {pics}" in said.err  # stdout keeps the JSON alone
    assert sorted(p.name for p in pics.iterdir()) == ["cup-2.png", "cup.png"]
    h, w = scene.image.shape[:2]
    for cup, name in zip(cups, ("cup.png", "cup-2.png"), strict=True):
        picture = np.asarray(cv2.imread(str(pics / name)), np.int64)
        assert picture.shape[1] == w and picture.shape[0] > h  # the photo, and the caption under it
        top, caption = picture[:h], picture[h:]
        drawn = np.abs(top - scene.image.astype(int)).sum(axis=2) > 60
        assert drawn.any() == (cup["n_coins"] > 0)  # the coins outlined and numbered
        word = PASS_BGR if cup["verdict"] == "pass" else FLAG_BGR
        assert (np.abs(caption - word).sum(axis=2) < 60).any()  # the verdict word in its colour


def test_overlay_of_a_crop_folder_sets_its_crops_side_by_side_framed_by_their_evidence(
    station, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, cups = station
    pics = tmp_path / "pics"
    assert main(_verify(station, str(cups / "mixed"), "--crops", "--expect", "t0000", "--overlay", str(pics))) == 0
    assert capsys.readouterr().out.startswith(f"{cups / 'mixed'}: FLAG t0000")
    sheet = np.asarray(cv2.imread(str(pics / "mixed.png")), np.int64)
    tile = CROP_TILE_PX
    assert sheet.shape[1] == 5 * tile and sheet.shape[0] > tile  # five crops in a row, the caption under them

    def framed(k: int, colour: tuple[int, int, int]) -> bool:  # the top of the ring around tile k
        top = sheet[4:10, k * tile + tile // 2 - 3 : k * tile + tile // 2 + 3].reshape(-1, 3)
        return bool((np.abs(top - colour).sum(axis=1) < 60).any())

    assert framed(3, FLAG_BGR) and not framed(3, PASS_BGR)  # coin 4 is the other family's (t0009)
    assert all(framed(k, PASS_BGR) for k in (0, 1, 2, 4))


def test_verify_and_detect_number_a_photos_coins_and_objects_alike(
    station, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assets = SceneAssets(generate_mint(12, PIPE_MINT_SEED))
    options = SceneOptions(image_size=320, max_coins=4, kind_weights={CupKind.FOREIGN_OBJECT: 1.0})
    photo = tmp_path / "cup.png"
    for index in range(10):  # a cup in which the detector boxes the object as one
        cv2.imwrite(str(photo), render_cup(assets, 0, index, options).image)
        assert main(_verify(station, str(photo), "--expect", "t0000", "--json")) == 0
        (cup,) = json.loads(capsys.readouterr().out)["cups"]
        objects = [int(r.split()[1]) for r in cup["reasons"] if r.endswith("is not a coin")]
        if objects:
            break
    assert objects, "no rendered cup had its object boxed"
    assert not any("file" in coin for coin in cup["coins"])  # a photo's coins have no file of their own
    assert main(["detect", str(photo)]) == 0
    rows = {int(line.split()[0]): line.split()[-1] for line in capsys.readouterr().out.splitlines()[2:]}
    for number, coin in enumerate(cup["coins"], 1):  # verify's coins: every instance, in the detector's order
        assert (rows[number] == "object") == (not coin["is_coin"]) == (number in objects)
    assert "has no colour" not in capsys.readouterr().err
    grey = tmp_path / "grey.png"  # the same cup photographed in grey: judged, with a word that it is grey
    colour = cv2.imread(str(photo))
    assert colour is not None
    cv2.imwrite(str(grey), cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY))
    assert main(_verify(station, str(grey), "--expect", "t0000")) == 0
    assert f"warning: {grey} has no colour" in capsys.readouterr().err


def test_either_backend_gives_the_same_verdicts(station) -> None:
    from models.frames import read_frame
    from models.pipeline import Pipeline

    home, bundle, cups = station
    pipes = {b: Pipeline.load(home, bundle, with_detector=False, backend=b) for b in ("onnx", "torch")}
    assert {b: p.embedder.backend for b, p in pipes.items()} == {"onnx": "onnx", "torch": "torch"}
    for name in ("pure", "mixed"):
        crops = [read_frame(f).image for f in sorted((cups / name).glob("*.png"))]
        a, b = (pipes[k].run_crops(crops, "t0000") for k in ("onnx", "torch"))
        assert (a.decision, a.reasons) == (b.decision, b.reasons) and abs(a.p_correct - b.p_correct) < 1e-4
    with pytest.raises(ValueError, match="unknown inference backend"):
        Pipeline.load(home, bundle, with_detector=False, backend="gpu")


def test_verify_reads_a_shared_gallery(station, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home, bundle, cups = station
    shutil.copytree(home / "gallery", tmp_path / "share" / "gallery")
    argv = ["verify", str(cups / "mixed"), "--crops", "--expect", "t0000", "--json", "--bundle", str(bundle)]
    assert main([*argv, "--home", str(tmp_path / "pc"), "--gallery", str(tmp_path / "share")]) == 0
    (cup,) = json.loads(capsys.readouterr().out)["cups"]
    assert cup["verdict"] == "flag" and any("looks like t0009" in r for r in cup["reasons"])
    assert main([*argv, "--home", str(tmp_path / "pc")]) == 2  # that station's own home has no gallery


def test_the_station_file_gives_home_bundle_and_precision(
    station, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home, bundle, cups = station
    argv = [str(cups / "pure"), "--crops", "--expect", "t0000", "--json"]
    assert main(_verify(station, *argv, "--target-precision", "0.9")) == 0
    by_flags = json.loads(capsys.readouterr().out)["cups"]
    config = tmp_path / "station.toml"
    config.write_text(f'home = "{home}"\nbundle = "{bundle}"\ntarget_precision = 0.9\n')
    assert main(["verify", *argv, "--config", str(config)]) == 0
    by_config = json.loads(capsys.readouterr().out)["cups"]
    for cup in (*by_flags, *by_config):
        del cup["timings_ms"]
    assert by_config == by_flags
    assert main(_verify(station, *argv)) == 0  # the bundle's own precision: another threshold
    assert json.loads(capsys.readouterr().out)["cups"][0]["threshold"] != by_config[0]["threshold"]


def test_an_unreadable_cup_is_named_and_the_others_are_judged(
    station, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, cups = station
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "coin.png").write_text("not an image")
    argv = _verify(station, str(cups / "pure"), str(junk), str(tmp_path / "gone"), "--crops", "--expect", "t0000")
    assert main([*argv, "--json"]) == 2
    captured = capsys.readouterr()
    assert [c["path"] for c in json.loads(captured.out)["cups"]] == [str(cups / "pure")]
    assert f"cannot read {junk / 'coin.png'} as a coin crop" in captured.err
    assert f"{tmp_path / 'gone'} is not a folder of crops" in captured.err
    assert main(_verify(station, str(cups / "pure"), "--expect", "t0000")) == 2  # a folder without --crops
    assert "a folder, not an image (a folder of one cup's crops takes --crops)" in capsys.readouterr().err
    # nothing readable: still a JSON document, with no cup in it
    assert main(_verify(station, str(junk / "coin.png"), "--expect", "t0000", "--json")) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"cups": []} and "cannot read image" in captured.err


def test_a_registry_folder_that_is_not_there_is_said(
    station, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home, _, cups = station
    gone = tmp_path / "share" / "models"
    main(["verify", str(cups / "pure"), "--crops", "--expect", "t0000", "--home", str(home), "--models", str(gone)])
    err = capsys.readouterr().err
    assert f"warning: no model registry at {gone / 'models' / 'registry.json'} (is the share mounted?)" in err
