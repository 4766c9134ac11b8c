"""The nightly retrain: export the station's labels, take station references, refit and recalibrate, gate on the
holdout, promote.

:func:`run_retrain` is what ``cupcheck retrain`` and ``cupcheck simulate-day`` call. It reads the verdict log
(:mod:`db.repository`), turns each labelled cup into a :class:`models.retrain.LabelledCup` (logged embeddings are
reused when the embedder that made them is the one in force, otherwise the logged crops are embedded again),
hands them to :func:`models.retrain.retrain_bundle`, writes the report, and records the candidate in the registry
(:mod:`models.registry`), put in force in the same write when :func:`models.gate.promotion_gate` says so.

Exit codes (:class:`RetrainOutcome.code`): 0 promoted, 3 nothing to do, 4 rejected by the gate.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from calibration.risk import clopper_pearson_lower, confidence_text
from db.export import station_view
from db.records import PassAudit, SeenBox, TrainingCoin, TrainingCup, TrainingExport, pass_audit
from db.repository import VerdictRepository
from db.schema import LabelKind
from db.store import STORE_DIR
from models.bundle import DEFAULT_BUNDLE, Bundle, load_bundle
from models.embedder import circle_mask
from models.features import CupCoins, focus_measure, visible_share
from models.files import LockTimeout, exclusive_lock
from models.gate import GateDecision
from models.pipeline import Pipeline
from models.registry import (
    SHIPPED,
    InForceChanged,
    ModelEntry,
    check_registry,
    current_bundle_path,
    load_registry,
    record_promoted,
    record_version,
    registry_file,
    registry_root,
    remove_stale_folders,
    utc_now_iso,
    version_dir,
)
from models.retrain import Candidate, LabelledCup, RetrainConfig, retrain_bundle
from models.template import signature
from models.types import Side
from station.config import DEFAULT_AUDIT_SHARE

RETRAIN_LOCK = "retrain.lock"
RETRAIN_STALE_S = 3 * 3600.0
"""A retrain lock older than this was left by a run that died (a nightly run takes under an hour)."""

CANDIDATE_PREFIX = ".candidate-"
"""The retrain trains its candidate in ``models/.candidate-*`` beside the registry, removed when it ends."""

EXIT_PROMOTED = 0
EXIT_NOTHING_TO_DO = 3
EXIT_REJECTED = 4
LOG_FILE = "retrain.log"
STOPPED = "retrain stopped"
"""What the log's last line begins with when a night ended on an error (``cupcheck doctor`` then warns)."""

_log = logging.getLogger("cupcheck.retrain")


class RetrainRunning(RuntimeError):
    """Another retrain is running on the same registry (the message names its host and process)."""


class ImagesUnreadable(OSError):
    """The image store is not there, or most images of the labelled coins cannot be read from it (a share that is not
    mounted, or another folder than the one the stations write to): the night stops instead of learning from what is
    left, or saying there is nothing to do."""


class ReportUnwritable(OSError):
    """The retrain's report cannot be written where it was told; nothing was recorded or promoted."""


@dataclass(frozen=True)
class RetrainOptions:
    """What :func:`run_retrain` does.

    Attributes:
        url: database URL (``None``: the home's SQLite file).
        store: the folder the stations keep their images in (``None``: the home).
        models: the folder whose ``models/`` holds the registry the candidate is recorded and promoted in (``None``:
            the home); the stations of a site share one, so they all follow the model promoted there.
        gallery: the folder whose ``gallery/`` the labelled cups are judged against (``None``: the home).
        config: the refit's settings.
        report_dir: where the Markdown report and its plots go (``None``: ``reports/<version>`` in the registry).
        max_cups: learn from the newest this many labelled cups (``None``: all): rebuilding a labelled coin's
            features costs about 0.7 ms, so an unbounded history would stretch the nightly run month after month.
        promote: promote a candidate that passes the gate (``False``: evaluate and register only).
        progress: tqdm bars.
        audit_share: the share of PASSes the review window draws for a person to check: the PASS audit counts those.
    """

    url: str | None = None
    store: Path | None = None
    models: Path | None = None
    gallery: Path | None = None
    config: RetrainConfig = field(default_factory=RetrainConfig)
    report_dir: Path | None = None
    max_cups: int | None = None
    promote: bool = True
    progress: bool = True
    audit_share: float = DEFAULT_AUDIT_SHARE


