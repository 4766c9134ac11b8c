"""Station references: coins a supervisor has ruled on, kept beside a verdict bundle as extra gallery references.

The catalogue's gallery holds a few enrolment photos per side, taken once, under the light of that day. The
station sees every type again and again under its own light; each coin a supervisor confirmed is a reference of
its type under that light. The nightly retrain (:func:`models.retrain.retrain_bundle`) picks such coins from the
training split of the labelled cups, writes them into the candidate bundle's ``references.npz``, and measures the
candidate, with its references, on the holdout and calibration cups it never took a reference from. The station's
own gallery is never written: the references travel with the bundle, so promoting or rolling back a model also
promotes or rolls back the references it was checked with.

A reference of a type no longer enrolled in the station's gallery is left out (it would enrol the type again), and
references made by another embedder are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.files import read_npz, write_npz_atomic
from models.gallery import Gallery, GalleryEntry
from models.types import FloatArray, Side

REFERENCES_FILE = "references.npz"


class ReferencesError(ValueError):
    """A references file is damaged or belongs to another embedder."""


@dataclass(frozen=True)
class StationReferences:
    """Extra gallery references taken from ruled station coins.

    Attributes:
        embeddings: ``(n, d)`` float32 unit embeddings.
        entries: ``n`` gallery records (type, side, design; ``source`` names the cup and coin).
        signatures: ``(n, A, R)`` template signatures, or ``None`` when not every coin kept its crop.
        embedder_version: the embedder that made ``embeddings``.
    """

    embeddings: FloatArray
    entries: tuple[GalleryEntry, ...]
    signatures: np.ndarray | None
    embedder_version: str

    def __post_init__(self) -> None:
        n = len(self.entries)
        if self.embeddings.ndim != 2 or self.embeddings.shape[0] != n:
            raise ReferencesError(f"{n} entries but embeddings of shape {self.embeddings.shape}")
        if self.signatures is not None and self.signatures.shape[0] != n:
            raise ReferencesError(f"{n} entries but signatures of shape {self.signatures.shape}")

    def __len__(self) -> int:
        return len(self.entries)

    @classmethod
    def empty(cls, dim: int, embedder_version: str) -> StationReferences:
        """No references."""
        return cls(np.zeros((0, dim), np.float32), (), None, embedder_version)

    def per_type(self) -> dict[str, int]:
        """References per type."""
        out: dict[str, int] = {}
        for e in self.entries:
            out[e.type_id] = out.get(e.type_id, 0) + 1
        return dict(sorted(out.items()))

    def save(self, path: str | Path) -> Path:
        """Write the references atomically as one ``.npz``; returns its path."""
        arrays: dict[str, np.ndarray] = {
            "embeddings": np.asarray(self.embeddings, np.float32),
            "type_id": np.asarray([e.type_id for e in self.entries], dtype=str),
            "side": np.asarray([e.side.value for e in self.entries], dtype=str),
            "design_id": np.asarray([e.design_id for e in self.entries], dtype=str),
            "source": np.asarray([e.source for e in self.entries], dtype=str),
            "embedder_version": np.asarray(self.embedder_version),
        }
        if self.signatures is not None:
            arrays["signatures"] = np.asarray(self.signatures, np.float16)
        return write_npz_atomic(Path(path), arrays)

    @classmethod
    def load(cls, path: str | Path, embedder_version: str | None = None) -> StationReferences:
        """Read a references file.

        Args:
            path: the ``.npz`` written by :meth:`save`.
            embedder_version: the embedder in use; references made by another one raise.

        Raises:
            FileNotFoundError: no such file.
            ReferencesError: damaged, or made by another embedder.
        """
        path = Path(path)
        try:
            z = read_npz(path, "station references")
            emb = np.asarray(z["embeddings"], np.float32)
            cols = [z[k].tolist() for k in ("type_id", "side", "design_id", "source")]
            sigs = np.asarray(z["signatures"], np.float32) if "signatures" in z else None
            version = str(z["embedder_version"])
            entries = tuple(
                GalleryEntry(type_id=str(t), side=Side(str(s)), design_id=str(d), source=str(src))
                for t, s, d, src in zip(*cols, strict=True)
            )
        except (KeyError, ValueError) as err:
            raise ReferencesError(f"{path}: not a station references file ({err})") from err
        if embedder_version is not None and version != embedder_version:
            raise ReferencesError(
                f"{path} holds references made by embedder {version}, but the embedder in use is {embedder_version}"
            )
        return cls(emb, entries, sigs, version)


def same_references(a: StationReferences | None, b: StationReferences | None) -> bool:
    """Whether ``a`` and ``b`` add the same references to a gallery (``None`` and an empty set alike): the same
    records, embeddings and signatures, made by the same embedder."""
    if not a or not b:
        return not a and not b
    if a.embedder_version != b.embedder_version or a.entries != b.entries:
        return False
    if not np.array_equal(a.embeddings, b.embeddings):
        return False
    if a.signatures is None or b.signatures is None:
        return a.signatures is None and b.signatures is None
    return np.array_equal(a.signatures, b.signatures)


def with_references(gallery: Gallery, refs: StationReferences | None) -> Gallery:
    """A new in-memory gallery: ``gallery``'s references plus ``refs`` of the types ``gallery`` enrols.

    ``gallery`` itself is not changed. When the gallery keeps template signatures and ``refs`` carry none, no
    reference is added: a gallery with some references unsigned could not score templates at all.

    Raises:
        ReferencesError: ``refs`` were made by another embedder or have another dimension.
    """
    vectors, ids = gallery.vectors()
    entries = gallery.entries
    out = Gallery(gallery.dim, gallery.embedder_version, threads=None)
    sigs = gallery.signatures(ids) if gallery.has_signatures else None
    out.add(vectors, [entries[i] for i in ids], sigs)
    if refs is None or len(refs) == 0:
        return out
    if refs.embedder_version != gallery.embedder_version:
        raise ReferencesError(
            f"station references made by embedder {refs.embedder_version} cannot join a gallery built with "
            f"{gallery.embedder_version}"
        )
    if refs.embeddings.shape[1] != gallery.dim:
        dim = refs.embeddings.shape[1]
        raise ReferencesError(f"station references have {dim} dimensions, the gallery {gallery.dim}")
    if sigs is not None and refs.signatures is None:
        return out
    enrolled = {e.type_id for e in entries.values()}
    keep = [i for i, e in enumerate(refs.entries) if e.type_id in enrolled]
    add_sigs = None if sigs is None or refs.signatures is None else refs.signatures[keep]
    out.add(refs.embeddings[keep], [refs.entries[i] for i in keep], add_sigs)
    return out
