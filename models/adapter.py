"""The station's fine-tune of the embedder: a linear output layer learnt from the coins a supervisor ruled on.

The embedder's backbone and projection stay as shipped; the nightly retrain (:func:`models.retrain.retrain_bundle`)
fine-tunes one more layer on top of them, a ``d × d`` matrix ``M`` (initialised to the one in force, the identity
the first time), so the embedding becomes ``normalise(M · e)``. It is trained by metric learning on the station's
training-split coins: each coin is pulled towards the gallery references of the design it shows and away from the
others (softmax over designs of the scaled cosine, each design scored by a log-sum-exp over its references), with
``M`` held near where it started. Only the output layer moves because its effect on every stored embedding is
exact: the gallery's enrolment vectors and the logged coin embeddings are mapped by ``M`` without the photos they
came from, which the gallery does not keep.

An adapter travels in its bundle (``adapter.npz``, hashed in ``verdict.json``) like the station references: the
station's gallery stays as enrolled (by the bare embedder), and the pipeline maps it when it loads the bundle.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.files import read_npz, write_npz_atomic
from models.gallery import Gallery
from models.types import FloatArray

ADAPTER_FILE = "adapter.npz"


class AdapterError(ValueError):
    """An adapter file is damaged or belongs to another embedder."""


def apply_layer(matrix: FloatArray, embeddings: FloatArray) -> FloatArray:
    """``(n, d)`` embeddings mapped by the ``(d, d)`` layer ``matrix``, each row brought back to unit length."""
    m = np.asarray(embeddings, np.float32) @ np.asarray(matrix, np.float32).T
    return (m / np.linalg.norm(m, axis=1, keepdims=True).clip(min=1e-12)).astype(np.float32)


@dataclass(frozen=True)
class EmbeddingAdapter:
    """A linear output layer on an embedder: ``e -> normalise(matrix @ e)``.

    Attributes:
        matrix: ``(d, d)`` float32.
        base_version: the embedder whose output it maps.
    """

    matrix: FloatArray
    base_version: str

    def __post_init__(self) -> None:
        m = self.matrix
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise AdapterError(f"an adapter is a square matrix, got shape {m.shape}")
        if not np.isfinite(m).all():
            raise AdapterError("the adapter matrix holds non-finite values")

    @classmethod
    def identity(cls, dim: int, base_version: str) -> EmbeddingAdapter:
        """The layer that changes nothing."""
        return cls(np.eye(dim, dtype=np.float32), base_version)

    @property
    def dim(self) -> int:
        """Embedding size ``d``."""
        return int(self.matrix.shape[0])

    @property
    def version(self) -> str:
        """``"<base version>+head-<sha8>"``: what galleries, references and logged embeddings it makes record."""
        sha = hashlib.sha256(np.ascontiguousarray(self.matrix, np.float32).tobytes()).hexdigest()[:8]
        return f"{self.base_version}+head-{sha}"

    def apply(self, embeddings: FloatArray) -> FloatArray:
        """Map ``(n, d)`` embeddings of the base embedder; rows come back of unit length."""
        if len(embeddings) == 0:
            return np.zeros((0, self.dim), np.float32)
        return apply_layer(self.matrix, embeddings)

    def then(self, matrix: FloatArray) -> EmbeddingAdapter:
        """This layer followed by ``matrix`` (a fine-tune learnt on this layer's output), as one layer."""
        return EmbeddingAdapter(np.asarray(matrix, np.float32) @ self.matrix, self.base_version)

    def save(self, path: str | Path) -> Path:
        """Write the adapter atomically as one ``.npz``; returns its path."""
        arrays = {"matrix": np.asarray(self.matrix, np.float32), "base_version": np.asarray(self.base_version)}
        return write_npz_atomic(Path(path), arrays)

    @classmethod
    def load(cls, path: str | Path, base_version: str | None = None) -> EmbeddingAdapter:
        """Read an adapter file.

        Args:
            path: the ``.npz`` written by :meth:`save`.
            base_version: the embedder in use; an adapter of another one raises.

        Raises:
            FileNotFoundError: no such file.
            AdapterError: damaged, or made for another embedder.
        """
        path = Path(path)
        try:
            z = read_npz(path, "embedding adapter")
            adapter = cls(np.asarray(z["matrix"], np.float32), str(z["base_version"]))
        except (KeyError, ValueError) as err:
            raise AdapterError(f"{path}: not an embedding adapter file ({err})") from err
        if base_version is not None and adapter.base_version != base_version:
            raise AdapterError(
                f"{path} fine-tunes embedder {adapter.base_version}, but the embedder in use is {base_version}"
            )
        return adapter


def adapted_gallery(gallery: Gallery, adapter: EmbeddingAdapter) -> Gallery:
    """A new in-memory gallery: ``gallery``'s references mapped by ``adapter`` (signatures and records kept).

    Raises:
        AdapterError: the gallery was built by another embedder or has another dimension.
    """
    if gallery.embedder_version != adapter.base_version:
        raise AdapterError(
            f"the adapter fine-tunes embedder {adapter.base_version}; the gallery was built with "
            f"{gallery.embedder_version}"
        )
    if gallery.dim != adapter.dim:
        raise AdapterError(f"the adapter maps {adapter.dim} dimensions, the gallery has {gallery.dim}")
    vectors, ids = gallery.vectors()
    entries = gallery.entries
    out = Gallery(gallery.dim, adapter.version, threads=None)
    sigs = gallery.signatures(ids) if gallery.has_signatures else None
    out.add(adapter.apply(vectors), [entries[i] for i in ids], sigs)
    return out


@dataclass(frozen=True)
class AdapterFit:
    """A fitted layer and how it went.

    Attributes:
        matrix: ``(d, d)`` the layer learnt on the given embeddings (to follow the layer that made them).
        loss_before: the training loss at the start (``matrix`` = identity).
        loss_after: at the end (penalty included).
        steps: optimiser steps taken.
    """

    matrix: FloatArray
    loss_before: float
    loss_after: float
    steps: int


def fit_adapter(
    embeddings: FloatArray,
    designs: np.ndarray,
    refs: FloatArray,
    ref_designs: np.ndarray,
    *,
    steps: int = 300,
    lr: float = 0.01,
    weight_decay: float = 0.01,
    scale: float = 30.0,
    seed: int = 0,
    progress: bool = False,
) -> AdapterFit:
    """Learn ``M`` so that each coin's nearest references show its design.

    The loss is the cross-entropy of a softmax over designs, a design's logit being the log-sum-exp of the coin's
    scaled cosine to its references, both sides mapped by ``M``; plus ``weight_decay · ‖M − I‖²``, which keeps
    ``M`` near the identity. Full-batch Adam.

    Args:
        embeddings: ``(n, d)`` unit embeddings of the training coins.
        designs: ``(n,)`` int, each coin's design (an index into the designs of ``ref_designs``).
        refs: ``(m, d)`` unit reference embeddings.
        ref_designs: ``(m,)`` int, each reference's design.
        steps: optimiser steps.
        lr: Adam learning rate.
        weight_decay: weight of the pull towards the identity.
        scale: cosine scale of the softmax.
        seed: torch seed.
        progress: a tqdm bar.

    Raises:
        ValueError: no coins or references, or mismatched shapes.
    """
    import torch
    from tqdm import tqdm

    e = np.asarray(embeddings, np.float32)
    r = np.asarray(refs, np.float32)
    y = np.asarray(designs, np.int64)
    rd = np.asarray(ref_designs, np.int64)
    if e.shape[0] == 0 or r.shape[0] == 0:
        raise ValueError("fitting an adapter needs coins and references")
    if e.shape[1] != r.shape[1] or y.shape != (e.shape[0],) or rd.shape != (r.shape[0],):
        raise ValueError(f"mismatched shapes: coins {e.shape}, designs {y.shape}, refs {r.shape}, {rd.shape}")
    n_designs = int(max(rd.max(), y.max())) + 1
    torch.manual_seed(seed)
    x = torch.from_numpy(e)
    refs_t = torch.from_numpy(r)
    onehot = torch.zeros(r.shape[0], n_designs)
    onehot[torch.arange(r.shape[0]), torch.from_numpy(rd)] = 1.0
    target = torch.from_numpy(y)
    eye = torch.eye(e.shape[1])
    delta = torch.zeros_like(eye, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=lr)

    def loss_of(d: torch.Tensor) -> torch.Tensor:
        m = eye + d
        q = torch.nn.functional.normalize(x @ m.T, dim=1)
        k = torch.nn.functional.normalize(refs_t @ m.T, dim=1)
        s = scale * (q @ k.T)
        top = s.max(dim=1, keepdim=True).values
        logits = torch.log((torch.exp(s - top) @ onehot).clamp_min(1e-30)) + top
        return torch.nn.functional.cross_entropy(logits, target) + weight_decay * (d**2).sum()

    with torch.no_grad():
        before = float(loss_of(delta))
    for _ in tqdm(range(steps), desc="embedder fine-tune", unit="step", disable=not progress):
        opt.zero_grad()
        loss = loss_of(delta)
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(loss_of(delta))
    return AdapterFit((eye + delta).detach().numpy().astype(np.float32), before, after, steps)
