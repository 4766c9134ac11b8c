"""The model registry: every verdict bundle trained for a station (or for a site's stations, from a shared
folder), their metrics, and which one is in force.

Layout under the station home (or the folder the station's ``models`` setting names)::

    models/registry.json          versions (oldest first), the current version, the promote/rollback history
    models/<version>/verdict.json one folder per version: the bundle and the weights it names, each file a hard
                                  link to models/.blobs/<sha256>, so versions sharing a file store it once

``registry.json`` is rewritten atomically (temporary file + :func:`os.replace`), and a version's folder is copied
into place under a temporary name and renamed, so a reader never sees half a registry or half a bundle. No
current version means the shipped bundle (:data:`models.bundle.DEFAULT_BUNDLE`) is in force. :func:`prune_versions`
removes the folders of old versions and the stored files only they held.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from models.files import LockTimeout, exclusive_lock, sha256_file, write_bytes_atomic

P = ParamSpec("P")
R = TypeVar("R")

REGISTRY_FORMAT = "cupcheck-registry/1"
REGISTRY_DIR = "models"
REGISTRY_FILE = "registry.json"
BUNDLE_FILE = "verdict.json"
SHIPPED = "shipped"
"""Name of the shipped bundle in the history (it has no folder in the registry)."""


class RegistryError(ValueError):
    """The registry is damaged, or a version asked for does not exist."""


class RegistryMissing(RegistryError):
    """A site's shared registry that must be there is not (a share that is not mounted)."""


class InForceChanged(RegistryError):
    """Another version was put in force since the caller read the registry (a promotion or rollback elsewhere)."""

    def __init__(self, expected: str, found: str) -> None:
        super().__init__(f"the model in force is {found}, not {expected} as it was when this change was prepared")
        self.expected = expected
        self.found = found


@dataclass(frozen=True)
class ModelEntry:
    """One registered version.

    Attributes:
        version: the bundle version (``verdict-<sha8>``).
        created_at: ISO 8601 UTC time of registration.
        parent: the version it was trained from (``"shipped"`` for the shipped bundle).
        status: ``"promoted"`` (was in force at some time), ``"rejected"`` (failed the gate), ``"candidate"``, or
            ``"pruned"`` (its folder was removed by :func:`prune_versions`).
        metrics: holdout metrics and training counts.
        labels_until: ISO time of the newest label it was trained on (``None``: unknown).
        note: free text (the gate's reasons).
    """

    version: str
    created_at: str
    parent: str
    status: str = "candidate"
    metrics: dict[str, Any] = field(default_factory=dict)
    labels_until: str | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "version": self.version,
            "created_at": self.created_at,
            "parent": self.parent,
            "status": self.status,
            "metrics": self.metrics,
            "labels_until": self.labels_until,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelEntry:
        """Inverse of :meth:`to_dict`."""
        return cls(
            version=str(data["version"]),
            created_at=str(data["created_at"]),
            parent=str(data.get("parent", SHIPPED)),
            status=str(data.get("status", "candidate")),
            metrics=dict(data.get("metrics", {})),
            labels_until=data.get("labels_until"),
            note=str(data.get("note", "")),
        )


@dataclass(frozen=True)
class HistoryEvent:
    """A change of the version in force.

    Attributes:
        at: ISO 8601 UTC time.
        action: ``"promote"`` or ``"rollback"``.
        version: the version put in force (``"shipped"`` for the shipped bundle).
        previous: the version it replaced.
    """

    at: str
    action: str
    version: str
    previous: str


@dataclass(frozen=True)
class Registry:
    """The registry document.

    Attributes:
        versions: every registered version, oldest first.
        current: the version in force, ``None`` for the shipped bundle.
        history: promotions and rollbacks, oldest first.
    """

    versions: tuple[ModelEntry, ...] = ()
    current: str | None = None
    history: tuple[HistoryEvent, ...] = ()

    def get(self, version: str) -> ModelEntry:
        """The entry of ``version``.

        Raises:
            RegistryError: not registered.
        """
        for entry in self.versions:
            if entry.version == version:
                return entry
        known = ", ".join(e.version for e in self.versions) or "none"
        raise RegistryError(
            f"model version {version!r} is not registered (registered: {known}; "
            f"{SHIPPED!r} puts the shipped bundle back)"
        )

    @property
    def current_entry(self) -> ModelEntry | None:
        """The entry in force, ``None`` for the shipped bundle."""
        return None if self.current is None else self.get(self.current)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "format": REGISTRY_FORMAT,
            "current": self.current,
            "versions": [e.to_dict() for e in self.versions],
            "history": [e.__dict__ for e in self.history],
        }


