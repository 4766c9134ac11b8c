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
    thin_enrolment_notes,
    undeclared_lookalike_warnings,
)
from models.gallery import Gallery


@dataclass(frozen=True)
class EnrolResult:
    """What an enrolment did.

    Attributes:
        enrolled: ``type_id -> {side: references}`` for the types (re-)enrolled.
        warnings: one line per skipped file or problem (:attr:`models.enroll.EnrolReport.warnings`).
        n_types: types in the gallery afterwards.
        n_references: references in the gallery afterwards.
        shared_designs: one line per design several enrolled types show (:func:`models.enroll.shared_design_notes`).
        lookalikes: one line per group of designs the camera cannot tell apart that nothing declares
            (:func:`models.enroll.undeclared_lookalike_warnings`): a cup of one may PASS as another.
        thin: one line per enrolled type with fewer references a side than the verdict model was calibrated with
            (:func:`models.enroll.thin_enrolment_notes`).
        skipped: files left out (duplicates, unreadable, without a coin, or with several:
            :attr:`models.enroll.EnrolReport.skipped`); the other warnings skip no photo.
    """

    enrolled: dict[str, dict[str, int]]
    warnings: tuple[str, ...]
    n_types: int
    n_references: int
    shared_designs: tuple[str, ...] = ()
    lookalikes: tuple[str, ...] = ()
    thin: tuple[str, ...] = ()
    skipped: int = 0

    def summary(self) -> str:
        """What the enrolment did, for the status bar: the types enrolled, then what ``cupcheck enroll`` would warn
        about (designs alike that nothing declares, in full, since they say what to do) and note (types with fewer
        references than the model was calibrated with)."""
        skipped = f", {self.skipped} file{'s' if self.skipped != 1 else ''} skipped" if self.skipped else ""
        n_shared = len(self.shared_designs)
        shared = f" ({n_shared} design{'s' if n_shared > 1 else ''} shared by several types)" if n_shared else ""
        text = (
            f"Enrolled {len(self.enrolled)} types ({', '.join(sorted(self.enrolled)[:6])}"
            f"{' …' if len(self.enrolled) > 6 else ''}){skipped}; the gallery now holds {self.n_types} types{shared}."
        )
        for line in self.lookalikes:
            text += f" Warning: {line}."
        if len(self.thin) == 1:
            text += f" Note: {self.thin[0]}."
        elif self.thin:
            text += (
                f" Note: {len(self.thin)} types have fewer references a side than the verdict model was calibrated "
                "with: enrol more photos of them for their precision guarantee to hold."
            )
        return text


@dataclass(frozen=True)
class Enrolment:
    """Where enrolment writes and with which embedder.

    Attributes:
        gallery_dir: the station's gallery folder (``HOME/gallery``).
        embedder: loads the model's embedder (called on the background thread).
        per_side: the references a side the model's calibration galleries held
            (:attr:`models.bundle.Bundle.enrol_per_side`), below which a type is noted; ``None``: the shipped
            bundle's, as ``cupcheck enroll`` takes when the model in force cannot be read.
    """

    gallery_dir: Path
    embedder: Callable[[], Embedder]
    per_side: int | None = None


def enrol_folder(folder: Path, enrolment: Enrolment, *, every_coin: bool = False) -> EnrolResult:
    """Enrol every type of a catalogue folder into the gallery and save it.

    Crops are embedded as they are; whole photos go through the detector (loaded only if one is met), which gives
    their one whole coin (a photo of several is skipped, named), or with ``every_coin`` (tray photos) every whole
    coin, its cut kept under the gallery's ``references/``. The result carries what ``cupcheck enroll`` warns
    about and notes, for the window to show.

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
    gallery, merged = save_enrolment(gallery_dir, gallery, infos, report.enrolled, loaded)
    return EnrolResult(
        dict(report.enrolled),
        tuple(report.warnings),
        len(gallery.types()),
        len(gallery),
        tuple(shared_design_notes(gallery)),
        tuple(undeclared_lookalike_warnings(gallery, merged)),
        tuple(thin_enrolment_notes(report.enrolled, _per_side(enrolment))),
        report.skipped,
    )


def _per_side(enrolment: Enrolment) -> int:
    """The references a side a type is checked against: the enrolment's, else the shipped bundle's (1 when it
    cannot be read: nothing is noted)."""
    if enrolment.per_side is not None:
        return enrolment.per_side
    from models.bundle import BundleError, load_bundle

    try:
        return load_bundle(None).enrol_per_side
    except (FileNotFoundError, BundleError):
        return 1
