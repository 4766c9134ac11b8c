"""Enrolment from the supervisor window: add the coin types of a catalogue folder to the station's gallery.

The work is :func:`enrol_folder` (no Qt): the same steps as ``cupcheck enroll`` — embed the catalogue's images
with the model's embedder, replace those types in the gallery, save it and its ``catalog.json``. The review
window runs it on a background thread. A running operator window reads its gallery again when it changes
(:mod:`station.controllers.model_follow`, every minute), so new types reach it without a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.embedder import Embedder
from models.enroll import (
    CATALOG_FILE,
    REFERENCE_CROPS,
    enroll_catalog,
    gallery_state,
    load_catalog,
    load_detector,
    save_enrolment,
    shared_design_notes,
)
from models.gallery import Gallery


@dataclass(frozen=True)
class EnrolResult:
    """What an enrolment did.

    Attributes:
        enrolled: ``type_id -> {side: references}`` for the types (re-)enrolled.
        warnings: one line per skipped file.
        n_types: types in the gallery afterwards.
        n_references: references in the gallery afterwards.
        shared_designs: one line per design several enrolled types show (:func:`models.enroll.shared_design_notes`).
    """

    enrolled: dict[str, dict[str, int]]
    warnings: tuple[str, ...]
    n_types: int
    n_references: int
    shared_designs: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line for the status bar."""
        skipped = f", {len(self.warnings)} files skipped" if self.warnings else ""
        n_shared = len(self.shared_designs)
        shared = f" ({n_shared} design{'s' if n_shared > 1 else ''} shared by several types)" if n_shared else ""
        return (
            f"Enrolled {len(self.enrolled)} types ({', '.join(sorted(self.enrolled)[:6])}"
            f"{' …' if len(self.enrolled) > 6 else ''}){skipped}; the gallery now holds {self.n_types} types{shared}."
        )


@dataclass(frozen=True)
class Enrolment:
    """Where enrolment writes and with which embedder.

    Attributes:
        gallery_dir: the station's gallery folder (``HOME/gallery``).
        embedder: loads the model's embedder (called on the background thread).
    """

    gallery_dir: Path
    embedder: Callable[[], Embedder]


def enrol_folder(folder: Path, enrolment: Enrolment, *, every_coin: bool = False) -> EnrolResult:
    """Enrol every type of a catalogue folder into the gallery and save it.

    Crops are embedded as they are; whole photos go through the detector (loaded only if one is met), which gives
    their largest coin, or with ``every_coin`` (tray photos) every whole coin, its cut kept under the gallery's
    ``references/``.

    Raises:
        FileNotFoundError: no such folder, or nothing in it could be enrolled.
        ValueError, GalleryMismatchError: the gallery belongs to another embedder or is damaged.
        models.files.LockTimeout: another enrolment held the gallery too long.
    """
    embedder = enrolment.embedder()
    gallery_dir = enrolment.gallery_dir
    loaded = gallery_state(gallery_dir)
    if Gallery.exists(gallery_dir):
        gallery = Gallery.load(gallery_dir, embedder_version=embedder.version)
    else:
        gallery = Gallery(embedder.embed_dim, embedder.version)
    report, infos = enroll_catalog(
        folder,
        gallery,
        embedder,
        detector=load_detector,
        progress=False,
        every_coin=every_coin,
        crop_dir=gallery_dir / REFERENCE_CROPS if every_coin else None,
        known=load_catalog(gallery_dir / CATALOG_FILE),  # a folder without coin.toml keeps the type's entry
    )
    if not report.enrolled:
        raise FileNotFoundError(f"nothing enrolled from {folder}: " + "; ".join(report.warnings[:3]))
    gallery, _ = save_enrolment(gallery_dir, gallery, infos, report.enrolled, loaded)
    return EnrolResult(
        dict(report.enrolled),
        tuple(report.warnings),
        len(gallery.types()),
        len(gallery),
        tuple(shared_design_notes(gallery)),
    )