@dataclass(frozen=True)
class RetrainOutcome:
    """What happened.

    Attributes:
        code: 0 promoted, 3 nothing to do, 4 rejected.
        message: one line for the log and the terminal.
        new_labels: labels newer than every registered version's.
        candidate: the candidate's version, when one was trained.
        decision: the gate's decision, when one was taken.
        report: the report file, when one was written.
        audit: the PASSes a person has ruled on (:func:`db.records.pass_audit`), when labels were read.
    """

    code: int
    message: str
    new_labels: int = 0
    candidate: str | None = None
    decision: GateDecision | None = None
    report: Path | None = None
    audit: PassAudit | None = None


def check_database(home: Path, url: str | None) -> None:
    """Refuse a SQLite verdict log that does not exist: opening it would make an empty one, and a retrain of an
    empty log says "nothing to do" every night, which cron would take for quiet nights.

    Raises:
        FileNotFoundError: the SQLite file ``url`` names (default: the home's ``cupcheck.db``) is not there.
    """
    from db.backup import sqlite_file

    path = sqlite_file(url, home)
    if path is not None and not path.is_file():
        raise FileNotFoundError(
            f"no verdict database at {path}: the retrain learns from an existing one (is this the station's home, "
            "and is --db or the config's database_url right?)"
        )


def check_store(repo: VerdictRepository) -> None:
    """Refuse an image store that is not there, or that lacks its ``captures/`` folder while the verdict log names
    photographs in it: a share that is not mounted, never an empty store. Read as one, every labelled cup would be
    left out for its images, and the night would end "nothing to do", which cron takes for a quiet night.

    Raises:
        ImagesUnreadable: the store folder is missing, or its ``captures/`` is while the log names photographs.
    """
    store = repo.store
    if not store.home.is_dir():
        raise ImagesUnreadable(
            f"the image folder {store.home} is not there: is the share mounted? (--store, or the config's store, "
            "names the folder the stations keep their images in); nothing was retrained"
        )
    if not store.root.is_dir() and repo.named_photographs(per_end=1):
        raise ImagesUnreadable(
            f"the image folder {store.home} has no {STORE_DIR}/, yet the verdict log names photographs in it: is the "
            "share mounted? (--store, or the config's store, names the folder the stations keep their images in); "
            "nothing was retrained"
        )


def attach_log_file(models: Path) -> logging.Handler:
    """Append the retrain log to ``models/models/retrain.log``, beside the registry it records in (returns the
    handler so the caller may remove it)."""
    root = registry_root(models)
    root.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(root / LOG_FILE)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    _log.addHandler(handler)
    _log.setLevel(logging.INFO)
    return handler


def audit_line(audit: PassAudit, delta: float = 0.05) -> str:
    """One line on the field's PASS precision from the audited PASSes, with its one-sided ``1 - delta`` bound."""
    if audit.audited == 0:
        return "PASS audit: no PASS drawn for the audit has been ruled on yet"
    right = audit.audited - audit.wrong
    bound = clopper_pearson_lower(right, audit.audited, delta)
    wrong = f" (cups {', '.join(map(str, audit.wrong_cups[:10]))})" if audit.wrong else ""
    return (
        f"PASS audit: {audit.audited} PASSes checked by a person, {audit.wrong} wrong{wrong}: precision "
        f"{audit.precision:.1%}, at least {bound:.1%} with {confidence_text(delta)} confidence"
    )


def _parse(ts: str | None) -> datetime | None:
    return None if not ts else datetime.fromisoformat(ts)


