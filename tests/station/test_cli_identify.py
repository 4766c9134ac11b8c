"""``cupcheck enroll`` and ``cupcheck identify --crop --json`` end to end with a tiny embedder."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.enroll import gallery_state
from models.gallery import Gallery
from models.types import Side
from station.cli import main
from tests.models.embed_helpers import coin_image, other_family_index, write_tiny_checkpoint


@pytest.fixture
def enrolled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    """A home with two enrolled types; returns (home, embedder checkpoint)."""
    ckpt = write_tiny_checkpoint(tmp_path / "tiny.pt")
    cat = tmp_path / "catalog"
    for tid, index in (("alpha", 0), ("beta", other_family_index())):
        for side in (Side.OBVERSE, Side.REVERSE):
            (cat / tid / side.value).mkdir(parents=True)
            cv2.imwrite(str(cat / tid / side.value / "a.png"), coin_image(index, side, 96))
    (cat / "alpha" / "coin.toml").write_text(
        'name = "Alpha"\ndiameter_mm = 21.5\nlookalikes = ["beta"]\nobverse_design = "crest"\n'
    )
    (cat / "beta" / "coin.toml").write_text('obverse_design = "crest"\n')
    (cat / "beta" / "bad.jpg").write_bytes(b"garbage")
    home = tmp_path / "home"
    assert main(["enroll", str(cat), "--home", str(home), "--embedder", str(ckpt)]) == 0
    out, err = capsys.readouterr()
    assert "enrolled alpha (Alpha, 21.5 mm): 1 obverse, 1 reverse" in out and "2 types, 4 references" in out
    assert "bad.jpg: cannot read image" in err
    assert "note: lookalikes alpha and beta: their cups are always checked by a person" in out
    assert "note: obverse design 'crest' is shared by 2 types (alpha, beta): a coin showing it proves nothing" in out
    # one photo a side is fewer than the shipped verdict model was calibrated with
    assert "note: alpha has 1 obverse and 1 reverse reference(s); the verdict model was calibrated with" in out
    catalog = json.loads((home / "gallery" / "catalog.json").read_text())
    assert catalog["types"]["alpha"] == {
        "name": "Alpha",
        "diameter_mm": 21.5,
        "lookalikes": ["beta"],
        "obverse_design": "crest",
    }
    return home, ckpt


def test_identify_crop_json_schema(enrolled: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    home, ckpt = enrolled
    query = tmp_path / "q.png"
    cv2.imwrite(str(query), coin_image(0, Side.REVERSE, 110, angle=30.0))
    code = main(["identify", str(query), "--crop", "--json", "--home", str(home), "--embedder", str(ckpt), "-k", "5"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    (image,) = doc["images"]
    assert image["path"] == str(query)
    (coin,) = image["coins"]
    assert coin["bbox"] == [0, 0, 110, 110] and coin["confidence"] == 1.0 and coin["center"] == [55, 55]
    assert coin["diameter_px"] == 110 and coin["diameter_mm"] is None and coin["partial"] is False
    assert coin["number"] == 1
    assert {m["type"] for m in coin["matches"]} == {"alpha", "beta"}
    for m in coin["matches"]:
        assert set(m) == {"type", "side", "score", "template"} and m["side"] in ("obverse", "reverse")
        assert -1 <= m["score"] <= 1 and -1 <= m["template"] <= 1
    # the enrolled gallery keeps template signatures, so matches are ranked by cosine + template
    ranked = [m["score"] + m["template"] for m in coin["matches"]]
    assert ranked == sorted(ranked, reverse=True)


def test_identify_reports_unreadable_file_and_exits_2(enrolled: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    home, ckpt = enrolled
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), coin_image(0, Side.OBVERSE, 96))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    code = main(["identify", str(bad), str(good), "--crop", "--json", "--home", str(home), "--embedder", str(ckpt)])
    captured = capsys.readouterr()
    assert code == 2
    assert str(bad) in captured.err
    doc = json.loads(captured.out)
    assert [im["path"] for im in doc["images"]] == [str(good)]
    assert len(doc["images"][0]["coins"][0]["matches"]) == 2


def test_identify_with_empty_gallery_is_a_clear_error(tmp_path: Path, capsys) -> None:
    ckpt = write_tiny_checkpoint(tmp_path / "tiny.pt")
    img = tmp_path / "x.png"
    cv2.imwrite(str(img), coin_image(0, Side.OBVERSE, 64))
    code = main(["identify", str(img), "--crop", "--home", str(tmp_path / "h"), "--embedder", str(ckpt)])
    assert code == 2 and "gallery is empty" in capsys.readouterr().err


def test_enroll_with_a_missing_bundle_is_a_clear_error_and_enrols_nothing(tmp_path: Path, capsys) -> None:
    cat = tmp_path / "catalog"
    (cat / "alpha").mkdir(parents=True)
    cv2.imwrite(str(cat / "alpha" / "a.png"), coin_image(0, Side.REVERSE, 96))
    home = tmp_path / "home"
    args = ["enroll", str(cat), "--home", str(home), "--embedder", str(write_tiny_checkpoint(tmp_path / "t.pt"))]
    assert main([*args, "--bundle", str(tmp_path / "nope.json")]) == 2
    assert "nope.json not found" in capsys.readouterr().err
    assert not (home / "gallery").exists()


def test_enroll_with_a_damaged_registry_checks_against_the_shipped_bundle(tmp_path: Path, capsys) -> None:
    from models.bundle import load_bundle

    cat = tmp_path / "catalog"
    (cat / "alpha").mkdir(parents=True)
    cv2.imwrite(str(cat / "alpha" / "a.png"), coin_image(0, Side.REVERSE, 96))
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / "registry.json").write_text("[]")
    args = ["enroll", str(cat), "--home", str(home), "--embedder", str(write_tiny_checkpoint(tmp_path / "t.pt"))]
    assert main(args) == 0
    out, err = capsys.readouterr()
    per_side = load_bundle().enrol_per_side
    assert f"checked against the shipped bundle's {per_side} photos a side" in err
    assert f"the verdict model was calibrated with {per_side}" in out


def test_enroll_refuses_a_gallery_built_by_another_embedder(
    enrolled: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    home, _ = enrolled
    import torch

    from models.embedder import Preprocessing, build_network, checkpoint_dict, save_checkpoint

    torch.manual_seed(3)
    other = save_checkpoint(
        checkpoint_dict(build_network("mobilenetv2_050", 32), "mobilenetv2_050", 32, Preprocessing(input_size=64)),
        tmp_path / "other.pt",
    )
    code = main(["enroll", str(tmp_path / "catalog"), "--home", str(home), "--embedder", str(other)])
    assert code == 2 and "--rebuild" in capsys.readouterr().err
    assert main(["enroll", str(tmp_path / "catalog"), "--home", str(home), "--embedder", str(other), "--rebuild"]) == 0


@pytest.mark.slow
@pytest.mark.real_data
def test_whole_photo_enrol_and_identify_use_the_detector(real_data: Path, tmp_path: Path, capsys) -> None:
    from models.detector import DEFAULT_DIR

    if not DEFAULT_DIR.is_dir():
        pytest.skip("shipped detector weights not present")
    photo = real_data / "euro_kaa" / "photos" / "single" / "IMG_4197.jpg"
    ckpt = write_tiny_checkpoint(tmp_path / "tiny.pt")
    cat = tmp_path / "catalog" / "euro-1e" / "obverse"
    cat.mkdir(parents=True)
    (cat / "pile.jpg").write_bytes(photo.read_bytes())
    crops = tmp_path / "catalog" / "euro-2e"
    crops.mkdir()
    for src in sorted((real_data / "euro_kaa" / "crops" / "train" / "2e").glob("*.jpg"))[:2]:
        (crops / src.name).write_bytes(src.read_bytes())
    home = tmp_path / "home"
    enroll = ["enroll", str(tmp_path / "catalog"), "--home", str(home), "--embedder", str(ckpt)]
    assert main(enroll) == 0  # a pile of coins taken for a photo of one: none of its coins is enrolled, and why
    out, err = capsys.readouterr()
    assert "enrolled euro-1e" not in out and "enrolled euro-2e: 2 obverse" in out
    assert f"{cat / 'pile.jpg'}: photo shows " in err and "Use --every-coin" in err
    assert main([*enroll, "--every-coin"]) == 0  # one type's pile: every whole coin a reference
    out = capsys.readouterr().out
    assert re.search(r"enrolled euro-1e: \d+ obverse", out) and "enrolled euro-2e: 2 obverse" in out
    assert main(["identify", str(photo), "--json", "--home", str(home), "--embedder", str(ckpt), "-k", "2"]) == 0
    (image,) = json.loads(capsys.readouterr().out)["images"]
    assert len(image["coins"]) >= 10
    for coin in image["coins"]:
        x1, y1, x2, y2 = coin["bbox"]
        assert 0 <= x1 < x2 and 0 <= y1 < y2 and 0 < coin["confidence"] <= 1 and coin["diameter_px"] > 20
        assert x1 <= coin["center"][0] <= x2 and len(coin["matches"]) == 2
    # read by a person: each coin numbered from 1, and drawn with its number and best type
    pics = tmp_path / "pics"
    assert main(["identify", str(photo), "--home", str(home), "--embedder", str(ckpt), "--overlay", str(pics)]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  coin ")]
    numbers = [c["number"] for c in image["coins"]]  # the detector's order, objects counted, as verify numbers
    assert numbers == sorted(set(numbers)) and numbers[0] >= 1
    assert [line.split()[1] for line in listed] == [str(n) for n in numbers]
    picture, original = cv2.imread(str(pics / "IMG_4197.png")), cv2.imread(str(photo))
    assert picture is not None and original is not None and picture.shape == original.shape
    assert not np.array_equal(picture, original)
    # a calibrated station: identify gives millimetres as detect does
    from calibration.camera import CameraCalibration, save_calibration

    h, w = original.shape[:2]
    save_calibration(CameraCalibration(px_per_mm=5.0, image_width=w, image_height=h, method="manual"), home)
    assert main(["identify", str(photo), "--json", "--home", str(home), "--embedder", str(ckpt)]) == 0
    (measured,) = json.loads(capsys.readouterr().out)["images"]
    for coin in measured["coins"]:
        assert coin["diameter_mm"] == pytest.approx(coin["diameter_px"] / 5.0, rel=1e-3)


def test_a_site_enrols_once_into_its_shared_gallery(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = write_tiny_checkpoint(tmp_path / "tiny.pt")
    cat, share = tmp_path / "catalog", tmp_path / "share"
    for side in (Side.OBVERSE, Side.REVERSE):
        (cat / "alpha" / side.value).mkdir(parents=True)
        cv2.imwrite(str(cat / "alpha" / side.value / "a.png"), coin_image(0, side, 96))
    enrol = ["enroll", str(cat), "--home", str(tmp_path / "pc-1"), "--gallery", str(share), "--embedder", str(ckpt)]
    assert main(enrol) == 0
    assert (share / "gallery" / "catalog.json").is_file() and not (tmp_path / "pc-1" / "gallery").exists()
    query = tmp_path / "q.png"
    cv2.imwrite(str(query), coin_image(0, Side.REVERSE, 96))
    capsys.readouterr()
    other = ["identify", str(query), "--crop", "--json", "--home", str(tmp_path / "pc-2"), "--embedder", str(ckpt)]
    assert main([*other, "--gallery", str(share)]) == 0  # another station reads the types enrolled once
    (image,) = json.loads(capsys.readouterr().out)["images"]
    assert image["coins"][0]["matches"][0]["type"] == "alpha"
    assert main(other) == 2  # its own home holds no gallery


def test_enrolling_a_type_again_keeps_what_was_declared_and_says_what_it_replaces(
    enrolled: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    """More photos of alpha in a folder without its coin.toml: its lookalike and shared design stay declared (else
    its cups and beta's could pass on the camera's word), and the output says the old references were replaced."""
    home, ckpt = enrolled
    again = tmp_path / "again" / "alpha" / "obverse"
    again.mkdir(parents=True)
    for n, angle in enumerate((0.0, 60.0, 200.0)):
        cv2.imwrite(str(again / f"{n}.png"), coin_image(0, Side.OBVERSE, 96, angle))
    assert main(["enroll", str(tmp_path / "again"), "--home", str(home), "--embedder", str(ckpt)]) == 0
    out, err = capsys.readouterr()
    assert "enrolled alpha (Alpha, 21.5 mm): 3 obverse (replacing its 1 obverse, 1 reverse)" in out
    assert "no coin.toml; alpha's name, diameter, lookalikes and designs enrolled before are kept" in err
    catalog = json.loads((home / "gallery" / "catalog.json").read_text())
    assert (
        catalog["types"]["alpha"]["lookalikes"] == ["beta"] and catalog["types"]["alpha"]["obverse_design"] == "crest"
    )
    entries = Gallery.load(home / "gallery").entries.values()
    assert {e.design for e in entries if e.type_id == "alpha"} == {"crest"}  # still the shared obverse
    # a rebuild from a folder holding alpha alone leaves beta out, and says so
    code = main(["enroll", str(tmp_path / "again"), "--home", str(home), "--embedder", str(ckpt), "--rebuild"])
    assert code == 0
    out = capsys.readouterr().out
    assert "enrolled alpha (Alpha, 21.5 mm): 3 obverse (replacing its 3 obverse)" in out
    assert "warning: --rebuild left out 1 types its catalogue folder does not hold: beta" in out


def test_a_rebuild_that_would_drop_a_type_whose_photos_all_failed_is_refused(
    enrolled: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    """--rebuild from a folder holding alpha and beta, beta's one photo unreadable: beta is not a type the folder
    lacks, and dropping it would take it off the station. Refused with why, nothing saved; enrolled without
    --rebuild, beta keeps its references and says so; beta's photos put right, the rebuild says what each type had."""
    home, ckpt = enrolled
    cat = tmp_path / "rebuild"
    shutil.copytree(tmp_path / "catalog" / "alpha", cat / "alpha")
    (cat / "beta" / "obverse").mkdir(parents=True)
    (cat / "beta" / "obverse" / "x.png").write_bytes(b"junk")
    saved = gallery_state(home / "gallery")
    enroll = ["enroll", str(cat), "--home", str(home), "--embedder", str(ckpt)]
    assert main([*enroll, "--rebuild"]) == 2
    err = capsys.readouterr().err
    assert f"--rebuild would leave out beta, which {cat} holds: none of its photos could be used (1 unreadable)" in err
    assert err.rstrip().endswith("nothing was saved") and gallery_state(home / "gallery") == saved
    assert main(enroll) == 0
    out = capsys.readouterr().out
    assert (
        "warning: beta was not enrolled: none of its photos could be used (1 unreadable); its 1 obverse, 1 reverse "
        "enrolled before are kept" in out
    )
    assert Gallery.load(home / "gallery").types()["beta"] == {"obverse": 1, "reverse": 1}
    shutil.rmtree(cat / "beta")
    shutil.copytree(tmp_path / "catalog" / "beta", cat / "beta")
    assert main([*enroll, "--rebuild"]) == 0
    out = capsys.readouterr().out
    assert "enrolled alpha (Alpha, 21.5 mm): 1 obverse, 1 reverse (replacing its 1 obverse, 1 reverse)" in out
    assert "enrolled beta: 1 obverse, 1 reverse (replacing its 1 obverse, 1 reverse)" in out
    assert "left out" not in out and "not enrolled" not in out


