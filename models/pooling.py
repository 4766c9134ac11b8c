"""Set pooling over a cup's coins: mean and GeM pooling of embeddings, and a gated-attention MIL pooler.

The MIL pooler (Ilse, Tomczak and Welling, "Attention-based Deep Multiple Instance Learning", 2018) reads one
row of candidate-relative evidence per coin (:data:`models.features.COIN_FEATURES`: similarity and margins to the
candidate, side, shared design, occlusion, ...), weighs the coins with gated attention
``a_i = softmax_i(w^T (tanh(V h_i) * sigmoid(U h_i)))`` and scores the bag "every coin is the candidate". Because
its input never names a type it works for types enrolled after training. The same attention weights pool the
coins' embeddings into an attention-weighted cup embedding, and tell the person which coin the verdict rests on.
The network is tiny (about 2k parameters) and runs in well under a millisecond per cup.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.types import FloatArray

POOLER_FORMAT = "cupcheck-pooler/1"


def mean_pool(embeddings: FloatArray) -> FloatArray:
    """Normalised mean of ``(n, d)`` unit rows → ``(d,)`` (zeros for ``n = 0``)."""
    if embeddings.shape[0] == 0:
        return np.zeros(embeddings.shape[1], np.float32)
    z = embeddings.mean(axis=0)
    return np.asarray(z / max(float(np.linalg.norm(z)), 1e-12), np.float32)


def gem_pool(embeddings: FloatArray, p: float = 3.0) -> FloatArray:
    """Signed generalised-mean pooling of ``(n, d)`` rows → normalised ``(d,)``.

    ``sign(m) |m|^(1/p)`` with ``m = mean_i sign(x_i) |x_i|^p`` per dimension: large agreeing components dominate
    (``p = 1`` is the mean, ``p → ∞`` the max magnitude).
    """
    if embeddings.shape[0] == 0:
        return np.zeros(embeddings.shape[1], np.float32)
    x = embeddings.astype(np.float64)
    m = (np.sign(x) * np.abs(x) ** p).mean(axis=0)
    z = np.sign(m) * np.abs(m) ** (1.0 / p)
    return np.asarray(z / max(float(np.linalg.norm(z)), 1e-12), np.float32)


def attention_pool(embeddings: FloatArray, weights: FloatArray) -> FloatArray:
    """Attention-weighted, normalised sum of ``(n, d)`` rows with ``(n,)`` weights → ``(d,)``."""
    if embeddings.shape[0] == 0:
        return np.zeros(embeddings.shape[1], np.float32)
    z = (weights.reshape(-1, 1).astype(np.float32) * embeddings).sum(axis=0)
    return np.asarray(z / max(float(np.linalg.norm(z)), 1e-12), np.float32)


class GatedAttentionMIL(nn.Module):
    """Gated-attention MIL network over padded bags.

    Args:
        in_dim: per-instance feature size.
        hidden: instance embedding size.
        attn: attention hidden size.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, in_dim: int, hidden: int = 32, attn: int = 16) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.hidden = hidden
        self.attn = attn
        self.embed = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.attn_v = nn.Linear(hidden, attn)
        self.attn_u = nn.Linear(hidden, attn)
        self.attn_w = nn.Linear(attn, 1)
        self.head = nn.Linear(hidden, 1)
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Score bags.

        Args:
            x: ``(B, N, F)`` instance features (padding rows arbitrary).
            mask: ``(B, N)`` bool, real instances.

        Returns:
            ``(B,)`` logits, ``(B, N)`` attention weights (0 on padding, each row sums to 1) and ``(B, hidden)``
            bag embeddings.
        """
        h = self.embed((x - self.mean) / self.std)
        a = self.attn_w(torch.tanh(self.attn_v(h)) * torch.sigmoid(self.attn_u(h))).squeeze(-1)
        a = a.masked_fill(~mask, -1e9)
        w = torch.softmax(a, dim=1) * mask
        w = w / w.sum(dim=1, keepdim=True).clamp(min=1e-12)
        z = (w.unsqueeze(-1) * h).sum(dim=1)
        return self.head(z).squeeze(-1), w, z


@dataclass(frozen=True)
class MilOutput:
    """The MIL pooler's answer for one bag.

    Attributes:
        score: probability that every coin is the candidate (the pooler's own opinion).
        attention: ``(n,)`` float32 weights summing to 1 (empty for an empty bag).
    """

    score: float
    attention: FloatArray


def _pad(bags: Sequence[FloatArray], in_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    n_max = max(1, max((b.shape[0] for b in bags), default=1))
    x = np.zeros((len(bags), n_max, in_dim), np.float32)
    m = np.zeros((len(bags), n_max), bool)
    for i, b in enumerate(bags):
        x[i, : b.shape[0]] = b
        m[i, : b.shape[0]] = True
    return torch.from_numpy(x), torch.from_numpy(m)


class SetPooler:
    """A trained gated-attention MIL pooler with its feature names and version.

    Args:
        network: the trained network (eval mode).
        feature_names: names of the per-instance feature columns it expects.
        train_info: how it was trained (free-form).
    """

    def __init__(self, network: GatedAttentionMIL, feature_names: Sequence[str], train_info: dict[str, Any]) -> None:
        self.network = network.eval()
        self.feature_names = tuple(feature_names)
        self.train_info = dict(train_info)

    @property
    def version(self) -> str:
        """``"mil-<sha8>"`` over the weights."""
        h = hashlib.sha256()
        for k, v in sorted(self.network.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().numpy().tobytes())
        return f"mil-{h.hexdigest()[:8]}"

    def __call__(self, coin_features: FloatArray) -> MilOutput:
        """Pool one bag of ``(n, F)`` per-coin features."""
        return self.batch([coin_features])[0]

    def batch(self, bags: Sequence[FloatArray]) -> list[MilOutput]:
        """Pool many bags (each ``(n_i, F)``) at once."""
        if not bags:
            return []
        x, m = _pad(bags, len(self.feature_names))
        with torch.inference_mode():
            logits, w, _ = self.network(x, m)
        prob = torch.sigmoid(logits).numpy()
        wn = w.numpy()
        return [
            MilOutput(float(prob[i]) if b.shape[0] else 0.0, wn[i, : b.shape[0]].astype(np.float32))
            for i, b in enumerate(bags)
        ]

    def save(self, path: str | Path) -> Path:
        """Write the pooler (weights, feature names, training info) as one torch file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        net = self.network
        doc = {
            "format": POOLER_FORMAT,
            "in_dim": net.in_dim,
            "hidden": net.hidden,
            "attn": net.attn,
            "feature_names": list(self.feature_names),
            "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
            "train_info": self.train_info,
        }
        buf = io.BytesIO()
        torch.save(doc, buf)
        path.write_bytes(buf.getvalue())
        return path

    @classmethod
    def load(cls, path: str | Path) -> SetPooler:
        """Read a pooler written by :meth:`save`.

        Raises:
            FileNotFoundError: no file.
            ValueError: not a pooler file.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"set pooler {path} not found")
        doc = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(doc, dict) or doc.get("format") != POOLER_FORMAT:
            raise ValueError(f"{path} is not a set pooler file")
        net = GatedAttentionMIL(int(doc["in_dim"]), int(doc["hidden"]), int(doc["attn"]))
        net.load_state_dict(doc["state_dict"])
        return cls(net, doc["feature_names"], dict(doc.get("train_info", {})))


def train_pooler(
    bags: Sequence[FloatArray],
    labels: Sequence[bool] | np.ndarray,
    feature_names: Sequence[str],
    *,
    epochs: int = 40,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    hidden: int = 32,
) -> SetPooler:
    """Train a gated-attention MIL pooler: bag label 1 = every coin is the candidate.

    Args:
        bags: per-bag ``(n_i, F)`` float32 per-coin features (``n_i`` may be 0; such bags are skipped).
        labels: ``(B,)`` bag labels.
        feature_names: the ``F`` column names.
        epochs: passes over the bags.
        batch_size: bags per step.
        lr: Adam learning rate.
        seed: torch seed.
        hidden: instance embedding size.

    Returns:
        The trained pooler.
    """
    y_all = np.asarray(labels, bool)
    keep = [i for i, b in enumerate(bags) if b.shape[0] > 0]
    if not keep:
        raise ValueError("no non-empty bags to train the set pooler on")
    bags_k = [bags[i] for i in keep]
    y = torch.from_numpy(y_all[keep].astype(np.float32))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    in_dim = len(feature_names)
    net = GatedAttentionMIL(in_dim, hidden=hidden)
    flat = np.concatenate(bags_k).astype(np.float64)
    net.mean.copy_(torch.from_numpy(flat.mean(axis=0).astype(np.float32)))
    net.std.copy_(torch.from_numpy(flat.std(axis=0).clip(min=1e-3).astype(np.float32)))
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
    pos_weight = torch.tensor(float((1 - y).sum() / max(1.0, float(y.sum()))))
    x_all, m_all = _pad(bags_k, in_dim)
    last = 0.0
    for _ in range(epochs):
        net.train()
        order = rng.permutation(len(bags_k))
        total = 0.0
        for s in range(0, len(order), batch_size):
            idx = torch.from_numpy(order[s : s + batch_size])
            logits, _, _ = net(x_all[idx], m_all[idx])
            loss = F.binary_cross_entropy_with_logits(logits, y[idx], pos_weight=pos_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        last = total / len(order)
    net.eval()
    return SetPooler(net, feature_names, {"epochs": epochs, "bags": len(bags_k), "final_loss": round(last, 5)})
