"""``cupcheck enroll CATALOG_DIR``: add coin types to the gallery from reference photos or crops, no retraining."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from station.commands.options import Site, add_config_option, add_gallery_option, add_models_option, resolve_site
from station.errors import CliError

if TYPE_CHECKING:
    from models.embedder import Embedder
    from models.enroll import EnrolReport, TypeInfo
    from models.gallery import Gallery


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``enroll`` subcommand."""
    p = subparsers.add_parser(
        "enroll",
        help="enrol coin types from a catalogue folder into the gallery",
        description=(
            "Enrol coin types: CATALOG_DIR/<type_id>/ holds photos or crops of one type (optionally in obverse/ "
            "and reverse/ sub-folders, optionally a coin.toml with name, diameter_mm, lookalikes, and obverse_design "
            "or reverse_design naming a design other types share; any other key is refused, and a side declared a "
            "shared design whose photos look like the type's other side is refused as sides swapped). Crops already "
            "cut (black outside the coin) are embedded as they are; crops that still show their background are cut "
            "again by the detector, as the station cuts coins (unless --no-recut); whole photos go through the "
            "detector (its one whole coin; a photo of several is skipped: --every-coin for trays). Re-enrolling a "
            "type replaces it."
        ),
    )
    p.add_argument("catalog", metavar="CATALOG_DIR", help="folder with one sub-folder per coin type")
    p.add_argument(
        "--home", default=None, help="station home (default: the config's, $CUPCHECK_HOME or the user data dir)"
    )
    add_config_option(p)
    add_gallery_option(p)
    p.add_argument("--crops", action="store_true", help="treat every image as a crop of one coin")
    p.add_argument(
        "--every-coin",
        action="store_true",
        help="each whole photo shows many coins of its type on one side (a tray from `cupcheck snapshot`): every "
        "whole coin is a reference, not only the largest (its cut is kept under the gallery's references/)",
    )
    p.add_argument(
        "--embedder",
        default=None,
        help="embedder checkpoint (default: the embedder of the model in force, as the station loads it; a gallery "
        "enrolled with another cannot be checked with)",
    )
    p.add_argument("--detector", default=None, help="detector weights for whole photos (default: shipped)")
    p.add_argument(
        "--no-recut",
        action="store_true",
        help="embed crops that show their background as they are, without the detector",
    )
    p.add_argument("--rebuild", action="store_true", help="start a new gallery (needed after changing embedder)")
    p.add_argument(
        "--bundle",
        default=None,
        metavar="FILE",
        help="verdict bundle whose embedder enrols and whose enrolment size the new references are checked against "
        "(default: the config's bundle, else the registry's current model, else the shipped one)",
    )
    add_models_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Enrol the catalogue and save the gallery; prints one line per type."""
    from models.enroll import (
        CATALOG_FILE,
        REFERENCE_CROPS,
        CatalogError,
        enroll_catalog,
        gallery_state,
        load_catalog,
        load_detector,
        lookalike_notes,
        save_enrolment,
        shared_design_notes,
        thin_enrolment_notes,
        undeclared_lookalike_warnings,
    )
    from models.files import LockTimeout
    from models.gallery import Gallery, GalleryMismatchError

    site = resolve_site(args)
    model = model_in_force(site, args.bundle)
    per_side = model.per_side
    gallery_dir = site.gallery / "gallery"
    embedder = load_embedder(model, args.embedder)
    loaded = gallery_state(gallery_dir)
    if Gallery.exists(gallery_dir) and not args.rebuild:
        try:
            gallery = Gallery.load(gallery_dir, embedder_version=embedder.version)
        except GalleryMismatchError as err:
            raise CliError(mismatch_message(gallery_dir, embedder, model, args.embedder)) from err
        except ValueError as err:
            raise CliError(str(err)) from err
    else:
        gallery = Gallery(embedder.embed_dim, embedder.version)
    known = load_catalog(gallery_dir / CATALOG_FILE)
    before = enrolled_before(gallery_dir, gallery, known)  # a rebuild starts empty: what the saved gallery holds

    def detector() -> Any:
        try:
            return load_detector(args.detector)
        except (FileNotFoundError, ValueError, RuntimeError) as err:
            raise CliError(f"{err} (or pass --crops if the images are crops)") from err

    try:
        report, infos = enroll_catalog(
            args.catalog,
            gallery,
            embedder,
            crops=True if args.crops else None,
            detector=detector,
            recut=not args.no_recut,
            every_coin=args.every_coin,
            crop_dir=gallery_dir / REFERENCE_CROPS if args.every_coin else None,
            known=known,
        )
    except FileNotFoundError as err:
        raise CliError(str(err)) from err
    except CatalogError as err:
        raise CliError(f"{err}\nnothing was enrolled") from err
    for line in report.warnings:
        print(f"warning: {line}", file=sys.stderr)
    if not report.enrolled:
        raise CliError(f"nothing enrolled from {args.catalog}")
    failed = {t: _why_not_enrolled(report, Path(args.catalog), t) for t in report.catalogue if t not in report.enrolled}
    lost = sorted(t for t in failed if t in before)
    if args.rebuild and lost:  # the folder holds them: the person meant them enrolled, not dropped from the station
        raise CliError(
            "--rebuild would leave out "
            + "; ".join(f"{t}, which {args.catalog} holds: {failed[t]}" for t in lost)
            + ". Put the photos right (or take the folder out, to leave the type out) and enrol again; nothing was "
            "saved"
        )
    try:
        gallery, merged = save_enrolment(
            gallery_dir, gallery, infos, report.enrolled, loaded, replace_all=bool(args.rebuild)
        )
    except (LockTimeout, GalleryMismatchError) as err:
        raise CliError(f"{err}; nothing was saved: enrol again") from err
    for tid, sides in sorted(report.enrolled.items()):
        info = infos[tid]
        detail = ", ".join(f"{n} {side}" for side, n in sorted(sides.items()))
        extra = _details(info)
        old = before.get(tid)
        replaced = ""
        if old:  # a type's folder replaces its references: photos to add go beside the ones enrolled before
            replaced = f" (replacing its {_counts(old)})"
        elif old is not None:
            replaced = " (enrolled again)"
        print(f"enrolled {tid}{extra}: {detail}{replaced}")
    for tid, why in sorted(failed.items()):
        kept = f"; its {_counts(before[tid])} enrolled before are kept" if before.get(tid) else ""
        print(f"warning: {tid} was not enrolled: {why}{kept}")
    dropped = sorted(set(before) - set(gallery.types()))
    if dropped:
        listed = ", ".join(dropped[:10]) + (f" and {len(dropped) - 10} more" if len(dropped) > 10 else "")
        print(f"warning: --rebuild left out {len(dropped)} types its catalogue folder does not hold: {listed}")
    print(
        f"gallery {gallery_dir}: {len(gallery.types())} types, {len(gallery)} references "
        f"(embedder {embedder.version}); skipped {len(report.duplicates)} duplicates, "
        f"{len(report.unreadable)} unreadable, {len(report.no_coin)} without a coin, {len(report.several_coins)} "
        f"with several coins; {report.recut} crops re-cut by the detector, {len(report.uncut)} kept as they are "
        "(no coin found)"
    )
    notes = [
        *shared_design_notes(gallery),
        *lookalike_notes(gallery, merged),
        *thin_enrolment_notes(report.enrolled, per_side),
    ]
    for note in notes:
        print(f"note: {note}")
    for warning in undeclared_lookalike_warnings(gallery, merged):
        print(f"warning: {warning}")
    return 0


def enrolled_before(gallery_dir: Path, gallery: Gallery, known: Mapping[str, TypeInfo]) -> dict[str, dict[str, int]]:
    """The types enrolled before this enrolment, with their references a side (:meth:`Gallery.types`): the loaded
    gallery's, else (``--rebuild`` starts an empty one) the saved gallery's, whatever embedder it was enrolled
    with, else the saved catalogue's types, their references unknown."""
    from models.gallery import Gallery

    if len(gallery):
        return gallery.types()
    try:
        return Gallery.load(gallery_dir).types()  # no embedder check: only its types and counts are read
    except (FileNotFoundError, ValueError):
        return {t: {} for t in known}


