"""``cupcheck train embedder``: metric-learning training of the coin embedder (resumable)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from station.commands.options import check_at_least, seed_number
from station.errors import CliError


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``embedder`` target of ``cupcheck train``."""
    p = subparsers.add_parser(
        "embedder",
        help="train the coin embedder (ArcFace) on synthetic and real crops",
        description="Train the embedder on design classes of synthetic crops (--data, repeatable) and real "
        "denomination crops (--real). Held-out synthetic families and the real test crops are evaluated every "
        "epoch; the checkpoint (fp16, with its preprocessing) is written to --out after every epoch, and "
        "--resume continues an interrupted run with the same arguments. Options left out take the defaults of "
        "models.train.embedder.EmbedTrainConfig (6x100 batches of 64, mobilenetv2_100, 128-d, 128 px, seed 0).",
    )
    p.add_argument("--data", action="append", default=[], metavar="DIR", help="synthetic data set (repeatable)")
    p.add_argument("--real", default=None, metavar="DIR", help="real data root (…/data/real)")
    p.add_argument("--init", default=None, metavar="FILE", help="backbone state dict to start from (timm layout)")
    p.add_argument("--out", default="embedder.pt", metavar="FILE", help="checkpoint to write (default embedder.pt)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batches-per-epoch", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--arch", default=None, help="timm architecture (default mobilenetv2_100)")
    p.add_argument("--embed-dim", type=int, default=None)
    p.add_argument("--input-size", type=int, default=None)
    p.add_argument("--rotations", type=int, default=None, help="quarter turns averaged at inference (1, 2, 4)")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--backbone-lr", type=float, default=None)
    p.add_argument("--margin", type=float, default=None, help="ArcFace margin in radians")
    p.add_argument("--scale", type=float, default=None)
    p.add_argument("--sub-centers", type=int, default=None)
    p.add_argument("--triplet-weight", type=float, default=None)
    p.add_argument("--freeze-blocks", type=int, default=None, help="frozen early blocks (with --init)")
    p.add_argument("--real-weight", type=float, default=None, help="sampling weight of a real class")
    p.add_argument("--holdout-fraction", type=float, default=None)
    p.add_argument("--seed", type=seed_number, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default 1)")
    p.add_argument("--workers", type=int, default=None, help="data loader processes (default 1)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop after the epoch that passes this time")
    p.add_argument("--resume", action="store_true", help="continue from the state file beside --out")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train and print the before/after metrics as JSON."""
    from models.train.embedder import config_from_args, train_embedder

    if not args.data and not args.real:
        raise CliError("give at least one --data DIR or --real DIR")
    for flag, value, low in (
        ("--epochs", args.epochs, 1),
        ("--batches-per-epoch", args.batches_per_epoch, 1),
        ("--batch-size", args.batch_size, 2),
    ):
        if value is not None:
            check_at_least(flag, value, low)
    for flag, rate in (("--lr", args.lr), ("--backbone-lr", args.backbone_lr)):
        if rate is not None and not rate >= 0:
            raise CliError(f"{flag} must be >= 0, got {rate}")
    cfg = config_from_args(
        data=tuple(args.data),
        real=args.real,
        init=args.init,
        out=args.out,
        epochs=args.epochs,
        batches_per_epoch=args.batches_per_epoch,
        batch_size=args.batch_size,
        arch=args.arch,
        embed_dim=args.embed_dim,
        input_size=args.input_size,
        rotations=args.rotations,
        lr=args.lr,
        backbone_lr=args.backbone_lr,
        margin=args.margin,
        scale=args.scale,
        sub_centers=args.sub_centers,
        triplet_weight=args.triplet_weight,
        freeze_blocks=args.freeze_blocks,
        real_weight=args.real_weight,
        holdout_fraction=args.holdout_fraction,
        seed=args.seed,
        threads=args.threads,
        workers=args.workers,
        max_minutes=args.max_minutes,
    )
    try:
        result = train_embedder(cfg, resume=args.resume)
    except (FileNotFoundError, ValueError) as err:
        raise CliError(str(err)) from err
    print(json.dumps({k: result[k] for k in ("before", "history", "out", "version", "epochs_done")}, indent=1))
    return 0