def label_watermark(models: Path) -> datetime | None:
    """The newest label any version registered under ``models`` was trained on (``None``: nothing registered)."""
    marks = [m for m in (_parse(e.labels_until) for e in load_registry(models).versions) if m is not None]
    return max(marks) if marks else None


def labels_taken(models: Path, version: str) -> datetime | None:
    """When the labels ``version`` was trained on were taken: its registry entry's ``labels_until``, the newest
    ruling it learnt from. ``repo.training_export(since=labels_taken(models, version))`` is then what that version
    has not been trained on (rulings made after it was built but before its first verdict included). ``None`` for
    the shipped bundle, which learnt from no ruling of the station: everything labelled is new to it.

    Raises:
        models.registry.RegistryError: ``version`` is not registered under ``models``.
        LookupError: the registry does not say when its labels were taken (a dry run's candidate, which leaves its
            labels to the next night).
    """
    if version == SHIPPED:
        return None
    taken = _parse(load_registry(models).get(version).labels_until)
    if taken is None:
        raise LookupError(
            f"model version {version!r} in {registry_file(models)} does not say when its labels were taken (a dry "
            "run's candidate leaves them to the next night): export every ruling, or give a time"
        )
    return taken


def versions_with_embedder(models: Path, embedder_version: str) -> set[str]:
    """Bundle versions (shipped and registered) whose embeddings are ``embedder_version``'s (the embedder's, or with
    a fine-tuned output layer the adapter's): their logged embeddings can be reused as they are."""
    out: set[str] = set()
    paths = [DEFAULT_BUNDLE] + [version_dir(models, e.version) / "verdict.json" for e in load_registry(models).versions]
    for path in paths:
        try:
            b = load_bundle(path)
        except (FileNotFoundError, ValueError):
            continue
        if b.embedding_version == embedder_version:
            out.add(b.version)
    return out


UNREADABLE_SHARE = 0.5
"""More than this share of the labelled coins' images missing from the store stops the retrain: a store that is
not mounted, or not the stations' (a few lost files leave their cups out, and the night goes on)."""


@dataclass
class ImageReads:
    """How many images of the labelled coins the retrain asked the store for, and how many were not there.

    Attributes:
        asked: references read (a crop or a mask each).
        missing: those the store did not hold.
    """

    asked: int = 0
    missing: int = 0


def _decode(repo: VerdictRepository, ref: str | None, flags: int, reads: ImageReads) -> np.ndarray | None:
    if ref is None:
        return None
    reads.asked += 1
    try:
        data = repo.read_blob(ref)
    except FileNotFoundError:  # gone from the store: the coin cannot be read again
        reads.missing += 1
        _log.warning("image %s is missing from the store", ref)
        return None
    buf = np.frombuffer(data, np.uint8)
    img = cv2.imdecode(buf, flags)
    return None if img is None else np.asarray(img)


def _disc(h: int, w: int) -> np.ndarray:
    if h == w:
        return np.array(circle_mask(h), copy=True)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.asarray(((xx - (w - 1) / 2) / (w / 2)) ** 2 + ((yy - (h - 1) / 2) / (h / 2)) ** 2 <= 1.0)


