"""``cupcheck train voter``: train the set pooler and the voter on synthetic cups and choose the threshold."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from calibration.risk import DEFAULT_DELTA, DEFAULT_TARGET
from models.bundle import ENROL_PER_SIDE, MIN_COINS, REAL_CUPS, REAL_WEIGHT
from station.commands.options import add_cut_workers, check_at_least, check_cut_workers, seed_number
from station.errors import CliError


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``voter`` target of ``cupcheck train``."""
    p = subparsers.add_parser(
        "voter",
        help="train the set pooler + LightGBM voter and choose the guaranteed-precision threshold",
        description="Embed every cup of the synthetic data set(s) once (cached), enrol each data set's mint from "
        "rendered references, train the gated-attention set pooler and the class-agnostic LightGBM voter on "
        "--data (their val splits for early stopping), and choose the PASS threshold on --data-cal (a data set "
        "drawn with another seed) so that PASS precision >= --target with probability >= 1 - --delta. Without "
        "--data-cal, half the val cups stop the boosting and the other half certify the threshold. A --data-cal "
        "rendered from the mint of a --data is refused. Writes voter.txt, pooler.pt and verdict.json into --out.",
    )
    p.add_argument(
        "--data",
        required=True,
        action="append",
        metavar="DIR",
        help="synthetic training data set (cupcheck synth); repeat it to train on several mints, each with its own "
        "gallery (the first one's val split and the others' stop the boosting early)",
    )
    p.add_argument(
        "--data-cal",
        default=None,
        metavar="DIR",
        help="synthetic calibration data set, rendered from another mint (another --seed) than every --data "
        "(default: half the val cups of --data, kept apart from those that stop the boosting)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder for the bundle")
    p.add_argument(
        "--cache", default=None, metavar="DIR", help="embedding cache folder (default: the user cache dir, /voter)"
    )
    p.add_argument("--embedder", default=None, metavar="FILE", help="embedder checkpoint (default: shipped)")
    p.add_argument("--detector", default=None, metavar="DIR", help="detector folder (default: shipped)")
    p.add_argument(
        "--instances",
        choices=("gt", "detector"),
        default="gt",
        help="coins from the data set's true masks (gt, default) or from the detector; a bundle calibrated on true "
        "masks is certified for a detector's cuts only once `cupcheck train recalibrate --instances detector` "
        "has cut its calibration cups so",
    )
    p.add_argument("--target", type=float, default=DEFAULT_TARGET, help=f"target precision (default {DEFAULT_TARGET})")
    p.add_argument("--delta", type=float, default=DEFAULT_DELTA, help=f"failure probability (default {DEFAULT_DELTA})")
    p.add_argument("--max-cups", type=int, default=None, help="use only the first cups of each data set")
    p.add_argument(
        "--virtual",
        type=int,
        default=0,
        metavar="N",
        help="also train on N cups made from the coins of the rendered pure cups (default 0)",
    )
    p.add_argument(
        "--negative-weight",
        type=float,
        default=1.0,
        metavar="W",
        help="weight of each wrong pair against 1 for a correct one (default 1); above 1 the wrong pairs that look "
        "right are pushed down the ranking, where the threshold is chosen",
    )
    p.add_argument(
        "--enrol-per-side",
        type=int,
        default=ENROL_PER_SIDE,
        metavar="N",
        help=f"enrolment photo crops per type and side in each data set's gallery (its enrol/ folder; default "
        f"{ENROL_PER_SIDE}); recorded in the bundle, whose recalibration and evaluation enrol the same way",
    )
    p.add_argument(
        "--min-coins",
        type=int,
        default=MIN_COINS,
        metavar="N",
        help=f"hard rule: a cup showing fewer coins never passes (default {MIN_COINS}; 1 passes any cup with a coin)",
    )
    p.add_argument(
        "--monotone",
        action="store_true",
        help="constrain the voter so that p_correct never rises as the cup's least convincing coin looks less like "
        "the expected type (its similarity, margins, template match; the nightly refit keeps the constraints)",
    )
    p.add_argument(
        "--real",
        default=None,
        metavar="DIR",
        help="real data root (…/data/real): the voter also learns from cups drawn from its labelled real crops "
        "(euro_kaa, won_cho0h5: crops/train, two folds by photo, each judged against a gallery of the other); the "
        "pooler and the calibration stay synthetic",
    )
    p.add_argument(
        "--real-cups",
        type=int,
        default=REAL_CUPS,
        metavar="N",
        help=f"with --real: training cups drawn per real set (default {REAL_CUPS})",
    )
    p.add_argument(
        "--real-weight",
        type=float,
        default=REAL_WEIGHT,
        metavar="W",
        help=f"with --real: weight of a real cup's pair beside a synthetic one's (default {REAL_WEIGHT})",
    )
    p.add_argument("--seed", type=seed_number, default=0)
    add_cut_workers(p)
    p.set_defaults(func=run)

    r = subparsers.add_parser(
        "recalibrate",
        help="certify a bundle's threshold again on calibration cups cut by today's pipeline (no refit)",
        description="Re-cut the calibration data set with the bundle's detector and embedder as they run now, "
        "re-score it with the bundle's own voter, choose the threshold for its target precision and delta, and "
        "write a new bundle (a new version) with the new calibration pairs. Needed whenever the cutting changed "
        "after the voter was calibrated: the guarantee holds only for the pipeline that cut the calibration cups. "
        "A bundle from the nightly retrain (with a fine-tuned embedder layer or station references) is refused: "
        "recalibrate the bundle it was retrained from, then retrain.",
    )
    r.add_argument(
        "--data-cal",
        required=True,
        action="append",
        metavar="DIR",
        help="synthetic calibration data set; repeat it to pool the pairs of several mints",
    )
    r.add_argument("--out", required=True, metavar="DIR", help="folder of the new bundle (may be the bundle's own)")
    r.add_argument("--bundle", default=None, metavar="FILE", help="bundle to recalibrate (default: the shipped one)")
    r.add_argument("--cache", default=None, metavar="DIR", help="embedding cache (default: the user cache dir)")
    r.add_argument("--max-cups", type=int, default=None, help="use only the first cups")
    r.add_argument(
        "--instances",
        choices=("gt", "detector"),
        default=None,
        help="cut the calibration cups with the bundle's detector, as a station does (detector), or from their "
        "true masks (gt); default: as the bundle's calibration cups were cut. A bundle trained with --instances gt "
        "is certified for the detector's cuts only with --instances detector",
    )
    r.add_argument(
        "--min-coins",
        type=int,
        default=None,
        metavar="N",
        help="certify the voter under another hard rule: a cup showing fewer coins never passes (default: the "
        "bundle's own rule)",
    )
    r.add_argument(
        "--delta",
        type=float,
        default=None,
        help="the certificate's failure probability (default: the bundle's); after choosing --min-coins by "
        "comparing rules on these calibration cups, split the delta between the rules compared",
    )
    add_cut_workers(r)
    r.set_defaults(func=run_recalibrate)


