"""The verdict on real coins: galleries enrolled from the real crops, real photos judged against every denomination,
and cups drawn from the real test crops (``cupcheck eval verdict --real``)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from calibration.reports import plot_precision_coverage
from calibration.risk import ThresholdChoice, passes, precision_coverage_curve
from models.bundle import Bundle
from models.embedder import Embedder
from models.pooling import SetPooler
from models.train.pairs import pair_group

REAL_TARGETS: tuple[float, ...] = (0.95, 0.98, 0.99, 0.995)
"""Target precisions the real photos are judged at (each with the threshold the bundle certifies for it)."""


def check_real_limit(limit: int | None) -> None:
    """Refuse a ``real_limit`` under 1: 0 photos of each kind judges nothing (``None``: every photo).

    Raises:
        ValueError: ``limit`` is below 1.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"real_limit must be at least 1 (None for every photo), got {limit}")


def evaluate_real(
    real: Path,
    bundle: Bundle,
    *,
    progress: bool = True,
    limit: int | None = None,
    targets: Sequence[float] = REAL_TARGETS,
) -> dict[str, Any]:
    """Real photos: euro single piles must PASS only their own denomination; mixed photos must never PASS.

    ``limit`` keeps at most that many photos of each kind (single, mixed; ``None``: every photo). The gallery is
    enrolled from the real crops' train split (``crops/train/<denomination>``, each crop re-cut by the bundle's
    detector as the station cuts coins), the detector is the bundle's. Each photo is observed once and judged
    against every denomination, at the bundle's own threshold and at the threshold the bundle certifies for each of
    ``targets`` (``at``).

    Raises:
        ValueError: ``limit`` is below 1 (:func:`check_real_limit`).
    """
    check_real_limit(limit)
    from models.detector import Detector
    from models.enroll import enroll_catalog, read_image
    from models.gallery import Gallery
    from models.pipeline import Pipeline
    from models.types import Decision, Frame

    embedder = Embedder.load(bundle.path(bundle.embedder_file), threads=1)
    detector = Detector.load(bundle.path(bundle.detector_dir))
    choices = {f"{t:g}": bundle.rechoose(t) for t in targets}
    out: dict[str, Any] = {}
    for name, folder in (("euro", real / "euro_kaa"), ("won", real / "won_cho0h5")):
        if not folder.is_dir():
            continue
        gallery = Gallery(embedder.embed_dim, embedder.version)
        enroll_catalog(
            folder / "crops" / "train", gallery, embedder, crops=True, detector=lambda: detector, progress=False
        )
        # Each pair is decided once, at the loosest threshold: a PASS there means the hard rules hold, and a
        # stricter threshold asks only a higher p_correct of the same pair.
        loosest = min([bundle.threshold, *choices.values()], key=lambda c: c.threshold)
        pipe = Pipeline.from_parts(bundle, gallery, embedder=embedder, detector=detector).with_threshold(loosest)
        types = pipe.view.types
        if name == "euro":
            meta = json.loads((folder / "photos.json").read_text())
            items = _euro_items(meta["photos"] if isinstance(meta, dict) else meta, folder)
        else:
            items = [(p, "mixed", None) for p in sorted((folder / "photos").glob("*.jpg"))]
        if limit is not None:
            per_kind: dict[str, int] = {}
            kept = []
            for it in items:
                per_kind[it[1]] = per_kind.get(it[1], 0) + 1
                if per_kind[it[1]] <= limit:
                    kept.append(it)
            items = kept
        rows = []
        for path, kind, denom in tqdm(items, desc=f"real {name}", unit="photo", disable=not progress):
            img = read_image(path)
            if img is None:
                continue
            obs = pipe.observe(Frame(image=img, source=str(path)))
            verdicts = {t: pipe.decide(obs, t) for t in types}
            open_ = [(t, v.p_correct) for t, v in verdicts.items() if v.decision == Decision.PASS]
            rows.append(
                {
                    "photo": path.name,
                    "kind": kind,
                    "denomination": denom,
                    "n_coins": obs.coins.n,
                    "n_objects": len(obs.object_idx),
                    "p": {t: round(v.p_correct, 4) for t, v in verdicts.items()},
                    "pass": [t for t, p in open_ if bundle.threshold.accepts(p)],
                    "pass_at": {k: [t for t, p in open_ if c.accepts(p)] for k, c in choices.items()},
                }
            )
        singles = [r for r in rows if r["kind"] == "single"]
        mixed = [r for r in rows if r["kind"] != "single"]
        out[name] = {
            "photos": len(rows),
            "single": len(singles),
            **real_pass_counts(singles, mixed, lambda r: r["pass"]),
            "at": {
                k: {"threshold": c.threshold, "applied": c.applied, **real_pass_counts(singles, mixed, _passed_at(k))}
                for k, c in choices.items()
            },
            "mixed": len(mixed),
            "single_true_ranked_first": sum(
                1 for r in singles if r["denomination"] and max(r["p"], key=r["p"].get) == r["denomination"]
            ),
            "single_true_p_median": float(np.median([r["p"].get(r["denomination"], 0.0) for r in singles]))
            if singles
            else math.nan,
            "single_wrong_p_max": max(
                (v for r in singles for t, v in r["p"].items() if t != r["denomination"]), default=math.nan
            ),
            "mixed_p_max": max((v for r in mixed for v in r["p"].values()), default=math.nan),
            "rows": rows,
        }
    return out


