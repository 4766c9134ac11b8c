"""``cupcheck train detector``: train the coin detector (YOLO boxes + mask segmenter) on a synthetic data set."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from station.commands.options import seed_number
from station.errors import CliError


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
    p.add_argument("--epochs", type=int, default=30, help="YOLO epochs (default 30)")
    p.add_argument("--hours", type=float, default=None, help="YOLO wall-clock budget; fits the epochs to it")
    p.add_argument("--imgsz", type=int, default=256, help="YOLO input side (default 256)")
    p.add_argument("--batch", type=int, default=8, help="YOLO batch size (default 8)")
    p.add_argument("--init", type=Path, default=None, help="YOLO checkpoint of an earlier run to fine-tune from")
    p.add_argument("--lr0", type=float, default=None, help="YOLO AdamW learning rate (default: automatic)")
    p.add_argument("--seg-init", type=Path, default=None, help="segmenter checkpoint to fine-tune from")
    p.add_argument("--seg-epochs", type=int, default=8, help="segmenter epochs (default 8)")
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
    """Train the requested parts and package the detector into ``OUT/detector``."""
    from models.train.detector import (
        SegmenterTrainConfig,
        YoloTrainConfig,
        package_detector,
        train_segmenter,
        train_yolo,
    )

    if not (args.data / "manifest.json").is_file():
        raise CliError(f"{args.data} is not a synthetic data set (no manifest.json); run 'cupcheck synth' first")
    yolo_best = args.out / "yolo" / "weights" / "best.pt"
    seg_best = args.out / "segmenter" / "best.pt"
    try:
        if args.part in ("all", "yolo"):
            cfg = YoloTrainConfig(
                data=args.data,
                out=args.out,
                epochs=args.epochs,
                imgsz=args.imgsz,
                batch=args.batch,
                seed=args.seed,
                hours=args.hours,
                init=args.init,
                lr0=args.lr0,
            )
            yolo_best = train_yolo(cfg, resume=args.resume)
        if args.part in ("all", "segmenter"):
            scfg = SegmenterTrainConfig(
                data=args.data,
                out=args.out,
                epochs=args.seg_epochs,
                size=args.seg_size,
                widths=(8, 16, 32, 64),
                seed=args.seed,
                init=args.seg_init,
                lr=1e-3 if args.seg_init is not None else 3e-3,
            )
            seg_best = train_segmenter(scfg, resume=args.resume)
    except (FileNotFoundError, ValueError) as err:  # ultralytics colours its messages for a terminal
        raise CliError(re.sub(r"\x1b\[[0-9;]*m", "", str(err))) from err
    if args.part in ("all", "package"):
        if not yolo_best.is_file():
            yolo_best = args.out / "yolo" / "weights" / "last.pt"
        for f in (yolo_best, seg_best):
            if not f.is_file():
                raise CliError(f"cannot package: {f} is missing (train that part first)")
        extra = {"data": str(args.data), "seed": args.seed, "epochs": args.epochs, "seg_epochs": args.seg_epochs}
        sidecar = package_detector(
            yolo_best, seg_best, args.out / "detector", imgsz=args.imgsz, conf=args.conf, extra=extra
        )
        print(f"detector written: {sidecar.parent}")
    return 0