def _coin_features(
    repo: VerdictRepository, coin: SeenBox, pipeline: Pipeline, reuse: bool, reads: ImageReads
) -> tuple[np.ndarray, float, float, np.ndarray | None] | None:
    """``(embedding, visible share, focus, template signature)`` of a logged coin, or ``None`` when it cannot be
    rebuilt (the signature is ``None`` when only the embedding was kept); its image reads are counted in
    ``reads``."""
    s = pipeline.preprocess.crop_size
    crop = _decode(repo, coin.crop_ref, cv2.IMREAD_COLOR, reads)
    mask_img = _decode(repo, coin.mask_ref, cv2.IMREAD_GRAYSCALE, reads)
    emb = coin.embedding if reuse and coin.embedding is not None else None
    if emb is not None and emb.shape != (pipeline.embedder.embed_dim,):
        emb = None
    if crop is None:
        return None if emb is None else (emb.astype(np.float32), 1.0, pipeline.preprocess.focus_min + 1.0, None)
    mask = mask_img > 0 if mask_img is not None and mask_img.shape == crop.shape[:2] else _disc(*crop.shape[:2])
    if emb is None:
        emb = pipeline.embedder.embed([np.asarray(crop, np.uint8)])[0]
    sq = np.asarray(cv2.resize(crop, (s, s), interpolation=cv2.INTER_AREA), np.uint8)
    sq_mask = cv2.resize(mask.astype(np.uint8), (s, s), interpolation=cv2.INTER_NEAREST) > 0
    return emb.astype(np.float32), visible_share(sq_mask), focus_measure(sq, sq_mask), signature(sq)


def holds_unseen(cup: TrainingCup, coin_types: Sequence[str]) -> bool:
    """Whether a supervisor ruled ``cup`` another type than any of its coins found shows (``coin_types``, each by its
    ruling in force): a coin of that type lies where no box shows it (under others), so the cup is no clean cup of
    its order whatever its coins look like (:attr:`models.retrain.LabelledCup.holds_unseen`). A cup ruled all one
    other type gives its coins that type, and is not such a cup."""
    return cup.label is LabelKind.CORRECTED and cup.true_type not in coin_types


def coin_truth(box: SeenBox, ruled: TrainingCoin | None, cup: TrainingCup) -> tuple[str | None, Side | None]:
    """The true type and side of a box of ``cup`` the station saw: its ruling in force (``ruled``), or for a coin
    no ruling reached (a first check's coin with no twin in its re-check, or one whose twin was ruled turned over)
    the type its cup was ruled, side unknown. A box with no ruling that the station took for an object is no coin
    (``None``): a ruling on its cup does not make it one."""
    if ruled is not None:
        return ruled.true_type, ruled.side
    return (cup.true_type if box.is_coin else None), None


