"""The retrain report: old vs candidate on the frozen holdout, as Markdown with two PNG plots.

Plots use matplotlib's object API on the Agg canvas (no pyplot, no GUI), like :mod:`calibration.reports`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from calibration.risk import precision_coverage_curve, station_passes
from models.bundle import Bundle
from models.files import write_bytes_atomic
from models.gate import HoldoutMetrics
from models.retrain import Candidate


def plot_old_vs_new(cand: Candidate, path: Path) -> Path:
    """Precision against auto-pass on the holdout for both models, and their score histograms, in one PNG."""
    cmp = cand.comparison
    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    lowest = 0.5  # the precision axis starts here, lower when a curve goes below it
    for name, scores, y, thr, colour in (
        ("in force", cmp.old_scores, cmp.y if cmp.old_y is None else cmp.old_y, cmp.old_threshold, "tab:blue"),
        ("candidate", cmp.new_scores, cmp.y, cmp.new_threshold, "tab:orange"),
    ):
        if scores.size and y.any():
            curve = precision_coverage_curve(scores, y).passing()
            one = len(curve.coverage) < 2  # a curve of one point is no line: draw the point
            ax1.plot(curve.coverage, curve.precision, color=colour, label=name, marker="s" if one else None)
            lowest = min(lowest, float(np.nanmin(curve.precision)) - 0.05) if len(curve.precision) else lowest
            if math.isfinite(thr):
                acc = station_passes(scores, thr)
                cov = float((acc & y).sum() / max(int(y.sum()), 1))
                prec = float((acc & y).sum() / max(int(acc.sum()), 1)) if acc.any() else math.nan
                ax1.plot([cov], [prec], "o", color=colour)
        ax2.hist(scores[y], bins=20, range=(0, 1), alpha=0.5, color=colour, label=f"{name}: correct")
        ax2.hist(scores[~y], bins=20, range=(0, 1), alpha=0.5, color=colour, histtype="step", label=f"{name}: wrong")
    ax1.set_xlabel("auto-pass (share of correct pairs that PASS)")
    ax1.set_ylabel("PASS precision")
    ax1.set_title("holdout: precision vs auto-pass (dot: threshold applied)")
    ax1.set_ylim(max(lowest, -0.01), 1.01)
    if ax1.get_legend_handles_labels()[0]:
        ax1.legend(loc="lower left")
    else:  # a holdout with no correct pair yet has no curve to draw
        ax1.text(0.5, 0.75, "no correct holdout pair yet", ha="center", va="center", transform=ax1.transAxes)
    ax2.set_xlabel("p_correct")
    ax2.set_ylabel("pairs")
    ax2.set_title("holdout score distributions")
    if ax2.get_legend_handles_labels()[0]:
        ax2.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(str(path))
    return path


def _threshold_text(m: HoldoutMetrics) -> str:
    """The threshold the model's pairs were held to, with the certified one beside it where the floor replaced it."""
    if not m.can_pass:
        return "never PASS"
    if m.applied != m.threshold:
        return f"{m.applied:.4f} (certified {m.threshold:.4f}, under the floor)"
    return f"{m.threshold:.4f}"


def _row(name: str, m: HoldoutMetrics) -> str:
    prec = "—" if m.n_accepted == 0 else f"{m.precision:.2%}"
    thr = _threshold_text(m)
    return (
        f"| {name} | {thr} | {m.n_pairs} | {m.n_positive} | {m.n_accepted} | {m.n_errors} | {prec} | "
        f"{m.precision_lower_bound:.4f} | {m.auto_pass:.1%} |"
    )


def write_retrain_report(folder: Path, current: Bundle, cand: Candidate, *, promoting: bool = True) -> Path:
    """Write ``report.md`` and ``old_vs_new.png`` into ``folder``; returns the Markdown file (``promoting``:
    ``False`` for a dry run, which never promotes what the gate passes)."""
    folder.mkdir(parents=True, exist_ok=True)
    plot = plot_old_vs_new(cand, folder / "old_vs_new.png")
    d = cand.comparison.decision
    c = cand.counts
    lines = [
        f"# Retrain {cand.bundle.version}",
        "",
        f"Retrained from {current.version} on {c.get('cups', 0)} labelled cups "
        f"(train {c.get('train_cups', 0)}, calibration {c.get('cal_cups', 0)}, holdout {c.get('holdout_cups', 0)} "
        "cups; the split is a stable hash of the cup id, so the holdout is frozen).",
        "",
        f"**Gate: {'PROMOTE' if d.promote else 'REJECT'}**"
        + (" (a dry run: the candidate was registered, not promoted)" if d.promote and not promoting else ""),
        "",
        *[f"- {r}" for r in d.reasons],
        "",
        "| model | threshold | pairs | correct | PASS | wrong PASS | precision | precision lower bound | auto-pass |",
        "|---|---|---|---|---|---|---|---|---|",
        _row(f"in force {current.version}", d.old),
        _row(f"candidate {cand.bundle.version}", d.new),
        "",
        f"Candidate threshold: {cand.bundle.threshold.summary()}",
        "",
        f"Station references: {c.get('station_references', 0)} confirmed coins of the training split, beside the "
        "gallery's enrolment photos.",
        "",
        f"Voter: {cand.bundle.train.get('voter', 'refit')}.",
        *[f"- refit: {r}" for r in cand.bundle.train.get("refit_rejected", [])],
        "",
        f"Embedder fine-tune: {cand.fine_tune or 'not tried'}.",
        *([f"Embedder output layer: `{cand.bundle.adapter_version}`."] if cand.bundle.adapter_file else []),
        "",
        f"![old vs new]({plot.name})",
        "",
        "## Labels most likely wrong (cleanlab, self-confidence against the model in force)",
        "",
        "| rank | cup | ruling: clean cup of its type | p_correct | label quality | flagged |",
        "|---|---|---|---|---|---|",
        *[
            f"| {i.rank} | {i.cup_id} | {'yes' if i.label else 'no'} | {i.p_correct:.3f} | {i.quality:.3f} | "
            f"{'yes' if i.flagged else ''} |"
            for i in cand.label_issues[:10]
        ],
        "",
    ]
    out = folder / "report.md"
    out.write_text("\n".join(lines))
    (folder / "label_issues.json").write_text(json.dumps([i.__dict__ for i in cand.label_issues], indent=1))
    return out


GATE_LINE = "**Gate: "
"""How the gate's line of ``report.md`` begins."""


def note_outcome(report: Path, outcome: str) -> Path:
    """Add what became of the candidate to a written ``report.md``, under the gate's line (at the end when the file
    has none); returns the file.

    The report is written before anything is recorded, so its gate line says what the gate decided, not what the
    registry did: a candidate the gate passes is still not put in force when another version was put in force while
    the retrain ran, and the report must not leave "PROMOTE" standing alone for it. The file is replaced whole.

    Raises:
        OSError: the report cannot be read or written again.
    """
    lines = report.read_text().split("\n")
    note = ["", f"**Not promoted:** {outcome}"]
    at = next((i + 1 for i, line in enumerate(lines) if line.startswith(GATE_LINE)), len(lines))
    write_bytes_atomic(report, "\n".join([*lines[:at], *note, *lines[at:]]).encode())
    return report
