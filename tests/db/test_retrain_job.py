"""The nightly retrain end to end on real SQLite and PostgreSQL: logged cups, a supervisor's rulings, a refit
voter, the gate, the registry; a second run has nothing to do."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.risk import min_accepted_for_rejection
from db.records import CoinRecord, PassAudit
from db.repository import VerdictRepository
from db.schema import LabelKind
from models.bundle import load_bundle
from models.features import FEATURES
from models.files import exclusive_lock
from models.pipeline import Pipeline
from models.references import REFERENCES_FILE
from models.registry import (
    SHIPPED,
    ModelEntry,
    RegistryMissing,
    current_bundle_path,
    load_registry,
    promote,
    register_version,
)
from models.retrain import RetrainConfig
from models.synth.mint import generate_mint
from models.train.galleries import reference_crops
from models.train.voter import CALIBRATION_FEATURES, load_calibration_features, save_calibration_features
from models.types import Side
from station.cli import main
from station.retrain_job import (
    EXIT_NOTHING_TO_DO,
    EXIT_PROMOTED,
    EXIT_REJECTED,
    RETRAIN_LOCK,
    RetrainOptions,
    audit_line,
    label_watermark,
    labelled_cups,
    outcome_lines,
    run_retrain,
)
from tests.db.factories import SUPERVISOR, flagged_cup
from tests.models.embed_helpers import write_tiny_checkpoint
from tests.models.verdict_world import PIPE_MINT_SEED, PIPE_TYPES, enrolled_gallery, write_bundle

FROZEN = 50


def _jpeg(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def _home_with_tiny_model(home: Path, tmp: Path, models: Path | None = None, gallery: Path | None = None) -> str:
    """Enrol the tiny world's gallery under ``gallery`` and put its bundle in force in the registry under
    ``models`` (both default to the home)."""
    folder = tmp / "bundle"
    path, embedder = write_bundle(folder, embedder_file=write_tiny_checkpoint(tmp / "embedder.pt"))
    # the bundle's own calibration pairs, kept beside it for the retrain to re-score
    rng = np.random.default_rng(0)
    save_calibration_features(
        folder / CALIBRATION_FEATURES, rng.normal(size=(FROZEN, len(FEATURES))), rng.random(FROZEN) < 0.5, FEATURES
    )
    version = load_bundle(path).version
    register_version(models or home, folder, ModelEntry(version, "2026-01-01T00:00:00+00:00", SHIPPED))
    promote(models or home, version)
    enrolled_gallery(embedder).save((gallery or home) / "gallery")
    return version


def _log_cups(repo: VerdictRepository, version: str, n_cups: int, every_mixed: int = 3) -> None:
    """Log ``n_cups`` flagged cups of four coins, every ``every_mixed``-th holding a coin of another family, and rule
    on each as the supervisor would."""
    mint = generate_mint(12, PIPE_MINT_SEED)
    photo = _jpeg(np.full((32, 32, 3), 90, np.uint8))
    for i in range(n_cups):
        t = PIPE_TYPES[i % len(PIPE_TYPES)]
        other = PIPE_TYPES[(i + 2) % len(PIPE_TYPES)]  # another family
        crops = reference_crops(mint.by_id(t), Side.REVERSE, 4, size=64, seed=i)
        mixed = i % every_mixed == every_mixed - 1
        if mixed:
            crops[1] = reference_crops(mint.by_id(other), Side.REVERSE, 1, size=64, seed=i)[0]
        coins = tuple(
            CoinRecord(index=k, bbox=(0.0, 0.0, 64.0, 64.0), confidence=0.95, top_type=t, crop_jpeg=_jpeg(c))
            for k, c in enumerate(crops)
        )
        record = flagged_cup(t, photo, coins, version)
        repo.log_verdict(record)
    items = sorted(repo.review_queue(limit=n_cups), key=lambda it: it.cup_id)  # cup ids follow the log order
    for i, item in enumerate(items):
        repo.relabel(SUPERVISOR, item.cup_id, LabelKind.CONFIRMED)
        if i % every_mixed == every_mixed - 1:  # the mixed cups: the intruding coin's own ruling overrides the cup's
            repo.relabel(SUPERVISOR, item.cup_id, LabelKind.CORRECTED, coin_index=1, corrected_type="x")


def test_retrain_registers_a_gated_candidate_then_has_nothing_to_do(
    repo: VerdictRepository, station_home: Path, db_url: str, tmp_path: Path
) -> None:
    version = _home_with_tiny_model(station_home, tmp_path)
    _log_cups(repo, version, 40)
    export = repo.training_export()
    assert len(export.cups) == 40
    assert {c.confidence for c in export.coins} == {0.95}

    opts = RetrainOptions(url=db_url, config=RetrainConfig(target=0.8, delta=0.2, rounds=20), progress=False)
    first = run_retrain(station_home, opts)
    assert first.code in (EXIT_PROMOTED, EXIT_REJECTED), first.message
    assert first.candidate is not None and first.decision is not None
    assert first.audit is not None and first.audit.audited == 0  # every logged cup was a FLAG
    assert "PASS audit: no PASS drawn for the audit has been ruled on yet" in outcome_lines(first)
    reg = load_registry(station_home)
    entry = reg.get(first.candidate)
    assert entry.parent == version
    assert entry.metrics["holdout_cups"] > 0 and entry.metrics["cal_cups"] > 0
    assert entry.metrics["pass_audit"] == {"audited": 0, "wrong": 0}
    assert (reg.current == first.candidate) is (first.code == EXIT_PROMOTED) is first.decision.promote
    # the gate also compares both models on the bundle's frozen calibration pairs, each at its own threshold
    frozen = first.decision.frozen_new
    assert frozen is not None and first.decision.frozen_old is not None and frozen.n_pairs == FROZEN
    assert any(f"on the {FROZEN} frozen calibration pairs" in r for r in first.decision.reasons)
    assert entry.metrics["holdout"]["frozen_new"]["n_pairs"] == FROZEN
    assert first.report is not None and (first.report.parent / "old_vs_new.png").stat().st_size > 1000
    candidate = load_bundle(station_home / "models" / first.candidate / "verdict.json")
    assert candidate.train["retrained_from"] == version
    assert candidate.threshold.target == 0.8
    # the refit (when the training pairs hold both truths: the tiny model puts many clean cups' coins on a shared
    # side) and the voter kept with the new references may each be certified on these cups (too few for a
    # fine-tuned embedder, which is not tried): the one kept holds at delta whichever it is
    refit = not candidate.train["voter"].startswith("kept (no refit")
    assert (candidate.threshold.delta, candidate.threshold.candidates) == (0.2, 1 + int(refit))
    assert candidate.train["embedder_fine_tune"].startswith("skipped: the station's calibration cups give ")
    assert candidate.train["frozen_cal_pairs"] == FROZEN  # certified on the station's and the bundle's pairs
    assert candidate.cal_scores.size == entry.metrics["cal_pairs"] + FROZEN
    stored = load_calibration_features(
        station_home / "models" / first.candidate / CALIBRATION_FEATURES, candidate.features
    )
    assert stored is not None and len(stored[1]) == FROZEN  # the bundle's own pairs only, never the station's twice
    # the training split's confirmed coins travel with the candidate as station references, and its pipeline
    # scores coins against them beside the station's gallery
    n_refs = candidate.train["station_references"]
    assert n_refs == entry.metrics["station_references"] > 0
    assert candidate.references_file == REFERENCES_FILE
    pipe = Pipeline.load(station_home, station_home / "models" / first.candidate / "verdict.json", with_detector=False)
    assert pipe.view.refs.shape[0] == len(pipe.gallery) + n_refs
    text = first.report.read_text()
    assert f"Station references: {n_refs} confirmed coins" in text and f"Voter: {candidate.train['voter']}." in text
    issues = json.loads((first.report.parent / "label_issues.json").read_text())
    # only the cups the hard rules let pass as their expected type are ranked (the tiny model puts many coins on
    # a shared side): elsewhere the voter scores 0 by rule, and every confirmed cup would look mislabelled
    assert 0 < len(issues) < 40 and [i["rank"] for i in issues] == list(range(1, len(issues) + 1))

    second = run_retrain(station_home, opts)
    assert second.code == EXIT_NOTHING_TO_DO, second.message
    assert second.audit == first.audit  # the field's PASS audit is reported every night, new labels or not


def test_audit_line_bounds_the_field_precision() -> None:
    clean = audit_line(PassAudit(600, 0))
    assert "600 PASSes checked by a person, 0 wrong: precision 100.0%, at least 99.5% with 95% confidence" in clean
    two = audit_line(PassAudit(100, 2, (7, 9)))
    assert "2 wrong (cups 7, 9): precision 98.0%, at least 93.8%" in two


def test_retrain_skips_the_embedder_fine_tune_the_station_cannot_certify_or_when_told(
    repo: VerdictRepository, station_home: Path, db_url: str, tmp_path: Path
) -> None:
    version = _home_with_tiny_model(station_home, tmp_path)
    _log_cups(repo, version, 40)
    # at the bundle's 99.5 %, 40 cups are far too few to certify a new embedding on the station's cups alone
    opts = RetrainOptions(url=db_url, config=RetrainConfig(rounds=20), promote=False, progress=False)
    out = run_retrain(station_home, opts)
    assert out.candidate is not None
    train = load_bundle(station_home / "models" / out.candidate / "verdict.json").train
    note = train["embedder_fine_tune"]
    assert note.startswith("skipped: the station's calibration cups give ")
    # the fine-tuned embedder's two variants share delta with the night's other candidates: the refit, when its
    # training pairs are of both truths, and the voter kept with the station's references
    k = 2 + int(not train["voter"].startswith("kept (no refit")) + int(train["station_references"] > 0)
    need = min_accepted_for_rejection(0.995, 0.05 / k)
    assert note.endswith(f"at least {need} at 99.5% (delta 0.05 shared by the {k} candidates of a night that tries it)")
    assert out.report is not None and f"Embedder fine-tune: {note}." in out.report.read_text()
    repo.relabel(SUPERVISOR, repo.training_export().cups[0].cup_id, LabelKind.CONFIRMED)  # a new label
    off = RetrainConfig(rounds=20, seed=1, fine_tune_embedder=False)
    out = run_retrain(station_home, replace(opts, config=off))
    assert out.candidate is not None
    candidate = load_bundle(station_home / "models" / out.candidate / "verdict.json")
    assert candidate.train["embedder_fine_tune"] == "not tried (turned off)"
    assert candidate.adapter_file is None


def test_with_no_clean_cup_to_learn_from_the_references_are_still_tried(
    repo: VerdictRepository, station_home: Path, db_url: str, tmp_path: Path
) -> None:
    version = _home_with_tiny_model(station_home, tmp_path)
    _log_cups(repo, version, 40, every_mixed=1)  # every cup holds an intruder: no correct pair to refit on
    cfg = RetrainConfig(target=0.8, delta=0.2, rounds=20, fine_tune_embedder=False)
    opts = RetrainOptions(url=db_url, config=replace(cfg, references_per_design=0), promote=False, progress=False)
    bare = run_retrain(station_home, opts)
    assert bare.code == EXIT_NOTHING_TO_DO and "needs both correct and wrong pairs" in bare.message
    # the right coins of those cups still make station references: the voter in force is tried with them
    out = run_retrain(station_home, replace(opts, config=cfg))
    assert out.code in (EXIT_PROMOTED, EXIT_REJECTED), out.message
    assert out.candidate is not None
    candidate = load_bundle(station_home / "models" / out.candidate / "verdict.json")
    assert candidate.train["voter"] == "kept (no refit: the voter needs both correct and wrong pairs to train)"
    assert candidate.train["station_references"] > 0 and "refit_rejected" not in candidate.train
    # a refit that cannot be trained was never a candidate: the voter kept is certified at the whole delta, not
    # half of it (else it could never match the voter in force on the bundle's frozen pairs, and never be promoted)
    assert (candidate.threshold.delta, candidate.threshold.candidates) == (0.2, 1)


def test_a_site_retrains_into_its_shared_registry_from_the_station_config(
    repo: VerdictRepository, station_home: Path, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"  # the site's shared folder: every station's `models` and `gallery` name it
    version = _home_with_tiny_model(station_home, tmp_path, models=site, gallery=site)
    _log_cups(repo, version, 40)
    config = tmp_path / "station.toml"
    config.write_text(f'home = "{station_home}"\ndatabase_url = "{db_url}"\nmodels = "{site}"\ngallery = "{site}"\n')
    args = ["--config", str(config), "--quiet", "--target", "0.8", "--delta", "0.2", "--rounds", "20"]
    code = main(["retrain", *args, "--no-embedder", "--dry-run", "--max-cups", "30"])
    assert code == EXIT_REJECTED, capsys.readouterr()
    reg = load_registry(site)
    (candidate,) = [e for e in reg.versions if e.version != version]
    assert candidate.metrics["cups"] == 30  # the newest 30 of the 40 labelled cups
    assert "learning from the newest 30 labelled cups" in (site / "models" / "retrain.log").read_text()
    assert candidate.parent == version and reg.current == version  # registered beside the model in force, not promoted
    assert (site / "models" / candidate.version / "verdict.json").is_file()
    assert (site / "models" / "retrain.log").is_file() and (site / "models" / "reports" / candidate.version).is_dir()
    report = (site / "models" / "reports" / candidate.version / "report.md").read_text().splitlines()
    gate = [line for line in report if line.startswith("**Gate:")]
    assert gate in (["**Gate: REJECT**"], ["**Gate: PROMOTE** (a dry run: the candidate was registered, not promoted)"])
    assert not (station_home / "models").exists()  # nothing of the registry lands in the home
    assert not (station_home / "gallery").exists()  # the cups were judged against the site's gallery
    # a dry run leaves the labels where they were: the next night learns from them, and may promote
    assert candidate.labels_until is None and label_watermark(site) is None
    # the tiny world certifies no threshold at 80 %: such a candidate would PASS nothing and is not put in force
    assert candidate.metrics["threshold"]["threshold"] is None
    # the station's calibration pairs and the bundle's frozen ones, counted as pairs (a cup makes one per type)
    n_pairs = candidate.metrics["cal_pairs"] + FROZEN
    assert candidate.metrics["threshold"]["n_calibration"] == n_pairs
    assert any(line.endswith(f"on {n_pairs} calibration pairs: never PASS") for line in report), report
    assert main(["models", "--config", str(config), "promote", candidate.version]) == 2
    assert f"{candidate.version} certified no threshold" in capsys.readouterr().err
    assert main(["models", "--config", str(config), "promote", SHIPPED]) == 0  # the site's registry, by its config
    assert f"in force: {SHIPPED}" in capsys.readouterr().out
    assert load_registry(site).current is None
    assert main(["models", "--config", str(config), "list"]) == 0  # which model each station's newest cup had
    listing = capsys.readouterr().out
    assert "stations (the model of each one's newest cup):" in listing
    assert any(
        line.split()[:2] == ["bench", version] and "not the model in force" in line for line in listing.splitlines()
    )
    # a flag overrides the config: a folder holding no registry there is a share not mounted, and is refused
    assert main(["models", "--models", str(tmp_path / "elsewhere"), "list"]) == 2
    err = capsys.readouterr().err
    assert "no model registry at" in err and "elsewhere" in err


def test_a_second_retrain_on_the_same_registry_stops_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    home = tmp_path / "home"
    _home_with_tiny_model(home, tmp_path, models=site)
    with exclusive_lock(site / "models" / RETRAIN_LOCK, 1.0, 60.0, "the nightly retrain"):  # a run on another PC
        assert main(["retrain", "--home", str(home), "--models", str(site), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "another retrain is running on this registry: the nightly retrain is in use by" in err and "pid" in err
    assert not (site / "models" / RETRAIN_LOCK).exists()
    # the log says so too: doctor reports its last word, which must not be the night before's
    last = (site / "models" / "retrain.log").read_text().splitlines()[-1]
    assert "retrain stopped (exit status 2): another retrain is running on this registry" in last


def test_a_home_without_a_gallery_is_an_error_not_a_quiet_night(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "mistyped-home"
    assert main(["retrain", "--home", str(home), "--quiet"]) == 2
    assert f"no gallery in {home / 'gallery'}: is this the station's home" in capsys.readouterr().err
    assert not (home / "models").exists()  # no registry or log started where there is no station


def test_a_cup_a_coin_of_which_cannot_be_read_again_is_left_out(
    repo: VerdictRepository, station_home: Path, tmp_path: Path
) -> None:
    """Without its foreign coin (crop and embedding gone), a mixed cup would teach the retrain a clean one."""
    version = _home_with_tiny_model(station_home, tmp_path)
    _log_cups(repo, version, 3)  # the third cup holds a coin of another family, ruled so
    export = repo.training_export()
    mixed = max(c.cup_id for c in export.cups)
    foreign = next(c for c in export.coins if c.cup_id == mixed and c.index == 1)
    assert foreign.crop_ref is not None and foreign.true_type == "x"
    repo.store.remove(foreign.crop_ref)  # lost (a damaged disk, a store restored without it)
    pipeline = Pipeline.load(station_home, current_bundle_path(station_home), with_detector=False)
    cups = labelled_cups(repo, export, pipeline, set(), progress=False)
    naming = {c.cup_id for c in export.coins if c.crop_ref == foreign.crop_ref}  # the same bytes, stored once
    assert mixed in naming and len(naming) < len(export.cups)
    assert sorted(c.cup_id for c in cups) == sorted(c.cup_id for c in export.cups if c.cup_id not in naming)


def test_a_shared_registry_that_is_not_there_is_an_error_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A share that is not mounted leaves its mount point an empty local folder: never an empty registry, where a
    promotion would vanish once the share is mounted."""
    home = tmp_path / "home"
    _home_with_tiny_model(home, tmp_path)  # the home has a registry of its own, with a model in force
    mount = tmp_path / "mnt"
    mount.mkdir()
    config = tmp_path / "station.toml"
    config.write_text(f'home = "{home}"\nmodels = "{mount}"\n')
    assert main(["retrain", "--config", str(config), "--quiet", "--no-embedder"]) == 2
    err = capsys.readouterr().err
    assert f"no model registry at {mount / 'models' / 'registry.json'}: is the share mounted?" in err
    assert list(mount.iterdir()) == []  # no registry, log, lock, blobs or report under the mount point
    with pytest.raises(RegistryMissing, match="is the share mounted"):
        run_retrain(home, RetrainOptions(models=mount, progress=False))
    assert list(mount.iterdir()) == []