def _why_not_enrolled(report: EnrolReport, catalog: Path, type_id: str) -> str:
    """Why a type whose folder the catalogue holds was not enrolled: its photos that were skipped, by why."""
    reasons = (
        ("unreadable", report.unreadable),
        ("duplicates of photos enrolled", report.duplicates),
        ("without a coin", report.no_coin),
        ("with several coins", report.several_coins),
    )
    counts = [
        f"{n} {what}" for what, paths in reasons if (n := sum(1 for p in paths if _type_of(p, catalog) == type_id))
    ]
    if not counts:
        return "none of its photos was enrolled (see the warnings above)"
    return "none of its photos could be used (" + ", ".join(counts) + ")"


def _type_of(path: Path, catalog: Path) -> str:
    """The type folder ``path`` lies in under ``catalog`` (``""`` when outside it)."""
    try:
        return path.relative_to(catalog).parts[0]
    except (ValueError, IndexError):
        return ""


def _counts(sides: Mapping[str, int]) -> str:
    """``3 obverse, 3 reverse``: references a side."""
    return ", ".join(f"{n} {side}" for side, n in sorted(sides.items()))


def _details(info: TypeInfo) -> str:
    """`` (name, 23.25 mm)`` after a type's id: its name where it has one of its own, its diameter where known."""
    parts = [info.name] if info.name != info.type_id else []
    if info.diameter_mm is not None:
        parts.append(f"{info.diameter_mm:g} mm")
    return f" ({', '.join(parts)})" if parts else ""


