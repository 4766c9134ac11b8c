"""The model registry: register, promote, roll back, and what a station loads."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from models.registry import (
    PRUNED,
    SHIPPED,
    InForceChanged,
    ModelEntry,
    RegistryError,
    current_bundle_path,
    load_registry,
    promote,
    prune_versions,
    record_version,
    register_version,
    registry_file,
    registry_lock,
    resolve_bundle,
    rollback,
    save_registry,
    set_status,
    start_registry,
    suspect_labels,
    version_dir,
)


def _bundle_dir(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / f"src-{name}"
    folder.mkdir()
    (folder / "verdict.json").write_text(json.dumps({"name": name}))
    (folder / "voter.txt").write_text(f"voter {name}")
    return folder


def _entry(version: str) -> ModelEntry:
    return ModelEntry(version=version, created_at="2026-01-01T00:00:00+00:00", parent=SHIPPED, metrics={"a": 1})


def test_empty_home_means_the_shipped_bundle(tmp_path: Path) -> None:
    assert current_bundle_path(tmp_path) is None
    assert resolve_bundle(tmp_path) is None
    assert resolve_bundle(tmp_path, "x/verdict.json") == Path("x/verdict.json")
    assert load_registry(tmp_path).versions == ()


def test_register_promote_and_roll_back(tmp_path: Path) -> None:
    home = tmp_path / "home"
    register_version(home, _bundle_dir(tmp_path, "a"), _entry("verdict-aaaa"))
    register_version(home, _bundle_dir(tmp_path, "b"), _entry("verdict-bbbb"))
    assert current_bundle_path(home) is None  # registered is not in force
    assert (version_dir(home, "verdict-aaaa") / "voter.txt").read_text() == "voter a"

    promote(home, "verdict-aaaa")
    promote(home, "verdict-bbbb")
    assert current_bundle_path(home) == version_dir(home, "verdict-bbbb") / "verdict.json"
    assert load_registry(home).get("verdict-bbbb").status == "promoted"

    assert rollback(home).current == "verdict-aaaa"
    assert rollback(home).current is None  # a second rollback walks further back, to the shipped bundle
    with pytest.raises(RegistryError, match="nothing to roll back"):
        rollback(home)
    actions = [(h.action, h.previous, h.version) for h in load_registry(home).history]
    assert actions == [
        ("promote", SHIPPED, "verdict-aaaa"),
        ("promote", "verdict-aaaa", "verdict-bbbb"),
        ("rollback", "verdict-bbbb", "verdict-aaaa"),
        ("rollback", "verdict-aaaa", SHIPPED),
    ]


def test_promoting_what_is_in_force_changes_nothing_and_leaves_nothing_to_roll_back(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert start_registry(home).current is None and registry_file(home).is_file()
    with pytest.raises(RegistryError, match="shipped is already in force"):
        promote(home, SHIPPED)
    with pytest.raises(RegistryError, match="nothing to roll back"):
        rollback(home)
    register_version(home, _bundle_dir(tmp_path, "a"), _entry("verdict-aaaa"))
    promote(home, "verdict-aaaa")
    with pytest.raises(RegistryError, match="verdict-aaaa is already in force"):
        promote(home, "verdict-aaaa")
    assert start_registry(home).current == "verdict-aaaa"  # a registry already there is kept
    assert [(h.previous, h.version) for h in load_registry(home).history] == [(SHIPPED, "verdict-aaaa")]
    # a registry written before a no-op promotion was refused still rolls back past it
    reg = load_registry(home)
    noop = replace(reg.history[0], previous="verdict-aaaa", version="verdict-aaaa")
    save_registry(home, replace(reg, history=(*reg.history, noop)))
    assert rollback(home).current is None


def test_registry_survives_a_reload_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    home = tmp_path / "home"
    register_version(home, _bundle_dir(tmp_path, "a"), _entry("verdict-aaaa"))
    set_status(home, "verdict-aaaa", "rejected", "fails: auto-pass")
    reg = load_registry(home)
    assert reg.get("verdict-aaaa").status == "rejected"
    assert reg.get("verdict-aaaa").metrics == {"a": 1}
    leftovers = [p.name for p in (home / "models").iterdir() if p.name.startswith(".")]
    assert leftovers == [".blobs"]
    assert not [p.name for p in (home / "models" / ".blobs").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    "action, match",
    [
        (lambda home: promote(home, "verdict-none"), "not registered \\(registered: none; 'shipped' puts"),
        (lambda home: set_status(home, "verdict-none", "rejected"), "not registered"),
    ],
)
def test_unknown_versions_are_refused(tmp_path: Path, action, match: str) -> None:
    with pytest.raises(RegistryError, match=match):
        action(tmp_path)


def test_duplicate_and_empty_registrations_are_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    src = _bundle_dir(tmp_path, "a")
    register_version(home, src, _entry("verdict-aaaa"))
    with pytest.raises(RegistryError, match="already registered"):
        register_version(home, src, _entry("verdict-aaaa"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RegistryError, match=r"holds no verdict\.json"):
        register_version(home, empty, _entry("verdict-cccc"))


@pytest.mark.parametrize("text", ["{not json", "[]", '"a string"'])
def test_a_damaged_registry_is_reported(tmp_path: Path, text: str) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "registry.json").write_text(text)
    with pytest.raises(RegistryError, match="damaged"):
        load_registry(tmp_path)


def test_a_current_version_whose_folder_vanished_is_reported(tmp_path: Path) -> None:
    import shutil

    home = tmp_path / "home"
    register_version(home, _bundle_dir(tmp_path, "a"), _entry("verdict-aaaa"))
    promote(home, "verdict-aaaa")
    shutil.rmtree(version_dir(home, "verdict-aaaa"))
    with pytest.raises(RegistryError, match="has no bundle"):
        current_bundle_path(home)


def test_suspect_labels_come_from_the_newest_retrain_that_ranked_any(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert suspect_labels(home) is None
    register_version(home, _bundle_dir(tmp_path, "a"), _entry("verdict-aaaa"))
    assert suspect_labels(home) is None  # registered without a ranking
    for name, when, cups in (("b", "2026-01-03T02:00:00+00:00", [7, 9]), ("c", "2026-01-02T02:00:00+00:00", [1])):
        entry = replace(_entry(f"verdict-{name * 4}"), created_at=when, metrics={"suspect_labels": cups})
        register_version(home, _bundle_dir(tmp_path, name), entry)
    got = suspect_labels(home)
    assert got is not None
    assert (got.cup_ids, got.version) == (frozenset({7, 9}), "verdict-bbbb")
    assert got.since == datetime(2026, 1, 3, 2, tzinfo=UTC)


def test_versions_store_a_file_they_share_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    a, b = _bundle_dir(tmp_path, "a"), _bundle_dir(tmp_path, "b")
    for folder in (a, b):  # the calibration pairs a retrain keeps as they were
        (folder / "calibration.npz").write_bytes(b"pairs" * 1000)
    register_version(home, a, _entry("verdict-aaaa"))
    register_version(home, b, _entry("verdict-bbbb"))
    va, vb = version_dir(home, "verdict-aaaa"), version_dir(home, "verdict-bbbb")
    assert (va / "calibration.npz").stat().st_ino == (vb / "calibration.npz").stat().st_ino
    assert (va / "voter.txt").stat().st_ino != (vb / "voter.txt").stat().st_ino
    assert (vb / "voter.txt").read_text() == "voter b" and (va / "voter.txt").read_text() == "voter a"
    blobs = sorted(p.name for p in (home / "models" / ".blobs").iterdir())
    assert len(blobs) == 5  # two verdict.json, two voters, one calibration file
    shutil.rmtree(va)
    assert (vb / "calibration.npz").read_bytes() == b"pairs" * 1000
    promote(home, "verdict-bbbb")
    assert current_bundle_path(home) == vb / "verdict.json"


def _nightly(home: Path, tmp_path: Path, n: int) -> list[str]:
    """``n`` nights, each registering a version that shares the calibration pairs and is promoted."""
    names = []
    for i in range(n):
        folder = _bundle_dir(tmp_path, f"n{i}")
        (folder / "calibration.npz").write_bytes(b"pairs" * 1000)
        name = f"verdict-{i:04d}"
        register_version(home, folder, replace(_entry(name), created_at=f"2026-01-{i + 1:02d}T02:00:00+00:00"))
        names.append(name)
    return names


def test_pruning_keeps_what_is_in_force_what_a_rollback_needs_and_the_newest(tmp_path: Path) -> None:
    home = tmp_path / "home"
    names = _nightly(home, tmp_path, 8)
    for name in names[:5]:  # nights 0-4 promoted in turn; 5-7 left as candidates
        promote(home, name)
    promote(home, names[1], action="promote")  # a supervisor went back to night 1 by hand
    blobs = home / "models" / ".blobs"
    assert len(list(blobs.iterdir())) == 17  # 8 bundles, 8 voters, the shared pairs once

    dry = prune_versions(home, keep=2, dry_run=True)
    # in force: night 1; two rollbacks put back night 4, then night 3; the two newest: nights 6 and 7
    assert set(dry.kept) == {names[1], names[4], names[3], names[6], names[7]}
    assert dry.versions == (names[0], names[2], names[5]) and dry.files == 6 and dry.bytes > 0
    assert all(version_dir(home, n).is_dir() for n in names)  # a dry run changes nothing

    done = prune_versions(home, keep=2)
    assert done == dry
    reg = load_registry(home)
    assert [reg.get(n).status for n in dry.versions] == [PRUNED] * 3
    assert reg.get(names[0]).metrics == {"a": 1}  # the entry and its metrics stay
    assert not any(version_dir(home, n).exists() for n in dry.versions)
    assert len(list(blobs.iterdir())) == 11 and (blobs / _sha(b"pairs" * 1000)).is_file()
    for name in dry.kept:  # every kept version is whole
        assert (version_dir(home, name) / "calibration.npz").read_bytes() == b"pairs" * 1000
    again = prune_versions(home, keep=2)
    assert again.versions == () and again.files == 0 and again.kept == done.kept
    assert rollback(home).current == names[4] and rollback(home).current == names[3]
    with pytest.raises(RegistryError, match="was pruned"):
        promote(home, names[0])


def test_pruning_to_nothing_keeps_only_the_version_in_force(tmp_path: Path) -> None:
    home = tmp_path / "home"
    names = _nightly(home, tmp_path, 3)
    promote(home, names[0])
    done = prune_versions(home, keep=0)
    assert done.kept == (names[0],) and done.versions == (names[1], names[2])
    assert current_bundle_path(home) == version_dir(home, names[0]) / "verdict.json"
    with pytest.raises(ValueError, match="at least 0"):
        prune_versions(home, keep=-1)


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_concurrent_registrations_are_all_kept(tmp_path: Path) -> None:
    home = tmp_path / "home"
    folders = [_bundle_dir(tmp_path, f"c{i}") for i in range(8)]
    with ThreadPoolExecutor(8) as pool:  # eight registrations at once, as from several PCs on one share
        list(pool.map(lambda i: register_version(home, folders[i], _entry(f"verdict-c{i:03d}")), range(8)))
    assert sorted(e.version for e in load_registry(home).versions) == [f"verdict-c{i:03d}" for i in range(8)]
    assert not (home / "models" / "registry.lock").exists()


def test_a_change_waits_for_the_lock_and_a_dead_holders_lock_is_broken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    register_version(home, _bundle_dir(tmp_path, "a"), _entry("verdict-aaaa"))
    monkeypatch.setattr("models.registry.LOCK_WAIT_S", 0.2)
    with registry_lock(home):  # another PC is changing the registry
        assert "pid" in (home / "models" / "registry.lock").read_text()
        promote(home, "verdict-aaaa")  # the same thread may change it inside
        with (
            ThreadPoolExecutor(1) as pool,
            pytest.raises(RegistryError, match=r"registry is in use by .* pid"),
        ):
            pool.submit(rollback, home).result()
    assert rollback(home).current is None  # released: the rollback goes through
    lock = home / "models" / "registry.lock"
    lock.write_text("pc-7 pid 1 since 2026-01-01")
    old = time.time() - 3600
    os.utime(lock, (old, old))  # left by a process that died an hour ago
    assert promote(home, "verdict-aaaa").current == "verdict-aaaa" and not lock.exists()


def test_a_promotion_judged_against_a_model_no_longer_in_force_is_refused(tmp_path: Path) -> None:
    """A nightly retrain compares its candidate with the model in force when it started; a supervisor's rollback
    on another PC meanwhile must stand."""
    home = tmp_path / "home"
    register_version(home, _bundle_dir(tmp_path, "a"), _entry("verdict-aaaa"))
    register_version(home, _bundle_dir(tmp_path, "b"), _entry("verdict-bbbb"))
    promote(home, "verdict-aaaa")
    started_with = load_registry(home).current  # the retrain reads the model in force ...
    rollback(home)  # ... a supervisor rolls it back meanwhile ...
    with pytest.raises(InForceChanged, match="the model in force is shipped, not verdict-aaaa") as err:
        promote(home, "verdict-bbbb", replacing=started_with)  # ... and the retrain's promotion is refused
    assert (err.value.expected, err.value.found) == ("verdict-aaaa", SHIPPED)
    assert load_registry(home).current is None
    assert promote(home, "verdict-bbbb", replacing=SHIPPED).current == "verdict-bbbb"  # judged against what runs


def test_a_version_folder_is_readable_by_every_account(tmp_path: Path) -> None:
    """A retrain trains in a private temporary folder (0700); a station running under another account must still
    load the version promoted from it, as it reads ``registry.json`` (0644)."""
    home = tmp_path / "home"
    private = Path(tempfile.mkdtemp(dir=tmp_path))  # 0700, as the retrain's candidate folder is
    (private / "verdict.json").write_text(json.dumps({"name": "p"}))
    (private / "voter.txt").write_text("voter p")
    (private / "voter.txt").chmod(0o600)
    (private / "parts").mkdir(mode=0o700)
    (private / "parts" / "adapter.pt").write_bytes(b"adapter")
    register_version(home, private, _entry("verdict-pppp"))
    folder = version_dir(home, "verdict-pppp")
    assert stat.S_IMODE(folder.stat().st_mode) & 0o755 == 0o755
    assert stat.S_IMODE((folder / "parts").stat().st_mode) & 0o755 == 0o755
    for name in ("verdict.json", "voter.txt", "parts/adapter.pt"):
        assert stat.S_IMODE((folder / name).stat().st_mode) & 0o444 == 0o444, name
    assert stat.S_IMODE(registry_file(home).stat().st_mode) == 0o644


def test_recording_a_registered_version_again_brings_its_entry_up_to_date(tmp_path: Path) -> None:
    """A dry run registers tonight's bundle without a label mark; the real run that makes the same bundle sets it."""
    home = tmp_path / "home"
    dry = replace(_entry("verdict-aaaa"), status="rejected", note="dry")
    assert record_version(home, _bundle_dir(tmp_path, "a"), dry) == dry
    real = replace(_entry("verdict-aaaa"), status="candidate", metrics={"b": 2}, labels_until="2026-02-01T00:00:00")
    got = record_version(home, _bundle_dir(tmp_path, "a2"), replace(real, created_at="2026-02-02T00:00:00+00:00"))
    assert (got.status, got.metrics, got.labels_until, got.note) == ("candidate", {"b": 2}, real.labels_until, "")
    assert got.created_at == dry.created_at  # registered then
    assert load_registry(home).versions == (got,)
    assert (version_dir(home, "verdict-aaaa") / "voter.txt").read_text() == "voter a"  # the folder stays as it was
    promote(home, "verdict-aaaa")
    again = record_version(home, _bundle_dir(tmp_path, "a3"), replace(real, status="rejected", labels_until=None))
    assert again.status == "promoted" and again.labels_until == real.labels_until  # in force once; mark kept
    register_version(home, _bundle_dir(tmp_path, "b"), _entry("verdict-bbbb"))
    prune_versions(home, keep=0)
    assert load_registry(home).get("verdict-bbbb").status == PRUNED
    back = record_version(home, _bundle_dir(tmp_path, "b2"), replace(_entry("verdict-bbbb"), status="candidate"))
    assert back.status == "candidate" and (version_dir(home, "verdict-bbbb") / "verdict.json").is_file()


def test_a_check_refuses_a_version_under_the_lock_and_changes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    register_version(home, _bundle_dir(tmp_path, "a"), _entry("verdict-aaaa"))
    register_version(home, _bundle_dir(tmp_path, "b"), _entry("verdict-bbbb"))
    promote(home, "verdict-aaaa")
    promote(home, "verdict-bbbb")
    seen: list[str] = []

    def refuse(version: str) -> None:
        seen.append(version)
        raise RegistryError(f"{version} cannot run here")

    with pytest.raises(RegistryError, match="verdict-aaaa cannot run here"):
        rollback(home, check=refuse)
    with pytest.raises(RegistryError, match="verdict-aaaa cannot run here"):
        promote(home, "verdict-aaaa", check=refuse)
    assert seen == ["verdict-aaaa"] * 2 and load_registry(home).current == "verdict-bbbb"
    assert promote(home, SHIPPED, check=refuse).current is None  # the shipped bundle is this software's own