def test_a_missing_sqlite_database_is_an_error_not_a_quiet_night(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    _home_with_tiny_model(home, tmp_path)
    typo = tmp_path / "typo.db"
    for flags, missing in (([], home / "cupcheck.db"), (["--db", f"sqlite:///{typo}"], typo)):
        assert main(["retrain", "--home", str(home), "--quiet", "--no-embedder", *flags]) == 2
        assert f"no verdict database at {missing}" in capsys.readouterr().err
        assert not missing.exists()  # none made
        last = (home / "models" / "retrain.log").read_text().splitlines()[-1]
        assert f"retrain stopped (exit status 2): no verdict database at {missing}" in last


def test_a_retrain_stopped_by_the_database_says_so_in_its_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """doctor reports the log's last word: a night the database stopped must not read as the night before's."""
    home = tmp_path / "home"
    _home_with_tiny_model(home, tmp_path)
    (home / "cupcheck.db").write_bytes(b"not a database " * 100)  # damaged
    assert main(["retrain", "--home", str(home), "--quiet", "--no-embedder"]) == 2
    assert "the database cannot be used" in capsys.readouterr().err
    last = (home / "models" / "retrain.log").read_text().splitlines()[-1]
    assert "ERROR retrain stopped (exit status 2): DatabaseError: file is not a database" in last


def test_a_night_after_a_dry_run_of_the_same_labels_sets_their_mark(
    repo: VerdictRepository, station_home: Path, db_url: str, tmp_path: Path
) -> None:
    """The same labels make the same bundle: the dry run registered it without a mark, and the real run that finds
    it registered must set the mark, or every later night retrains the same labels."""
    version = _home_with_tiny_model(station_home, tmp_path)
    _log_cups(repo, version, 40)
    cfg = RetrainConfig(target=0.8, delta=0.2, rounds=20, fine_tune_embedder=False)
    opts = RetrainOptions(url=db_url, config=cfg, promote=False, progress=False)
    dry = run_retrain(station_home, opts)
    assert dry.code == EXIT_REJECTED and dry.candidate is not None
    assert load_registry(station_home).get(dry.candidate).labels_until is None
    real = run_retrain(station_home, replace(opts, promote=True))
    assert real.candidate == dry.candidate, "the same labels should make the same bundle"
    entry = load_registry(station_home).get(real.candidate)
    assert entry.labels_until is not None and label_watermark(station_home) is not None
    assert entry.note == "; ".join(real.decision.reasons if real.decision else ())
    assert entry.status == ("promoted" if real.code == EXIT_PROMOTED else "rejected")
    night = run_retrain(station_home, replace(opts, promote=True))
    assert night.code == EXIT_NOTHING_TO_DO, night.message


def test_a_retrain_killed_on_this_host_leaves_nothing_in_the_next_ones_way(tmp_path: Path) -> None:
    """kill -9 leaves the retrain lock and the candidate folder: the next run breaks the lock of a process of this
    host that no longer runs, and removes the folder."""
    home = tmp_path / "home"
    _home_with_tiny_model(home, tmp_path)
    VerdictRepository.open(home).engine.dispose()  # a verdict log with no label yet
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=60)
    lock = home / "models" / RETRAIN_LOCK
    lock.write_text(f"{socket.gethostname()} pid {gone.pid} since {datetime.now(UTC).isoformat()}\n")
    left = home / "models" / ".candidate-k1ll3d"
    (left / "voter").mkdir(parents=True)
    (left / "voter" / "voter.txt").write_text("half a candidate")
    out = run_retrain(home, RetrainOptions(progress=False))
    assert out.code == EXIT_NOTHING_TO_DO, out.message
    assert not lock.exists() and not left.exists()
