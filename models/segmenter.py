"""A small U-Net that segments the visible part of one coin inside a detector box.

The detector gives a box per instance; the segmenter looks at a square window around that box (the box grown by
:data:`WINDOW_PAD` on each side), resized to ``size x size``, plus a fourth input channel marking the box, and
predicts the visible pixels of the instance the box belongs to (coins lying on top of it are excluded). Its
logits are resized back to the window at full resolution and thresholded at 0, so the mask boundary is placed
with sub-pixel interpolation rather than at the network's resolution.

Pure torch; no ultralytics here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from models.runtime import OnnxRunner, check_backend
from models.types import FloatArray, UInt8Array

WINDOW_PAD = 0.15
"""The square window side is the box's longer side times ``1 + 2 * WINDOW_PAD``."""


@dataclass(frozen=True)
class Window:
    """A square, integer-aligned window in frame pixels (may extend past the image edge).

    Attributes:
        x0: left column.
        y0: top row.
        side: side length in pixels (``>= 1``).
    """

    x0: int
    y0: int
    side: int

    @classmethod
    def around(cls, box: tuple[float, float, float, float], pad: float = WINDOW_PAD) -> Window:
        """The square window centred on ``box`` (``x1, y1, x2, y2``) with its longer side grown by ``pad``."""
        x1, y1, x2, y2 = box
        side = max(2, math.ceil(max(x2 - x1, y2 - y1) * (1.0 + 2.0 * pad)))
        cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
        return cls(round(cx - side / 2.0), round(cy - side / 2.0), side)

    def cut(self, image: np.ndarray) -> np.ndarray:
        """The window's pixels of ``image`` (``(H, W)`` or ``(H, W, C)``), zero outside the image.

        Returns:
            ``(side, side)`` or ``(side, side, C)`` array of ``image``'s dtype.
        """
        h, w = image.shape[:2]
        out = np.zeros((self.side, self.side, *image.shape[2:]), dtype=image.dtype)
        sx0, sy0 = max(0, self.x0), max(0, self.y0)
        sx1, sy1 = min(w, self.x0 + self.side), min(h, self.y0 + self.side)
        if sx1 > sx0 and sy1 > sy0:
            out[sy0 - self.y0 : sy1 - self.y0, sx0 - self.x0 : sx1 - self.x0] = image[sy0:sy1, sx0:sx1]
        return out

    def box_prior(self, box: tuple[float, float, float, float], size: int) -> FloatArray:
        """A ``(size, size)`` float32 map that is 1 inside ``box`` and 0 elsewhere, in window coordinates."""
        scale = size / self.side
        prior = np.zeros((size, size), dtype=np.float32)
        x1 = int(np.clip(math.floor((box[0] - self.x0) * scale), 0, size))
        y1 = int(np.clip(math.floor((box[1] - self.y0) * scale), 0, size))
        x2 = int(np.clip(math.ceil((box[2] - self.x0) * scale), 0, size))
        y2 = int(np.clip(math.ceil((box[3] - self.y0) * scale), 0, size))
        prior[y1:y2, x1:x2] = 1.0
        return prior


