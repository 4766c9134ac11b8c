"""ONNX Runtime backend: the exported embedder and segmenter give torch's outputs, the detector its instances."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from models.detector import Detector, yolo_onnx
from models.embedder import Embedder
from models.files import default_cache_dir
from models.runtime import BACKENDS, OnnxRunner, check_backend, export_onnx, graph_key
from models.segmenter import Segmenter, TinyUNet
from models.synth.mint import generate_mint
from models.synth.scene import SceneAssets, SceneOptions, render_cup
from models.types import Frame
from tests.models.embed_helpers import coin_image, tiny_checkpoint


def test_runner_matches_torch_at_any_batch_size() -> None:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
    net.eval()
    runner = OnnxRunner.from_module(net, torch.zeros(1, 3, 16, 16), threads=1)
    assert runner.threads == 1
    for n in (1, 5):
        x = torch.randn(n, 3, 16, 16)
        with torch.inference_mode():
            want = net(x).numpy()
        got = runner(x.numpy())
        assert got.shape == want.shape == (n, 8, 1, 1) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=1e-5)
    assert not net.training


def test_graphs_are_cached_under_their_weights(tmp_path: Path) -> None:
    torch.manual_seed(4)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    example, x = torch.zeros(1, 3, 12, 12), np.random.default_rng(1).normal(size=(2, 3, 12, 12)).astype(np.float32)
    first = OnnxRunner.from_module(net, example, cache=tmp_path)
    (file,) = tmp_path.glob("Sequential-*.onnx")
    assert file.read_bytes() == export_onnx(net, example)
    file.write_bytes(b"not a graph")  # a torn or foreign file is exported again, not trusted
    again = OnnxRunner.from_module(net, example, cache=tmp_path)
    np.testing.assert_array_equal(again(x), first(x))
    assert file.read_bytes() == export_onnx(net, example)
    key = graph_key(net, example)
    assert graph_key(net, torch.zeros(7, 3, 12, 12)) == key  # the batch size is free
    assert graph_key(net, torch.zeros(1, 3, 16, 16)) != key
    conv = net[0]
    assert isinstance(conv, nn.Conv2d) and conv.bias is not None
    with torch.no_grad():
        conv.bias.add_(1.0)
    assert graph_key(net, example) != key
    OnnxRunner.from_module(net, example, cache=tmp_path)
    assert len(list(tmp_path.glob("*.onnx"))) == 2
    blocked = tmp_path / "file"
    blocked.write_text("")
    np.testing.assert_allclose(
        OnnxRunner.from_module(net, example, cache=blocked / "sub")(x),
        net(torch.from_numpy(x)).detach().numpy(),
        atol=1e-5,
    )


def test_export_of_an_unexpressible_network_names_the_fallback() -> None:
    class Spectrum(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.fft.fft2(x).abs()

    with pytest.raises(ValueError, match=r"cannot export Spectrum to ONNX.*use the torch backend"):
        export_onnx(Spectrum(), torch.zeros(1, 1, 8, 8))


def test_unknown_backend_is_refused() -> None:
    assert BACKENDS == ("onnx", "torch") and check_backend("torch") == "torch"
    with pytest.raises(ValueError, match="unknown inference backend 'cuda'"):
        check_backend("cuda")
    with pytest.raises(ValueError, match="unknown inference backend"):
        Embedder.from_checkpoint(tiny_checkpoint(), backend="tensorrt")


def test_embedder_backends_agree_with_quarter_turns() -> None:
    from models.embedder import with_preprocessing

    onnx = Embedder.from_checkpoint(with_preprocessing(tiny_checkpoint(), rotations=4))
    plain = onnx.with_backend("torch")
    assert (onnx.backend, plain.backend) == ("onnx", "torch") and onnx.version == plain.version
    crops = [coin_image(i, size=90) for i in range(5)]
    a, b = onnx.embed(crops, batch_size=2), plain.embed(crops, batch_size=3)
    assert a.shape == b.shape == (5, 32)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("flip_tta", [False, True])
def test_segmenter_backends_agree(flip_tta: bool) -> None:
    torch.manual_seed(5)
    seg = Segmenter(TinyUNet((4, 8, 8, 8)), 32, flip_tta)
    onnx = seg.with_backend("onnx")
    assert (seg.backend, onnx.backend, onnx.flip_tta) == ("torch", "onnx", flip_tta)
    assert onnx.with_flip_tta(not flip_tta).runner is onnx.runner
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    boxes = [(10.0, 12.0, 60.0, 58.0), (70.0, 30.0, 150.0, 110.0), (-5.0, 80.0, 30.0, 125.0)]
    for (lg_t, win_t), (lg_o, win_o) in zip(
        seg.predict(image, boxes, batch=2), onnx.predict(image, boxes), strict=True
    ):
        assert win_t == win_o and lg_t.shape == lg_o.shape == (win_t.side, win_t.side)
        np.testing.assert_allclose(lg_o, lg_t, atol=1e-4)


def test_shipped_detector_finds_the_same_coins_on_either_backend() -> None:
    onnx = Detector.load()
    plain = onnx.with_backend("torch")
    assert onnx.segmenter is not None and plain.segmenter is not None
    assert (onnx.segmenter.backend, plain.segmenter.backend) == ("onnx", "torch")
    assert (onnx.backend, plain.backend) == ("onnx", "torch") and plain.with_backend("onnx").backend == "onnx"
    assets = SceneAssets(generate_mint(6, 77))
    scene = render_cup(assets, 77, 3, SceneOptions(image_size=640, max_coins=10))
    frame = Frame(image=np.ascontiguousarray(scene.image), source="test")
    a, b = onnx.detect(frame), plain.detect(frame)
    assert len(a) == len(b) >= 3
    for x, y in zip(a, b, strict=True):
        assert x.is_coin == y.is_coin and x.partial == y.partial
        assert abs(x.center[0] - y.center[0]) < 0.5 and abs(x.axes[0] - y.axes[0]) < 0.5
        union = np.count_nonzero(x.mask | y.mask) if x.mask.shape == y.mask.shape else 0
        assert union and np.count_nonzero(x.mask & y.mask) / union > 0.99


def test_yolo_runs_in_onnx_runtime_from_a_cached_graph_at_any_input_size(tmp_path: Path) -> None:
    onnx = Detector.load()
    plain = onnx.with_backend("torch")
    assert onnx.yolo_path is not None
    graph = yolo_onnx(onnx.yolo_path, onnx.settings.imgsz, onnx.settings.yolo_sha256)
    assert graph.is_file() and graph.parent == default_cache_dir() / "onnx"  # exported once, at load
    assert not list(onnx.yolo_path.parent.glob("*.onnx"))  # nothing written beside the shipped weights
    scene = render_cup(SceneAssets(generate_mint(6, 78)), 78, 1, SceneOptions(image_size=640, max_coins=10))
    for size in (320, 480):  # the second, larger pass of a wide shot runs on the same graph
        a, b = onnx.boxes(scene.image, size), plain.boxes(scene.image, size)
        assert len(a.confidence) == len(b.confidence) >= 3
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-2)
        np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-4)
        assert (a.cls == b.cls).all()


def test_a_graph_the_cache_cannot_hold_is_a_temporary_file_removed_at_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import atexit

    at_exit: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(atexit, "register", lambda f, *a, **k: at_exit.append((f, a, k)))
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")  # the cache folder cannot be made
    det = Detector.load()
    assert det.yolo_path is not None
    graph = yolo_onnx(det.yolo_path, det.settings.imgsz, det.settings.yolo_sha256, cache=blocked)
    assert graph.is_file() and graph.parent != blocked and graph.stat().st_size > 100_000
    removals = [(f, a, k) for f, a, k in at_exit if getattr(f, "__self__", None) == graph]
    assert len(removals) == 1
    f, a, k = removals[0]
    f(*a, **k)
    assert not graph.exists()


def test_yolo_falls_back_to_torch_when_its_graph_cannot_be_made(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import models.detector as detector_module

    def no_export(*args: object, **kwargs: object) -> Path:
        raise RuntimeError("onnx export unavailable")

    monkeypatch.setattr(detector_module, "yolo_onnx", no_export)
    with caplog.at_level("WARNING", logger="models.detector"):
        det = Detector.load()
    assert det.backend == "torch" and det.segmenter is not None and det.segmenter.backend == "onnx"
    assert "YOLO runs in torch" in caplog.text and "onnx export unavailable" in caplog.text
    scene = render_cup(SceneAssets(generate_mint(6, 79)), 79, 0, SceneOptions(image_size=480, max_coins=6))
    assert len(det.detect(Frame(image=np.ascontiguousarray(scene.image), source="test"))) >= 1
