"""``cupcheck retrain``: the nightly job: station references and a voter refit from the station's labels, gated,
promoted.

Examples::

    cupcheck retrain                               # cron: 0 2 * * * cupcheck retrain
    cupcheck retrain --dry-run --report out/       # evaluate and register only
    cupcheck retrain --config site.toml            # a site: its database, shared images and shared registry
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from station.commands.options import add_references_option, add_site_options, check_at_least, resolve_site, seed_number
from station.errors import CliError

DEFAULT_MAX_CUPS = 50_000
"""The newest labelled cups the nightly retrain learns from (some 500,000 coins: about 6 minutes of features)."""

EPILOG = """exit status:
  0  a candidate passed the gate and was promoted
  3  nothing to do: no ruling made or withdrawn since the registered models took theirs (or too few to train)
  4  the candidate was rejected by the gate (or --dry-run); the model in force stays
  2  bad input or error (missing gallery, damaged bundle or registry, unreachable database, an image folder or
     shared registry that is not there (a share not mounted), a report folder that cannot be written, or another
     retrain running on the same registry)
"""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``retrain`` subcommand."""
    p = subparsers.add_parser(
        "retrain",
        help="refit the voter on the station's labels, recalibrate, and promote it if the holdout gate allows",
        description="Export every label of the verdict log, turn the train split's confirmed coins into station "
        "references beside the gallery, refit the voter by continued boosting from the one in "
        "force (train split), choose the PASS threshold again (calibration split plus the bundle's own "
        "calibration pairs), and score both models on the frozen holdout split. The candidate is registered "
        "under MODELS/models/<version>/ (MODELS: --models, the config's models, else the home) and promoted only if it "
        "can PASS, its PASS precision lower bound is at least the old one's (or the target) and its auto-pass is "
        "at least the old one's, on the holdout and on the bundle's frozen calibration pairs; when the refit fails, "
        "the voter in force with the new references is tried. Non-interactive; logs to MODELS/models/retrain.log. "
        "Stations whose models setting names the same folder load a promoted model between cups.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_site_options(p)
    p.add_argument(
        "--no-embedder",
        action="store_true",
        help="do not try the embedder fine-tune (its output layer, learnt on the station's coins); the voter refit "
        "and recalibration always run",
    )
    p.add_argument("--dry-run", action="store_true", help="evaluate and register the candidate, never promote")
    p.add_argument("--report", default=None, metavar="DIR", help="report folder (default MODELS/models/reports/V)")
    p.add_argument("--target", type=float, default=None, help="precision target (default: the bundle's)")
    p.add_argument("--delta", type=float, default=None, help="failure probability (default: the bundle's)")
    p.add_argument("--holdout", type=float, default=0.25, help="share of cups in the frozen holdout (0.25)")
    p.add_argument("--cal", type=float, default=0.35, help="share of cups used for calibration (0.35)")
    p.add_argument("--rounds", type=int, default=60, help="boosting rounds added to the voter (60)")
    p.add_argument(
        "--max-cups",
        type=int,
        default=DEFAULT_MAX_CUPS,
        metavar="N",
        help=f"learn from the newest N labelled cups, so the run stays bounded as labels pile up ({DEFAULT_MAX_CUPS}; "
        "0: all of them)",
    )
    add_references_option(p)
    p.add_argument("--seed", type=seed_number, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    for name in ("target", "delta"):
        v = getattr(args, name)
        if v is not None and not 0 < v < 1:
            raise CliError(f"--{name} must be in (0, 1)")
    if not (0 < args.holdout < 1 and 0 < args.cal < 1 and args.holdout + args.cal < 1):
        raise CliError("--holdout and --cal must be in (0, 1) and leave a training share")
    if args.rounds < 1:
        raise CliError("--rounds must be at least 1")
    check_at_least("--references-per-design", args.references_per_design, 0)
    check_at_least("--max-cups", args.max_cups, 0)


def run(args: argparse.Namespace) -> int:
    """Run the retrain and return its exit status."""
    _check(args)
    site = resolve_site(args)
    import logging

    from models.gallery import GalleryMismatchError
    from models.registry import RegistryError, check_registry
    from models.retrain import RetrainConfig
    from station.retrain_job import (
        STOPPED,
        ImagesUnreadable,
        ReportUnwritable,
        RetrainOptions,
        RetrainRunning,
        attach_log_file,
        outcome_lines,
        run_retrain,
    )

    cfg = RetrainConfig(
        holdout_fraction=args.holdout,
        cal_fraction=args.cal,
        rounds=args.rounds,
        references_per_design=args.references_per_design,
        target=args.target,
        delta=args.delta,
        seed=args.seed,
        fine_tune_embedder=not args.no_embedder,
    )
    opts = RetrainOptions(
        url=site.url,
        store=site.store,
        models=site.models,
        gallery=site.gallery,
        config=cfg,
        report_dir=None if args.report is None else Path(args.report),
        max_cups=args.max_cups or None,
        promote=not args.dry_run,
        progress=not args.quiet,
        audit_share=site.config.audit_share,
    )
    from models.gallery import Gallery

    if not Gallery.exists(site.gallery / "gallery"):  # a mistyped home or an unmounted share, not a quiet night
        raise CliError(
            f"no gallery in {site.gallery / 'gallery'}: is this the station's home (or the site's share)? "
            "Nothing to retrain against"
        )
    try:
        check_registry(site.home, site.models)  # before the log: nothing is written under an unmounted share
    except RegistryError as err:
        raise CliError(f"{err} (home: {site.home})") from err
    handler = attach_log_file(site.models)
    log = logging.getLogger("cupcheck.retrain")
    try:
        outcome = run_retrain(site.home, opts)
    except (
        FileNotFoundError,
        RegistryError,
        GalleryMismatchError,
        ValueError,
        RetrainRunning,
        ImagesUnreadable,
        ReportUnwritable,
    ) as err:
        # in the log too: doctor reports the log's last word, and a night that stopped must not look like the last
        log.error("%s (exit status 2): %s", STOPPED, err)
        raise CliError(f"{err} (home: {site.home})") from err
    except BaseException as err:  # a database error, a full disk, an interrupt, a fault: logged, then as it was
        from station.cli import exit_status, problem_text

        log.error(
            "retrain stopped (exit status %d): %s", exit_status(err), f"{type(err).__name__}: {problem_text(err)}"
        )
        raise
    finally:
        handler.close()
        log.removeHandler(handler)
    for line in outcome_lines(outcome):
        print(line)
    sys.stdout.flush()
    return outcome.code