def labelled_cups(
    repo: VerdictRepository,
    export: TrainingExport,
    pipeline: Pipeline,
    reusable_versions: set[str],
    *,
    progress: bool = True,
) -> list[LabelledCup]:
    """Turn the exported labels into :class:`~models.retrain.LabelledCup`, each cup rebuilt from the boxes as the
    station classified them (:func:`db.export.station_view`): its coins, ruled or not, and its foreign objects. The
    rulings give the truth alone (:func:`coin_truth`): a coin ruled ``not_a_coin`` or ``damaged`` is still one of
    the coins the station judged the cup on, now making it no clean cup, and an object ruled a coin is still an
    object the hard rules stop the cup for. A cup a coin of which can no longer be read, its image and embedding
    gone, is left out, since without it the cup could look clean.

    Raises:
        ImagesUnreadable: more than :data:`UNREADABLE_SHARE` of the images the labelled coins name are missing from
            the store: a share that is not mounted, or another folder than the stations', not a few lost files.
    """
    reads = ImageReads()
    rulings = {coin.coin_id: coin for coin in export.coins}
    seen = station_view(repo.engine, [cup.cup_id for cup in export.cups])
    out: list[LabelledCup] = []
    for cup in tqdm(export.cups, desc="labelled cups", unit="cup", disable=not progress):
        embs: list[np.ndarray] = []
        conf: list[float] = []
        partial: list[bool] = []
        visible: list[float] = []
        focus: list[float] = []
        diam: list[float] = []
        types: list[str | None] = []
        sides: list[Side | None] = []
        sigs: list[np.ndarray | None] = []
        object_types: list[str | None] = []
        lost = False
        for box in seen.get(cup.cup_id, ()):
            true_type, side = coin_truth(box, rulings.get(box.coin_id), cup)
            if not box.is_coin:
                object_types.append(true_type)
                continue
            got = _coin_features(repo, box, pipeline, box.model_version in reusable_versions, reads)
            if got is None:  # its crop and embedding are gone: the cup without it could look clean when it was not
                lost = True
                break
            e, vis, foc, sig = got
            embs.append(e)
            sigs.append(sig)
            conf.append(box.confidence)
            partial.append(box.partial)
            visible.append(vis)
            focus.append(foc)
            diam.append(np.nan if box.diameter_mm is None else box.diameter_mm)
            types.append(true_type)
            sides.append(side)
        if lost:
            _log.warning("cup %d left out of the retrain: a coin of it can no longer be read", cup.cup_id)
            continue
        d = pipeline.embedder.embed_dim
        coins = CupCoins(
            embeddings=np.stack(embs).astype(np.float32) if embs else np.zeros((0, d), np.float32),
            confidence=np.asarray(conf, np.float32),
            partial=np.asarray(partial, bool),
            visible=np.asarray(visible, np.float32),
            diameter_mm=np.asarray(diam, np.float32),
            focus=np.asarray(focus, np.float32),
            n_objects=len(object_types),
            signatures=np.stack(sigs) if sigs and all(g is not None for g in sigs) else None,  # type: ignore[arg-type]
        )
        ruled_types = [t for t in [*types, *object_types] if t is not None]
        out.append(
            LabelledCup(
                cup.cup_id,
                cup.expected_type,
                coins,
                tuple(types),
                cup.labelled_at.isoformat(),
                cup.split_cup_id,
                tuple(sides),
                holds_unseen=holds_unseen(cup, ruled_types),
                object_types=tuple(object_types),
            )
        )
    if reads.missing > UNREADABLE_SHARE * reads.asked:
        raise ImagesUnreadable(
            f"{reads.missing} of the {reads.asked} images of the labelled coins are missing from the image folder "
            f"{repo.store.home}: is the share mounted? And is it the folder the stations keep their images in "
            "(--store, or the config's store)? Nothing was retrained"
        )
    return out


def run_retrain(home: Path, options: RetrainOptions | None = None) -> RetrainOutcome:
    """Retrain from every label in the verdict log and promote the candidate when the gate allows.

    ``home`` gives the gallery the labelled cups are judged against, the database and the images, unless
    ``options`` name others; the registry is ``options.models``'s, else the home's. One retrain runs at a time per
    registry (``models/retrain.lock``): a second one, say from a cron line left on another PC of the site, stops at
    once instead of training the same labels again beside it.

    Before anything is written, the registry must be there when it is not the home's
    (:func:`models.registry.check_registry`); a SQLite verdict log must exist (:func:`check_database`), never be
    made; the image store must be there (:func:`check_store`), and most of the labelled coins' images in it
    (:func:`labelled_cups`). A lock left by a run that died on this host is broken at once
    (:func:`models.files.holder_is_gone`), and the candidate folders such a run left are removed.

    The report is written before the candidate is recorded, and a candidate the gate passes is recorded and put in
    force in one registry write (:func:`models.registry.record_promoted`): a run stopped at any point leaves either
    nothing recorded, and the next night learns from the same labels, or the candidate in force.

    Raises:
        FileNotFoundError, ValueError: no gallery or SQLite database, a damaged bundle or registry.
        RegistryMissing: a shared registry is not there (a share that is not mounted).
        ImagesUnreadable: the image store is not there, or most labelled coins' images are missing from it.
        ReportUnwritable: the report folder cannot be written (nothing was recorded).
        RetrainRunning: another retrain holds the registry's retrain lock.
    """
    opts = options or RetrainOptions()
    models = opts.models or home
    check_registry(home, models)
    try:
        with exclusive_lock(registry_root(models) / RETRAIN_LOCK, 0.0, RETRAIN_STALE_S, "the nightly retrain"):
            _remove_leftovers(models)
            check_database(home, opts.url)
            return _run_retrain(home, models, opts)
    except LockTimeout as err:
        raise RetrainRunning(f"another retrain is running on this registry: {err}") from None


