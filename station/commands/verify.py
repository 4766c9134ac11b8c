"""``cupcheck verify IMAGE... --expect TYPE``: PASS or FLAG each cup photo for the expected coin type."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.bundle import BundleError
from station.commands.options import add_config_option, add_gallery_option, add_models_option, resolve_site
from station.errors import CliError

if TYPE_CHECKING:
    from models.types import Frame, UInt8Array, Verdict


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``verify`` subcommand."""
    p = subparsers.add_parser(
        "verify",
        help="check that every coin in each cup photo is the expected type (PASS or FLAG)",
        description="Each IMAGE is one photo of a cup (or, with --crops, a folder of single-coin crops forming "
        "one cup, its crops numbered in natural order: coin2 before coin10). A cup PASSes only when the voter's "
        "probability reaches the threshold that guarantees the bundle's precision, and 0.5 whatever a looser "
        "--target-precision certifies; otherwise it is FLAGged with reasons. Exit status 0 whatever the verdicts; "
        "2 for an unknown expected type, an unreadable image (named; the other cups are still judged and printed) or a "
        "missing model or gallery.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="cup photos (or crop folders with --crops)")
    p.add_argument("--expect", required=True, metavar="TYPE", help="the coin type every coin should be")
    p.add_argument(
        "--count",
        type=int,
        default=None,
        metavar="N",
        help="how many coins each cup should hold (as an orders.csv count): a cup of another number is flagged",
    )
    p.add_argument("--crops", action="store_true", help="each argument is a folder of single-coin crops")
    p.add_argument(
        "--target-precision",
        type=float,
        default=None,
        metavar="P",
        help="re-choose the threshold for this PASS precision from the bundle's calibration scores (never under "
        "0.5: a cup the voter scores under it is more likely wrong than right)",
    )
    add_models_option(p)
    add_gallery_option(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--overlay",
        type=Path,
        default=None,
        metavar="DIR",
        help="write each cup photo (with --crops: its crops side by side) into DIR as PNG with its coins numbered "
        "as the reasons number them (green: the expected type; amber: a coin the verdict names) and the verdict "
        "under it",
    )
    p.add_argument(
        "--home", default=None, help="station home (default: the config's, $CUPCHECK_HOME or the user data dir)"
    )
    add_config_option(p)
    p.add_argument(
        "--bundle",
        default=None,
        metavar="FILE",
        help="verdict bundle (default: the registry's current model, else the shipped one)",
    )
    p.add_argument("--detector", default=None, metavar="DIR", help="detector folder (default: the bundle's)")
    p.set_defaults(func=run)


MAX_COUNT = 10_000
"""The most coins ``--count`` may name (more is a slip: no cup holds them)."""
EXIT_UNREADABLE = 2
"""Exit status when an image or crop folder could not be read (the others are judged and printed all the same)."""


def natural_key(name: str) -> tuple[str | int, ...]:
    """A file name's sort key in natural order: its runs of digits compared as numbers, so ``coin2`` comes before
    ``coin10`` as a person numbering crops means it (plain text order puts ``coin10`` to ``coin12`` between them)."""
    parts = re.split(r"(\d+)", name.casefold())  # text, digits, text, ...: the digit runs at odd places
    return tuple(int(part) if k % 2 else part for k, part in enumerate(parts))


def _crop_folder(folder: Path) -> list[tuple[str, UInt8Array]]:
    """One cup's crops, each with its file name, in natural order (:func:`natural_key`: the reasons number the
    coins so, and the JSON names each coin's file): every file of ``folder`` (hidden ones aside) must be a readable
    crop.

    A file left unread would be a coin left unjudged, and the cup could PASS without it, so a sub-folder, a GIF or
    any other file that is not a readable JPEG, PNG, BMP, WebP or TIFF refuses the cup instead.

    Raises:
        CliError: not a folder, a sub-folder in it, or a file that is not a readable crop.
    """
    from models.enroll import IMAGE_SUFFIXES, read_image

    if not folder.is_dir():
        raise CliError(f"{folder} is not a folder of crops")
    images = []
    for path in sorted(folder.iterdir(), key=lambda p: (natural_key(p.name), p.name)):
        if path.name.startswith("."):  # a file manager's own (.DS_Store)
            continue
        if path.is_dir():
            raise CliError(
                f"{folder} holds a folder, {path.name}: one cup's crops lie side by side in one folder, and a crop "
                "in a sub-folder would go unjudged"
            )
        img = read_image(path) if path.suffix.lower() in IMAGE_SUFFIXES else None
        if img is None:
            raise CliError(
                f"cannot read {path} as a coin crop (JPEG, PNG, BMP, WebP or TIFF): the cup is not judged without it"
            )
        images.append((path.name, img))
    return images


def _photo(name: str) -> Frame:
    """One cup's photograph.

    Raises:
        CliError: a folder (with a hint at ``--crops``), no such file, or not a readable image.
    """
    from models.frames import read_frame

    try:
        return read_frame(name)
    except (FileNotFoundError, ValueError) as err:
        hint = " (a folder of one cup's crops takes --crops)" if Path(name).is_dir() else ""
        raise CliError(f"cannot read image {err}{hint}") from err


def _grey(image: UInt8Array) -> bool:
    """Whether a BGR photo's three channels are one (a greyscale photo read as colour)."""
    import numpy as np

    return bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2]))


