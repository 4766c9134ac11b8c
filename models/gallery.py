"""The reference gallery: a faiss inner-product index over unit embeddings plus per-vector metadata.

On disk a gallery is a folder::

    manifest.json            format, embedder version, dimension, count, and the names + sha256 of the two files
    index-<sha8>.faiss       faiss ``IndexIDMap(IndexFlatIP)``
    meta-<sha8>.jsonl        one JSON object per vector: id, type_id, side, design_id, source, sha1
    sigs-<sha8>.npz          optional: the references' polar template signatures (:mod:`models.template`), by id

Saving writes the data files under new names first and then replaces ``manifest.json`` in one
``os.replace``: a reader sees either the old gallery or the new one, never a mix, and a crash leaves at most an
unreferenced file that the next save removes. Types are added and removed in place (``remove_ids`` with an id
selector); nothing is rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from models.files import sha256_file, write_bytes_atomic
from models.types import FloatArray, Match, Side

GALLERY_FORMAT = "cupcheck-gallery/1"
TEMPLATE_WEIGHT = 1.0
"""Weight of the template correlation beside the cosine when a search re-ranks by template."""
RERANK_DEPTH = 10
"""Types per query (the best by embedding) that a template re-ranking compares."""


def reranked_score(score: float, template: float | None) -> float:
    """What a template re-ranking orders matches by: cosine + :data:`TEMPLATE_WEIGHT` × template correlation."""
    return score + TEMPLATE_WEIGHT * (template or 0.0)


MANIFEST = "manifest.json"


class GalleryMismatchError(ValueError):
    """The gallery was built with a different embedder than the one in use."""


def set_search_threads(n: int = 1) -> None:
    """Set faiss's OpenMP threads; one thread is much faster for the station's single small queries."""
    faiss.omp_set_num_threads(n)


@dataclass(frozen=True)
class GalleryEntry:
    """Metadata of one reference embedding.

    Attributes:
        type_id: the coin type.
        side: which face the reference shows.
        design_id: the design shown (types sharing an obverse share its design id); defaults to ``type/side``.
        source: where the reference image came from (a path).
        sha1: hash of the source image bytes (duplicate detection), may be empty.
    """

    type_id: str
    side: Side
    design_id: str = ""
    source: str = ""
    sha1: str = ""

    @property
    def design(self) -> str:
        """The design id, or ``type_id/side`` when none was given."""
        return self.design_id or f"{self.type_id}/{self.side.value}"


@dataclass(frozen=True)
class Hit:
    """One raw nearest neighbour: the reference's id, its metadata and the cosine similarity."""

    id: int
    entry: GalleryEntry
    score: float