REAL_TEST_CUPS = 1000
"""Cups drawn per real set from its test crops for :func:`evaluate_real_cups`."""


def evaluate_real_cups(
    real: Path,
    bundle: Bundle,
    *,
    cups: int = REAL_TEST_CUPS,
    progress: bool = True,
    targets: Sequence[float] = REAL_TARGETS,
    plot: Path | None = None,
) -> dict[str, Any]:
    """Cups drawn from the real test crops (:func:`models.train.real_cups.real_test_table`: coins of photos no
    training cup saw, judged against a gallery of the real train crops), scored by the bundle's voter.

    Returns:
        ``{"pairs", "cups", "at": {target: {"threshold", "pass", "wrong", "pure_pass", "pure"}}, "groups":
        {group: {"n", "pass": {target: count}}}}`` where a target's threshold is the one the bundle certifies
        for it on its (synthetic) calibration pairs, and ``"bundle"`` is the bundle's own threshold. With
        ``plot``, the voter's precision against coverage on these pairs is drawn there (PNG).
    """
    from models.detector import Detector
    from models.train.real_cups import RealParts, real_test_table

    embedder = Embedder.load(bundle.path(bundle.embedder_file), threads=1)
    adapter_path = bundle.path(bundle.adapter_file)
    if adapter_path is not None:
        from models.adapter import EmbeddingAdapter

        embedder = embedder.with_adapter(EmbeddingAdapter.load(adapter_path, embedder.version))
    parts = RealParts(
        embedder,
        Detector.load(bundle.path(bundle.detector_dir)),
        SetPooler.load(bundle.path(bundle.pooler_file)),  # type: ignore[arg-type]
        bundle.preprocess.crop_size,
        bundle.preprocess.gem_p,
    )
    test = real_test_table(real, parts, cups, progress=progress)
    table = test.table
    scores = bundle.load_voter().predict(table.columns(bundle.features))
    y = table.y
    groups = np.array([pair_group(p) for p in table.pairs])
    choices = {"bundle": bundle.threshold, **{f"{t:g}": bundle.rechoose(t) for t in targets}}
    n_cups = sum(1 for p in table.pairs if p.relation == "true")
    out: dict[str, Any] = {
        "currencies": list(test.currencies),
        "skipped": test.skipped,
        "pairs": len(table.pairs),
        "cups": n_cups,
        **real_cup_counts(scores, y, groups, choices),
    }
    if plot is not None:
        own = out["at"]["bundle"]
        mark = None
        if own["pass"]:
            precision = 1.0 - own["wrong"] / own["pass"]
            label = f"the bundle's threshold {own['threshold']:.3g}: {own['pass']} PASS, {own['wrong']} wrong"
            mark = ((own["pass"] - own["wrong"]) / max(int(y.sum()), 1), precision, label)
        plot_precision_coverage(
            precision_coverage_curve(scores, y).passing(),
            None,
            plot,
            title=f"Voter on cups of real coins ({', '.join(test.currencies)} test crops)",
            mark=mark,
        )
        out["plot"] = plot.name
    return out


