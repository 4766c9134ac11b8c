"""A dense view of the gallery for scoring (cup, candidate) pairs: every reference vector sorted by type, so one
matrix product gives each coin's best similarity to every type and side, with the designs each type shows and the
types its own references are mistaken for (:data:`LOOKALIKE_RATE`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from models.gallery import Gallery, GalleryEntry
from models.template import spectra
from models.types import BoolArray, FloatArray, Side

F64 = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

NEG = -4.0
"""Similarity given to a (type, side) without references: below any cosine."""

LOOKALIKE_RATE = 0.2
"""A type whose enrolled references the gallery mistakes for another type's this often (``cand_lookalike``) is
reported at enrolment as a lookalike the camera may not separate (more photos, or a ``lookalikes`` entry in its
``coin.toml``). Only declared lookalikes are a hard rule: with five references a side the measured share is too
noisy to refuse a type on (:func:`models.voter.passable`)."""

SAME_DESIGN_GAP = 0.06
"""Two designs of their own whose references match each other within this cosine of how well each design's
references match among themselves may be one design enrolled twice (:meth:`GalleryView.design_lookalikes`). Measured
with the shipped embedder: with every side of 40 rendered types enrolled as its own design (5 renders a side), all
285 pairs of types truly sharing a design are within 0.02 and 10 of the other pairs within 0.06; in a gallery
enrolled from cup photos (5 to 15 a side) a family's shared obverse came within 0.02 to 0.05, and the obverses of
two other families within 0.06 to 0.08 of each other."""

SAME_DESIGN_FLOOR = 0.8
"""... and only from this cosine: a type whose own references differ (two coins enrolled as one, or a bad photo)
matches itself poorly, and would otherwise be named beside every other design. Pairs truly sharing a design: 0.965
and up among renders, 0.88 and up among photos."""


def designs_alike(share: Any, median_to: Any, median_own: Any) -> Any:
    """The rule two designs are named alike by (elementwise on arrays): the share of one's references nearer the
    other's than their own nearest other reference (at a cosine of :data:`SAME_DESIGN_FLOOR` or more) reaches
    :data:`LOOKALIKE_RATE`, or the median of their best cosines to the other comes within :data:`SAME_DESIGN_GAP` of
    the median of their best cosines among themselves, and reaches :data:`SAME_DESIGN_FLOOR`.
    :meth:`GalleryView.design_lookalikes` applies it to every two designs of a gallery,
    :func:`models.enroll.design_alike` to a type's new photos and a declared design's references."""
    return (share >= LOOKALIKE_RATE) | (median_to >= np.maximum(median_own - SAME_DESIGN_GAP, SAME_DESIGN_FLOOR))


class GalleryView:
    """A dense view of the gallery's references, sorted by type, for scoring pairs.

    Args:
        vectors: ``(m, d)`` float32 unit reference embeddings.
        entries: ``m`` metadata records (type, side, design), same order.
        diameters: catalogue diameter in mm per type (missing or ``None`` → unknown).
        lookalikes: the catalogue's declared lookalikes per type (:func:`models.enroll.catalog_lookalikes`),
            enrolled or not: a near-twin declared but not enrolled yet may still lie in a cup, and the gallery,
            which holds no photo of it, cannot tell it from the type.
        signatures: optional ``(m, *models.template.SIG_SHAPE)`` template signatures, same order as ``entries``.
        statistics: a view of the same types whose per-type lookalike statistics (``confusion``,
            ``self_similarity``, ``lookalike_rate``, ``lookalike_of``) this one takes instead of measuring its own:
            a view holding station references beside the enrolment photos judges each coin against all of them,
            but describes each type as its enrolment did, the way the calibration galleries were.
        declared_shared: design names the catalogue declares (``obverse_design``/``reverse_design`` of
            ``coin.toml``): shared even while only one enrolled type shows them, since a declared name is a
            family's design and a coin showing it proves nothing of the type.

    Raises:
        ValueError: mismatched lengths, or ``statistics`` holds other types.
    """

    def __init__(
        self,
        vectors: FloatArray,
        entries: Sequence[GalleryEntry],
        diameters: Mapping[str, float | None] | None = None,
        lookalikes: Mapping[str, Sequence[str]] | None = None,
        signatures: FloatArray | None = None,
        statistics: GalleryView | None = None,
        declared_shared: Collection[str] = (),
    ) -> None:
        if vectors.shape[0] != len(entries):
            raise ValueError(f"{vectors.shape[0]} vectors but {len(entries)} entries")
        if signatures is not None and signatures.shape[0] != len(entries):
            raise ValueError(f"{signatures.shape[0]} signatures but {len(entries)} entries")
        diameters = diameters or {}
        order = sorted(range(len(entries)), key=lambda i: (entries[i].type_id, entries[i].side.value))
        self.types: list[str] = sorted({e.type_id for e in entries})
        self.type_index: dict[str, int] = {t: i for i, t in enumerate(self.types)}
        self.refs: FloatArray = np.ascontiguousarray(vectors[order], dtype=np.float32)
        # FFTs of the references' template signatures (None: the gallery keeps none)
        self.ref_spectra: np.ndarray | None = None if signatures is None else spectra(signatures[order])
        ents = [entries[i] for i in order]
        self.ref_type: IntArray = np.array([self.type_index[e.type_id] for e in ents], np.int64)
        self.ref_side: IntArray = np.array([1 if e.side == Side.REVERSE else 0 for e in ents], np.int64)
        designs = sorted({e.design for e in ents})
        self.designs: list[str] = designs
        d_index = {d: i for i, d in enumerate(designs)}
        self.ref_design: IntArray = np.array([d_index[e.design] for e in ents], np.int64)
        n_t = len(self.types)
        # design -> which types show it
        self.design_types = np.zeros((len(designs), n_t), bool)
        self.design_types[self.ref_design, self.ref_type] = True
        # a design shown by several enrolled types, or one the catalogue names as shared (a family's obverse of
        # which one member is enrolled so far: its cups may still be any unenrolled member's)
        named = np.array([d in declared_shared for d in designs], bool)
        self.ref_shared: BoolArray = ((self.design_types.sum(axis=1) > 1) | named)[self.ref_design]
        self.starts: IntArray = np.searchsorted(self.ref_type, np.arange(n_t)).astype(np.int64)
        self.diameter: F64 = np.array(
            [np.nan if diameters.get(t) is None else float(diameters[t]) for t in self.types],  # type: ignore[arg-type]
            np.float64,
        )
        # Does the type's obverse design appear on another type?
        self.obverse_shared: BoolArray = np.zeros(n_t, bool)
        for t in range(n_t):
            sel = (self.ref_type == t) & (self.ref_side == 0)
            if sel.any():
                self.obverse_shared[t] = bool(self.ref_shared[sel].any())
        if statistics is None:
            self.confusion, self.self_similarity = self._lookalikes()
            self.lookalike_rate, self.lookalike_of = self._lookalike_rates()
        elif statistics.types != self.types:
            raise ValueError("the two views hold different types")
        else:
            self.confusion, self.self_similarity = statistics.confusion, statistics.self_similarity
            self.lookalike_rate, self.lookalike_of = statistics.lookalike_rate, statistics.lookalike_of
        # each type's declared lookalike (-1: none): an enrolled one first, as its index in ``types``; else one not
        # enrolled, as its index in ``lookalike_names`` (which holds ``types``, then those)
        self.lookalike_names: list[str] = list(self.types)
        self.declared_lookalike: IntArray = np.full(n_t, -1, np.int64)
        for name, others in (lookalikes or {}).items():
            if name not in self.type_index:
                continue
            twins = sorted({u for u in others if u != name}, key=lambda u: (u not in self.type_index, u))
            if twins:
                if twins[0] not in self.type_index and twins[0] not in self.lookalike_names:
                    self.lookalike_names.append(twins[0])
                self.declared_lookalike[self.type_index[name]] = self.lookalike_names.index(twins[0])

    def _lookalikes(self, chunk: int = 1024) -> tuple[F64, F64]:
        """Per type: how close another type's references come to its own designs, and how alike its own are.

        ``confusion[t]`` is the best cosine between one of ``t``'s references on a design only ``t`` shows and a
        reference of any other type; ``self_similarity[t]`` the mean cosine among those references of ``t``.
        A near-twin whose references the embedder cannot tell apart has ``confusion`` at or above
        ``self_similarity``: a coin's small margin over it proves nothing. ``nan`` for a type with no design of
        its own.
        """
        n_t = len(self.types)
        confusion = np.full(n_t, np.nan, np.float64)
        own_sum = np.zeros(n_t, np.float64)
        own_n = np.zeros(n_t, np.float64)
        own = np.flatnonzero(~self.ref_shared)
        for a in range(0, own.size, chunk):
            rows = own[a : a + chunk]
            sims = self.refs[rows] @ self.refs.T  # (r, m)
            same = self.ref_type[rows][:, None] == self.ref_type[None, :]
            other_best = np.where(same, -np.inf, sims).max(axis=1) if n_t > 1 else np.full(rows.size, np.nan)
            for i, r in enumerate(rows):
                t = int(self.ref_type[r])
                if np.isfinite(other_best[i]):
                    confusion[t] = other_best[i] if np.isnan(confusion[t]) else max(confusion[t], other_best[i])
                mates = same[i] & ~self.ref_shared
                mates[r] = False
                own_sum[t] += float(sims[i, mates].sum())
                own_n[t] += float(mates.sum())
        self_similarity = np.where(own_n > 0, own_sum / np.maximum(own_n, 1), np.nan)
        return confusion, self_similarity

    def _lookalike_rates(self, chunk: int = 512) -> tuple[F64, IntArray]:
        """Per type: how often the gallery itself mistakes its own references for another type's.

        Every reference on a design only its type shows is matched, leaving itself out, against the other
        references on such designs: it is *mistaken for* type ``u`` when a reference of ``u`` is closer than the
        nearest other reference of its own type. ``rate[t]`` is the largest share, over ``u``, of ``t``'s
        references mistaken for ``u`` or of ``u``'s mistaken for ``t`` (a cup of ``u`` checked against ``t`` fails
        the same way); ``of[t]`` is that ``u``. A near-twin the embedder cannot separate scores about one half,
        distinct types about zero. ``nan`` (and ``-1``) for a type with fewer than two such references.
        """
        n_t = len(self.types)
        rate = np.full(n_t, np.nan, np.float64)
        of = np.full(n_t, -1, np.int64)
        own = np.flatnonzero(~self.ref_shared)  # references are sorted by type, so these are too
        if n_t < 2 or own.size < 2:
            return rate, of
        types = self.ref_type[own]
        counts = np.bincount(types, minlength=n_t)
        mistaken = np.zeros((n_t, n_t), np.float64)  # [t, u]: t's references nearer to u than to t
        present = np.flatnonzero(counts)
        starts = np.searchsorted(types, present)
        for a in range(0, own.size, chunk):
            rows = np.arange(a, min(a + chunk, own.size))
            sims = self.refs[own[rows]] @ self.refs[own].T
            sims[np.arange(rows.size), rows] = -np.inf  # leave each reference out
            best = np.full((rows.size, n_t), -np.inf, np.float32)
            best[:, present] = np.maximum.reduceat(sims, starts, axis=1)
            t = types[rows]
            own_best = best[np.arange(rows.size), t]
            worse = best > own_best[:, None]
            worse[np.arange(rows.size), t] = False
            worse &= np.isfinite(own_best)[:, None]
            np.add.at(mistaken, t, worse.astype(np.float64))
        share = mistaken / np.maximum(counts, 1)[:, None]
        pair = np.maximum(share, share.T)
        ok = counts >= 2
        pair[:, ~ok] = 0.0
        pair[np.arange(n_t), np.arange(n_t)] = 0.0
        of_all = pair.argmax(axis=1)
        rate[ok] = pair[ok, of_all[ok]]
        of[ok] = np.where(rate[ok] > 0, of_all[ok], -1)
        return rate, of

    def declared(self, candidate: int) -> str | None:
        """The type the catalogue declares a lookalike of ``candidate`` (an enrolled one where it declares several,
        else one not enrolled yet), else ``None``."""
        u = int(self.declared_lookalike[candidate])
        return self.lookalike_names[u] if u >= 0 else None

    def missing_own_side(self, t: int) -> str | None:
        """Why no coin can prove type ``t``, when none can: ``None`` when ``t`` shows a design of its own; else the
        side it has no references of (``"reverse"`` or ``"obverse"``), or ``""`` when both sides are enrolled and
        each is a shared design. Turning a coin over then shows nothing of the type either."""
        rows = self.type_rows(t)
        if rows.size and not self.ref_shared[rows].all():
            return None
        enrolled = {int(k) for k in self.ref_side[rows]}
        missing = [side for k, side in ((1, Side.REVERSE), (0, Side.OBVERSE)) if k not in enrolled]
        return missing[0].value if missing else ""

    def measured_lookalikes(self) -> list[tuple[str, str, float]]:
        """``(type, lookalike, rate)`` for every type whose references the gallery mistakes for another type's
        at least :data:`LOOKALIKE_RATE` of the time, worst first (each pair once)."""
        out: list[tuple[str, str, float]] = []
        seen: set[tuple[int, int]] = set()
        for t in np.argsort(-np.nan_to_num(self.lookalike_rate, nan=-1.0), kind="stable"):
            u, r = int(self.lookalike_of[t]), float(self.lookalike_rate[t])
            if u < 0 or not r >= LOOKALIKE_RATE:
                continue
            key = (min(int(t), u), max(int(t), u))
            if key not in seen:
                seen.add(key)
                out.append((self.types[int(t)], self.types[u], r))
        return out

    def design_lookalikes(self, chunk: int = 512) -> list[tuple[str, Side, str, Side]]:
        """``(type, side, other type, its side)`` for every two designs, one of them at least a design of its own
        (shown by one type), the gallery cannot be trusted to tell apart, sorted. A type's own design alike a
        design several types declare is named with one of those types: a family's obverse enrolled as one
        member's own (its catalogue folder had no ``coin.toml``) lets the family's cups pass as that member.

        Two designs are alike when the gallery mistakes one's references for the other's at least
        :data:`LOOKALIKE_RATE` of the time (a reference nearer one of the other design's than the nearest other
        reference of its own, at a cosine of :data:`SAME_DESIGN_FLOOR` or more), or when the median best cosine of
        one's references to the other's comes within :data:`SAME_DESIGN_GAP` of its references' median best cosine
        among themselves (and reaches :data:`SAME_DESIGN_FLOOR`). Unlike :meth:`measured_lookalikes` (each type's
        worst rival, a voter feature) every pair is named, with its sides.
        """
        pool = np.arange(self.ref_shared.size)  # every reference; pairs of two shared designs are left out below
        if np.count_nonzero(~self.ref_shared) < 1 or pool.size < 2:
            return []
        pool = pool[np.argsort(self.ref_design[pool], kind="stable")]
        designs = self.ref_design[pool]
        present, starts, counts = np.unique(designs, return_index=True, return_counts=True)
        n_d = present.size
        group = np.searchsorted(present, designs)
        best = np.empty((pool.size, n_d), np.float32)  # each reference's best cosine to each design, itself left out
        for a in range(0, pool.size, chunk):
            rows = np.arange(a, min(a + chunk, pool.size))
            sims = self.refs[pool[rows]] @ self.refs[pool].T
            sims[np.arange(rows.size), rows] = -np.inf
            best[rows] = np.maximum.reduceat(sims, starts, axis=1)
        own_best = best[np.arange(pool.size), group]
        mistaken = np.zeros((n_d, n_d), np.float64)
        np.add.at(mistaken, group, ((best > own_best[:, None]) & (best >= SAME_DESIGN_FLOOR)).astype(np.float64))
        share = mistaken / counts[:, None]
        median = np.stack([np.median(best[group == g], axis=0) for g in range(n_d)])  # [from, to]
        alike = np.asarray(designs_alike(share, median, np.diag(median)[:, None]), bool)
        alike |= alike.T
        alike &= (counts >= 2)[:, None] & (counts >= 2)[None, :]
        first = pool[starts]  # one reference of each design: its type and side
        out: list[tuple[str, Side, str, Side]] = []
        for i, j in zip(*np.nonzero(np.triu(alike, k=1)), strict=True):
            ri, rj = int(first[i]), int(first[j])
            if self.ref_type[ri] == self.ref_type[rj]:
                continue  # a type's two sides: never a cup of another type
            if self.ref_shared[ri] and self.ref_shared[rj]:
                continue  # two designs declared shared: a coin on either proves no type, turned over or not
            side_i, side_j = (Side.REVERSE if self.ref_side[r] else Side.OBVERSE for r in (ri, rj))
            out.append((self.types[self.ref_type[ri]], side_i, self.types[self.ref_type[rj]], side_j))
        return sorted(out)

    @classmethod
    def from_gallery(
        cls,
        gallery: Gallery,
        diameters: Mapping[str, float | None] | None = None,
        lookalikes: Mapping[str, Sequence[str]] | None = None,
        statistics: GalleryView | None = None,
        declared_shared: Collection[str] = (),
    ) -> GalleryView:
        """Build from a :class:`~models.gallery.Gallery` (reads every stored vector once)."""
        vectors, ids = gallery.vectors()
        entries = gallery.entries
        sigs = gallery.signatures(ids) if gallery.has_signatures else None
        return cls(vectors, [entries[i] for i in ids], diameters, lookalikes, sigs, statistics, declared_shared)

    @property
    def has_templates(self) -> bool:
        """Whether the references carry template signatures."""
        return self.ref_spectra is not None

    @property
    def n_types(self) -> int:
        """Types in the gallery."""
        return len(self.types)

    def type_rows(self, t: int) -> IntArray:
        """Indices in :attr:`refs` of type ``t``'s references (they are contiguous: the view is sorted by type)."""
        end = int(self.starts[t + 1]) if t + 1 < self.n_types else self.refs.shape[0]
        return np.arange(int(self.starts[t]), end, dtype=np.int64)

    def type_scores(self, embeddings: FloatArray) -> tuple[FloatArray, IntArray]:
        """Best similarity of each embedding to each type, and which reference gave it.

        Args:
            embeddings: ``(n, d)`` float32 unit rows.

        Returns:
            ``(n, T)`` float32 best cosine per type and ``(n, T)`` int64 index of that reference in ``refs``.
        """
        n = embeddings.shape[0]
        if n == 0 or self.n_types == 0:
            return np.zeros((n, self.n_types), np.float32), np.zeros((n, self.n_types), np.int64)
        sims = embeddings.astype(np.float32) @ self.refs.T
        best = np.maximum.reduceat(sims, self.starts, axis=1)
        # argmax within each type's block
        arg = np.zeros((n, self.n_types), np.int64)
        ends = np.append(self.starts[1:], sims.shape[1])
        for t, (a, b) in enumerate(zip(self.starts, ends, strict=True)):
            arg[:, t] = a + np.argmax(sims[:, a:b], axis=1)
        return best.astype(np.float32), arg
