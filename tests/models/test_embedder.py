"""Embedder: normalised deterministic embeddings, checkpoints that carry their preprocessing, shipped weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import timm
import torch

from models.embedder import (
    DEFAULT_WEIGHTS,
    Embedder,
    Preprocessing,
    build_network,
    prepare_image,
    save_checkpoint,
    with_preprocessing,
)
from models.types import CoinCrop
from tests.models.embed_helpers import coin_image, other_family_index, tiny_checkpoint, tiny_embedder


def test_embeddings_are_unit_length_and_deterministic() -> None:
    emb = tiny_embedder()
    crops = [coin_image(i) for i in range(3)]
    a = emb.embed(crops)
    b = emb.embed([CoinCrop(image=c, mask=np.ones(c.shape[:2], bool), index=i) for i, c in enumerate(crops)])
    assert a.shape == (3, 32) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, b)
    assert emb.embed([]).shape == (0, 32)


def test_batching_does_not_change_embeddings() -> None:
    emb = tiny_embedder()
    crops = [coin_image(i, size=96) for i in range(5)]
    np.testing.assert_allclose(emb.embed(crops, batch_size=2), emb.embed(crops, batch_size=5), atol=1e-5)


def test_checkpoint_carries_preprocessing_and_version(tmp_path: Path) -> None:
    path = save_checkpoint(tiny_checkpoint(), tmp_path / "e.pt")
    loaded = Embedder.load(path)
    assert loaded.arch == "mobilenetv2_050" and loaded.embed_dim == 32
    assert loaded.prep == Preprocessing(input_size=64)
    assert loaded.version.startswith("mobilenetv2_050-32d-") and len(loaded.version.rsplit("-", 1)[1]) == 8
    assert loaded.train_args == {"note": "test"}
    raw = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float16 for v in raw["state_dict"].values() if v.is_floating_point())
    crop = [coin_image(1)]
    np.testing.assert_array_equal(loaded.embed(crop), tiny_embedder().embed(crop))
    assert not list(tmp_path.glob(".*.tmp"))


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        Embedder.load(tmp_path / "missing.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an embedder checkpoint"):
        Embedder.load(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a readable"):
        Embedder.load(tmp_path / "junk.pt")


def test_init_loads_a_local_backbone_file(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = timm.create_model("mobilenetv2_050", pretrained=False, num_classes=10)
    torch.save(source.state_dict(), tmp_path / "backbone.pth")
    net = build_network("mobilenetv2_050", 16, tmp_path / "backbone.pth")
    torch.testing.assert_close(net.backbone.state_dict()["conv_stem.weight"], source.state_dict()["conv_stem.weight"])
    with pytest.raises(ValueError, match="does not fit"):
        build_network("resnet18", 16, tmp_path / "backbone.pth")
    with pytest.raises(FileNotFoundError):
        build_network("mobilenetv2_050", 16, tmp_path / "nope.pth")


@pytest.mark.parametrize("kind", ["truncated", "text", "list"])
def test_init_that_is_no_readable_checkpoint_is_named(tmp_path: Path, kind: str) -> None:
    """A cut-off backbone file, a text file or a pickle of something else: a ValueError naming the file."""
    path = tmp_path / "init.pth"
    if kind == "truncated":
        torch.save(timm.create_model("mobilenetv2_050", pretrained=False).state_dict(), path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "text":
        path.write_text("hello\n")
    else:
        torch.save([1, 2, 3], path)
    with pytest.raises(ValueError, match=f"{path}") as err:
        build_network("mobilenetv2_050", 16, path)
    assert ("it holds a list" if kind == "list" else "is not a readable torch checkpoint") in str(err.value)


def test_init_from_an_embedder_checkpoint_takes_every_weight(tmp_path: Path) -> None:
    path = save_checkpoint(tiny_checkpoint(), tmp_path / "e.pt")
    net = build_network("mobilenetv2_050", 32, path)
    net.eval()
    crop = [coin_image(2)]
    fine = Embedder(net, "mobilenetv2_050", 32, Preprocessing(input_size=64), "x", {})
    np.testing.assert_allclose(fine.embed(crop), tiny_embedder().embed(crop), atol=2e-3)  # fp16 weights
    with pytest.raises(ValueError, match="mobilenetv2_050 32-d embedder, not mobilenetv2_050 16-d"):
        build_network("mobilenetv2_050", 16, path)


def test_prepare_image_masks_the_background() -> None:
    img = np.full((150, 150, 3), 200, np.uint8)
    out = prepare_image(img, Preprocessing(input_size=64))
    assert out.shape == (64, 64, 3)
    assert out[0, 0].sum() == 0 and out[63, 63].sum() == 0 and out[32, 32].tolist() == [200, 200, 200]
    gray = prepare_image(np.full((80, 80), 90, np.uint8), Preprocessing(input_size=32, circle_mask=False))
    assert gray.shape == (32, 32, 3) and gray[0, 0].tolist() == [90, 90, 90]


@pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(), reason="shipped embedder weights not present")
def test_shipped_weights_rotation_is_closer_than_another_coin() -> None:
    emb = Embedder.load()
    assert emb.embed_dim <= 256 and DEFAULT_WEIGHTS.stat().st_size < 8_000_000
    other = other_family_index()
    e = emb.embed([coin_image(0), coin_image(0, angle=73.0), coin_image(0, angle=200.0), coin_image(other)])
    same = e[0] @ e[1:3].T
    different = float(e[0] @ e[3])
    assert same.min() > different, (same, different)


def test_quarter_turn_averaging_makes_embeddings_invariant_to_quarter_turns() -> None:
    ckpt = with_preprocessing(tiny_checkpoint(), rotations=4)
    assert ckpt["version"] != tiny_checkpoint()["version"] and ckpt["train_args"]["rotations"] == 4
    emb = Embedder.from_checkpoint(ckpt)
    img = coin_image(2, size=80)
    e = emb.embed([img, np.ascontiguousarray(np.rot90(img)), np.ascontiguousarray(np.rot90(img, 2))])
    np.testing.assert_allclose(e[1:], np.repeat(e[:1], 2, axis=0), atol=1e-4)
    plain = tiny_embedder().embed([img, np.ascontiguousarray(np.rot90(img))])
    assert float(plain[0] @ plain[1]) < float(e[0] @ e[1])
    with pytest.raises(ValueError, match="rotations"):
        with_preprocessing(tiny_checkpoint(), rotations=3)