def real_cup_counts(
    scores: np.ndarray, y: np.ndarray, groups: np.ndarray, choices: dict[str, ThresholdChoice]
) -> dict[str, Any]:
    """PASS counts of scored pairs at each threshold, as the station decides: at the threshold it applies, the
    certified one raised to :data:`~calibration.risk.PASS_FLOOR` (:attr:`ThresholdChoice.applied`).

    Args:
        scores: ``(n,)`` the voter's p_correct per pair (0: refused by the hard rules).
        y: ``(n,)`` whether each pair is correct.
        groups: ``(n,)`` each pair's kind (:func:`models.train.pairs.pair_group`; ``"pure"``: a pure cup at its
            own type).
        choices: name → threshold.

    Returns:
        ``{"at": {name: {"threshold", "applied", "pass", "wrong", "pure_pass", "pure"}}, "groups": {group: {"n",
        "pass": {name: count}}}}``.
    """
    pure = groups == "pure"
    accepted = {k: passes(scores, c.applied) for k, c in choices.items()}
    at = {
        k: {
            "threshold": c.threshold,
            "applied": c.applied,
            "pass": int(accepted[k].sum()),
            "wrong": int((accepted[k] & ~y).sum()),
            "pure_pass": int((accepted[k] & pure).sum()),
            "pure": int(pure.sum()),
        }
        for k, c in choices.items()
    }
    by_group = {
        g: {"n": int((groups == g).sum()), "pass": {k: int((a & (groups == g)).sum()) for k, a in accepted.items()}}
        for g in sorted(set(groups.tolist()))
    }
    return {"at": at, "groups": by_group}


def applied_text(v: dict[str, Any]) -> str:
    """A threshold of a real-cups or real-photos row: ``0.9696``, ``0.0779 (0.5 applied)`` under the PASS floor
    (what the station holds a cup to), or ``never``."""
    if not math.isfinite(v["threshold"]):
        return "never"
    applied = v.get("applied", v["threshold"])
    return f"{v['threshold']:.4f}" + (f" ({applied:g} applied)" if applied != v["threshold"] else "")


def real_cups_lines(r: dict[str, Any]) -> list[str]:
    """Markdown: PASS counts on the real drawn cups at each target, and by kind."""
    keys = list(r["at"])
    skipped = "".join(f" Not tested: {c} ({why})." for c, why in r.get("skipped", {}).items())
    lines = [
        f"{r['cups']} cups drawn from the {', '.join(r.get('currencies', []))} test crops (photos no training cup "
        "saw; 2-64 coins, half of them with one or two intruders: a lookalike, another type of the currency, or a "
        f"coin of another currency), {r['pairs']} pairs. Thresholds: the bundle's own and the one it certifies for "
        "each target on its calibration pairs, raised to the PASS floor where they lie under it, as the station "
        f"does.{skipped}",
        "",
        "| threshold | value | PASS | wrong PASS | pure cups passed |",
        "|---|---|---|---|---|",
    ]
    for k in keys:
        v = r["at"][k]
        lines.append(f"| {k} | {applied_text(v)} | {v['pass']} | {v['wrong']} | {v['pure_pass']}/{v['pure']} |")
    lines += [
        "",
        "| group | pairs | " + " | ".join(f"PASS at {k}" for k in keys) + " |",
        "|---|---|" + "---|" * len(keys),
    ]
    for g, v in r["groups"].items():
        lines.append(f"| {g} | {v['n']} | " + " | ".join(str(v["pass"][k]) for k in keys) + " |")
    if r.get("plot"):
        lines += ["", f"`{r['plot']}`: the voter's precision against coverage on these pairs."]
    return [*lines, ""]