LOCK_FILE = "registry.lock"
LOCK_WAIT_S = 120.0
"""How long a change of the registry waits for another one (another PC's) to finish."""
LOCK_STALE_S = 900.0
"""A lock older than this was left by a process that died; it is broken."""
_held: dict[tuple[str, int], int] = {}
_held_guard = threading.Lock()


@contextmanager
def registry_lock(home: Path) -> Iterator[None]:
    """Hold ``models/registry.lock`` while the registry is read, changed and written, so that a retrain on one PC,
    a rollback on another and a prune never lose each other's change (``registry.json`` is rewritten whole).

    The lock is a file created exclusively (which network shares honour), naming its holder; the same thread may
    take it again inside. A lock older than :data:`LOCK_STALE_S` is broken.

    Raises:
        RegistryError: another holder kept it past :data:`LOCK_WAIT_S`.
    """
    path = registry_root(home) / LOCK_FILE
    key = (str(path.resolve()), threading.get_ident())
    with _held_guard:
        depth = _held.get(key, 0)
        _held[key] = depth + 1
    try:
        if depth:
            yield
        else:
            try:
                with exclusive_lock(path, LOCK_WAIT_S, LOCK_STALE_S, "the model registry"):
                    yield
            except LockTimeout as err:
                raise RegistryError(str(err)) from None
    finally:
        with _held_guard:
            if depth == 0:
                del _held[key]
            else:
                _held[key] = depth