def _remove_leftovers(models: Path) -> None:
    """Remove the candidate folders a retrain that died left under the registry (only one retrain runs at a time
    per registry, and the caller holds its lock, so any found now belongs to no running retrain), and, under the
    registry's lock, the copies of a version a run killed while it installed one left there
    (:func:`models.registry.remove_stale_folders`): their links to stored files would keep the space of every file
    ``cupcheck models prune`` removes."""
    for folder in sorted(registry_root(models).glob(f"{CANDIDATE_PREFIX}*")):
        if folder.is_dir() and not folder.is_symlink():
            _log.info("removing %s, left by a retrain that stopped", folder)
            shutil.rmtree(folder, ignore_errors=True)
    for folder in remove_stale_folders(models):
        _log.info("removed %s, left by a run stopped while it copied a model into the registry", folder)


def _run_retrain(home: Path, models: Path, opts: RetrainOptions) -> RetrainOutcome:
    bundle_path = current_bundle_path(models)
    current = load_bundle(bundle_path)
    current_name = load_registry(models).current or SHIPPED
    _log.info("retrain: model in force %s (%s)", current.version, current_name)
    repo = VerdictRepository.open(home, opts.url, store=opts.store)
    try:
        check_store(repo)
        export = repo.training_export()
        mark = label_watermark(models)
        # a coin's ruling counts where its cup is labelled: the retrain learns from cups (a coin ruled alone waits)
        labelled = {c.cup_id for c in export.cups}
        stamps = [c.labelled_at for c in export.cups] + [c.labelled_at for c in export.coins if c.cup_id in labelled]
        withdrawn = repo.withdrawn_since(mark)  # a model trained before learnt what was taken back
        stamps += withdrawn
        new = sum(1 for t in stamps if mark is None or t > mark)
        audit = pass_audit(export, opts.audit_share)
        _log.info(audit_line(audit))  # the same 95 % bound the terminal prints
        if new == 0:
            msg = f"nothing to do: no label made or withdrawn after {mark.isoformat() if mark else 'the registry'}"
            _log.info(msg)
            return RetrainOutcome(EXIT_NOTHING_TO_DO, msg, audit=audit)
        _log.info(
            "exported %d labelled cups, %d coins (%d new labels, %d of them withdrawn rulings)",
            len(export.cups),
            len(export.coins),
            new,
            len(withdrawn),
        )
        window = export if opts.max_cups is None else export.newest(opts.max_cups)
        if window is not export:
            _log.info("learning from the newest %d labelled cups (%d coins)", len(window.cups), len(window.coins))
        pipeline = Pipeline.load(home, bundle_path, with_detector=False, gallery_home=opts.gallery)
        reusable = versions_with_embedder(models, pipeline.embedder.version)
        cups = labelled_cups(repo, window, pipeline, reusable, progress=opts.progress)
    finally:
        repo.engine.dispose()
    staging_root = registry_root(models)
    staging_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=CANDIDATE_PREFIX, dir=staging_root))
    try:
        try:
            cand = retrain_bundle(current, pipeline, cups, staging, opts.config)
        except ValueError as err:
            msg = f"nothing to do: {err}"
            _log.info(msg)
            return RetrainOutcome(EXIT_NOTHING_TO_DO, msg, new_labels=new, audit=audit)
        _log.info("embedder fine-tune: %s", cand.fine_tune)
        newest = max(stamps) if stamps else None
        return _record(models, current, current_name, cand, newest, new, staging, opts, audit)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _record(
    models: Path,
    current: Bundle,
    current_name: str,
    cand: Candidate,
    newest: datetime | None,
    new_labels: int,
    staging: Path,
    opts: RetrainOptions,
    audit: PassAudit,
) -> RetrainOutcome:
    decision = cand.comparison.decision
    version = cand.bundle.version
    for line in decision.reasons:
        _log.info("gate: %s", line)
    status = "candidate" if decision.promote else "rejected"
    metrics = {
        "holdout": decision.to_dict(),
        "threshold": cand.bundle.threshold.to_dict(),
        **cand.counts,
        "suspect_labels": [i.cup_id for i in cand.label_issues if i.flagged][:20],
        "pass_audit": {"audited": audit.audited, "wrong": audit.wrong},
    }
    report_dir = opts.report_dir or registry_root(models) / "reports" / version
    report = _write_report(report_dir, current, cand, opts.promote)  # first: a folder refused leaves nothing recorded
    # the same labels make the same bundle: one a dry run registered before is brought up to date, its label mark
    # set, so the next night has nothing to do instead of retraining these labels again
    entry = ModelEntry(
        version=version,
        created_at=utc_now_iso(),
        parent=current_name,
        status=status,
        metrics=metrics,
        # a dry run leaves the labels to the next night's retrain, which may promote what it learns
        labels_until=None if newest is None or not opts.promote else newest.isoformat(),
        note="; ".join(decision.reasons),
    )
    if decision.promote and opts.promote:
        try:  # the label mark and the promotion in one registry write: never the one without the other
            record_promoted(models, staging, entry, replacing=current_name)
        except InForceChanged as err:  # a rollback or promotion elsewhere while this retrain ran: it stands
            why = (
                f"{err.found} was put in force while this retrain compared {version} with {err.expected}; "
                f"{version} stays a candidate (cupcheck models promote {version} after a look)"
            )
            _note_report(report, why)  # before the record, as the report itself: it never says PROMOTE alone
            record_version(models, staging, entry)
            msg = f"not promoted: {why}"
            _log.warning(msg)
            return RetrainOutcome(EXIT_REJECTED, msg, new_labels, version, decision, report, audit)
        msg = f"promoted {version} (was {current.version}): " + "; ".join(decision.reasons)
        _log.info(msg)
        return RetrainOutcome(EXIT_PROMOTED, msg, new_labels, version, decision, report, audit)
    record_version(models, staging, entry)
    why = "gate passed but --dry-run" if decision.promote else "rejected by the gate"
    msg = f"{why}: {version} stays unpromoted, {current.version} in force: " + "; ".join(decision.reasons)
    _log.info(msg)
    return RetrainOutcome(EXIT_REJECTED, msg, new_labels, version, decision, report, audit)