class Gallery:
    """Reference embeddings of enrolled coin types, searchable by cosine similarity.

    Args:
        dim: embedding size ``d``.
        embedder_version: the version of the embedder that produced the vectors.
        threads: faiss OpenMP threads (see :func:`set_search_threads`); ``None`` leaves the setting alone.
    """

    def __init__(self, dim: int, embedder_version: str, *, threads: int | None = 1) -> None:
        if threads is not None:
            set_search_threads(threads)
        self.dim = int(dim)
        self.embedder_version = embedder_version
        self._index = faiss.IndexIDMap(faiss.IndexFlatIP(self.dim))
        self._meta: dict[int, GalleryEntry] = {}
        self._type_counts: Counter[str] = Counter()
        self._sigs: dict[int, np.ndarray] = {}
        self._next_id = 0

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def entries(self) -> dict[int, GalleryEntry]:
        """A copy of id → metadata."""
        return dict(self._meta)

    def types(self) -> dict[str, dict[str, int]]:
        """Enrolled types: ``type_id -> {side: number of references}``."""
        out: dict[str, dict[str, int]] = {}
        for e in self._meta.values():
            sides = out.setdefault(e.type_id, {})
            sides[e.side.value] = sides.get(e.side.value, 0) + 1
        return dict(sorted(out.items()))

    def add(
        self, embeddings: FloatArray, entries: Sequence[GalleryEntry], signatures: FloatArray | None = None
    ) -> list[int]:
        """Add references.

        Args:
            embeddings: ``(n, d)`` float32 unit vectors.
            entries: ``n`` metadata records, in the same order.
            signatures: optional ``(n, *models.template.SIG_SHAPE)`` template signatures of the same images.

        Returns:
            The ``n`` new ids.
        """
        emb = np.ascontiguousarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[1] != self.dim:
            raise ValueError(f"embeddings must be (n, {self.dim}), got {emb.shape}")
        if len(entries) != emb.shape[0]:
            raise ValueError(f"{emb.shape[0]} embeddings but {len(entries)} entries")
        if signatures is not None and (signatures.ndim != 3 or signatures.shape[0] != emb.shape[0]):
            raise ValueError(f"signatures must be (n={emb.shape[0]}, A, R), got {signatures.shape}")
        ids = np.arange(self._next_id, self._next_id + len(entries), dtype=np.int64)
        if len(ids):
            self._index.add_with_ids(emb, ids)
        for i, e in zip(ids.tolist(), entries, strict=True):
            self._meta[i] = e
            self._type_counts[e.type_id] += 1
        if signatures is not None:
            for i, sig in zip(ids.tolist(), signatures, strict=True):
                self._sigs[i] = np.asarray(sig, np.float16)
        self._next_id += len(entries)
        return ids.tolist()

    def remove_ids(self, ids: Iterable[int]) -> int:
        """Remove references by id; returns how many were removed."""
        arr = np.asarray(sorted(set(ids) & set(self._meta)), dtype=np.int64)
        if arr.size == 0:
            return 0
        removed = int(self._index.remove_ids(faiss.IDSelectorBatch(arr)))
        for i in arr.tolist():
            self._type_counts[self._meta.pop(i).type_id] -= 1
            self._sigs.pop(i, None)
        self._type_counts = +self._type_counts  # drop types with no references left
        return removed

    def remove_type(self, type_id: str) -> int:
        """Remove every reference of ``type_id``; returns how many were removed."""
        return self.remove_ids(i for i, e in self._meta.items() if e.type_id == type_id)

    def neighbours(self, embeddings: FloatArray, k: int) -> list[list[Hit]]:
        """The ``k`` nearest references of each query.

        Args:
            embeddings: ``(q, d)`` float32 unit vectors.
            k: neighbours per query.

        Returns:
            ``q`` lists of at most ``k`` hits, best first.
        """
        emb = np.ascontiguousarray(embeddings, dtype=np.float32).reshape(-1, self.dim)
        k = min(int(k), len(self))
        if k <= 0 or emb.shape[0] == 0:
            return [[] for _ in range(emb.shape[0])]
        scores, ids = self._index.search(emb, k)
        return [
            [Hit(int(i), self._meta[int(i)], float(s)) for s, i in zip(srow, irow, strict=True) if i >= 0]
            for srow, irow in zip(scores, ids, strict=True)
        ]

    def search(
        self,
        embeddings: FloatArray,
        k: int = 5,
        *,
        depth: int | None = None,
        signatures: FloatArray | None = None,
    ) -> list[list[Match]]:
        """The best ``k`` coin types per query.

        Neighbours are aggregated per type: a type's score is its best reference's similarity, and its side is
        that reference's side. With the queries' template ``signatures`` (and a gallery that keeps them), the
        :data:`RERANK_DEPTH` best types by embedding are compared by template too and re-ordered by
        ``score + TEMPLATE_WEIGHT * template``; each match then carries its template correlation.

        Args:
            embeddings: ``(q, d)`` float32 unit vectors.
            k: types per query.
            depth: raw neighbours to aggregate over (default ``max(64, 16 k)``).
            signatures: optional ``(q, *models.template.SIG_SHAPE)`` template signatures of the queries.

        Returns:
            ``q`` lists of at most ``k`` :class:`~models.types.Match`, best first, distinct types.
        """
        if signatures is not None and self.has_signatures:
            return self._reranked(embeddings, signatures, k, depth)
        emb = np.ascontiguousarray(embeddings, dtype=np.float32).reshape(-1, self.dim)
        depth = depth if depth is not None else max(64, 16 * k)
        want = min(k, len(self._type_counts))
        out: list[list[Match]] = [[] for _ in range(emb.shape[0])]
        todo = list(range(emb.shape[0]))
        while todo:
            still = []
            for q, hits in zip(todo, self.neighbours(emb[todo], depth), strict=True):
                best: dict[str, Match] = {}
                for h in hits:  # hits are sorted best first
                    if h.entry.type_id not in best:
                        best[h.entry.type_id] = Match(h.entry.type_id, h.entry.side, h.score)
                out[q] = list(best.values())[:k]
                if len(out[q]) < want and depth < len(self):
                    still.append(q)  # one type filled the neighbourhood: look deeper
            todo, depth = still, depth * 4
        return out

    def _reranked(self, embeddings: FloatArray, signatures: FloatArray, k: int, depth: int | None) -> list[list[Match]]:
        from models.template import correlate, spectra

        if signatures.shape[0] != np.asarray(embeddings).reshape(-1, self.dim).shape[0]:
            raise ValueError(f"{signatures.shape[0]} signatures for a different number of queries")
        short = self.search(embeddings, max(k, RERANK_DEPTH), depth=depth)
        by_type: dict[str, list[int]] = {}
        for i, e in sorted(self._meta.items()):
            by_type.setdefault(e.type_id, []).append(i)
        type_spectra: dict[str, np.ndarray] = {}  # each type's reference spectra, computed once per search
        out: list[list[Match]] = []
        for q, matches in enumerate(short):
            scored = []
            for m in matches:
                if m.type_id not in type_spectra:
                    type_spectra[m.type_id] = spectra(self.signatures(by_type[m.type_id]))
                cc = correlate(signatures[q : q + 1], type_spectra[m.type_id])[0]
                scored.append(Match(m.type_id, m.side, m.score, float(cc.max())))
            scored.sort(key=lambda m: -reranked_score(m.score, m.template))
            out.append(scored[:k])
        return out

    def vectors(self) -> tuple[FloatArray, list[int]]:
        """All stored vectors ``(n, d)`` float32 and their ids."""
        ids = sorted(self._meta)
        if not ids:
            return np.zeros((0, self.dim), np.float32), []
        inner: Any = faiss.downcast_index(self._index.index)
        flat = faiss.rev_swig_ptr(inner.get_xb(), inner.ntotal * self.dim).reshape(-1, self.dim).copy()
        id_map = faiss.vector_to_array(self._index.id_map)
        order = {int(i): n for n, i in enumerate(id_map)}
        return flat[[order[i] for i in ids]], ids

    @property
    def has_signatures(self) -> bool:
        """Whether every reference carries a template signature (an empty gallery has none)."""
        return bool(self._meta) and all(i in self._sigs for i in self._meta)

    def signatures(self, ids: Sequence[int]) -> np.ndarray:
        """``(len(ids), A, R)`` float32 template signatures of the given references.

        Raises:
            KeyError: a reference has none (a gallery enrolled before signatures were kept: re-enrol).
        """
        missing = [i for i in ids if i not in self._sigs]
        if missing:
            raise KeyError(f"{len(missing)} references have no template signature; re-enrol the catalogue")
        if not ids:
            return np.zeros((0, 0, 0), np.float32)
        return np.stack([self._sigs[i] for i in ids]).astype(np.float32)

    def save(self, folder: str | Path) -> Path:
        """Save atomically into ``folder`` (created); returns the manifest path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        index_bytes = faiss.serialize_index(self._index).tobytes()
        meta_lines = "".join(
            json.dumps({"id": i, **asdict(e), "side": e.side.value}, sort_keys=True) + "\n"
            for i, e in sorted(self._meta.items())
        ).encode()
        index_sha = hashlib.sha256(index_bytes).hexdigest()
        meta_sha = hashlib.sha256(meta_lines).hexdigest()
        index_name = f"index-{index_sha[:8]}.faiss"
        meta_name = f"meta-{meta_sha[:8]}.jsonl"
        write_bytes_atomic(folder / index_name, index_bytes)
        write_bytes_atomic(folder / meta_name, meta_lines)
        keep = {index_name, meta_name, MANIFEST}
        sig_doc: dict[str, str] | None = None
        sig_ids = [i for i in sorted(self._meta) if i in self._sigs]
        if sig_ids:
            buf = io.BytesIO()
            np.savez(buf, ids=np.asarray(sig_ids, np.int64), sigs=np.stack([self._sigs[i] for i in sig_ids]))
            sig_bytes = buf.getvalue()
            sig_sha = hashlib.sha256(sig_bytes).hexdigest()
            sig_doc = {"file": f"sigs-{sig_sha[:8]}.npz", "sha256": sig_sha}
            write_bytes_atomic(folder / sig_doc["file"], sig_bytes)
            keep.add(sig_doc["file"])
        manifest = {
            "format": GALLERY_FORMAT,
            "embedder_version": self.embedder_version,
            "dim": self.dim,
            "count": len(self),
            "next_id": self._next_id,
            "index": {"file": index_name, "sha256": index_sha},
            "meta": {"file": meta_name, "sha256": meta_sha},
        }
        if sig_doc is not None:
            manifest["signatures"] = sig_doc
        write_bytes_atomic(folder / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())
        stale = [*folder.glob("index-*.faiss"), *folder.glob("meta-*.jsonl"), *folder.glob("sigs-*.npz")]
        for old in [*stale, *folder.glob(".*.tmp")]:
            if old.name not in keep:
                old.unlink(missing_ok=True)
        return folder / MANIFEST

    @classmethod
    def exists(cls, folder: str | Path) -> bool:
        """Whether ``folder`` holds a saved gallery."""
        return (Path(folder) / MANIFEST).is_file()

    @classmethod
    def load(
        cls,
        folder: str | Path,
        *,
        embedder_version: str | None = None,
        allow_mismatch: bool = False,
        threads: int | None = 1,
    ) -> Gallery:
        """Load a saved gallery.

        Args:
            folder: the gallery folder.
            embedder_version: the version of the embedder in use; a different recorded version raises (or warns
                with ``allow_mismatch``). ``None`` skips the check.
            allow_mismatch: warn instead of raising on an embedder mismatch.
            threads: faiss OpenMP threads.

        Raises:
            FileNotFoundError: no gallery in ``folder``.
            ValueError: the files are damaged or do not belong together.
            GalleryMismatchError: built with another embedder.
        """
        folder = Path(folder)
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file():
            raise FileNotFoundError(f"no gallery in {folder} ({MANIFEST} missing); enrol coin types first")
        doc: dict[str, Any] = json.loads(manifest_path.read_text())
        if doc.get("format") != GALLERY_FORMAT:
            raise ValueError(f"{manifest_path}: unknown gallery format {doc.get('format')!r}")
        recorded = str(doc["embedder_version"])
        if embedder_version is not None and recorded != embedder_version:
            msg = (
                f"gallery {folder} was built with embedder {recorded} but the embedder in use is "
                f"{embedder_version}; re-enrol the catalogue"
            )
            if not allow_mismatch:
                raise GalleryMismatchError(msg)
            warnings.warn(msg, UserWarning, stacklevel=2)
        for part in ("index", "meta", "signatures"):
            if part not in doc:
                continue
            path = folder / doc[part]["file"]
            if not path.is_file() or sha256_file(path) != doc[part]["sha256"]:
                raise ValueError(f"gallery {folder}: {path.name} is missing or does not match {MANIFEST}")
        gallery = cls(int(doc["dim"]), recorded, threads=threads)
        index: Any = faiss.read_index(str(folder / doc["index"]["file"]))
        if not isinstance(index, faiss.IndexIDMap):
            raise ValueError(f"gallery {folder}: {doc['index']['file']} is not an id-mapped index")
        gallery._index = index
        for line in (folder / doc["meta"]["file"]).read_text().splitlines():
            rec = json.loads(line)
            entry = GalleryEntry(
                type_id=rec["type_id"],
                side=Side(rec["side"]),
                design_id=rec.get("design_id", ""),
                source=rec.get("source", ""),
                sha1=rec.get("sha1", ""),
            )
            gallery._meta[int(rec["id"])] = entry
            gallery._type_counts[entry.type_id] += 1
        if "signatures" in doc:
            with np.load(folder / doc["signatures"]["file"], allow_pickle=False) as z:
                for i, sig in zip(z["ids"].tolist(), z["sigs"], strict=True):
                    if int(i) in gallery._meta:
                        gallery._sigs[int(i)] = sig
        gallery._next_id = int(doc.get("next_id", max(gallery._meta, default=-1) + 1))
        if len(gallery._meta) != len(gallery):
            raise ValueError(f"gallery {folder}: {len(gallery)} vectors but {len(gallery._meta)} metadata records")
        return gallery