def _locked(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a registry change under :func:`registry_lock` of its first argument, the home."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        home = args[0] if args else kwargs["home"]
        assert isinstance(home, (str, Path))
        with registry_lock(Path(home)):
            return fn(*args, **kwargs)

    return run


def utc_now_iso() -> str:
    """The current UTC time in ISO 8601."""
    return datetime.now(UTC).isoformat()


def registry_root(home: Path) -> Path:
    """``home/models``."""
    return Path(home) / REGISTRY_DIR


def registry_file(home: Path) -> Path:
    """``home/models/registry.json``."""
    return registry_root(home) / REGISTRY_FILE


def version_dir(home: Path, version: str) -> Path:
    """The folder of a registered version."""
    return registry_root(home) / version


def load_registry(home: Path) -> Registry:
    """Read ``home/models/registry.json`` (an empty registry when there is none).

    Raises:
        RegistryError: unreadable or not a registry.
    """
    path = registry_file(home)
    if not path.is_file():
        return Registry()
    try:
        doc = json.loads(path.read_text())
        if doc.get("format") != REGISTRY_FORMAT:
            raise RegistryError(f"{path}: not a model registry (format {doc.get('format')!r})")
        reg = Registry(
            versions=tuple(ModelEntry.from_dict(v) for v in doc.get("versions", [])),
            current=doc.get("current"),
            history=tuple(HistoryEvent(**h) for h in doc.get("history", [])),
        )
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise RegistryError(f"{path} is damaged: {err}") from err
    if reg.current is not None:
        reg.get(reg.current)
    return reg


def save_registry(home: Path, registry: Registry) -> Path:
    """Write the registry atomically; returns its path."""
    path = registry_file(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_bytes_atomic(path, (json.dumps(registry.to_dict(), indent=1) + "\n").encode())


def check_registry(home: Path, models: Path) -> None:
    """Refuse a registry folder other than the home's that holds no ``registry.json``.

    A site's shared folder gets its registry from ``cupcheck init-site``; one without it is a share that is not
    mounted (its mount point an empty local folder), never an empty registry: taken for one, a retrain would
    compare against the shipped bundle instead of the site's model, ``cupcheck models`` would list the shipped
    bundle in force, and a promotion would go into a folder that vanishes when the share is mounted. Call it before
    anything is written there. The home's own registry may not exist yet (the shipped bundle is in force).

    Raises:
        RegistryMissing: ``models`` is not the home and holds no registry.
    """
    if Path(models).resolve() == Path(home).resolve() or registry_file(models).is_file():
        return
    raise RegistryMissing(
        f"no model registry at {registry_file(models)}: is the share mounted? (a new site starts one with "
        "`cupcheck init-site`); nothing was written there"
    )


def current_bundle_path(home: Path) -> Path | None:
    """The bundle JSON in force for a station home, ``None`` when the shipped bundle is (no registry current).

    Raises:
        RegistryError: the registry names a version whose bundle is missing.
    """
    return bundle_path(home, load_registry(home).current or SHIPPED)


def bundle_path(home: Path, name: str) -> Path | None:
    """The bundle JSON of the registered version ``name``, ``None`` for :data:`SHIPPED` (the shipped bundle).

    Raises:
        RegistryError: the version has no bundle in the registry.
    """
    if name == SHIPPED:
        return None
    path = version_dir(home, name) / BUNDLE_FILE
    if not path.is_file():
        raise RegistryError(f"the registry's model {name} has no bundle at {path}")
    return path


def resolve_bundle(home: Path, explicit: str | Path | None = None) -> Path | None:
    """The bundle a station should load: ``explicit`` if given, else the registry's current, else ``None``."""
    if explicit is not None:
        return Path(explicit)
    return current_bundle_path(home)


@dataclass(frozen=True)
class SuspectLabels:
    """The cups whose rulings cleanlab ranked as likely wrong at the newest retrain (``suspect_labels`` in its
    registry metrics), for the review queue to show again.

    Attributes:
        cup_ids: the suspected cups.
        since: when that retrain registered its candidate; a ruling made after it is the second look.
        version: the candidate it registered.
    """

    cup_ids: frozenset[int]
    since: datetime
    version: str


def suspect_labels(home: Path) -> SuspectLabels | None:
    """The newest registered version's suspected labels, ``None`` when no retrain has ranked any.

    Raises:
        RegistryError: the registry is damaged.
    """
    ranked = [e for e in load_registry(home).versions if "suspect_labels" in e.metrics]
    if not ranked:
        return None
    newest = max(ranked, key=lambda e: e.created_at)
    return SuspectLabels(
        frozenset(int(c) for c in newest.metrics["suspect_labels"]),
        datetime.fromisoformat(newest.created_at),
        newest.version,
    )


@_locked
def register_version(home: Path, bundle_dir: Path, entry: ModelEntry) -> ModelEntry:
    """Copy a bundle folder into the registry as ``entry.version`` and record it (not in force yet).

    Each file is stored once under :data:`BLOBS_DIR` by its sha256 and hard-linked into the version's folder, so
    a file with the same bytes as one of an earlier version (the bundle's calibration pairs, a voter kept as it
    was) takes no more room: a nightly retrain adds only what changed. Bundles are never written after
    registration (their files are hashed in ``verdict.json``); removing a version's folder leaves the others
    whole.

    Args:
        home: station home.
        bundle_dir: folder holding ``verdict.json`` and the files it names (relative paths).
        entry: the entry to record; its version names the folder.

    Raises:
        RegistryError: the version is already registered or the folder has no bundle.
    """
    reg = load_registry(home)
    if any(e.version == entry.version for e in reg.versions):
        raise RegistryError(f"model version {entry.version} is already registered")
    _install_version(home, bundle_dir, entry.version)
    save_registry(home, replace(reg, versions=(*reg.versions, entry)))
    return entry


@_locked
def record_version(home: Path, bundle_dir: Path, entry: ModelEntry) -> ModelEntry:
    """Register a retrain's candidate, or bring its entry up to date when the same bundle is registered already.

    A retrain that learns from the same labels makes the same bundle: a ``--dry-run`` registers it without a label
    mark, and the next night's run finds it there. That run's outcome is what counts, so the entry takes its
    ``status``, ``metrics``, ``note`` and ``labels_until`` (a version once in force stays ``"promoted"``, and a
    mark already set is kept when the new one is ``None``); without this, the label watermark would never move and
    every night would retrain the same labels. A version whose folder was pruned gets it back.

    Args:
        home: the folder whose ``models/`` holds the registry.
        bundle_dir: folder holding ``verdict.json`` and the files it names.
        entry: the entry to record; its version names the folder.

    Returns:
        The entry as recorded.

    Raises:
        RegistryError: the folder has no bundle, or the registry is damaged.
    """
    reg, recorded = _with_entry(home, load_registry(home), bundle_dir, entry)
    save_registry(home, reg)
    return recorded


@_locked
def record_promoted(home: Path, bundle_dir: Path, entry: ModelEntry, *, replacing: str) -> Registry:
    """Record a retrain's candidate as :func:`record_version` does and put it in force, in one write of
    ``registry.json``; returns the new registry.

    The entry's ``labels_until`` is the retrain's label mark: once it is recorded, the next night has nothing to
    do. Recorded apart from the promotion, a run that stopped between the two (killed, a full disk, a share gone)
    would leave a candidate that passed the gate never in force, and its labels taken. In one write, a run stopped
    at any point leaves either nothing recorded (the next night learns from the same labels again) or the candidate
    in force. Its folder is copied into place first; without its entry, the next run replaces it.

    Args:
        home: the folder whose ``models/`` holds the registry.
        bundle_dir: folder holding ``verdict.json`` and the files it names.
        entry: the entry to record; its version names the folder and is put in force.
        replacing: the version the retrain compared the candidate with (``"shipped"`` for the shipped bundle).

    Raises:
        InForceChanged: ``replacing`` is no longer in force (a rollback or promotion elsewhere while the retrain
            ran); nothing was recorded.
        RegistryError: the folder has no bundle, the version is in force already, or the registry is damaged.
    """
    reg = load_registry(home)
    if (reg.current or SHIPPED) != replacing:
        raise InForceChanged(replacing, reg.current or SHIPPED)
    recorded, _ = _with_entry(home, reg, bundle_dir, entry)
    new = _put_in_force(home, recorded, entry.version, "promote")
    save_registry(home, new)
    return new


def _with_entry(home: Path, reg: Registry, bundle_dir: Path, entry: ModelEntry) -> tuple[Registry, ModelEntry]:
    """``reg`` with ``entry`` recorded as :func:`record_version` says, and the entry as recorded; the version's
    folder is installed when it has none, the registry is not written.

    Raises:
        RegistryError: the folder has no bundle.
    """
    old = next((e for e in reg.versions if e.version == entry.version), None)
    if old is None:
        _install_version(home, bundle_dir, entry.version)
        return replace(reg, versions=(*reg.versions, entry)), entry
    status = old.status if old.status == "promoted" else entry.status
    if not (version_dir(home, entry.version) / BUNDLE_FILE).is_file():  # pruned since: the bundle comes back
        _install_version(home, bundle_dir, entry.version)
    new = replace(
        old,
        status=status,
        metrics=entry.metrics,
        labels_until=entry.labels_until if entry.labels_until is not None else old.labels_until,
        note=entry.note,
    )
    return replace(reg, versions=tuple(new if e is old else e for e in reg.versions)), new


def _install_version(home: Path, bundle_dir: Path, version: str) -> None:
    """Copy ``bundle_dir`` into the registry as ``version``'s folder: under a temporary name first
    (:data:`STAGING_PREFIX`), readable by every account (a station may run under another account than the retrain,
    as ``registry.json`` is 0644), then renamed into place, so a reader never sees half a bundle. What a run killed
    in here left is removed first (:func:`_remove_stale`); the caller holds the registry's lock.

    Raises:
        RegistryError: the folder has no bundle.
    """
    if not (bundle_dir / BUNDLE_FILE).is_file():
        raise RegistryError(f"{bundle_dir} holds no {BUNDLE_FILE}")
    root = registry_root(home)
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale(home, load_registry(home))
    target = version_dir(home, version)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{version}.", dir=root))
    try:
        shutil.copytree(bundle_dir, staging, dirs_exist_ok=True, copy_function=_link_blob(root / BLOBS_DIR))
        _readable_by_all(staging)
        if target.exists():  # a leftover of a run that died between the rename and the registry write
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


STAGING_PREFIX = ".staging-"
"""A version's folder is copied into ``models/.staging-<version>.<random>`` and renamed into place; one found while
the registry's lock is held was left by a run that was killed while it copied."""
_OLD_STAGING = ".verdict-*.*"
"""The temporary folders of cupcheck before :data:`STAGING_PREFIX` (``.<version>.<random>``)."""


def stale_folders(home: Path, registry: Registry) -> list[Path]:
    """The folders under the registry that a run killed while it installed a version left behind, and that nothing
    else would ever remove: temporary copies (:data:`STAGING_PREFIX`, and the older ``.verdict-*.<random>``), and a
    version's folder renamed into place whose registry entry was never written (a folder holding ``verdict.json``
    that the registry does not name). Their files are hard links to the stored files (:data:`BLOBS_DIR`), so until
    they go, a pruned file's space is never freed. Only meaningful under :func:`registry_lock`: outside it, another
    process may be installing a version right now.
    """
    root = registry_root(home)
    if not root.is_dir():
        return []
    named = {e.version for e in registry.versions}
    found = {*root.glob(f"{STAGING_PREFIX}*"), *root.glob(_OLD_STAGING)}
    found |= {
        d for d in root.iterdir() if not d.name.startswith(".") and d.name not in named and (d / BUNDLE_FILE).is_file()
    }
    return sorted(d for d in found if d.is_dir() and not d.is_symlink())


def _remove_stale(home: Path, registry: Registry) -> list[Path]:
    """Remove :func:`stale_folders` (the caller holds the registry's lock); returns what went."""
    gone = stale_folders(home, registry)
    for folder in gone:
        shutil.rmtree(folder, ignore_errors=True)
    return gone


@_locked
def remove_stale_folders(home: Path) -> list[Path]:
    """Remove, under the registry's lock, the folders a run killed while it installed a version left
    (:func:`stale_folders`); returns them. The nightly retrain calls it as it starts.

    Raises:
        RegistryError: the registry is damaged, or another change held its lock too long.
    """
    return _remove_stale(home, load_registry(home))


def _readable_by_all(folder: Path) -> None:
    """Make ``folder`` and everything in it readable by every account (folders 0755, files gain read bits): a
    temporary folder is made private (0700), and a version folder must not stay so."""
    for path in (folder, *folder.rglob("*")):
        if path.is_symlink():
            continue
        mode = path.stat().st_mode & 0o7777
        want = mode | (0o755 if path.is_dir() else 0o444)
        if want != mode:
            with suppress(PermissionError):  # a stored file of another account's: not ours to change
                os.chmod(path, want)


BLOBS_DIR = ".blobs"
"""Under the registry: every registered file once, named by its sha256; the version folders hard-link to them."""


def _link_blob(blobs: Path) -> Callable[[str, str], str]:
    """``shutil.copytree``'s copy function: store the file once under ``blobs`` by its digest, link it in place."""

    def copy(src: str, dst: str) -> str:
        blob = blobs / sha256_file(Path(src))
        if not blob.is_file():
            blobs.mkdir(parents=True, exist_ok=True)
            part = blob.with_name(f".{blob.name}.{os.getpid()}.part")
            shutil.copy2(src, part)
            os.replace(part, blob)
        try:
            os.link(blob, dst)
        except OSError:  # links not allowed here: a copy of its own
            shutil.copy2(src, dst)
        return dst

    return copy


@_locked
def set_status(home: Path, version: str, status: str, note: str | None = None) -> Registry:
    """Change a version's status (and note); returns the new registry."""
    reg = load_registry(home)
    reg.get(version)
    versions = tuple(
        replace(e, status=status, note=e.note if note is None else note) if e.version == version else e
        for e in reg.versions
    )
    new = replace(reg, versions=versions)
    save_registry(home, new)
    return new


@_locked
def start_registry(home: Path) -> Registry:
    """Write an empty registry (the shipped bundle in force) where there is none yet; returns the registry there."""
    if registry_file(home).is_file():
        return load_registry(home)
    reg = Registry()
    save_registry(home, reg)
    return reg


@_locked
def promote(
    home: Path,
    version: str,
    *,
    action: str = "promote",
    replacing: str | None = None,
    check: Callable[[str], None] | None = None,
) -> Registry:
    """Put ``version`` in force (``"shipped"`` puts the shipped bundle back); returns the new registry.

    Args:
        home: the folder whose ``models/`` holds the registry.
        version: a registered version, or ``"shipped"``.
        action: what the history calls it.
        replacing: the version the caller judged ``version`` against (``"shipped"`` for the shipped bundle): the
            promotion happens only if that is still in force, checked under the registry's lock (a nightly retrain
            must not undo a rollback a supervisor made while it ran).
        check: called with a registered version before it is put in force, under the lock; it raises to refuse
            it (``cupcheck models`` loads the bundle there, so a bundle this software cannot run is never put in
            force).

    Raises:
        RegistryError: unknown version, its bundle folder is missing, or it is already in force (nothing changes,
            and the history records nothing).
        InForceChanged: ``replacing`` is no longer in force.
    """
    reg = load_registry(home)
    if replacing is not None and (reg.current or SHIPPED) != replacing:
        raise InForceChanged(replacing, reg.current or SHIPPED)
    new = _put_in_force(home, reg, version, action, check)
    save_registry(home, new)
    return new


def _put_in_force(
    home: Path, reg: Registry, version: str, action: str, check: Callable[[str], None] | None = None
) -> Registry:
    """``reg`` with ``version`` in force and the change in its history, as :func:`promote` says; not written.

    Raises:
        RegistryError: as :func:`promote`'s.
    """
    if version == (reg.current or SHIPPED):
        raise RegistryError(f"{version} is already in force")
    target: str | None = None if version == SHIPPED else version
    if target is not None:
        if reg.get(target).status == PRUNED:
            raise RegistryError(f"model version {target} was pruned (cupcheck models prune): its bundle is gone")
        bundle_path(home, target)  # refused when its bundle is missing
        if check is not None:
            check(target)
    event = HistoryEvent(utc_now_iso(), action, version, reg.current or SHIPPED)
    versions = tuple(
        replace(e, status="promoted") if e.version == target and e.status != "promoted" else e for e in reg.versions
    )
    return Registry(versions=versions, current=target, history=(*reg.history, event))


@_locked
def rollback(home: Path, *, check: Callable[[str], None] | None = None) -> Registry:
    """Put back the version that was in force before the current one; returns the new registry.

    Args:
        home: the folder whose ``models/`` holds the registry.
        check: as :func:`promote`'s, called with the version a rollback would put back (unless it is the shipped
            bundle).

    Raises:
        RegistryError: nothing to roll back to (the shipped bundle is in force and never was replaced).
    """
    reg = load_registry(home)
    before = _in_force_before(reg, reg.current or SHIPPED)
    if before is None:
        raise RegistryError("nothing to roll back to: no earlier model was in force")
    return promote(home, before, action="rollback", check=check)


def _in_force_before(registry: Registry, version: str) -> str | None:
    """The version in force before ``version``: the one the last promotion that installed it replaced (rollback
    events are skipped, so repeated rollbacks walk further back instead of toggling); ``None`` when none did."""
    return next(
        (
            e.previous
            for e in reversed(registry.history)
            if e.action == "promote" and e.version == version and e.previous != version
        ),
        None,
    )


PRUNED = "pruned"
"""Status of a version whose folder :func:`prune_versions` removed (its entry and metrics stay)."""


@dataclass(frozen=True)
class RegistryPrune:
    """What :func:`prune_versions` removed, or would remove.

    Attributes:
        versions: the versions whose folders go, oldest first.
        kept: the registered versions whose folders stay.
        files: stored files (blobs) no kept version holds any more.
        bytes: their size.
        leftovers: folders a run killed while it installed a version left (:func:`stale_folders`), by name.
    """

    versions: tuple[str, ...]
    kept: tuple[str, ...]
    files: int
    bytes: int
    leftovers: tuple[str, ...] = ()


def rollback_chain(registry: Registry, steps: int) -> list[str]:
    """The versions ``steps`` successive :func:`rollback` calls would put in force, nearest first (registered
    versions only; the walk stops at the shipped bundle)."""
    chain: list[str] = []
    current = registry.current or SHIPPED
    seen = {current}
    while len(chain) < steps:
        before = _in_force_before(registry, current)
        if before is None or before == SHIPPED or before in seen:
            break
        chain.append(before)
        seen.add(before)
        current = before
    return chain


def prune_versions(home: Path, keep: int = 5, *, dry_run: bool = False) -> RegistryPrune:
    """Remove the folders of old versions, so a nightly retrain does not fill the disk (about 2.4 MB a night).

    Kept: the version in force, the ``keep`` versions successive rollbacks would put back, and the ``keep`` newest
    registered versions (tonight's candidates a supervisor may promote by hand). The others lose their folder and
    take the status :data:`PRUNED`; their entries, metrics and label marks stay in the registry (the retrain's label
    watermark and the history read them), and promoting one is refused as having no bundle. A stored file goes
    once no kept version holds it, and so do the folders a run killed while it installed a version left
    (:func:`stale_folders`), which hold links to stored files. The change is made under :func:`registry_lock`; a
    folder with no ``models/`` has nothing to prune, and nothing is made there.

    Args:
        home: the folder whose ``models/`` holds the registry.
        keep: how many rollback steps and newest versions to keep (at least 0).
        dry_run: count, change nothing.

    Raises:
        RegistryError: the registry is damaged, or another change held it too long.
        ValueError: ``keep`` is negative.
    """
    if keep < 0:
        raise ValueError(f"keep must be at least 0, got {keep}")
    if dry_run or not registry_root(home).is_dir():
        return _prune_plan(home, keep)[0]
    with registry_lock(home):
        report, reg, orphans = _prune_plan(home, keep)
        _remove_stale(home, reg)  # first: their links would keep the space of the stored files removed below
        if not report.versions and not orphans:
            return report
        gone = set(report.versions)
        versions = tuple(replace(e, status=PRUNED) if e.version in gone else e for e in reg.versions)
        save_registry(home, replace(reg, versions=versions))  # first: a version is never named with half a folder
        for version in report.versions:
            shutil.rmtree(version_dir(home, version), ignore_errors=True)
        for blob in orphans:
            blob.unlink(missing_ok=True)
    return report


def _prune_plan(home: Path, keep: int) -> tuple[RegistryPrune, Registry, list[Path]]:
    """What :func:`prune_versions` removes: its report, the registry it read, and the stored files that go."""
    reg = load_registry(home)
    newest = sorted(reg.versions, key=lambda e: e.created_at)[-keep:] if keep else []
    held = {reg.current, *rollback_chain(reg, keep), *(e.version for e in newest)}
    drop = [e.version for e in reg.versions if e.version not in held and version_dir(home, e.version).exists()]
    kept = tuple(e.version for e in reg.versions if e.version in held and version_dir(home, e.version).is_dir())
    blobs = registry_root(home) / BLOBS_DIR
    gone = set(drop)
    wanted = {
        os.stat(f).st_ino
        for e in reg.versions
        if e.version not in gone and version_dir(home, e.version).is_dir()
        for f in version_dir(home, e.version).rglob("*")
        if f.is_file()
    }
    orphans = [b for b in blobs.iterdir() if b.is_file() and b.stat().st_ino not in wanted] if blobs.is_dir() else []
    leftovers = tuple(d.name for d in stale_folders(home, reg))
    size = sum(b.stat().st_size for b in orphans)
    return RegistryPrune(tuple(drop), kept, len(orphans), size, leftovers), reg, orphans