def _write_report(folder: Path, current: Bundle, cand: Candidate, promoting: bool) -> Path:
    """Write the retrain's report into ``folder`` (:func:`station.retrain_report.write_retrain_report`).

    Raises:
        ReportUnwritable: the folder cannot be made or written (a file of that name, no permission, a full disk).
    """
    from station.cli import problem_text
    from station.retrain_report import write_retrain_report

    try:
        return write_retrain_report(folder, current, cand, promoting=promoting)
    except OSError as err:
        raise ReportUnwritable(
            f"cannot write the retrain report in {folder} ({problem_text(err)}): nothing was recorded or promoted; "
            "give --report a folder that can be written, and run the retrain again"
        ) from err


def _note_report(report: Path, outcome: str) -> None:
    """Say under the report's gate line that the candidate was not promoted, and why
    (:func:`station.retrain_report.note_outcome`).

    Raises:
        ReportUnwritable: the report cannot be written again (nothing was recorded).
    """
    from station.cli import problem_text
    from station.retrain_report import note_outcome

    try:
        note_outcome(report, outcome)
    except OSError as err:
        raise ReportUnwritable(
            f"cannot write the retrain report {report} again ({problem_text(err)}): nothing was recorded or "
            "promoted; run the retrain again"
        ) from err


def outcome_lines(outcome: RetrainOutcome) -> Sequence[str]:
    """Plain lines for the terminal."""
    lines = [outcome.message]
    if outcome.audit is not None:
        lines.append(audit_line(outcome.audit))
    if outcome.report is not None:
        lines.append(f"report: {outcome.report}")
    return lines
