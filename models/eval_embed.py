"""Evaluate an embedder: open-set retrieval on unseen synthetic types, real crops, and latency.

1. Open set: synthetic types never trained on (a data set rendered from another mint seed, or the held-out
   families of a training data set) are enrolled with 5 reference crops per side and queried with their other
   crops. A hit is a match showing the query's design (a family's shared obverse counts for every member).
2. Real: euro and won crops, enrolled from ``crops/train`` and queried with ``crops/test``. The euro crops are split
   by source photo; the won crops are not (all 9 won photos gave crops to both folders), so a won query is matched
   against crops of its own photo: its figures are reported as not held out.
3. Latency: embedding time per crop at several batch sizes, gallery search time at several gallery sizes.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from models.embedder import Embedder
from models.enroll import read_image
from models.gallery import Gallery, GalleryEntry
from models.synth.real_coins import crop_photo, shared_photos
from models.template import signatures
from models.train.crops_data import (
    REAL_FOLDERS,
    SPLIT_CURRENCIES,
    CropRecord,
    is_heldout_family,
    read_mint,
    read_real_crops,
    read_synth_crops,
)
from models.train.embedder import ImageCache, embed_records, enrol_query_split
from models.types import FloatArray, Match, Side


@dataclass(frozen=True)
class RetrievalResult:
    """Queries, their matches and what they were.

    Attributes:
        queries: the query crops.
        matches: per query the top-k matches.
        correct_at: per query the rank (1-based) of the first correct match, 0 when none in the top k.
        nearest_wrong: per query the best-scoring wrong reference (``(record, score)``) or ``None``.
    """

    queries: list[CropRecord]
    matches: list[list[Match]]
    correct_at: list[int]
    nearest_wrong: list[tuple[CropRecord, float] | None]

    def recall(self, k: int, mask: Sequence[bool] | None = None) -> float:
        """Recall@k over all queries or those selected by ``mask`` (NaN for none)."""
        sel = [
            0 < r <= k
            for r, m in zip(self.correct_at, mask if mask is not None else [True] * len(self.queries), strict=True)
            if m
        ]
        return float(np.mean(sel)) if sel else float("nan")


def record_signatures(records: Sequence[CropRecord], cache: ImageCache | None = None) -> FloatArray:
    """Template signatures of crop files: ``(n, *SIG_SHAPE)`` float32.

    Raises:
        FileNotFoundError: a crop cannot be read.
    """
    images = []
    for r in records:
        img = cache.get(r.path) if cache is not None else read_image(r.path)
        if img is None:
            raise FileNotFoundError(f"cannot read crop {r.path}")
        images.append(img)
    return signatures(images)


def _embed(
    embedder: Embedder, records: Sequence[CropRecord], cache: ImageCache | None, memo: dict[Path, np.ndarray] | None
) -> FloatArray:
    if memo is None:
        return embed_records(embedder, records, cache)
    todo = list(dict.fromkeys(r.path for r in records if r.path not in memo))
    if todo:
        by_path = {r.path: r for r in records}
        for path, e in zip(todo, embed_records(embedder, [by_path[p] for p in todo], cache), strict=True):
            memo[path] = e
    return np.stack([memo[r.path] for r in records]) if records else np.zeros((0, embedder.embed_dim), np.float32)


def _design_key(r: CropRecord) -> str:
    return r.label


def retrieval(
    embedder: Embedder,
    refs: Sequence[CropRecord],
    queries: Sequence[CropRecord],
    k: int = 5,
    cache: ImageCache | None = None,
    *,
    templates: bool = False,
    memo: dict[Path, np.ndarray] | None = None,
) -> RetrievalResult:
    """Enrol ``refs`` into a fresh gallery, search every query, and score design-level hits.

    A match ``(type, side)`` is correct when that reference design equals the query's label (its design id).
    With ``templates`` the search re-ranks its best types by template correlation
    (:meth:`~models.gallery.Gallery.search` with signatures), as ``cupcheck identify`` does. ``memo`` keeps the
    embeddings between calls with the same embedder.
    """
    ref_emb = _embed(embedder, refs, cache, memo)
    q_emb = _embed(embedder, queries, cache, memo)
    gallery = Gallery(embedder.embed_dim, embedder.version)
    entries = [GalleryEntry(r.type_id, r.side or Side.OBVERSE, _design_key(r), str(r.path)) for r in refs]
    ids = gallery.add(ref_emb, entries, record_signatures(refs, cache) if templates else None)
    design_of = {(e.type_id, e.side): e.design_id for e in entries}
    matches = gallery.search(q_emb, k, signatures=record_signatures(queries, cache) if templates else None)
    correct_at = []
    for q, ms in zip(queries, matches, strict=True):
        rank = next((i + 1 for i, m in enumerate(ms) if design_of[(m.type_id, m.side)] == q.label), 0)
        correct_at.append(rank)
    by_id = dict(zip(ids, refs, strict=True))
    nearest_wrong: list[tuple[CropRecord, float] | None] = []
    hits_all = gallery.neighbours(q_emb, min(len(refs), 64))
    for q, hits in zip(queries, hits_all, strict=True):
        wrong = next((h for h in hits if h.entry.design_id != q.label), None)
        nearest_wrong.append((by_id[wrong.id], wrong.score) if wrong else None)
    return RetrievalResult(list(queries), matches, correct_at, nearest_wrong)


# ----------------------------------------------------------------------------------------------- open set


@dataclass
class OpenSetReport:
    """Open-set figures on unseen synthetic types."""

    n_types: int
    n_refs: int
    n_queries: int
    unseen_rule: str
    rows: list[tuple[str, int, float, float]] = field(default_factory=list)
    result: RetrievalResult | None = None
    template_rows: list[tuple[str, int, float, float]] = field(default_factory=list)
    """The same subsets with the search re-ranked by template."""


def open_set_eval(
    embedder: Embedder, synth_dir: str | Path, *, per_side: int = 5, max_queries: int | None = 4000
) -> OpenSetReport:
    """Open-set Recall@1/5 on synthetic types the embedder never saw.

    When the data set's mint seed is one the embedder was trained on, only its held-out families are used;
    otherwise every type is unseen.
    """
    records = [r for r in read_synth_crops(synth_dir) if r.side is not None]
    mint = read_mint(synth_dir)
    args = embedder.train_args
    seeds = {int(s) for s in args.get("mint_seeds", [])}
    if "seed" in mint and int(mint["seed"]) in seeds:
        frac = float(args.get("holdout_fraction", 0.2))
        records = [r for r in records if is_heldout_family(r.family, frac)]
        rule = f"held-out families (fraction {frac}) of training mint seed {mint['seed']}"
    else:
        rule = f"mint seed {mint.get('seed', '?')} not used in training: every type unseen"
    refs, queries = enrol_query_split(records, per_side, max_queries)
    images = ImageCache(embedder.prep)
    memo: dict[Path, np.ndarray] = {}
    res = retrieval(embedder, refs, queries, 5, images, memo=memo)
    res_t = retrieval(embedder, refs, queries, 5, images, templates=True, memo=memo)
    twins = {t["id"] for t in mint.get("types", []) if t.get("twin_of")}
    twins |= {t["twin_of"] for t in mint.get("types", []) if t.get("twin_of")}
    fam_size = Counter(f for f, _ in {(r.family, r.type_id) for r in refs})
    q = res.queries
    subsets: list[tuple[str, list[bool]]] = [
        ("all queries", [True] * len(q)),
        ("obverse (family-shared design)", [r.side == Side.OBVERSE for r in q]),
        ("reverse (type-specific)", [r.side == Side.REVERSE for r in q]),
        ("reverse, same-family types in gallery", [r.side == Side.REVERSE and fam_size[r.family] > 1 for r in q]),
        ("reverse, near-twin types", [r.side == Side.REVERSE and r.type_id in twins for r in q]),
        ("whole coins (not partial)", [not r.partial for r in q]),
        ("partial coins", [r.partial for r in q]),
    ]
    rows = [(name, int(sum(m)), res.recall(1, m), res.recall(5, m)) for name, m in subsets]
    rows_t = [(name, int(sum(m)), res_t.recall(1, m), res_t.recall(5, m)) for name, m in subsets]
    return OpenSetReport(len({r.type_id for r in refs}), len(refs), len(queries), rule, rows, res, rows_t)


# ----------------------------------------------------------------------------------------------- real


@dataclass
class RealReport:
    """Real-crop figures of one currency.

    Attributes:
        shared_photos: the source photos (:func:`~models.synth.real_coins.crop_photo`) that gave both a reference
            and a query crop, sorted; empty when the split is by photo.
        n_query_photos: how many source photos the queries were cut from.
    """

    currency: str
    n_refs: int
    n_queries: int
    per_label: list[tuple[str, int, float]]
    recall1: float
    recall5: float
    confusion: dict[str, Counter[str]]
    result: RetrievalResult
    template_recall1: float = float("nan")
    """Recall@1 with the search re-ranked by template."""
    shared_photos: tuple[str, ...] = ()
    n_query_photos: int = 0

    @property
    def held_out(self) -> bool:
        """Whether no query was cut from a photo that also gave a reference."""
        return not self.shared_photos

    def split_text(self) -> str:
        """How the references and queries were split, as the report says it."""
        if self.held_out:
            return "split by source photo (no test photo gave a train crop)"
        return (
            "not held out: its train and test crops come from the same photos "
            f"({len(self.shared_photos)} of its {self.n_query_photos} test photos also gave train crops), so a query "
            "is matched against crops of its own photo and these figures overstate the embedder"
        )


def real_currencies(real_root: str | Path) -> tuple[str, ...]:
    """The currencies (of :data:`~models.train.crops_data.SPLIT_CURRENCIES`) whose ``crops/train`` and
    ``crops/test`` both hold crops under ``real_root``: what :func:`real_eval` can judge."""
    return tuple(
        c
        for c in SPLIT_CURRENCIES
        if read_real_crops(real_root, "train", (c,)) and read_real_crops(real_root, "test", (c,))
    )


def missing_real_text(real_root: str | Path) -> str:
    """What to say of a real data folder in which :func:`real_currencies` finds nothing."""
    folders = " nor ".join(f"{REAL_FOLDERS[c]}/{{train,test}}/" for c in SPLIT_CURRENCIES)
    return f"{real_root} holds neither {folders}: give the real data folder (…/data/real)"


def real_eval(embedder: Embedder, real_root: str | Path, currency: str) -> RealReport | None:
    """Enrol ``crops/train`` of a currency, query ``crops/test``; ``None`` when the folders are absent.

    The report names the photos that gave crops to both (:attr:`RealReport.shared_photos`): the won crops are split
    by crop, not by photo, and their figures are not held out.
    """
    refs = read_real_crops(real_root, "train", (currency,))
    queries = read_real_crops(real_root, "test", (currency,))
    if not refs or not queries:
        return None
    images = ImageCache(embedder.prep)
    memo: dict[Path, np.ndarray] = {}
    res = retrieval(embedder, refs, queries, 5, images, memo=memo)
    res_t = retrieval(embedder, refs, queries, 5, images, templates=True, memo=memo)
    labels = sorted({r.label for r in refs})
    per_label = []
    for lab in labels:
        mask = [r.label == lab for r in queries]
        per_label.append((lab, int(sum(mask)), res.recall(1, mask)))
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    for r, ms in zip(queries, res.matches, strict=True):
        confusion[r.label][ms[0].type_id if ms else "-"] += 1
    return RealReport(
        currency,
        len(refs),
        len(queries),
        per_label,
        res.recall(1),
        res.recall(5),
        confusion,
        res,
        res_t.recall(1),
        shared_photos((r.path for r in refs), (q.path for q in queries)),
        len({crop_photo(q.path) for q in queries}),
    )


def confusion_markdown(report: RealReport) -> str:
    """Rows: true label, columns: top-1 predicted label (counts)."""
    labels = sorted(report.confusion.keys() | {k for c in report.confusion.values() for k in c})
    short = [lab.split("-", 2)[-1] for lab in labels]
    head = "| true \\ predicted | " + " | ".join(short) + " |\n|---|" + "---|" * len(labels) + "\n"
    body = ""
    for lab, s in zip(labels, short, strict=True):
        row = report.confusion.get(lab, Counter())
        body += f"| {s} | " + " | ".join(str(row.get(c, 0)) for c in labels) + " |\n"
    return head + body


def wrong_pairs_picture(result: RetrievalResult, path: Path, n: int = 12, size: int = 112) -> int:
    """Draw the ``n`` highest-scoring wrong neighbours: query on the left, wrong reference on the right.

    Returns:
        How many pairs were drawn.
    """
    pairs = [(q, w[0], w[1]) for q, w in zip(result.queries, result.nearest_wrong, strict=True) if w is not None]
    pairs.sort(key=lambda t: -t[2])
    tiles = []
    for q, ref, score in pairs[:n]:
        row = []
        for tag, rec in (("query", q), ("ref", ref)):
            img = cv2.imread(str(rec.path), cv2.IMREAD_COLOR)
            img = cv2.resize(img, (size, size)) if img is not None else np.zeros((size, size, 3), np.uint8)
            text = f"{tag} {rec.type_id.removeprefix('real-')}"[:22] + ("" if rec.side is None else f" {rec.side[0]}")
            cv2.rectangle(img, (0, size - 14), (size, size), (0, 0, 0), -1)
            cv2.putText(img, text, (2, size - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 255, 255), 1)
            row.append(img)
        bar = np.zeros((size, 44, 3), np.uint8)
        cv2.putText(bar, f"{score:.2f}", (2, size // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        tiles.append(np.hstack([row[0], bar, row[1]]))
    if not tiles:
        return 0
    cols = 2
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    grid = np.vstack(
        [np.hstack([*tiles[i : i + cols], np.zeros((size, 8, 3), np.uint8)]) for i in range(0, len(tiles), cols)]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), grid)
    return min(n, len(pairs))


# ----------------------------------------------------------------------------------------------- latency


def embed_latency(embedder: Embedder, batch_sizes: Sequence[int] = (1, 8, 32), repeats: int = 5) -> dict[int, float]:
    """Milliseconds per crop for each batch size (median of ``repeats`` runs on random 128 px crops)."""
    rng = np.random.default_rng(0)
    out = {}
    for b in batch_sizes:
        crops = [rng.integers(0, 255, (128, 128, 3), dtype=np.uint8) for _ in range(b)]
        embedder.embed(crops, batch_size=b)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            embedder.embed(crops, batch_size=b)
            times.append((time.perf_counter() - t) / b * 1000)
        out[b] = float(np.median(times))
    return out


def search_latency(
    dim: int, sizes: Sequence[int] = (10_000, 100_000, 1_000_000), queries: int = 50, k: int = 5
) -> dict[int, float]:
    """Milliseconds per single-query ``Gallery.search`` at each gallery size (random unit vectors, one thread).

    Raises:
        ValueError: a size below 1 (an empty gallery has nothing to search: its time would mean nothing).
    """
    if any(n < 1 for n in sizes):
        raise ValueError(f"gallery sizes must be at least 1, got {', '.join(str(n) for n in sizes)}")
    rng = np.random.default_rng(0)
    out = {}
    for n in sizes:
        g = Gallery(dim, "latency-test", threads=1)
        entry = GalleryEntry("t", Side.OBVERSE)
        step = 100_000
        for start in range(0, n, step):
            m = min(step, n - start)
            v = rng.standard_normal((m, dim)).astype(np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            g.add(v, [entry] * m)
        q = rng.standard_normal((queries, dim)).astype(np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        g.search(q[:1], k)
        t = time.perf_counter()
        for i in range(queries):
            g.search(q[i : i + 1], k)
        out[n] = (time.perf_counter() - t) / queries * 1000
        del g
    return out


# ----------------------------------------------------------------------------------------------- report


def _fmt(x: float) -> str:
    return "n/a" if x != x else f"{x:.3f}"


def write_report(
    embedder: Embedder,
    out_dir: str | Path,
    *,
    synth_dir: str | Path | None = None,
    real_root: str | Path | None = None,
    latency: bool = True,
    search_sizes: Sequence[int] = (10_000, 100_000, 1_000_000),
    progress: bool = True,
) -> tuple[Path, list[str]]:
    """Run the evaluations that have data and write ``report.md`` plus PNGs into ``out_dir``.

    Returns:
        The report path and summary lines.

    Raises:
        FileNotFoundError: ``real_root`` given, and no currency under it has both ``crops/train`` and ``crops/test``
            (checked before any work).
    """
    if real_root is not None and not real_currencies(real_root):
        raise FileNotFoundError(missing_real_text(real_root))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = [
        f"# Embedder evaluation\n\nEmbedder `{embedder.version}` ({embedder.arch}, {embedder.embed_dim} d, "
        f"input {embedder.prep.input_size} px), torch threads {torch.get_num_threads()}.\n"
    ]
    summary: list[str] = []
    steps = ["open set", "real", "latency"]
    bar = tqdm(total=len(steps), desc="eval embed", unit="part", disable=not progress)
    if synth_dir is not None:
        rep = open_set_eval(embedder, synth_dir)
        md.append(
            f"## Open set (synthetic, unseen types)\n\n{rep.unseen_rule}. {rep.n_types} types enrolled with 5 crops "
            f"per side ({rep.n_refs} references), {rep.n_queries} queries. A hit is a match showing the query's design "
            "(an obverse shared by a family counts for every member).\n\n"
            "The last two columns re-rank the embedding's 10 best types by template correlation "
            "(`models.template`, what `cupcheck identify` does).\n\n"
            "| queries | n | Recall@1 | Recall@5 | + template R@1 | + template R@5 |\n|---|---|---|---|---|---|\n"
        )
        md += [
            f"| {name} | {n} | {_fmt(r1)} | {_fmt(r5)} | {_fmt(t1)} | {_fmt(t5)} |\n"
            for (name, n, r1, r5), (_, _, t1, t5) in zip(rep.rows, rep.template_rows, strict=True)
        ]
        if rep.result is not None and wrong_pairs_picture(rep.result, out / "synth_wrong_pairs.png"):
            md.append("\nClosest wrong pairs (query | score | wrong reference): ![](synth_wrong_pairs.png)\n")
        summary.append(f"open set: R@1 {_fmt(rep.rows[0][2])} R@5 {_fmt(rep.rows[0][3])} ({rep.n_queries} queries)")
        summary += [f"  {name}: R@1 {_fmt(r1)} R@5 {_fmt(r5)} (n={n})" for name, n, r1, r5 in rep.rows[1:]]
        summary += [
            f"  + template {name}: R@1 {_fmt(r1)} R@5 {_fmt(r5)} (n={n})" for name, n, r1, r5 in rep.template_rows
        ]
    bar.update(1)
    if real_root is not None:
        for cur in ("euro", "won"):
            rr = real_eval(embedder, real_root, cur)
            if rr is None:
                continue
            title = f"Real {cur} crops" + ("" if rr.held_out else " (not held out)")
            md.append(
                f"\n## {title}\n\nEnrolled crops/train ({rr.n_refs}), queried crops/test ({rr.n_queries}), "
                f"{rr.split_text()}. Recall@1 {rr.recall1:.3f}, Recall@5 {rr.recall5:.3f}; re-ranked by "
                f"template, Recall@1 {rr.template_recall1:.3f}.\n\n"
                "| denomination | queries | Recall@1 |\n|---|---|---|\n"
            )
            md += [f"| {lab.split('-', 2)[-1]} | {n} | {_fmt(r)} |\n" for lab, n, r in rr.per_label]
            md.append(f"\nConfusion (top-1):\n\n{confusion_markdown(rr)}")
            pic = f"{cur}_wrong_pairs.png"
            if wrong_pairs_picture(rr.result, out / pic):
                md.append(f"\nClosest wrong pairs (query | score | wrong reference): ![]({pic})\n")
            per = ", ".join(f"{lab.split('-', 2)[-1]} {r:.2f}" for lab, _, r in rr.per_label)
            summary.append(
                f"real {cur}{'' if rr.held_out else ' (not held out: train and test crops share their photos)'}: "
                f"R@1 {rr.recall1:.3f} R@5 {rr.recall5:.3f} ({per}); + template R@1 {rr.template_recall1:.3f}"
            )
    bar.update(1)
    if latency:
        emb_ms = embed_latency(embedder)
        srch_ms = search_latency(embedder.embed_dim, search_sizes)
        md.append(
            "\n## Latency (this CPU)\n\n| embedding batch | ms per crop |\n|---|---|\n"
            + "".join(f"| {b} | {ms:.2f} |\n" for b, ms in emb_ms.items())
            + "\n| gallery size | ms per single-query search (k=5, 1 thread) |\n|---|---|\n"
            + "".join(f"| {n:,} | {ms:.2f} |\n" for n, ms in srch_ms.items())
        )
        summary.append("embed ms/crop: " + ", ".join(f"batch {b}: {ms:.1f}" for b, ms in emb_ms.items()))
        summary.append("search ms/query: " + ", ".join(f"{n:,}: {ms:.2f}" for n, ms in srch_ms.items()))
    bar.update(1)
    bar.close()
    md.append(f"\n## Training arguments\n\n```\n{_train_args_text(embedder.train_args)}\n```\n")
    path = out / "report.md"
    path.write_text("".join(md))
    return path, summary


def _train_args_text(args: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in sorted(args.items()))
