"""The model panel's words: which verdict model is in force and what its PASS guarantees (no Qt here)."""

from __future__ import annotations

import math
from pathlib import Path

from calibration.risk import PASS_FLOOR, confidence_text
from models.bundle import Bundle, BundleError, load_bundle


def describe_bundle(bundle: Bundle) -> list[str]:
    """Plain lines about a verdict bundle: versions, the PASS threshold and its guarantee on calibration cups (each
    checked against its own type and others: the counts are of those checks).

    The threshold shown is the one a cup is held to (:attr:`~calibration.risk.ThresholdChoice.applied`), with the
    certified one beside it where :data:`~calibration.risk.PASS_FLOOR` replaces it, and the share of good cups that
    pass is counted at it: at a certified threshold under the floor it would count cups the station never passes.
    """
    t = bundle.threshold
    lines = [
        f"Model {bundle.version or '(unversioned)'}",
        f"Embedder {bundle.embedder_version}"
        + (" with an output layer fine-tuned at this station" if bundle.adapter_file else "")
        + (f" · detector {bundle.calibration_detector}" if bundle.calibration_detector else ""),
    ]
    if math.isfinite(t.threshold) and t.n_accepted > 0:
        certified = f" (certified {t.threshold:.3f}; no cup under the floor {PASS_FLOOR} passes)" if t.floored else ""
        coverage = _coverage(bundle)
        lines.append(
            f"PASS when p ≥ {t.applied:.3f}{certified}: precision ≥ {t.target:.1%} with {confidence_text(t.delta)} "
            f"confidence (lower bound {t.precision_lower_bound:.2%} on {t.n_calibration} checks of calibration cups"
            + ("" if coverage is None else f"; {coverage:.0%} of good cups pass")
            + ")"
        )
    else:
        lines.append(
            f"No threshold reaches {t.target:.1%} precision on {t.n_calibration} checks of calibration cups: "
            "every cup is flagged"
        )
    fewest = f"a cup of fewer than {bundle.pass_min_coins} coins never passes; " if bundle.pass_min_coins > 1 else ""
    lines.append(
        f"Rules: {fewest}the guarantee holds for coin types enrolled from {bundle.enrol_per_side} photos a side, "
        "as the calibration galleries were"
    )
    return lines


def _coverage(bundle: Bundle) -> float | None:
    """The share of the calibration checks of good cups that pass at the threshold applied (``None``: unknown, a
    floored threshold on a bundle that keeps no calibration scores to count again)."""
    t = bundle.threshold
    if not t.floored:
        return t.coverage
    good = bundle.cal_correct.astype(bool)
    if bundle.cal_scores.size == 0 or not good.any():
        return None
    return float((t.accepted(bundle.cal_scores) & good).sum() / good.sum())


def describe_model(bundle_path: Path | None = None, target_precision: float | None = None) -> list[str]:
    """:func:`describe_bundle` of the bundle file (default: shipped), or one line saying why there is none.

    Args:
        bundle_path: the bundle JSON.
        target_precision: describe the threshold re-chosen for this precision, as the station uses it.
    """
    try:
        bundle = load_bundle(bundle_path)
        if target_precision is not None:
            bundle = bundle.with_threshold(bundle.rechoose(target_precision))
        return describe_bundle(bundle)
    except (FileNotFoundError, BundleError) as err:
        return [f"No verdict model: {err}"]


def describe_registry(home: Path, limit: int = 5) -> list[str]:
    """Plain lines about the station's model registry: the version in force and the last promotions/rollbacks.

    ``cupcheck models promote VERSION`` and ``cupcheck models rollback`` change it.
    """
    from models.registry import SHIPPED, RegistryError, load_registry

    try:
        reg = load_registry(home)
    except RegistryError as err:
        return [f"Model registry damaged: {err}"]
    lines = [f"In force: {reg.current or SHIPPED} ({len(reg.versions)} retrained versions registered)"]
    for event in reg.history[-limit:]:
        lines.append(f"{event.at[:16].replace('T', ' ')} {event.action} {event.previous} → {event.version}")
    if reg.versions:
        lines.append("Change with `cupcheck models promote VERSION` or `cupcheck models rollback`")
    return lines
