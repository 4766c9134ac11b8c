"""``cupcheck simulate-day --cups N --cycles K --out DIR``: the closed loop of station, supervisor and retrain."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from station.commands.options import add_references_option, check_at_least, seed_number
from station.errors import CliError


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``simulate-day`` subcommand."""
    p = subparsers.add_parser(
        "simulate-day",
        help="closed-loop simulation: drifted synthetic cups, an oracle supervisor, the nightly retrain",
        description="Each cycle runs the real pipeline on N synthetic cups under new lighting (types enrolled "
        "from simulator photos, as many a side as the verdict model was calibrated with), logs every verdict into "
        "a real SQLite verdict log, relabels the flagged cups from the ground truth, and runs the retrain; "
        "OUT/report.md and OUT/cycles.png show auto-pass and PASS precision per cycle.",
    )
    p.add_argument("--cups", type=int, default=60, help="cups per cycle (60)")
    p.add_argument("--cycles", type=int, default=2, help="cycles (2)")
    p.add_argument("--types", type=int, default=12, help="coin types in the mint (12)")
    p.add_argument("--seed", type=seed_number, default=7)
    p.add_argument(
        "--reverse-share",
        type=float,
        default=0.5,
        metavar="P",
        help="chance that a coin lies reverse up (0.5: tossed; higher: laid out reverse up, as a FLAG saying 'turn "
        "a coin' asks)",
    )
    p.add_argument(
        "--audit-share",
        type=float,
        default=0.0,
        metavar="P",
        help="share of PASSes the supervisor checks besides every FLAG (0)",
    )
    p.add_argument(
        "--operator-turns",
        action="store_true",
        help="on a FLAG that says to turn the coins it names first, the operator does and checks the cup again",
    )
    p.add_argument("--target", type=float, default=None, help="precision target of the retrain (bundle's)")
    p.add_argument("--delta", type=float, default=None, help="failure probability of the retrain (bundle's)")
    add_references_option(p)
    p.add_argument(
        "--no-empty-tray",
        action="store_true",
        help="the station has no empty-tray photo (default: each cup is compared with its tray photographed empty "
        "under the same light)",
    )
    p.add_argument(
        "--enrol-photos",
        type=int,
        default=None,
        metavar="N",
        help="enrol each type from N simulator photos a side (default: as many as the verdict model was calibrated "
        "with; fewer: types enrolled from a few photos, the drift the nights' station references make up for)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (home, report)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the simulation and print the report path."""
    if args.cups < 1 or args.cycles < 1 or args.types < 4:
        raise CliError("--cups and --cycles must be at least 1, --types at least 4")
    check_at_least("--references-per-design", args.references_per_design, 0)
    if args.enrol_photos is not None:
        check_at_least("--enrol-photos", args.enrol_photos, 1)
    for flag, value in (("--reverse-share", args.reverse_share), ("--audit-share", args.audit_share)):
        if not 0.0 <= value <= 1.0:
            raise CliError(f"{flag} must be between 0 and 1, got {value}")
    for name in ("target", "delta"):
        value = getattr(args, name)
        if value is not None and not 0 < value < 1:
            raise CliError(f"--{name} must be in (0, 1), got {value}")
    from models.retrain import RetrainConfig
    from station.simulate import simulate

    cfg = RetrainConfig(target=args.target, delta=args.delta, references_per_design=args.references_per_design)
    try:
        results = simulate(
            Path(args.out),
            cups=args.cups,
            cycles=args.cycles,
            n_types=args.types,
            seed=args.seed,
            reverse_share=args.reverse_share,
            audit_share=args.audit_share,
            operator_turns=args.operator_turns,
            config=cfg,
            empty_tray=not args.no_empty_tray,
            photos_per_side=args.enrol_photos,
        )
    except FileExistsError as err:  # an earlier simulation's home: its cups would be learnt twice
        raise CliError(str(err)) from err
    for r in results:
        k = r.counts
        print(
            f"cycle {r.cycle}: auto-pass {k.auto_pass:.1%} (first model {k.start_auto_pass:.1%}, the hard rules allow "
            f"{k.allowed_share:.1%}), PASS {k.passed} ({k.wrong} wrong), "
            + (f"PASS precision {k.precision:.1%} (after turning too), " if k.all_passed else "")
            + (f"passed at the station (at the first check or after turning) {k.at_station:.1%}, " if k.turned else "")
            + f"retrain exit {r.retrain_code}"
        )
    print(f"report: {Path(args.out) / 'report.md'}")
    return 0