def run(args: argparse.Namespace) -> int:
    """Train and print the threshold and a JSON summary."""
    from models.files import default_cache_dir
    from models.train.voter import TrainConfig, train_verdict

    sets = [Path(d) for d in args.data]
    for data in sets:
        if not (data / "manifest.json").is_file():
            raise CliError(f"{data} is not a synthetic data set (manifest.json missing)")
    if args.data_cal is not None and not (Path(args.data_cal) / "manifest.json").is_file():
        raise CliError(f"{args.data_cal} is not a synthetic data set (manifest.json missing)")
    if not 0 < args.target < 1 or not 0 < args.delta < 1:
        raise CliError("--target and --delta must be in (0, 1)")
    check_at_least("--virtual", args.virtual, 0)
    if not args.negative_weight > 0:
        raise CliError(f"--negative-weight must be > 0, got {args.negative_weight}")
    check_at_least("--enrol-per-side", args.enrol_per_side, 1)
    check_at_least("--min-coins", args.min_coins, 1)
    check_cut_workers(args)
    real = None if args.real is None else Path(args.real)
    if real is not None:
        from models.train.real_cups import real_crop_folders

        try:
            real_crop_folders(real, "train")  # before hours of training, not after
        except FileNotFoundError as err:
            raise CliError(str(err)) from err
    check_at_least("--real-cups", args.real_cups, 1)
    if not args.real_weight > 0:
        raise CliError(f"--real-weight must be > 0, got {args.real_weight}")
    out = Path(args.out)
    cfg = TrainConfig(
        data=sets[0],
        data_more=tuple(sets[1:]),
        data_cal=None if args.data_cal is None else Path(args.data_cal),
        out=out,
        cache=Path(args.cache) if args.cache else default_cache_dir() / "voter",
        embedder=None if args.embedder is None else Path(args.embedder),
        detector=None if args.detector is None else Path(args.detector),
        instances=args.instances,
        target=args.target,
        delta=args.delta,
        max_cups=args.max_cups,
        virtual=args.virtual,
        negative_weight=args.negative_weight,
        seed=args.seed,
        cut_workers=args.cut_workers,
        enrol_per_side=args.enrol_per_side,
        min_coins=args.min_coins,
        monotone=args.monotone,
        real=real,
        real_cups=args.real_cups,
        real_weight=args.real_weight,
    )
    try:
        result = train_verdict(cfg)
    except (FileNotFoundError, ValueError) as err:
        raise CliError(str(err)) from err
    print(result.choice.summary())
    print(json.dumps({"bundle": str(result.bundle_path), **result.summary}, indent=1))
    # beside the JSON, not in it: where the cups that certify the threshold came from, said every time
    print(f"calibration cups: {result.summary['cal_source']}", file=sys.stderr)
    return 0


def run_recalibrate(args: argparse.Namespace) -> int:
    """Recalibrate and print the new threshold and the bundle's path and version."""
    from models.bundle import BundleError, load_bundle
    from models.files import default_cache_dir
    from models.train.voter import UNCHECKED_MINTS, recalibrate

    sets = [Path(d) for d in args.data_cal]
    for data in sets:
        if not (data / "manifest.json").is_file():
            raise CliError(f"{data} is not a synthetic data set (manifest.json missing)")
    check_cut_workers(args)
    if args.min_coins is not None:
        check_at_least("--min-coins", args.min_coins, 1)
    if args.delta is not None and not 0 < args.delta < 1:
        raise CliError(f"--delta must be in (0, 1), got {args.delta}")
    try:
        result = recalibrate(
            None if args.bundle is None else Path(args.bundle),
            sets,
            Path(args.out),
            Path(args.cache) if args.cache else default_cache_dir() / "voter",
            max_cups=args.max_cups,
            cut_workers=args.cut_workers,
            min_coins=args.min_coins,
            delta=args.delta,
            instances=args.instances,
        )
        version = load_bundle(result.bundle_path).version
    except (FileNotFoundError, ValueError, BundleError) as err:
        raise CliError(str(err)) from err
    before = result.summary["recalibrated_from"]
    if unchecked := result.summary.get(UNCHECKED_MINTS):
        print(f"warning: {unchecked}", file=sys.stderr)
    print(result.choice.summary())
    print(f"{before['version']} -> {version}: {result.bundle_path}")
    return 0