def verdict_json(path: str, verdict: Verdict, files: list[str] | None = None) -> dict[str, Any]:
    """The JSON record of one cup; ``threshold`` is the one its score was held to (never under 0.5).

    Args:
        path: the photo or crop folder as given.
        verdict: its verdict.
        files: with ``--crops``, each crop's file name in the order its coins are numbered: each coin's record then
            names its ``file``.
    """
    coins = []
    for k, c in enumerate(verdict.coins):
        best = c.matches[0] if c.matches else None
        coins.append(
            {
                "bbox": [round(v, 1) for v in c.bbox],
                "match": best.type_id if best else None,
                "side": best.side.value if best else None,
                "score": round(best.score, 4) if best else None,
                "is_coin": c.is_coin,
                "attention": round(c.attention, 4),
                "suspicious": c.suspicious,
                "shared": c.shared,
                **({"file": files[k]} if files is not None and k < len(files) else {}),
            }
        )
    return {
        "path": path,
        "verdict": verdict.decision.value,
        "expected": verdict.expected_type,
        "expected_count": verdict.expected_count,
        "p_correct": round(verdict.p_correct, 5),
        "threshold": verdict.threshold if math.isfinite(verdict.threshold) else None,
        "n_coins": sum(1 for c in verdict.coins if c.is_coin),
        "reasons": list(verdict.reasons),
        "coins": coins,
        "unchecked": [list(b) for b in verdict.unchecked],
        "turn_first": verdict.turn_first,
        "model_version": verdict.model_version,
        "timings_ms": {k: round(v, 1) for k, v in verdict.timings_ms.items()},
    }


def run(args: argparse.Namespace) -> int:
    """Verify every cup and print the verdicts."""
    from models.gallery import GalleryMismatchError
    from models.pipeline import Pipeline, UnknownTypeError
    from station.commands.pictures import OverlayFolder
    from station.controllers.overlay import crops_picture, verdict_picture

    if args.target_precision is not None and not 0 < args.target_precision < 1:
        raise CliError("--target-precision must be in (0, 1)")
    if args.count is not None and not 1 <= args.count <= MAX_COUNT:
        raise CliError(f"--count is the coins an order asks for, from 1 to {MAX_COUNT}, not {args.count}")
    # Read every input first: a bad path is reported before any model is loaded, and the other cups are judged. A
    # photo is decoded again when its turn comes, so a batch of large photos is not held in memory all at once.
    cups: list[tuple[str, list[tuple[str, UInt8Array]] | None]] = []
    unreadable = 0
    for name in args.images:
        try:
            if args.crops:
                cups.append((name, _crop_folder(Path(name))))
            else:
                _photo(name)  # readable; decoded again when judged
                cups.append((name, None))
        except CliError as err:
            print(f"cupcheck verify: error: {err}", file=sys.stderr)
            unreadable += 1
    if not cups:
        if args.json:
            print(json.dumps({"cups": []}, indent=1))
        return EXIT_UNREADABLE
    site = resolve_site(args)  # with --config, the station's home, models, gallery, bundle and precision
    from models.registry import RegistryError, registry_file, resolve_bundle

    config_given = args.config is not None
    bundle = args.bundle if args.bundle is not None or not config_given else site.config.bundle
    precision = args.target_precision
    if precision is None and config_given:
        precision = site.config.target_precision
    if bundle is None and site.models != site.home and not registry_file(site.models).is_file():
        print(
            f"warning: no model registry at {registry_file(site.models)} (is the share mounted?): "
            "the shipped bundle judges these cups",
            file=sys.stderr,
        )
    try:
        pipeline = Pipeline.load(
            site.home,
            resolve_bundle(site.models, bundle),
            with_detector=not args.crops,
            detector_path=args.detector,
            target_precision=precision,
            gallery_home=site.gallery,
            warn=lambda note: print(f"warning: {note}", file=sys.stderr),
        )
    except (FileNotFoundError, BundleError, GalleryMismatchError, RegistryError, ValueError) as err:
        raise CliError(f"{err}") from err
    if pipeline.uncertified:
        print(f"warning: {pipeline.uncertified}", file=sys.stderr)
    try:
        pipeline.check_type(args.expect)
    except UnknownTypeError as err:
        raise CliError(str(err)) from err
    from tqdm import tqdm

    pictures = None if args.overlay is None else OverlayFolder(args.overlay)
    results = []
    for name, content in tqdm(cups, desc="verify", unit="cup", disable=len(cups) < 2, file=sys.stderr):
        files: list[str] | None = None
        if content is not None:
            files = [file for file, _ in content]
            crops = [image for _, image in content]
            verdict = pipeline.run_crops(crops, args.expect, expected_count=args.count)
            if pictures is not None:
                pictures.write(name, crops_picture(crops, verdict, Path(name).name))
        else:
            try:
                frame = _photo(name)
            except CliError as err:  # changed since it was read
                print(f"cupcheck verify: error: {err}", file=sys.stderr)
                unreadable += 1
                continue
            if _grey(frame.image):
                print(
                    f"warning: {name} has no colour: the models judge colour photographs, and a grey one can change "
                    "what they see",
                    file=sys.stderr,
                )
            verdict = pipeline.run(frame, args.expect, expected_count=args.count)
            if pictures is not None:
                pictures.write(name, verdict_picture(frame.image, verdict, Path(name).name))
        results.append(verdict_json(name, verdict, files))
    if args.json:
        print(json.dumps({"cups": results}, indent=1))
    else:
        for r in results:
            print(f"{r['path']}: {r['verdict'].upper()} {r['expected']} p={r['p_correct']:.3f} ({r['n_coins']} coins)")
            for reason in r["reasons"]:
                print(f"  - {reason}")
            if r["turn_first"]:
                print("  next: turn the coins named over and check the cup again before a supervisor looks")
    if pictures is not None and pictures.written:
        print(f"pictures: {len(pictures.written)} in {args.overlay}", file=sys.stderr)
    sys.stdout.flush()
    return EXIT_UNREADABLE if unreadable else 0