def real_pass_counts(
    singles: Sequence[dict[str, Any]], mixed: Sequence[dict[str, Any]], passed: Callable[[dict[str, Any]], list[str]]
) -> dict[str, int]:
    """PASS counts of real photos: true denomination and wrong ones on single piles, any on mixed photos."""
    return {
        "single_pass_true": sum(1 for r in singles if r["denomination"] in passed(r)),
        "single_pass_wrong": sum(1 for r in singles for t in passed(r) if t != r["denomination"]),
        "mixed_pass": sum(len(passed(r)) for r in mixed),
    }


def _passed_at(target: str) -> Callable[[dict[str, Any]], list[str]]:
    """A real-photo row's PASSed types at one target (``pass_at``)."""
    return lambda r: list(r["pass_at"][target])


def write_real_report(out: Path, bundle: Bundle, real: dict[str, Any], real_cups: dict[str, Any] | None = None) -> Path:
    """``real.md`` and ``real_rows.json`` for a real-only evaluation (:func:`evaluate_real`, and the drawn cups of
    :func:`evaluate_real_cups` when given)."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Real photos: bundle {bundle.version}", ""]
    if real_cups:
        lines += ["## Real coins in drawn cups", "", *real_cups_lines(real_cups)]
    for name, r in real.items():
        lines += [
            f"## {name}",
            "",
            f"{r['photos']} photos: {r['single']} single-denomination, {r['mixed']} mixed. {real_ranking(r)}",
            *real_target_table(r),
            "| photo | kind | denomination | coins | objects | p_correct (true) | best other | PASS at 0.99 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in r["rows"]:
            true_p = row["p"].get(row["denomination"]) if row["denomination"] else None
            others = {t: v for t, v in row["p"].items() if t != row["denomination"]}
            best = max(others, key=lambda t: others[t]) if others else ""
            lines.append(
                f"| {row['photo']} | {row['kind']} | {row['denomination'] or ''} | {row['n_coins']} | "
                f"{row['n_objects']} | {'' if true_p is None else f'{true_p:.3f}'} | "
                f"{best} {others.get(best, 0.0):.3f} | {', '.join(row['pass_at'].get('0.99', [])) or '-'} |"
            )
        lines.append("")
    path = out / "real.md"
    path.write_text("\n".join(lines))
    (out / "real_rows.json").write_text(
        json.dumps({**real, **({"drawn_cups": real_cups} if real_cups else {})}, indent=1, default=float)
    )
    return path


def real_ranking(r: dict[str, Any]) -> str:
    """One sentence on how one currency's real photos rank the denominations by p_correct."""
    return (
        f"Ranking: the true denomination has the highest p_correct in {r['single_true_ranked_first']}/{r['single']} "
        f"single photos (median {r['single_true_p_median']:.3f}); highest p_correct for a wrong denomination "
        f"{r['single_wrong_p_max']:.3f}, for a mixed photo {r['mixed_p_max']:.3f}."
    )


def real_target_table(r: dict[str, Any]) -> list[str]:
    """Markdown table of one currency's real-photo PASS counts at each target precision."""
    lines = [
        "",
        "| target | threshold | single: PASS true | single: PASS wrong | mixed: PASS |",
        "|---|---|---|---|---|",
    ]
    for k, v in r.get("at", {}).items():
        lines.append(
            f"| {k} | {applied_text(v)} | {v['single_pass_true']}/{r['single']} | {v['single_pass_wrong']} | "
            f"{v['mixed_pass']} ({r['mixed']} photos) |"
        )
    return [*lines, ""]


def _euro_items(photos: Any, folder: Path) -> list[tuple[Path, str, str | None]]:
    """``photos.json`` entries (``{"file": "photos/single/x.jpg", "kind", "denomination"}``) as paths."""
    items: list[tuple[Path, str, str | None]] = []
    for info in photos:
        path = folder / str(info["file"])
        if path.is_file():
            items.append((path, str(info.get("kind", "mixed")), info.get("denomination")))
    return items
