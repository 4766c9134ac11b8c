"""``cupcheck eval verdict``: precision/coverage of the cup verdict against baselines, with plots."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from models.bundle import BundleError
from station.commands.options import add_cut_workers, check_at_least, check_cut_workers
from station.errors import CliError


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``verdict`` target of ``cupcheck eval``."""
    p = subparsers.add_parser(
        "verdict",
        help="evaluate the cup verdict on held-out synthetic cups (and real photos) against baselines",
        description="Score every (cup, expected type) pair of a synthetic test data set with the bundle's voter "
        "and with baselines (majority vote, summed softmax, mean embedding, voter without set pooling); certify "
        "each method's threshold on the calibration data set; write report.md, results.json and PNG plots.",
    )
    p.add_argument(
        "--data", default=None, metavar="DIR", help="synthetic test data set (an unused seed); without it, --real only"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="report folder")
    p.add_argument("--bundle", default=None, metavar="FILE", help="verdict bundle (default: the shipped one)")
    p.add_argument("--data-train", default=None, metavar="DIR", help="training data set (default: the bundle's)")
    p.add_argument("--data-cal", default=None, metavar="DIR", help="calibration data set (default: the bundle's)")
    p.add_argument("--cache", default=None, metavar="DIR", help="embedding cache (default: the user cache dir, /voter)")
    p.add_argument("--real", default=None, metavar="DIR", help="real data root (…/data/real): euro and won photos")
    p.add_argument(
        "--real-limit",
        type=int,
        default=None,
        metavar="N",
        help="at most N real photos of each kind per currency (at least 1; default every photo)",
    )
    p.add_argument(
        "--max-cups",
        type=int,
        default=None,
        metavar="N",
        help="use only the first N cups of each data set (at least 1; default every cup)",
    )
    p.add_argument(
        "--turn-cups",
        type=int,
        default=None,
        metavar="N",
        help="cups of the test mint checked as they lie and again after the operator turns the coins a FLAG "
        "asks to turn first (default 300; 0 skips)",
    )
    add_cut_workers(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the report's path and the methods table."""
    from models.eval_turn import TURN_CUPS
    from models.eval_verdict import EvalConfig, evaluate
    from models.files import default_cache_dir

    cut_workers = check_cut_workers(args)
    if args.real_limit is not None:
        check_at_least("--real-limit", args.real_limit, 1)
    if args.real is not None and not Path(args.real).is_dir():
        raise CliError(f"real data folder {args.real} does not exist")
    out = Path(args.out)
    if args.data is None:
        if args.real is None:
            raise CliError("give --data (synthetic test cups), --real (real photos) or both")
        return _run_real(args, out)
    data = Path(args.data)
    if not (data / "manifest.json").is_file():
        raise CliError(f"{data} is not a synthetic data set (manifest.json missing)")
    turn_cups = TURN_CUPS if args.turn_cups is None else args.turn_cups
    if turn_cups < 0:
        raise CliError(f"--turn-cups must be >= 0, got {turn_cups}")
    if args.max_cups is not None:
        check_at_least("--max-cups", args.max_cups, 1)
    cfg = EvalConfig(
        data=data,
        out=out,
        bundle=None if args.bundle is None else Path(args.bundle),
        data_train=None if args.data_train is None else Path(args.data_train),
        data_cal=None if args.data_cal is None else Path(args.data_cal),
        cache=Path(args.cache) if args.cache else default_cache_dir() / "voter",
        real=None if args.real is None else Path(args.real),
        max_cups=args.max_cups,
        real_limit=args.real_limit,
        cut_workers=cut_workers,
        turn_cups=turn_cups,
    )
    try:
        res = evaluate(cfg)
    except (FileNotFoundError, BundleError, ValueError) as err:
        raise CliError(str(err)) from err
    for warning in res.held_out.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for r in res.methods:
        thr = f"{r.choice.threshold:.4f}" if r.choice.can_pass else "never"
        floor = f" ({r.choice.applied:g} applied)" if r.choice.floored else ""
        print(
            f"{r.label:<20} threshold {thr:>8}{floor}  test precision {r.test_precision:.4f}  coverage "
            f"{r.test_coverage:.3f}  ({r.test_accepted} accepted, {r.test_errors} wrong)  AUC {r.auc:.4f}"
        )
    if res.turning:
        pure = res.turning["kinds"].get("pure")
        if pure:
            print(
                f"pure cups passed at the first check {pure['first']}/{pure['cups']}, after one turn "
                f"{pure['passed']}/{pure['cups']}"
            )
    print(f"report: {out / 'report.md'}")
    return 0


def _run_real(args: argparse.Namespace, out: Path) -> int:
    """Only the real photos: ``real.md`` and ``real_rows.json`` in ``out``, the PASS counts per target printed."""
    from models.bundle import load_bundle
    from models.eval_real import evaluate_real, evaluate_real_cups, write_real_report

    try:
        bundle = load_bundle(args.bundle)
        real = evaluate_real(Path(args.real), bundle, limit=args.real_limit)
        if not real:
            raise CliError(f"{args.real} holds neither euro_kaa/ nor won_cho0h5/")
        cups = evaluate_real_cups(Path(args.real), bundle, plot=out / "precision_coverage_real_cups.png")
    except (FileNotFoundError, BundleError, ValueError) as err:
        raise CliError(str(err)) from err
    for k, v in cups["at"].items():
        print(
            f"real drawn cups at {k}: PASS {v['pass']}, wrong {v['wrong']}, "
            f"pure cups passed {v['pure_pass']}/{v['pure']}"
        )
    for name, r in real.items():
        for k, v in r["at"].items():
            print(
                f"{name} target {k}: single PASS true {v['single_pass_true']}/{r['single']}, "
                f"wrong {v['single_pass_wrong']}; mixed PASS {v['mixed_pass']}/{r['mixed']}"
            )
    print(f"report: {write_real_report(out, bundle, real, cups)}")
    return 0
