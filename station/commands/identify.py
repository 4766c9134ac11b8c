"""``cupcheck identify IMAGE...``: the gallery's best coin types for every coin in each image."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from models.types import CoinInstance, Frame
from station.commands.options import add_config_option, add_gallery_option, add_models_option, resolve_site
from station.errors import CliError


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``identify`` subcommand."""
    p = subparsers.add_parser(
        "identify",
        help="name the coins in images using the enrolled gallery",
        description="Detect the coins of each image (or, with --crop, take each image as one coin) and list the "
        "gallery's best matching types. With a gallery that keeps template signatures (any gallery enrolled by this "
        "version) the embedding's ten best types are re-ranked by rotation-invariant template correlation, and "
        "each match also reports it as 'template'.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--crop", action="store_true", help="each image is a crop of one coin (no detection)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("-k", type=int, default=5, help="matches per coin (default 5)")
    p.add_argument(
        "--overlay",
        type=Path,
        default=None,
        metavar="DIR",
        help="write each image into DIR as PNG with its coins outlined and numbered as listed, each with its best type",
    )
    p.add_argument(
        "--home", default=None, help="station home (default: the config's, $CUPCHECK_HOME or the user data dir)"
    )
    add_config_option(p)
    add_gallery_option(p)
    p.add_argument(
        "--embedder",
        default=None,
        help="embedder checkpoint (default: the embedder of the model in force, which the gallery is enrolled with)",
    )
    p.add_argument(
        "--bundle",
        default=None,
        metavar="FILE",
        help="verdict bundle whose embedder is used (default: the config's bundle, else the registry's current model, "
        "else the shipped one)",
    )
    add_models_option(p)
    p.add_argument("--detector", default=None, help="detector weights (default: the shipped weights)")
    p.set_defaults(func=run)


def _coin_json(number: int, inst: CoinInstance, matches: list[Any]) -> dict[str, Any]:
    return {
        "number": number,
        "bbox": [round(float(v), 2) for v in inst.bbox],
        "confidence": round(float(inst.confidence), 4),
        "center": [round(float(inst.center[0]), 2), round(float(inst.center[1]), 2)],
        "diameter_px": round(inst.diameter_px, 2),
        "diameter_mm": inst.diameter_mm,
        "partial": bool(inst.partial),
        "matches": [_match_json(m) for m in matches],
    }


def _match_json(m: Any) -> dict[str, Any]:
    out = {"type": m.type_id, "side": m.side.value, "score": round(m.score, 4)}
    if m.template is not None:
        out["template"] = round(m.template, 4)
    return out


def run(args: argparse.Namespace) -> int:
    """Identify the coins; exit 2 when an image could not be read (the others are still reported)."""
    from calibration.camera import load_calibration
    from calibration.scale import CalibrationError
    from models.enroll import load_detector, numbered_coins, whole_image_coin
    from models.frames import draw_overlay, read_frame
    from models.gallery import Gallery, GalleryMismatchError
    from models.template import signatures
    from station.commands.detect import for_photo
    from station.commands.enroll import load_embedder, mismatch_message, model_in_force
    from station.commands.pictures import OverlayFolder

    if args.k < 1:
        raise CliError("-k must be at least 1")
    site = resolve_site(args)
    gallery_dir = site.gallery / "gallery"
    try:  # the station's millimetres and cup region, as detect uses them
        calibration = load_calibration(site.home)
    except CalibrationError as err:
        raise CliError(f"invalid station calibration in {site.home}: {err}") from err
    model = model_in_force(site, args.bundle)  # the station's: the gallery is enrolled with its embedder
    embedder = load_embedder(model, args.embedder)
    try:
        gallery = Gallery.load(gallery_dir, embedder_version=embedder.version)
    except FileNotFoundError as err:
        raise CliError(f"the gallery is empty: {err} (run `cupcheck enroll CATALOG_DIR`)") from err
    except GalleryMismatchError as err:
        raise CliError(mismatch_message(gallery_dir, embedder, model, args.embedder, command="identify")) from err
    except ValueError as err:
        raise CliError(str(err)) from err
    if len(gallery) == 0:
        raise CliError(f"the gallery in {gallery_dir} is empty; run `cupcheck enroll CATALOG_DIR`")
    from tqdm import tqdm

    detector = None
    failed = False
    results = []
    pictures = None if args.overlay is None else OverlayFolder(args.overlay)
    for name in tqdm(args.images, desc="identify", unit="image", disable=len(args.images) < 2, file=sys.stderr):
        try:
            image = read_frame(name).image
        except (FileNotFoundError, ValueError) as err:
            print(f"cupcheck identify: error: cannot read image {err}", file=sys.stderr)
            failed = True
            continue
        if args.crop:
            inst, crop = whole_image_coin(image)
            found, coins = [inst], [(1, inst, crop)]
        else:
            if detector is None:
                try:
                    detector = load_detector(args.detector)
                except (FileNotFoundError, ValueError, RuntimeError) as err:
                    raise CliError(f"{err} (or pass --crop for crops)") from err
                if calibration is not None:
                    detector = detector.with_calibration(calibration)
            frame = Frame(image=image, source=name)
            found = for_photo(detector, calibration, image, name).detect(frame)
            coins = numbered_coins(frame, found, embedder.prep.input_size)  # numbered as verify's reasons
        crops = [c.image for _, _, c in coins]
        emb = embedder.embed(crops)
        sigs = signatures(crops) if gallery.has_signatures else None
        matches = gallery.search(emb, args.k, signatures=sigs) if len(coins) else []
        listed = [_coin_json(n, i, m) for (n, i, _), m in zip(coins, matches, strict=True)]
        results.append({"path": name, "coins": listed})
        if pictures is not None:
            named = [m[0].type_id if m else "?" for m in matches]
            pictures.write(name, draw_overlay(image, found, f"{len(coins)} coins", named))
    if args.json:
        print(json.dumps({"images": results}, indent=1))
    else:
        for res in results:
            print(f"{res['path']}: {len(res['coins'])} coin(s)")
            for coin in res["coins"]:
                best = ", ".join(f"{m['type']}/{m['side']} {m['score']:.3f}" for m in coin["matches"])
                print(f"  coin {coin['number']} at {coin['center']} d={coin['diameter_px']:.0f}px: {best}")
    return 2 if failed else 0
