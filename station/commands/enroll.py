"""``cupcheck enroll CATALOG_DIR``: add coin types to the gallery from reference photos or crops, no retraining."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from station.commands.options import add_config_option, add_gallery_option, add_models_option, resolve_site
from station.errors import CliError


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``enroll`` subcommand."""
    p = subparsers.add_parser(
        "enroll",
        help="enrol coin types from a catalogue folder into the gallery",
        description=(
            "Enrol coin types: CATALOG_DIR/<type_id>/ holds photos or crops of one type (optionally in obverse/ "
            "and reverse/ sub-folders, optionally a coin.toml with name, diameter_mm, lookalikes, and obverse_design "
            "or reverse_design naming a design other types share). Crops already "
            "cut (black outside the coin) are embedded as they are; crops that still show their background are cut "
            "again by the detector, as the station cuts coins (unless --no-recut); whole photos go through the "
            "detector (largest coin). Re-enrolling a type replaces it."
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
    p.add_argument("--embedder", default=None, help="embedder checkpoint (default: the shipped weights)")
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
        help="verdict bundle whose enrolment size the new references are checked against (default: the registry's "
        "current model, else the shipped one)",
    )
    add_models_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Enrol the catalogue and save the gallery; prints one line per type."""
    from models.embedder import Embedder
    from models.enroll import (
        CATALOG_FILE,
        REFERENCE_CROPS,
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
    per_side = _per_side(site.models, args.bundle)
    gallery_dir = site.gallery / "gallery"
    try:
        embedder = Embedder.load(args.embedder, threads=2)
    except (FileNotFoundError, ValueError) as err:
        raise CliError(str(err)) from err
    loaded = gallery_state(gallery_dir)
    if Gallery.exists(gallery_dir) and not args.rebuild:
        try:
            gallery = Gallery.load(gallery_dir, embedder_version=embedder.version)
        except GalleryMismatchError as err:
            raise CliError(f"{err} (use --rebuild)") from err
        except ValueError as err:
            raise CliError(str(err)) from err
    else:
        gallery = Gallery(embedder.embed_dim, embedder.version)
    known = load_catalog(gallery_dir / CATALOG_FILE)
    before = gallery.types() if len(gallery) else {t: {} for t in known}  # a rebuild starts empty: the catalogue

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
    for line in report.warnings:
        print(f"warning: {line}", file=sys.stderr)
    if not report.enrolled:
        raise CliError(f"nothing enrolled from {args.catalog}")
    try:
        gallery, merged = save_enrolment(
            gallery_dir, gallery, infos, report.enrolled, loaded, replace_all=bool(args.rebuild)
        )
    except (LockTimeout, GalleryMismatchError) as err:
        raise CliError(f"{err}; nothing was saved: enrol again") from err
    for tid, sides in sorted(report.enrolled.items()):
        info = infos[tid]
        detail = ", ".join(f"{n} {side}" for side, n in sorted(sides.items()))
        extra = f" ({info.name}, {info.diameter_mm} mm)" if info.name != tid or info.diameter_mm else ""
        old = before.get(tid)
        replaced = ""
        if old:  # a type's folder replaces its references: photos to add go beside the ones enrolled before
            replaced = " (replacing its " + ", ".join(f"{n} {side}" for side, n in sorted(old.items())) + ")"
        elif old is not None:
            replaced = " (enrolled again)"
        print(f"enrolled {tid}{extra}: {detail}{replaced}")
    dropped = sorted(set(before) - set(gallery.types()))
    if dropped:
        listed = ", ".join(dropped[:10]) + (f" and {len(dropped) - 10} more" if len(dropped) > 10 else "")
        print(f"warning: --rebuild left out {len(dropped)} types its catalogue folder does not hold: {listed}")
    print(
        f"gallery {gallery_dir}: {len(gallery.types())} types, {len(gallery)} references "
        f"(embedder {embedder.version}); skipped {len(report.duplicates)} duplicates, "
        f"{len(report.unreadable)} unreadable, {len(report.no_coin)} without a coin; {report.recut} crops re-cut "
        f"by the detector, {len(report.uncut)} kept as they are (no coin found)"
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


def _per_side(models: Path, explicit: str | None) -> int:
    """Photos per side the verdict bundle in force was calibrated with (a bad explicit ``--bundle`` is an error)."""
    from models.bundle import BundleError, load_bundle
    from models.registry import RegistryError, resolve_bundle

    try:
        return load_bundle(resolve_bundle(models, explicit)).enrol_per_side
    except (FileNotFoundError, BundleError, RegistryError) as err:
        if explicit is not None:
            raise CliError(str(err)) from err
        try:
            shipped = load_bundle(None).enrol_per_side
        except (FileNotFoundError, BundleError) as shipped_err:
            print(f"warning: no verdict bundle to check the enrolment against: {shipped_err}", file=sys.stderr)
            return 1
        print(
            f"warning: the model in force cannot be read ({err}): the enrolment is checked against the shipped "
            f"bundle's {shipped} photos a side",
            file=sys.stderr,
        )
        return shipped
