"""``cupcheck train detector``: train the coin detector (YOLO boxes + mask segmenter) on a synthetic data set."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from station.commands.options import seed_number
from station.errors import CliError

if TYPE_CHECKING:
    from models.train.detector import TrainedWith

DEFAULT_EPOCHS = 30
DEFAULT_IMGSZ = 256
DEFAULT_SEG_EPOCHS = 8


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the ``detector`` target."""
    p = sub.add_parser(
        "detector",
        help="train the coin detector (YOLO boxes, mask segmenter) from scratch on CPU",
        description="Train the YOLO box detector (ultralytics, from scratch, offline) and the mask segmenter on a "
        "'cupcheck synth' data set, then write a versioned detector folder (weights + detector.json).",
    )
    p.add_argument("--data", type=Path, required=True, help="synthetic data set folder (from 'cupcheck synth')")
    p.add_argument("--out", type=Path, default=Path("runs/detector"), help="run folder (default: runs/detector)")
    p.add_argument(
        "--epochs", type=int, default=None, help=f"YOLO epochs (default {DEFAULT_EPOCHS}; a resumed run keeps its own)"
    )
    p.add_argument("--hours", type=float, default=None, help="YOLO wall-clock budget; fits the epochs to it")
    p.add_argument(
        "--imgsz",
        type=int,
        default=None,
        help=f"YOLO input side (default {DEFAULT_IMGSZ}; packaging and resuming use the size the weights were "
        "trained at)",
    )
    p.add_argument("--batch", type=int, default=8, help="YOLO batch size (default 8)")
    p.add_argument("--init", type=Path, default=None, help="YOLO checkpoint of an earlier run to fine-tune from")
    p.add_argument("--lr0", type=float, default=None, help="YOLO AdamW learning rate (default: automatic)")
    p.add_argument("--seg-init", type=Path, default=None, help="segmenter checkpoint to fine-tune from")
    p.add_argument(
        "--seg-epochs",
        type=int,
        default=None,
        help=f"segmenter epochs (default {DEFAULT_SEG_EPOCHS}; a resumed run keeps its own)",
    )
    p.add_argument("--seg-size", type=int, default=64, help="segmenter input side (default 64)")
    p.add_argument(
        "--part",
        choices=("all", "yolo", "segmenter", "package"),
        default="all",
        help="train one part only (they can run in parallel), or only package finished parts",
    )
    p.add_argument("--conf", type=float, default=0.25, help="confidence threshold stored in the sidecar")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--seed", type=seed_number, default=0, help="random seed (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train the requested parts and package the detector into ``OUT/detector``.

    A resumed run, and a packaging of finished parts, take the input size and epochs from the weights themselves;
    a flag that says otherwise is refused rather than written into ``detector.json``.
    """
    from models.train.detector import SegmenterTrainConfig, YoloTrainConfig, train_segmenter, train_yolo, trained_with

    if not (args.data / "manifest.json").is_file():
        raise CliError(f"{args.data} is not a synthetic data set (no manifest.json); run 'cupcheck synth' first")
    yolo_best = args.out / "yolo" / "weights" / "best.pt"
    yolo_last = args.out / "yolo" / "weights" / "last.pt"
    seg_best = args.out / "segmenter" / "best.pt"
    try:
        if args.resume:
            yolo_part, seg_part = args.part in ("all", "yolo"), args.part in ("all", "segmenter")
            before = trained_with(yolo_last if yolo_part else None, seg_best if seg_part else None)
            _check_flags(args, before, f"the run in {args.out}")
        if args.part in ("all", "yolo"):
            cfg = YoloTrainConfig(
                data=args.data,
                out=args.out,
                epochs=DEFAULT_EPOCHS if args.epochs is None else args.epochs,
                imgsz=DEFAULT_IMGSZ if args.imgsz is None else args.imgsz,
                batch=args.batch,
                seed=args.seed,
                hours=args.hours,
                init=args.init,
                lr0=args.lr0,
            )
            yolo_best = train_yolo(cfg, resume=args.resume)
        if args.part in ("all", "segmenter"):
            saved = trained_with(None, seg_best).seg_epochs if args.resume else None
            seg_epochs = args.seg_epochs if args.seg_epochs is not None else saved or DEFAULT_SEG_EPOCHS
            scfg = SegmenterTrainConfig(
                data=args.data,
                out=args.out,
                epochs=seg_epochs,
                size=args.seg_size,
                widths=(8, 16, 32, 64),
                seed=args.seed,
                init=args.seg_init,
                lr=1e-3 if args.seg_init is not None else 3e-3,
            )
            seg_best = train_segmenter(scfg, resume=args.resume)
        if args.part in ("all", "package"):
            _package(args, yolo_best, seg_best)
    except (FileNotFoundError, ValueError) as err:  # ultralytics colours its messages for a terminal
        raise CliError(re.sub(r"\x1b\[[0-9;]*m", "", str(err))) from err
    return 0


def _package(args: argparse.Namespace, yolo_best: Path, seg_best: Path) -> None:
    """Package the finished parts into ``OUT/detector``, recording the settings they were trained with.

    Raises:
        CliError: a part is missing, or a flag given with ``--part package`` or ``--resume`` conflicts with it.
        ValueError: a part's file is not a readable checkpoint.
    """
    from models.train.detector import package_detector, trained_with

    if not yolo_best.is_file():
        yolo_best = args.out / "yolo" / "weights" / "last.pt"
    for f in (yolo_best, seg_best):
        if not f.is_file():
            raise CliError(f"cannot package: {f} is missing (train that part first)")
    trained = trained_with(yolo_best, seg_best)
    if args.part == "package" or args.resume:
        _check_flags(args, trained, f"the weights in {args.out}")
    imgsz = trained.imgsz if trained.imgsz is not None else args.imgsz
    if imgsz is None:
        raise CliError(f"{yolo_best} does not say the input size it was trained at: give it with --imgsz")
    extra = {
        "data": str(args.data),
        "seed": args.seed if trained.seed is None else trained.seed,
        "epochs": trained.epochs if trained.epochs is not None else args.epochs,
        "seg_epochs": trained.seg_epochs if trained.seg_epochs is not None else args.seg_epochs,
    }
    sidecar = package_detector(yolo_best, seg_best, args.out / "detector", imgsz=imgsz, conf=args.conf, extra=extra)
    print(f"detector written: {sidecar.parent}")


def _check_flags(args: argparse.Namespace, trained: TrainedWith, where: str) -> None:
    """Refuse an ``--imgsz``, ``--epochs`` or ``--seg-epochs`` given against what the weights were trained with:
    resuming or packaging at another setting would run or describe a model that was never trained so."""
    for flag, given, saved, said in (
        ("--imgsz", args.imgsz, trained.imgsz, "its YOLO part was trained at imgsz {}"),
        ("--epochs", args.epochs, trained.epochs, "its YOLO part was set to {} epochs"),
        ("--seg-epochs", args.seg_epochs, trained.seg_epochs, "its segmenter was set to {} epochs"),
    ):
        if given is not None and saved is not None and given != saved:
            raise CliError(
                f"{flag} {given} conflicts with {where}: {said.format(saved)}; leave {flag} out to use the run's "
                "own (train into a new --out for another)"
            )