def _two_types(cat: Path, toml: str = "") -> Path:
    for tid, index in (("alpha", 0), ("beta", other_family_index())):
        for side in (Side.OBVERSE, Side.REVERSE):
            (cat / tid / side.value).mkdir(parents=True)
            cv2.imwrite(str(cat / tid / side.value / "a.png"), coin_image(index, side, 96))
    if toml:
        (cat / "alpha" / "coin.toml").write_text(toml)
    return cat


def test_a_misspelt_coin_toml_key_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = write_tiny_checkpoint(tmp_path / "tiny.pt")
    home = tmp_path / "home"
    cat = _two_types(tmp_path / "typo", 'name = "Alpha"\nlookalike = ["beta"]\n')
    assert main(["enroll", str(cat), "--home", str(home), "--embedder", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert f"{cat / 'alpha' / 'coin.toml'}: unknown key 'lookalike': did you mean 'lookalikes'?" in err
    assert "nothing was enrolled" in err and not (home / "gallery").exists()


def test_a_diameter_not_given_is_not_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = write_tiny_checkpoint(tmp_path / "tiny.pt")
    cat = _two_types(tmp_path / "catalog", 'name = "Alpha"\nlookalikes = ["beta"]\n')
    assert main(["enroll", str(cat), "--home", str(tmp_path / "home"), "--embedder", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert "enrolled alpha (Alpha): 1 obverse, 1 reverse" in out and "None mm" not in out
    assert "note: lookalikes alpha and beta" in out


def test_enroll_and_identify_use_the_embedder_of_the_model_in_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model in force on another embedder than the shipped one: the gallery is enrolled and searched with its
    embedder, as the station checks cups with it; a gallery of another embedder is refused naming the one in force."""
    from models.embedder import DEFAULT_WEIGHTS
    from models.registry import SHIPPED, ModelEntry, promote, register_version, resolve_bundle
    from tests.models.verdict_world import write_bundle

    tiny = write_tiny_checkpoint(tmp_path / "new-embedder.pt")
    bundle, embedder = write_bundle(tmp_path / "bundle", embedder_file=tiny)
    home = tmp_path / "home"
    register_version(home, bundle.parent, ModelEntry("verdict-newemb", "2026-12-01T02:00:00+00:00", SHIPPED))
    promote(home, "verdict-newemb")
    cat = _two_types(tmp_path / "catalog")
    assert main(["enroll", str(cat), "--home", str(home)]) == 0
    assert Gallery.load(home / "gallery").embedder_version == embedder.version
    query = tmp_path / "q.png"
    cv2.imwrite(str(query), coin_image(0, Side.REVERSE, 96, 40.0))
    capsys.readouterr()
    assert main(["identify", str(query), "--crop", "--json", "--home", str(home)]) == 0
    (image,) = json.loads(capsys.readouterr().out)["images"]
    assert image["coins"][0]["matches"][0]["type"] == "alpha"

    # --embedder naming another than the gallery's, which is the model's: leave it out
    shipped = ["--embedder", str(DEFAULT_WEIGHTS)]
    assert main(["enroll", str(cat), "--home", str(home), *shipped]) == 2
    err = capsys.readouterr().err
    in_force = resolve_bundle(home)
    assert f"enrolled with embedder {embedder.version}, the embedder of the model in force ({in_force})" in err
    assert err.rstrip().endswith("leave out --embedder")

    # the shipped model back in force: this gallery is of another embedder, and the station cannot use it
    promote(home, SHIPPED)
    for command in (["enroll", str(cat)], ["identify", str(query), "--crop"]):
        assert main([*command, "--home", str(home)]) == 2
        err = capsys.readouterr().err
        assert f"enrolled with embedder {embedder.version}, but the model in force (the shipped bundle) embeds" in err
        assert "the station cannot check cups with this gallery" in err and "--rebuild" in err