def segmenter_input(image: UInt8Array, box: tuple[float, float, float, float], size: int) -> tuple[FloatArray, Window]:
    """Build the network input for one box.

    Args:
        image: ``(H, W, 3)`` uint8 BGR frame.
        box: ``x1, y1, x2, y2`` in frame pixels.
        size: network input side.

    Returns:
        ``(4, size, size)`` float32 (BGR scaled to ``[0, 1]`` then the box channel) and the window it covers.
    """
    window = Window.around(box)
    patch = cv2.resize(window.cut(image), (size, size), interpolation=cv2.INTER_AREA)
    x = np.empty((4, size, size), dtype=np.float32)
    x[:3] = patch.transpose(2, 0, 1).astype(np.float32) / 255.0
    x[3] = window.box_prior(box, size)
    return x, window


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class TinyUNet(nn.Module):
    """A four-level U-Net: ``(N, 4, S, S)`` float32 in, ``(N, 1, S, S)`` logits out (``S`` divisible by 8).

    Args:
        widths: channels per level, finest first.
    """

    def __init__(self, widths: tuple[int, int, int, int] = (16, 32, 48, 64)) -> None:
        super().__init__()
        self.widths = tuple(widths)
        w0, w1, w2, w3 = widths
        self.enc0 = _block(4, w0)
        self.enc1 = _block(w0, w1)
        self.enc2 = _block(w1, w2)
        self.bottom = _block(w2, w3)
        self.pool = nn.MaxPool2d(2)
        self.up2 = nn.ConvTranspose2d(w3, w2, 2, stride=2)
        self.dec2 = _block(2 * w2, w2)
        self.up1 = nn.ConvTranspose2d(w2, w1, 2, stride=2)
        self.dec1 = _block(2 * w1, w1)
        self.up0 = nn.ConvTranspose2d(w1, w0, 2, stride=2)
        self.dec0 = _block(2 * w0, w0)
        self.head = nn.Conv2d(w0, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the visible mask of the boxed instance."""
        e0 = self.enc0(x)
        e1 = self.enc1(self.pool(e0))
        e2 = self.enc2(self.pool(e1))
        b = self.bottom(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
        d0 = self.dec0(torch.cat([self.up0(d1), e0], 1))
        out: torch.Tensor = self.head(d0)
        return out


class Segmenter:
    """Inference wrapper: boxes in, full-resolution logit windows out.

    Args:
        net: a trained :class:`TinyUNet` (put in eval mode here).
        size: the input side it was trained at.
        flip_tta: average the logits with those of the mirrored input (twice the cost).
        runner: ``net`` exported to ONNX Runtime (:meth:`with_backend`), run instead of ``net``; ``None``: torch.
    """

    def __init__(self, net: TinyUNet, size: int, flip_tta: bool = False, runner: OnnxRunner | None = None) -> None:
        self.net = net.eval()
        self.size = size
        self.flip_tta = flip_tta
        self.runner = runner

    @property
    def backend(self) -> str:
        """``"onnx"`` or ``"torch"``: what :meth:`predict` runs."""
        return "torch" if self.runner is None else "onnx"

    def with_flip_tta(self, flip_tta: bool) -> Segmenter:
        """The same network and backend, with or without the mirrored pass."""
        return Segmenter(self.net, self.size, flip_tta, self.runner)

    def with_backend(self, backend: str, threads: int | None = None) -> Segmenter:
        """The same network run by ``backend`` (``"onnx"`` or ``"torch"``).

        Raises:
            ValueError: an unknown backend.
        """
        runner = None
        if check_backend(backend) == "onnx":
            runner = OnnxRunner.from_module(self.net, torch.zeros(1, 4, self.size, self.size), threads)
        return Segmenter(self.net, self.size, self.flip_tta, runner)

    def _forward(self, x: FloatArray) -> FloatArray:
        """``(n, 1, S, S)`` logits of ``(n, 4, S, S)`` inputs, averaged with the mirrored pass under flip TTA."""
        n = len(x)
        if self.runner is not None:
            both = np.concatenate([x, x[..., ::-1]]) if self.flip_tta else x
            y = self.runner(both)
            return np.asarray((y[:n] + y[n:, ..., ::-1]) / 2, np.float32) if self.flip_tta else y
        xt = torch.from_numpy(x)
        out_t = self.net(xt)
        if self.flip_tta:
            out_t = (out_t + torch.flip(self.net(torch.flip(xt, (3,))), (3,))) / 2
        return np.asarray(out_t.numpy(), dtype=np.float32)

    @torch.inference_mode()
    def predict(
        self, image: UInt8Array, boxes: list[tuple[float, float, float, float]], batch: int = 32
    ) -> list[tuple[FloatArray, Window]]:
        """Segment each box of ``image``.

        Args:
            image: ``(H, W, 3)`` uint8 BGR frame.
            boxes: ``x1, y1, x2, y2`` per instance.
            batch: boxes per forward pass.

        Returns:
            Per box the ``(side, side)`` float32 logits over its window (positive = the instance) and the window.
        """
        out: list[tuple[FloatArray, Window]] = []
        for start in range(0, len(boxes), batch):
            items = [segmenter_input(image, b, self.size) for b in boxes[start : start + batch]]
            logits = self._forward(np.stack([it[0] for it in items]))[:, 0]
            for (_, window), lg in zip(items, logits, strict=True):
                full = cv2.resize(lg, (window.side, window.side), interpolation=cv2.INTER_LINEAR)
                out.append((np.asarray(full, dtype=np.float32), window))
        return out

    def state(self) -> dict[str, object]:
        """What a checkpoint stores to rebuild this segmenter."""
        return {"widths": list(self.net.widths), "size": self.size, "state_dict": self.net.state_dict()}

    @classmethod
    def from_state(cls, state: dict[str, object]) -> Segmenter:
        """Rebuild from :meth:`state`.

        Raises:
            ValueError: the dictionary is not a segmenter checkpoint.
        """
        try:
            widths = tuple(int(w) for w in state["widths"])  # type: ignore[attr-defined]
            size = int(state["size"])  # type: ignore[call-overload]
            net = TinyUNet(widths)  # type: ignore[arg-type]
            net.load_state_dict(state["state_dict"])  # type: ignore[arg-type]
        except (KeyError, TypeError, RuntimeError, ValueError) as err:
            raise ValueError(f"not a segmenter checkpoint: {err}") from err
        return cls(net, size)
