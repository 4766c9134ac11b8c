"""``cupcheck synth`` renders a synthetic coin-cup data set; ``cupcheck synth-sheet`` draws a contact sheet of it."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from models.types import CupKind
from station.commands.options import check_at_least, seed_number
from station.errors import CliError

_DEFAULT_REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"


def _default_real_root() -> Path | None:
    env = os.environ.get("CUPCHECK_SHARED")
    root = Path(env) / "data" / "real" if env else _DEFAULT_REAL
    return root if root.is_dir() else None


DATASET_PARTS = ("manifest.json", "mint.json", "yolo", "crops", "empty")
"""What a data set written by ``cupcheck synth`` holds at its top."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synth`` and ``synth-sheet`` subcommands."""
    p = subparsers.add_parser("synth", help="render a synthetic coin-cup data set (YOLO-seg, crops, manifest)")
    p.add_argument("--types", type=int, required=True, help="coin types in the generated mint (>= 2)")
    p.add_argument("--cups", type=int, required=True, help="cup images to render")
    p.add_argument("--seed", type=seed_number, default=0, help="data set seed (default 0)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--image-size", type=int, default=640, help="image side in pixels (default 640)")
    p.add_argument(
        "--kinds",
        default=None,
        help="comma-separated cup kinds to draw (pure,contaminated,obverse_only,foreign_object,empty); default all",
    )
    p.add_argument("--kind-weights", default=None, help="comma-separated weights, one per --kinds entry")
    p.add_argument(
        "--max-coins",
        type=int,
        default=30,
        help="most coins in one cup (default 30; at least 3 when contaminated cups are drawn: two of the type and "
        "the intruder)",
    )
    p.add_argument(
        "--reverse-share",
        type=float,
        default=0.5,
        help="probability that a coin lies reverse up (default 0.5: tossed; 0.9: spread reverse up)",
    )
    p.add_argument(
        "--first-index",
        type=int,
        default=0,
        help="index of the first cup (default 0); another range of the same seed gives other cups of the same "
        "mint, e.g. enrolment photos: --first-index 100000 --kinds pure --out DATA/enrol",
    )
    p.add_argument("--crop-size", type=int, default=128, help="side of the embedder crops (default 128; 8 to 4096)")
    p.add_argument(
        "--empty-reference",
        action="store_true",
        help="also write each cup's tray with nothing in it (empty/*.jpg), as a station's empty-tray photo",
    )
    p.add_argument(
        "--real-fraction",
        type=float,
        default=None,
        help="fraction of cups drawn with real coin crops (default 0.15 when the real data exists, else 0)",
    )
    p.add_argument(
        "--real-backgrounds",
        action="store_true",
        help="also cut tables and cup floors from the real photos (euro_kaa/photos, won_cho0h5/photos). Off by "
        "default: they are the photos `eval detect` and `eval verdict --real` judge, so a model trained on such a set "
        "is not held out on them. The manifest lists the photos used (real_photos)",
    )
    p.add_argument("--real-root", type=Path, default=None, help="real data folder (default ../shared/data/real)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="fraction of cups in the val split (0.1)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (output does not depend on it)")
    p.set_defaults(func=run_synth)

    s = subparsers.add_parser("synth-sheet", help="draw a contact sheet of a synthetic data set with its masks")
    s.add_argument("dataset", type=Path, help="folder written by `cupcheck synth`")
    s.add_argument("--out", type=Path, required=True, help="PNG file to write")
    s.add_argument("--n", type=int, default=16, help="cups on the sheet (default 16)")
    s.set_defaults(func=run_sheet)


def _kind_weights(kinds: str | None, weights: str | None) -> dict[CupKind, float]:
    from models.synth.scene import DEFAULT_KIND_WEIGHTS

    if kinds is None:
        chosen = list(DEFAULT_KIND_WEIGHTS)
    else:
        chosen = []
        for name in (k.strip() for k in kinds.split(",") if k.strip()):
            try:
                chosen.append(CupKind(name))
            except ValueError:
                valid = ", ".join(k.value for k in CupKind)
                raise CliError(f"unknown cup kind {name!r}; choose from {valid}") from None
        if not chosen:
            raise CliError("--kinds is empty")
    if weights is None:
        return {k: (DEFAULT_KIND_WEIGHTS[k] if kinds is None else 1.0) for k in chosen}
    try:
        values = [float(w) for w in weights.split(",")]
    except ValueError:
        raise CliError(f"--kind-weights must be numbers, got {weights!r}") from None
    if len(values) != len(chosen):
        raise CliError(f"--kind-weights has {len(values)} values for {len(chosen)} kinds")
    bad = [w.strip() for w, v in zip(weights.split(","), values, strict=True) if not (math.isfinite(v) and v >= 0)]
    if bad:
        raise CliError(f"--kind-weights must be finite numbers >= 0, got {', '.join(bad)} in {weights!r}")
    if not 0 < sum(values) < math.inf:
        raise CliError(f"--kind-weights must have a positive, finite sum, got {weights!r}")
    return dict(zip(chosen, values, strict=True))


def run_synth(args: argparse.Namespace) -> int:
    """Render the data set and print a summary."""
    from models.synth.dataset import SynthConfig, write_dataset
    from models.synth.scene import SceneOptions

    check_at_least("--types", args.types, 2)
    check_at_least("--cups", args.cups, 0)
    check_at_least("--workers", args.workers, 1)
    real_root = args.real_root if args.real_root is not None else _default_real_root()
    if args.real_root is not None and not args.real_root.is_dir():
        raise CliError(f"--real-root {args.real_root} is not a folder")
    if args.real_backgrounds and real_root is None:
        raise CliError(
            "--real-backgrounds needs the real data folder: give --real-root (../shared/data/real is absent)"
        )
    real_fraction = args.real_fraction if args.real_fraction is not None else (0.15 if real_root else 0.0)
    opts = SceneOptions(
        image_size=args.image_size,
        kind_weights=_kind_weights(args.kinds, args.kind_weights),
        max_coins=args.max_coins,
        real_fraction=real_fraction,
        reverse_share=args.reverse_share,
        empty_reference=args.empty_reference,
    )
    config = SynthConfig(
        n_types=args.types,
        n_cups=args.cups,
        seed=args.seed,
        scene=opts,
        crop_size=args.crop_size,
        val_fraction=args.val_fraction,
        first_index=args.first_index,
        real_root=real_root,
        real_backgrounds=args.real_backgrounds,
    )
    try:
        config.validate()
    except ValueError as err:
        raise CliError(str(err)) from None
    out: Path = args.out
    earlier = [name for name in DATASET_PARTS if (out / name).exists()]
    if earlier:
        raise CliError(
            f"{out} already holds a data set ({', '.join(earlier)}): its cups would be mixed with the new ones, "
            "which detector training reads by folder. Choose another --out, or remove it first"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise CliError(f"cannot write to {out}: {err.strerror or err}") from None
    try:
        summary = write_dataset(config, out, workers=args.workers)
    except ValueError as err:
        raise CliError(str(err)) from None
    kinds = ", ".join(f"{k} {v}" for k, v in summary.kinds.items())
    print(
        f"wrote {summary.n_cups} cups ({summary.n_instances} instances, {summary.n_crops} crops) to {out}\n"
        f"types: {args.types} synthetic + {summary.real_types} real (real fraction {real_fraction:g})\n"
        f"{_real_photos_line(summary.real_coin_photos, summary.real_background_photos)}\n"
        f"kinds: {kinds or 'none'}\n"
        f"speed: {summary.images_per_second:.1f} images/s with {args.workers} worker(s)"
    )
    return 0


def _real_photos_line(coins: tuple[str, ...], backgrounds: tuple[str, ...]) -> str:
    """Which real photos the set drew from, in one line (the manifest's ``real_photos`` lists them all)."""
    if not coins and not backgrounds:
        return "real photos: none (no real coin crop or background)"

    def some(names: tuple[str, ...]) -> str:
        shown = ", ".join(names[:6])
        return f"{len(names)} ({shown}{', ...' if len(names) > 6 else ''})" if names else "none"

    return (
        f"real photos: coins from {some(coins)}; backgrounds from {some(backgrounds)}; "
        "every one in manifest.json real_photos"
    )


def run_sheet(args: argparse.Namespace) -> int:
    """Write the contact sheet PNG."""
    import cv2

    from models.synth.sheet import render_sheet

    check_at_least("--n", args.n, 1)
    if not cv2.haveImageWriter(str(args.out)):
        raise CliError(f"cannot write a picture to {args.out}: name it .png or .jpg")
    if not (args.dataset / "manifest.json").is_file():
        raise CliError(f"{args.dataset} has no manifest.json (run `cupcheck synth` first)")
    try:
        sheet = render_sheet(args.dataset, args.n)
    except (FileNotFoundError, ValueError) as err:
        raise CliError(str(err)) from None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.out), sheet):
        raise CliError(f"cannot write {args.out}")
    print(f"wrote {args.out}")
    return 0
