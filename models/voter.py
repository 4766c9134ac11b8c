"""The voter: a LightGBM model that scores a (cup, candidate type) pair with the probability that the cup is pure.

Its inputs are the class-agnostic features of :mod:`models.features` (similarities, margins, sides, shared
designs, diameters, pooled cup embeddings, the set pooler's opinion), so it never needs retraining when a type is
enrolled. Its output ``p_correct`` is the booster's probability; the acceptance threshold with a precision
guarantee is chosen on separate calibration cups by :mod:`calibration.risk`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "num_threads": 1,
    "verbose": -1,
    "deterministic": True,
    "seed": 0,
}


@dataclass(frozen=True)
class Voter:
    """A trained LightGBM booster with the feature names it expects.

    Attributes:
        booster: the LightGBM booster.
        feature_names: the input columns, in order.
        info: training summary (rows, positives, rounds, validation metrics).
    """

    booster: lgb.Booster
    feature_names: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)

    def predict(self, features: npt.ArrayLike) -> F64:
        """``(n,)`` probabilities that each pair is correct, from ``(n, F)`` features in :attr:`feature_names` order."""
        x = np.asarray(features, np.float64)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.shape[1] != len(self.feature_names):
            raise ValueError(f"expected {len(self.feature_names)} features, got {x.shape[1]}")
        if x.shape[0] == 0:
            return np.zeros(0, np.float64)
        return np.asarray(self.booster.predict(x, num_threads=1), np.float64)

    def model_text(self) -> str:
        """The booster as LightGBM's text format."""
        return str(self.booster.model_to_string())

    @property
    def sha256(self) -> str:
        """SHA-256 of :meth:`model_text`."""
        return hashlib.sha256(self.model_text().encode()).hexdigest()

    def save(self, path: str | Path) -> Path:
        """Write the booster as LightGBM text (``voter.txt``); feature names are part of the file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_text())
        return path

    @classmethod
    def load(cls, path: str | Path, info: dict[str, Any] | None = None) -> Voter:
        """Read a booster written by :meth:`save`.

        Raises:
            FileNotFoundError: no file.
            ValueError: not a LightGBM model.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"voter model {path} not found")
        try:
            booster = lgb.Booster(model_str=path.read_text())
        except lgb.basic.LightGBMError as err:
            raise ValueError(f"{path} is not a LightGBM model: {err}") from err
        return cls(booster, tuple(booster.feature_name()), dict(info or {}))

    def importance(self) -> dict[str, float]:
        """Gain importance per feature, largest first."""
        gains = self.booster.feature_importance(importance_type="gain")
        pairs = sorted(zip(self.feature_names, gains, strict=True), key=lambda kv: -kv[1])
        return {k: float(v) for k, v in pairs}


def train_voter(
    features: npt.ArrayLike,
    labels: npt.ArrayLike,
    feature_names: Sequence[str],
    *,
    valid: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    rounds: int = 300,
    params: dict[str, Any] | None = None,
) -> Voter:
    """Train the voter on labelled pairs.

    Args:
        features: ``(n, F)`` pair features (``nan`` allowed: LightGBM routes missing values).
        labels: ``(n,)`` bool, the pair is correct (pure cup of the candidate type).
        feature_names: the ``F`` column names.
        valid: optional ``(features, labels)`` for early stopping (30 rounds of patience).
        rounds: most boosting rounds.
        params: LightGBM parameters overriding :data:`DEFAULT_PARAMS`.

    Returns:
        The trained voter.
    """
    x = np.asarray(features, np.float64)
    y = np.asarray(labels, bool).astype(np.float64)
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(f"need matching non-empty features and labels, got {x.shape} and {y.shape}")
    if y.min() == y.max():
        raise ValueError("the voter needs both correct and wrong pairs to train")
    p = {**DEFAULT_PARAMS, **(params or {})}
    names = [str(n) for n in feature_names]
    train = lgb.Dataset(x, label=y, feature_name=names, free_raw_data=True)
    callbacks: list[Any] = []
    valid_sets = []
    if valid is not None:
        xv = np.asarray(valid[0], np.float64)
        yv = np.asarray(valid[1], bool).astype(np.float64)
        valid_sets = [lgb.Dataset(xv, label=yv, reference=train)]
        p["metric"] = "binary_logloss"
        callbacks.append(lgb.early_stopping(30, verbose=False))
    booster = lgb.train(p, train, num_boost_round=rounds, valid_sets=valid_sets, callbacks=callbacks)
    if valid is not None and booster.best_iteration > 0:
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))
    info = {"rows": int(x.shape[0]), "positives": int(y.sum()), "rounds": int(booster.num_trees())}
    return Voter(booster, tuple(names), info)