@dataclass(frozen=True)
class ModelInForce:
    """The verdict model a gallery is enrolled for, as the station loads it.

    Attributes:
        bundle: its bundle file (``None``: the one shipped with the package).
        per_side: the photos a side its calibration galleries held (:attr:`models.bundle.Bundle.enrol_per_side`).
        embedder_file: its embedder's checkpoint (``None``: the shipped weights).
    """

    bundle: Path | None
    per_side: int
    embedder_file: Path | None

    def describe(self) -> str:
        """Which model, for a message."""
        return (
            "the model in force (the shipped bundle)" if self.bundle is None else f"the model in force ({self.bundle})"
        )


def model_in_force(site: Site, explicit: str | None) -> ModelInForce:
    """The verdict model the station would check cups with: ``explicit`` (``--bundle``), else the config's bundle,
    else the registry's model in force, else the shipped bundle. The station's windows and ``verify`` choose it so;
    its embedder is the one the gallery has to be enrolled with (a fine-tuned output layer is the pipeline's: the
    gallery holds the embedder's own vectors).

    Raises:
        CliError: a bundle named by ``--bundle`` or the config cannot be read.
    """
    from models.bundle import BundleError, load_bundle
    from models.registry import RegistryError, resolve_bundle

    given = explicit if explicit is not None else site.config.bundle
    try:
        path = resolve_bundle(site.models, given)
        bundle = load_bundle(path)
        return ModelInForce(path, bundle.enrol_per_side, bundle.path(bundle.embedder_file))
    except (FileNotFoundError, BundleError, RegistryError) as err:
        if given is not None:
            raise CliError(str(err)) from err
        try:
            shipped = load_bundle(None)
        except (FileNotFoundError, BundleError) as shipped_err:
            print(
                f"warning: no verdict bundle to check the enrolment against: {shipped_err} (the shipped embedder is "
                "used)",
                file=sys.stderr,
            )
            return ModelInForce(None, 1, None)
        print(
            f"warning: the model in force cannot be read ({err}): the shipped bundle stands in for it (its embedder; "
            f"an enrolment is checked against the shipped bundle's {shipped.enrol_per_side} photos a side)",
            file=sys.stderr,
        )
        return ModelInForce(None, shipped.enrol_per_side, shipped.path(shipped.embedder_file))


def load_embedder(model: ModelInForce, explicit: str | None) -> Embedder:
    """The embedder a command compares with the gallery: ``explicit`` (``--embedder``), else the model in force's.

    Raises:
        CliError: its checkpoint is missing or unreadable.
    """
    from models.embedder import Embedder

    try:
        return Embedder.load(explicit if explicit is not None else model.embedder_file, threads=2)
    except (FileNotFoundError, ValueError) as err:
        raise CliError(str(err)) from err


def mismatch_message(
    gallery_dir: Path, embedder: Embedder, model: ModelInForce, explicit: str | None, *, command: str = "enroll"
) -> str:
    """Why the gallery cannot be used with ``embedder``, naming the embedder of the model in force and what to do:
    leave out ``--embedder`` when the gallery is the model's; else enrol every type again with the model's embedder
    (the station cannot check cups with the gallery until then), or put a model on the gallery's embedder back in
    force. ``command``: the command that refused (``enroll`` can rebuild the gallery itself)."""
    recorded = gallery_embedder(gallery_dir)
    if explicit is None:
        in_force = embedder.version
    else:
        try:
            in_force = load_embedder(model, None).version
        except CliError:
            in_force = "that cannot be loaded"
    file = "the shipped weights" if model.embedder_file is None else str(model.embedder_file)
    said = f"the gallery in {gallery_dir} was enrolled with embedder {recorded}"
    if explicit is not None and recorded == in_force:
        return (
            f"{said}, the embedder of {model.describe()}, and --embedder {explicit} is {embedder.version}: leave out "
            "--embedder"
        )
    given = "" if explicit is None else f" (--embedder {explicit} is {embedder.version})"
    rebuild = "--rebuild" if command == "enroll" else "`cupcheck enroll CATALOG_DIR --rebuild`"
    without = "" if explicit is None else " without --embedder"
    return (
        f"{said}, but {model.describe()} embeds with {in_force} ({file}){given}: the station cannot check cups with "
        f"this gallery. Enrol every type again with {rebuild}{without}, from a catalogue folder that holds them all, "
        f"or put a model on embedder {recorded} back in force (`cupcheck models`)"
    )


def gallery_embedder(gallery_dir: Path) -> str:
    """The embedder version a saved gallery records (``"unknown"`` when its manifest cannot be read)."""
    import json

    from models.gallery import MANIFEST

    try:
        return str(json.loads((gallery_dir / MANIFEST).read_text())["embedder_version"])
    except (OSError, ValueError, KeyError, TypeError):
        return "unknown"
