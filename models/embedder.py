"""Coin embedder: a timm backbone with GeM pooling and a projection to an L2-normalised embedding.

The checkpoint file carries everything needed to reproduce an embedding: the architecture, the embedding size,
the preprocessing (input size, mean, std, background handling) and a version string with a short hash of the
weights. Loading never downloads anything (``pretrained=False``); a local ImageNet checkpoint can seed training
through :func:`build_network`'s ``init``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import timm
import torch
import torch.nn.functional as F
from torch import nn

from models.files import read_torch_checkpoint, write_bytes_atomic
from models.runtime import DEFAULT_BACKEND, OnnxRunner, check_backend
from models.types import BoolArray, CoinCrop, FloatArray, UInt8Array

if TYPE_CHECKING:
    from models.adapter import EmbeddingAdapter

CHECKPOINT_FORMAT = "cupcheck-embedder/1"
"""The ``format`` key of an embedder checkpoint this code reads and writes."""

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "embedder.pt"
"""The shipped default embedder."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How a crop becomes the network's input; stored in the checkpoint beside the weights.

    Attributes:
        input_size: the square side the crop is resized to.
        mean: per-channel RGB mean in ``[0, 1]`` units.
        std: per-channel RGB std.
        circle_mask: set every pixel outside the inscribed circle to black before normalising, so crops cut
            with background (real photos) and crops with a black background (the detector's) look alike.
        rotations: the embedding is the normalised mean over this many quarter turns of the crop (1, 2 or 4;
            4 makes it nearly rotation invariant at 4x the compute).
    """

    input_size: int = 128
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    circle_mask: bool = True
    rotations: int = 1

    def __post_init__(self) -> None:
        if self.rotations not in (1, 2, 4):
            raise ValueError(f"rotations must be 1, 2 or 4, got {self.rotations}")
        if self.input_size < 16:
            raise ValueError(f"input_size must be at least 16, got {self.input_size}")

    def to_dict(self) -> dict[str, Any]:
        """A plain dict for the checkpoint."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Preprocessing:
        """Inverse of :meth:`to_dict`."""
        return cls(
            input_size=int(doc["input_size"]),
            mean=tuple(float(x) for x in doc["mean"]),  # type: ignore[arg-type]
            std=tuple(float(x) for x in doc["std"]),  # type: ignore[arg-type]
            circle_mask=bool(doc.get("circle_mask", True)),
            rotations=int(doc.get("rotations", 1)),
        )


@functools.lru_cache(maxsize=8)
def circle_mask(size: int) -> BoolArray:
    """``(size, size)`` bool, True inside the inscribed circle (cached; do not modify the result)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c = (size - 1) / 2.0
    mask: BoolArray = (xx - c) ** 2 + (yy - c) ** 2 <= (size / 2.0) ** 2
    return mask


def prepare_image(image: UInt8Array, prep: Preprocessing) -> UInt8Array:
    """Resize a BGR crop to the input size and black out the background outside the inscribed circle.

    Args:
        image: ``(H, W, 3)`` uint8 BGR (or ``(H, W)`` grayscale), the coin roughly filling the frame.
        prep: the checkpoint's preprocessing.

    Returns:
        ``(S, S, 3)`` uint8 RGB with ``S = prep.input_size``.
    """
    src: np.ndarray = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    s = prep.input_size
    h, w = src.shape[:2]
    interp = cv2.INTER_AREA if max(h, w) > s else cv2.INTER_LINEAR
    out = np.asarray(cv2.cvtColor(cv2.resize(src, (s, s), interpolation=interp), cv2.COLOR_BGR2RGB), np.uint8)
    if prep.circle_mask:
        out[~circle_mask(s)] = 0
    return out


def to_tensor(images: Sequence[UInt8Array], prep: Preprocessing) -> torch.Tensor:
    """Stack prepared RGB images ``(S, S, 3)`` uint8 into a normalised ``(n, 3, S, S)`` float tensor."""
    arr = np.stack(images).astype(np.float32) / 255.0
    mean = np.asarray(prep.mean, np.float32)
    std = np.asarray(prep.std, np.float32)
    arr = (arr - mean) / std
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))


class GeM(nn.Module):
    """Generalised-mean pooling with a learnable exponent: ``(n, c, h, w) -> (n, c)``."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool ``(n, c, h, w)`` to ``(n, c)``."""
        p = self.p.clamp(min=1.0)
        return F.adaptive_avg_pool2d(x.clamp(min=self.eps).pow(p), 1).pow(1.0 / p).flatten(1)


class EmbedNet(nn.Module):
    """Backbone feature map → GeM → linear projection → L2 normalisation."""

    def __init__(self, arch: str, embed_dim: int) -> None:
        super().__init__()
        self.backbone = timm.create_model(arch, pretrained=False, num_classes=0, global_pool="")
        self.pool = GeM()
        self.proj = nn.Linear(int(getattr(self.backbone, "num_features")), embed_dim)  # noqa: B009

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed ``(n, 3, S, S)`` normalised images into ``(n, d)`` unit vectors."""
        return F.normalize(self.proj(self.pool(self.backbone(x))), dim=1)


def build_network(arch: str, embed_dim: int, init: str | Path | None = None) -> EmbedNet:
    """Create an untrained network, optionally starting from a local checkpoint file.

    Args:
        arch: a timm architecture name (e.g. ``"mobilenetv2_100"``).
        embed_dim: the embedding size.
        init: either a state dict file for the backbone in timm layout (its classifier is ignored), or a cupcheck
            embedder checkpoint of the same ``arch`` and ``embed_dim`` (every weight is taken: fine-tuning);
            ``None`` keeps the random initialisation. Nothing is ever downloaded.

    Raises:
        FileNotFoundError: ``init`` does not exist.
        ValueError: ``init`` is not a readable torch checkpoint (truncated, text, another pickle), or does not fit
            the architecture.
    """
    net = EmbedNet(arch, embed_dim)
    if init is None:
        return net
    path = Path(init)
    if not path.is_file():
        raise FileNotFoundError(f"initialisation file {path} does not exist")
    state = read_torch_checkpoint(path, weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a state dict nor an embedder checkpoint (it holds a {type(state).__name__})")
    if state.get("format") == CHECKPOINT_FORMAT:
        if state.get("arch") != arch or int(state.get("embed_dim", -1)) != embed_dim:
            raise ValueError(
                f"{path} is a {state.get('arch')} {state.get('embed_dim')}-d embedder, not {arch} {embed_dim}-d"
            )
        net.load_state_dict({k: v.float() for k, v in state["state_dict"].items()}, strict=True)
        return net
    if isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    state = {k: v for k, v in state.items() if not str(k).startswith(("classifier.", "fc.", "head."))}
    try:
        missing, unexpected = net.backbone.load_state_dict(state, strict=False)
    except RuntimeError as err:
        raise ValueError(f"{path} does not fit {arch}: {err}") from err
    if unexpected or len(missing) > 0:
        raise ValueError(
            f"{path} does not fit {arch}: {len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})"
        )
    return net


def weights_sha(state_dict: dict[str, torch.Tensor], preprocessing: dict[str, Any] | None = None) -> str:
    """A sha256 over the tensors of a state dict (names, shapes and bytes, in key order) and the preprocessing."""
    h = hashlib.sha256()
    if preprocessing is not None:
        h.update(json.dumps(preprocessing, sort_keys=True).encode())
    for key in sorted(state_dict):
        t = state_dict[key].detach().cpu().contiguous()
        h.update(key.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class Embedder:
    """A loaded embedding network with its preprocessing; call :meth:`embed` on coin crops.

    Attributes:
        network: the network, in eval mode.
        arch: timm architecture name.
        embed_dim: embedding size ``d``.
        prep: how crops are turned into input tensors.
        version: ``"<arch>-<d>d-<sha8>"``, recorded by galleries built with it.
        train_args: how the weights were trained (free-form, from the checkpoint).
        runner: the network exported to ONNX Runtime (:mod:`models.runtime`), which :meth:`embed` runs instead of
            ``network``; ``None`` runs ``network`` in torch (an embedder built around a network being trained).
        adapter: a station's fine-tuned output layer (:class:`models.adapter.EmbeddingAdapter`) applied to every
            embedding, ``None``: none; ``version`` is then the adapter's, and the embedder under it is
            ``adapter.base_version``.
    """

    network: EmbedNet
    arch: str
    embed_dim: int
    prep: Preprocessing
    version: str
    train_args: dict[str, Any]
    runner: OnnxRunner | None = field(default=None, repr=False, compare=False)
    adapter: EmbeddingAdapter | None = field(default=None, repr=False, compare=False)

    @property
    def backend(self) -> str:
        """``"onnx"`` or ``"torch"``: what :meth:`embed` runs."""
        return "torch" if self.runner is None else "onnx"

    def with_backend(self, backend: str, threads: int | None = None) -> Embedder:
        """The same weights run by ``backend`` (``"onnx"`` exports the network once, about a second).

        Raises:
            ValueError: an unknown backend, or a network ONNX cannot express.
        """
        runner = None
        if check_backend(backend) == "onnx":
            example = torch.zeros(1, 3, self.prep.input_size, self.prep.input_size)
            runner = OnnxRunner.from_module(self.network, example, threads)
        return replace(self, runner=runner)

    def with_adapter(self, adapter: EmbeddingAdapter) -> Embedder:
        """The same embedder followed by a station's fine-tuned output layer; its version becomes the adapter's.

        Raises:
            ValueError: the adapter fine-tunes another embedder (or this one already has a layer on top).
        """
        if adapter.base_version != self.version:
            raise ValueError(f"the adapter fine-tunes embedder {adapter.base_version}, this one is {self.version}")
        return replace(self, adapter=adapter, version=adapter.version)

    def without_adapter(self) -> Embedder:
        """The embedder under the station's output layer (itself when it has none)."""
        return self if self.adapter is None else replace(self, adapter=None, version=self.adapter.base_version)

    @classmethod
    def load(
        cls, path: str | Path | None = None, *, threads: int | None = None, backend: str = DEFAULT_BACKEND
    ) -> Embedder:
        """Load an embedder checkpoint.

        Args:
            path: checkpoint file; ``None`` loads the shipped default (``models/weights/embedder.pt``).
            threads: if given, ``torch.set_num_threads(threads)`` (the station uses 1–2); ONNX Runtime gets as many.
            backend: ``"onnx"`` (ONNX Runtime, the default: several times faster on a CPU) or ``"torch"``.

        Raises:
            FileNotFoundError: the file does not exist.
            ValueError: the file is not an embedder checkpoint, or ``backend`` is unknown.
        """
        check_backend(backend)
        file = Path(path) if path is not None else DEFAULT_WEIGHTS
        if not file.is_file():
            raise FileNotFoundError(f"embedder weights {file} not found")
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            ckpt = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ValueError(
                f"{file} is not a readable embedder checkpoint (a .pt file written by cupcheck train embedder; "
                f"torch says {type(err).__name__}: {err})"
            ) from err
        return cls.from_checkpoint(ckpt, source=str(file), backend=backend)

    @classmethod
    def from_checkpoint(cls, ckpt: Any, source: str = "checkpoint", backend: str = DEFAULT_BACKEND) -> Embedder:
        """Build from a checkpoint dict (see :func:`checkpoint_dict`), run by ``backend``."""
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{source} is not an embedder checkpoint (format {CHECKPOINT_FORMAT} expected)")
        net = EmbedNet(str(ckpt["arch"]), int(ckpt["embed_dim"]))
        state = {k: v.float() for k, v in ckpt["state_dict"].items()}
        net.load_state_dict(state, strict=True)
        net.eval()
        loaded = cls(
            network=net,
            arch=str(ckpt["arch"]),
            embed_dim=int(ckpt["embed_dim"]),
            prep=Preprocessing.from_dict(ckpt["preprocessing"]),
            version=str(ckpt["version"]),
            train_args=dict(ckpt.get("train_args", {})),
        )
        return loaded if check_backend(backend) == "torch" else loaded.with_backend(backend)

    def embed(self, items: Sequence[CoinCrop | UInt8Array], batch_size: int = 32) -> FloatArray:
        """Embed coin crops.

        Args:
            items: :class:`~models.types.CoinCrop` objects or ``(H, W, 3)`` uint8 BGR images of one coin each.
            batch_size: images per forward pass.

        Returns:
            ``(n, d)`` float32, each row of unit length (``(0, d)`` for no input).
        """
        images = [it.image if isinstance(it, CoinCrop) else it for it in items]
        if not images:
            return np.zeros((0, self.embed_dim), np.float32)
        out = []
        self.network.eval()
        turns = max(1, self.prep.rotations)
        with torch.inference_mode():
            for i in range(0, len(images), batch_size):
                batch = [prepare_image(im, self.prep) for im in images[i : i + batch_size]]
                x = to_tensor(batch, self.prep)
                if turns > 1:
                    x = torch.cat([torch.rot90(x, k * 4 // turns, dims=(2, 3)) for k in range(turns)])
                y = self.network(x).float().numpy() if self.runner is None else self.runner(x.numpy())
                out.append(y.reshape(turns, len(batch), -1).mean(axis=0))
        emb = np.concatenate(out).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True).clip(min=1e-12)
        return emb if self.adapter is None else self.adapter.apply(emb)


def checkpoint_dict(
    network: EmbedNet,
    arch: str,
    embed_dim: int,
    prep: Preprocessing,
    train_args: dict[str, Any] | None = None,
    *,
    half: bool = True,
) -> dict[str, Any]:
    """A self-describing checkpoint: weights (fp16 by default), preprocessing, version and training arguments."""
    state = {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    sha = weights_sha(state, prep.to_dict())
    return {
        "format": CHECKPOINT_FORMAT,
        "arch": arch,
        "embed_dim": embed_dim,
        "preprocessing": prep.to_dict(),
        "state_dict": state,
        "version": f"{arch}-{embed_dim}d-{sha[:8]}",
        "sha256": sha,
        "train_args": dict(train_args or {}),
    }


def save_checkpoint(ckpt: dict[str, Any], path: str | Path) -> Path:
    """Write a checkpoint atomically (temporary file in the same folder, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return write_bytes_atomic(path, buf.getvalue())


def with_preprocessing(ckpt: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of a checkpoint dict with some preprocessing fields changed and its version recomputed.

    Example: ``with_preprocessing(ckpt, rotations=4)``. The weights are unchanged.
    """
    prep = Preprocessing.from_dict(ckpt["preprocessing"])
    new_prep = replace(prep, **changes)
    state = ckpt["state_dict"]
    sha = weights_sha(state, new_prep.to_dict())
    train_args = {**dict(ckpt.get("train_args", {})), **changes}
    return {
        **ckpt,
        "preprocessing": new_prep.to_dict(),
        "version": f"{ckpt['arch']}-{ckpt['embed_dim']}d-{sha[:8]}",
        "sha256": sha,
        "train_args": train_args,
    }
