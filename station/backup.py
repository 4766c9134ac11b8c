"""``cupcheck backup``: everything a station would lose with its disk, copied into a folder laid out as a station
home, so a restore is that folder used as the home (or copied back).

What is copied: the SQLite verdict log (consistently, while the station may be writing: :mod:`db.backup`), the
photographs and coin crops (only the files the backup lacks: their names are their contents' hashes, so a file
once copied never changes), the gallery and the model registry (without holding their locks: each one's index
file is read first and written last, so an enrolment or a retrain meanwhile is never caught half-saved; hard links
between registry versions stay links), and the home's own files: the camera calibration, the empty-tray photo,
``orders.csv``, the verdict journal, the sign-in cache and the tray enrolments (``enrolments/``: the photographs
``cupcheck enroll`` enrols again from after a new embedder). A site's shared image folder, gallery and registry are
copied from where the station file says they are. A site's PostgreSQL database is dumped with ``pg_dump``
(``cupcheck.pgdump``, one consistent snapshot; restore with ``pg_restore``); since the images are copied after the
dump, every image a dumped verdict names is in the backup.

A backup into a folder that holds an earlier one never spoils it: the new verdict log (or dump) is written under a
temporary name and takes the old one's place only once every image it names, and everything else, is copied; a copy
that fails (a full disk) leaves no partial file behind, and the home records that the attempt failed, which
``cupcheck doctor`` says until a backup finishes whole.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from station.config import StationConfig
from station.units import size_text


def home_files() -> tuple[str, ...]:
    """The station home's own files, by the names their writers give them: the camera calibration (and the photo
    it was made from), the empty-tray photo, the order book, the verdict journal (and the records set aside from it),
    the sign-in cache and the cups cleared from the bench."""
    from calibration.camera import CALIBRATION_FILE, EMPTY_TRAY_FILE, SETUP_VIEW_FILE
    from db.signin_cache import CACHE_FILENAME
    from station.controllers.bench import CLEARED_FILE
    from station.controllers.catalog import ORDERS_FILE

    return (
        CALIBRATION_FILE,
        SETUP_VIEW_FILE,
        EMPTY_TRAY_FILE,
        ORDERS_FILE,
        *journal_files(),
        CACHE_FILENAME,
        CLEARED_FILE,
    )


def journal_files() -> tuple[str, ...]:
    """The verdict journal and the records set aside from it (refused, or unreadable), by name."""
    from db.spool import SPOOL_FILENAME, VerdictSpool

    spool = VerdictSpool(Path(SPOOL_FILENAME))
    return (SPOOL_FILENAME, spool.rejected_path.name, spool.damaged_path.name)


ENROLMENTS_DIR = "enrolments"
"""The home's tray enrolments, one folder each, as :data:`station.controllers.enrol_tray.ENROLMENTS` names them
(not imported from there: that module loads Qt and the embedder)."""
SKIP_SUFFIXES = (".lock", ".tmp")
MANIFEST = "backup.json"
LAST_BACKUP = "last-backup.json"
"""In the station home: when and where :func:`back_up` last copied it whole, and how its last attempt ended."""
DID_NOT_FINISH = "it did not finish (it is still running, or it was stopped, or the computer went down)"
"""How :data:`LAST_BACKUP` names an attempt that started and never recorded its end."""


class BackupError(ValueError):
    """The backup cannot be made where asked (the message says why)."""


@dataclass(frozen=True)
class BackupReport:
    """What one backup did.

    Attributes:
        folder: the backup.
        database: what became of the verdict log (copied, dumped, or why not).
        database_ok: whether the verdict log is in the backup (when not, the rest was still copied, and the backup
            is not recorded as the home's last).
        images_new: photographs and crops copied this time.
        images_kept: those the backup held already.
        files: other files copied this time (gallery, registry, the home's own).
        bytes: bytes copied this time.
        seconds: how long it took.
    """

    folder: Path
    database: str
    images_new: int
    images_kept: int
    files: int
    bytes: int
    seconds: float
    database_ok: bool = True


def _places(config: StationConfig, home: Path) -> tuple[Path, Path, Path]:
    """Where the station's data lives besides its home: the image folder, the gallery and the model registry (a
    site's shared ones, when the station file names them)."""
    from models.registry import registry_root

    return config.store or home, (config.gallery or home) / "gallery", registry_root(config.models or home)


def _inside(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a == b or b in a.parents


def back_up(
    config: StationConfig,
    home: Path,
    out: Path,
    *,
    progress: Callable[[Iterable[str], int], Iterable[str]] | None = None,
) -> BackupReport:
    """Copy the station's data into ``out`` (made if missing; a second backup into it copies only what changed).

    Args:
        config: the station's configuration (database, store, models, gallery).
        home: the station home.
        out: the backup folder (not inside any folder it copies, nor holding one).
        progress: wraps the photographs' iteration (``tqdm``); ``None``: silent.

    Raises:
        BackupError: ``out`` overlaps what it copies, or holds the backup of another home.
        FileNotFoundError, sqlite3.Error: the SQLite verdict log cannot be read (a PostgreSQL dump that fails is
            reported in :attr:`BackupReport.database` instead, after everything else was copied).
    """
    from db.backup import PG_DUMP_FILE, DumpError, dump_postgres, snapshot_sqlite, sqlite_file
    from db.session import DB_FILENAME
    from db.store import ContentStore
    from models.gallery import MANIFEST as GALLERY_MANIFEST
    from models.registry import REGISTRY_FILE

    started = time.perf_counter()
    store_home, gallery, models = _places(config, home)
    for source in (home, store_home, gallery, models):
        if _inside(out, source) or _inside(source, out):
            raise BackupError(f"the backup folder {out} overlaps {source}, which it copies: choose another folder")
    earlier = _backed_up_home(out)
    if earlier is not None and earlier.resolve() != home.resolve():
        raise BackupError(
            f"{out} holds the backup of another station home ({earlier}): a backup there would mix the two. "
            "Give each station its own backup folder"
        )
    attempted_at = _now()
    _record_attempt(home, out, attempted_at, DID_NOT_FINISH)
    db_file = sqlite_file(config.database_url, home)
    log_name = PG_DUMP_FILE if db_file is None else DB_FILENAME
    pending = out / f".{log_name}.tmp"  # the new log, until everything it names is copied
    try:
        out.mkdir(parents=True, exist_ok=True)
        copied = _Copier()
        # the journal before the database: a verdict replayed from it meanwhile is in one copy or the other (in
        # both, a replay of the copy finds it stored already)
        journals = journal_files()
        for name in journals:
            if (home / name).is_file():
                copied.file(home / name, out / name, only_if_changed=True)

        database_ok = True
        if db_file is None:
            assert config.database_url is not None
            try:  # before the images: each image is stored before its verdict, so the copy holds every dumped one's
                size = dump_postgres(config.database_url, pending).stat().st_size
                copied.bytes += size
                database = f"PostgreSQL dumped to {out / PG_DUMP_FILE} ({size_text(size)})"
            except DumpError as err:
                database, database_ok = f"NOT BACKED UP: {err}", False
        else:
            size = snapshot_sqlite(db_file, pending).stat().st_size
            copied.bytes += size
            database = f"{db_file} copied ({size_text(size)})"

        store, target = ContentStore(store_home), ContentStore(out)
        refs = [ref for ref, _ in store.iter_refs()]
        new = 0
        for ref in progress(refs, len(refs)) if progress is not None else refs:
            dst = target.path(ref)
            if dst.exists():
                continue
            copied.file(store.path(ref), dst)
            new += 1

        # no lock is held (an enrolment or a retrain goes on meanwhile): each folder's index file is read first and
        # written last, so the copy names only files copied before it; data files are written under new names,
        # never changed in place
        if gallery.is_dir():
            copied.tree(gallery, out / "gallery", index=GALLERY_MANIFEST)
        if models.is_dir():
            copied.tree(models, out / models.name, index=REGISTRY_FILE)
        for name in home_files():
            if name not in journals and (home / name).is_file():
                copied.file(home / name, out / name, only_if_changed=True)
        if (home / ENROLMENTS_DIR).is_dir():
            copied.tree(home / ENROLMENTS_DIR, out / ENROLMENTS_DIR)
        if database_ok:  # everything it names is there: the new log takes the old one's place
            _replace_log(pending, out / log_name)
    except BaseException as err:
        _record_attempt(home, out, attempted_at, f"{type(err).__name__}: {err}")
        with suppress(OSError):  # --out may be no folder at all: the error above says so, not this
            pending.unlink(missing_ok=True)
        raise

    report = BackupReport(
        out,
        database,
        new,
        len(refs) - new,
        copied.files - new,
        copied.bytes,
        time.perf_counter() - started,
        database_ok,
    )
    made_at = _now()
    manifest = {
        "made_at": made_at,
        "home": str(home.resolve()),
        "store": str(store_home),
        "gallery": str(gallery),
        "models": str(models),
        "database": database,
        "images": len(refs),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    # cupcheck doctor says when the data was last backed up whole, and that this attempt was not
    _record_attempt(home, out, attempted_at, "" if database_ok else database, whole=(made_at, len(refs)))
    return report


def _now() -> str:
    """The time now, as the backup records write it."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _replace_log(pending: Path, target: Path) -> None:
    """Put the new verdict log ``pending`` in the place of ``target``; a SQLite journal left beside the old one (by
    someone who opened the backup) goes too, since it would be read into the new file as if it were its own."""
    for leftover in ("-wal", "-shm"):
        Path(f"{target}{leftover}").unlink(missing_ok=True)
    os.replace(pending, target)


def _record_attempt(home: Path, out: Path, at: str, failed: str, *, whole: tuple[str, int] | None = None) -> None:
    """Write in the home's :data:`LAST_BACKUP` that the backup into ``out`` started at ``at`` ended so (``failed``:
    why not whole, ``""`` when whole); ``whole``, ``(made_at, images)``, is given when the verdict log is in the
    backup, which then becomes the home's last whole one (otherwise the earlier one stays named). A home that cannot
    be written keeps its earlier record: the command's own error says what went wrong."""
    doc = _last_backup_doc(home)
    doc.update(attempted_at=at, attempt_folder=str(out.resolve()), failed=failed)
    if whole is not None and not failed:
        doc.update(made_at=whole[0], folder=str(out.resolve()), images=whole[1])
    tmp = home / f".{LAST_BACKUP}.tmp"
    try:
        tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, home / LAST_BACKUP)
    except OSError:
        tmp.unlink(missing_ok=True)


def _last_backup_doc(home: Path) -> dict[str, Any]:
    """The home's :data:`LAST_BACKUP` record (``{}``: none, or none that reads as one)."""
    try:
        doc = json.loads((home / LAST_BACKUP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _manifest(folder: Path) -> dict[str, Any]:
    """A backup folder's manifest (``{}``: none, or none that reads as one)."""
    try:
        doc = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _backed_up_home(folder: Path) -> Path | None:
    """The home a backup folder's manifest says it copied (``None``: no manifest, or none that names one)."""
    home = _manifest(folder).get("home")
    return Path(home) if isinstance(home, str) and home else None


def _manifest_database(folder: Path) -> str:
    """What a backup's manifest says became of its verdict log."""
    return str(_manifest(folder).get("database", "nothing readable"))


@dataclass(frozen=True)
class BackupRecord:
    """What a station home records of its backups (for ``cupcheck doctor``).

    Attributes:
        made_at: when its data was last backed up whole (``None``: never).
        folder: where to (``""``: never).
        attempted_at: when the last backup started (``None``: none recorded, a home backed up before attempts
            were).
        attempt_folder: where the last backup went.
        failed: why the last backup is not whole (``""``: it is; :data:`DID_NOT_FINISH` when it never ended).
    """

    made_at: datetime | None
    folder: str
    attempted_at: datetime | None = None
    attempt_folder: str = ""
    failed: str = ""


def backup_record(home: Path) -> BackupRecord | None:
    """When the station's data was last backed up whole and where, and how the last attempt ended (``None``: no
    backup was ever tried from this home)."""
    doc = _last_backup_doc(home)

    def when(key: str) -> datetime | None:
        try:
            return datetime.fromisoformat(str(doc[key]))
        except (KeyError, ValueError):
            return None

    made_at, attempted_at = when("made_at"), when("attempted_at")
    if made_at is None and attempted_at is None:
        return None
    return BackupRecord(
        made_at,
        str(doc.get("folder", "")) if made_at is not None else "",
        attempted_at,
        str(doc.get("attempt_folder", "")),
        str(doc.get("failed", "")) if attempted_at is not None else "",
    )


class _Copier:
    """Copies files atomically (temporary name, then renamed; a copy that fails leaves no temporary file), counting
    them; hard links stay links. It remembers the files and folders it made, so that a restore that fails can take
    them away again (:meth:`undo`)."""

    def __init__(self) -> None:
        self.files = 0
        self.bytes = 0
        self._links: dict[tuple[int, int], Path] = {}
        self._made: list[Path] = []

    def file(self, src: Path, dst: Path, *, only_if_changed: bool = False) -> None:
        st = src.stat()
        key = (st.st_dev, st.st_ino)
        if only_if_changed and dst.is_file():
            d = dst.stat()
            if (d.st_size, int(d.st_mtime)) == (st.st_size, int(st.st_mtime)):
                if st.st_nlink > 1:
                    self._links.setdefault(key, dst)
                return
        first = self._links.get(key) if st.st_nlink > 1 else None
        if first is not None and first.exists():
            self._write(dst, lambda tmp: os.link(first, tmp))
        else:
            self._write(dst, lambda tmp: shutil.copy2(src, tmp))
            self.bytes += st.st_size
        if st.st_nlink > 1:
            self._links.setdefault(key, dst)

    def tree(self, src: Path, dst: Path, *, index: str | None = None) -> None:
        """Copy the folder ``src`` (only the files changed since the last copy), its ``index`` file (which names the
        others), when it has one, as it was before the rest."""
        index_file = src / index if index is not None else None
        try:
            snapshot = index_file.read_bytes() if index_file is not None else None
        except FileNotFoundError:
            snapshot = None
        for path in sorted(src.rglob("*")):
            if path == index_file or not path.is_file():
                continue
            if path.name.endswith(SKIP_SUFFIXES) or path.name.startswith(".tmp"):
                continue
            self.file(path, dst / path.relative_to(src), only_if_changed=True)
        if snapshot is not None and index is not None:
            target = dst / index
            if not target.is_file() or target.read_bytes() != snapshot:
                self._write(target, lambda tmp: tmp.write_bytes(snapshot))
                self.bytes += len(snapshot)

    def _write(self, dst: Path, write: Callable[[Path], object]) -> None:
        """Write ``dst`` through ``write`` into its temporary name, then rename it into place; the temporary file
        goes when the writing fails (a full disk)."""
        missing = [folder for folder in (dst.parent, *dst.parent.parents) if not folder.exists()]
        dst.parent.mkdir(parents=True, exist_ok=True)
        self._made.extend(reversed(missing))
        tmp = dst.with_name(f".{dst.name}.tmp")
        tmp.unlink(missing_ok=True)
        existed = dst.exists()
        try:
            write(tmp)
            os.replace(tmp, dst)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if not existed:
            self._made.append(dst)
        self.files += 1

    def undo(self) -> None:
        """Remove every file this copier made and the folders it made for them (those left empty), newest first;
        files that were there before stay."""
        for path in reversed(self._made):
            try:
                if path.is_dir():
                    path.rmdir()  # only when empty: another's file in it stays
                else:
                    path.unlink(missing_ok=True)
            except OSError:
                pass
        self._made.clear()


@dataclass(frozen=True)
class BackupCheck:
    """What :func:`check_backup` found in a backup.

    Attributes:
        verdicts: verdicts in its verdict log (``None``: it holds no SQLite log: a PostgreSQL site's).
        images: images its verdict log names (with a PostgreSQL dump, which is not read row by row: every image in
            the backup).
        dump: the PostgreSQL dump's file name, when the backup holds one (its tables are checked: ``problems``).
        missing: named images that are not there.
        damaged: images whose contents no longer match their name (a SHA-256).
        problems: anything else that would not restore (the gallery, the registry), one sentence each.
    """

    verdicts: int | None
    images: int
    missing: tuple[str, ...]
    damaged: tuple[str, ...]
    problems: tuple[str, ...]
    dump: str | None = None

    @property
    def sound(self) -> bool:
        """Whether the backup would restore whole."""
        return not (self.missing or self.damaged or self.problems)


def check_backup(folder: Path, *, progress: Callable[[Iterable[str], int], Iterable[str]] | None = None) -> BackupCheck:
    """Open ``folder`` the way a station would use it as its home and check that nothing is missing or damaged:
    it holds a verdict log (the SQLite file or a PostgreSQL dump), every image the log names is there with the
    contents its name hashes, the gallery loads (its files match their checksums) and every registered model's
    bundle loads. A PostgreSQL dump is read through (``pg_restore --list``: every table of the schema with its rows;
    the image columns of its photographs and coins, as text), and every image in the backup is hashed again. The
    SQLite log is opened read-only: nothing is written into the backup, which may lie on a read-only medium.

    Raises:
        BackupError: ``folder`` is not a backup (no ``backup.json``).
    """
    import hashlib

    from db.backup import PG_DUMP_FILE, DumpError, dump_problems, dumped_refs
    from db.health import read_only_engine
    from db.repository import VerdictRepository
    from db.session import DB_FILENAME
    from db.store import ContentStore
    from models.bundle import load_bundle
    from models.gallery import Gallery
    from models.registry import PRUNED, RegistryError, bundle_path, load_registry, registry_file

    if not (folder / MANIFEST).is_file():
        raise BackupError(f"{folder} is not a backup: it has no {MANIFEST}")
    verdicts: int | None = None
    refs: list[str] = []
    problems: list[str] = []
    if (folder / DB_FILENAME).is_file():
        engine = read_only_engine(folder / DB_FILENAME)
        try:
            repo = VerdictRepository(engine, folder)
            verdicts = repo.count_verdicts()
            refs = sorted(repo.stored_refs())
        finally:
            engine.dispose()
    store = ContentStore(folder)
    dump = folder / PG_DUMP_FILE
    if dump.is_file():
        problems.extend(dump_problems(dump))
        named: set[str] = set()
        if not problems:
            try:
                named = dumped_refs(dump)
            except DumpError as err:
                problems.append(str(err))
        refs = sorted(set(refs) | named | {ref for ref, _ in store.iter_refs()})
    elif verdicts is None:
        problems.append(
            f"no verdict log: neither {DB_FILENAME} nor {PG_DUMP_FILE} is in the backup (was it cut short? "
            f"its {MANIFEST} says: {_manifest_database(folder)})"
        )
    missing, damaged = [], []
    for ref in progress(refs, len(refs)) if progress is not None else refs:
        path = store.path(ref)
        if not path.is_file():
            missing.append(ref)
            continue
        digest = "".join(Path(ref).with_suffix("").parts[-2:])
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            damaged.append(ref)
    if (folder / "gallery").is_dir():
        try:
            Gallery.load(folder / "gallery")
        except (FileNotFoundError, ValueError) as err:
            problems.append(f"the gallery does not load: {err}")
    if registry_file(folder).is_file():
        try:
            registry = load_registry(folder)
            for entry in registry.versions:
                if entry.status != PRUNED:
                    load_bundle(bundle_path(folder, entry.version))
        except (RegistryError, FileNotFoundError, ValueError) as err:
            problems.append(f"the model registry does not load: {err}")
    return BackupCheck(
        verdicts,
        len(refs),
        tuple(missing),
        tuple(damaged),
        tuple(problems),
        dump.name if dump.is_file() else None,
    )


@dataclass(frozen=True)
class RestoreReport:
    """What :func:`restore` put back.

    Attributes:
        database: what became of the verdict log (the SQLite file written, or the dump restored into the server).
        verdicts: verdicts in the backup's SQLite log (``None``: a PostgreSQL dump, not counted).
        images_new: photographs and crops copied into the image folder (those already there stay).
        files: other files put back (gallery, registry, the home's own).
        bytes: bytes copied.
        seconds: how long it took.
    """

    database: str
    verdicts: int | None
    images_new: int
    files: int
    bytes: int
    seconds: float


def _holds_data(config: StationConfig, home: Path, gallery: Path, models: Path, folder: Path) -> list[str]:
    """What the station's configured places already hold that a restore from ``folder`` would overwrite, one phrase
    each (a home file the backup holds too, with other contents, counts: a station's own calibration or orders)."""
    from db.backup import sqlite_file
    from db.health import database_health
    from db.repository import VerdictRepository
    from db.session import make_engine
    from models.gallery import MANIFEST as GALLERY_MANIFEST
    from models.registry import REGISTRY_FILE

    held = []
    db_file = sqlite_file(config.database_url, home)
    if db_file is None or db_file.is_file():
        health = database_health(config.database_url, home)
        if health.error:
            raise BackupError(f"the station's database cannot be used: {health.error}")
        if health.revision is not None:
            if db_file is None:
                held.append(f"the database {health.where} is set up (pg_restore needs an empty one)")
            else:
                engine = make_engine(config.database_url, home=home)
                try:
                    verdicts = VerdictRepository(engine, home).count_verdicts()
                finally:
                    engine.dispose()
                if verdicts or health.people:
                    held.append(f"{db_file} holds {verdicts} verdicts and {health.people} people")
    if (gallery / GALLERY_MANIFEST).is_file():
        held.append(f"a gallery at {gallery}")
    if (models / REGISTRY_FILE).is_file():
        held.append(f"a model registry at {models}")
    enrolled = sorted(str(p.relative_to(folder)) for p in (folder / ENROLMENTS_DIR).rglob("*") if p.is_file())
    clash = [
        name
        for name in (*home_files(), *enrolled)
        if (home / name).is_file()
        and (folder / name).is_file()
        and (home / name).read_bytes() != (folder / name).read_bytes()
    ]
    if clash:
        held.append(f"{', '.join(clash)} in {home}, other than the backup's")
    return held


def restore(
    config: StationConfig,
    home: Path,
    folder: Path,
    *,
    progress: Callable[[Iterable[str], int], Iterable[str]] | None = None,
) -> RestoreReport:
    """Put a backup made by :func:`back_up` back where ``config`` says the station's data lives: the verdict log
    (a SQLite file, or a site's PostgreSQL dump into its empty database, in one transaction), the photographs and
    crops into the image folder, the gallery, the model registry, the home's own files and its tray enrolments. The
    backup is checked first (:func:`check_backup`), and nothing already there is overwritten: a restore goes into an
    empty home and database (a new disk, a new server). The verdict log comes last, so a station started meanwhile
    never finds a verdict whose photograph is not there yet; a SQLite log is written into the station's file through
    SQLite's backup, so a station that has that file open already goes on with the restored log. When the verdict
    log cannot be restored, every file the restore copied is removed again: the places are as empty as before, and
    the restore can be run again once the cause is put right.

    Raises:
        BackupError: the folder is not a sound backup, the station's places already hold data, or the backup's
            verdict log does not fit the station's database (a SQLite log for a PostgreSQL site, or the reverse).
        DumpError: ``pg_restore`` failed (nothing of the database was restored, nor any file left).
        sqlite3.Error, OSError: the SQLite log or a file could not be written (nothing is left either).
    """
    from db.backup import PG_DUMP_FILE, restore_postgres, restore_sqlite, sqlite_file
    from db.session import DB_FILENAME

    started = time.perf_counter()
    found = check_backup(folder, progress=progress)
    if not found.sound:
        raise BackupError(
            f"{folder} would not restore whole ({len(found.missing)} images missing, {len(found.damaged)} damaged, "
            f"{len(found.problems)} other problems): see cupcheck backup --check {folder}"
        )
    store_home, gallery, models = _places(config, home)
    db_file = sqlite_file(config.database_url, home)
    has_sqlite, has_dump = (folder / DB_FILENAME).is_file(), (folder / PG_DUMP_FILE).is_file()
    if db_file is None and not has_dump:
        raise BackupError(f"{folder} holds no PostgreSQL dump ({PG_DUMP_FILE}), and the station's database is one")
    if db_file is not None and not has_sqlite:
        raise BackupError(f"{folder} holds no SQLite verdict log ({DB_FILENAME}), and the station's database is one")
    held = _holds_data(config, home, gallery, models, folder)
    if held:
        raise BackupError(
            "the station's places already hold data a restore would overwrite: "
            + "; ".join(held)
            + ". Restore into an empty home and database, or move these aside first"
        )

    copied = _Copier()
    try:
        new = _put_back_files(copied, folder, home, store_home, gallery, models, progress)
        if db_file is None:
            assert config.database_url is not None
            restore_postgres(folder / PG_DUMP_FILE, config.database_url)
            database = f"{PG_DUMP_FILE} restored into the site's database"
        else:
            restore_sqlite(folder / DB_FILENAME, db_file)
            size = (folder / DB_FILENAME).stat().st_size  # the file's own may not say: pages wait in a station's WAL
            copied.bytes += size
            database = f"{db_file} written ({size_text(size)})"
    except BaseException:
        copied.undo()
        raise
    return RestoreReport(database, found.verdicts, new, copied.files - new, copied.bytes, time.perf_counter() - started)


def _put_back_files(
    copied: _Copier,
    folder: Path,
    home: Path,
    store_home: Path,
    gallery: Path,
    models: Path,
    progress: Callable[[Iterable[str], int], Iterable[str]] | None,
) -> int:
    """Copy a backup's files back (the images not in the image folder yet, the gallery, the registry, the home's own
    files and its tray enrolments); returns how many images were copied."""
    from db.store import ContentStore
    from models.gallery import MANIFEST as GALLERY_MANIFEST
    from models.registry import REGISTRY_DIR, REGISTRY_FILE

    source, target = ContentStore(folder), ContentStore(store_home)
    refs = [ref for ref, _ in source.iter_refs()]
    new = 0
    for ref in progress(refs, len(refs)) if progress is not None else refs:
        dst = target.path(ref)
        if not dst.exists():
            copied.file(source.path(ref), dst)
            new += 1
    if (folder / "gallery").is_dir():
        copied.tree(folder / "gallery", gallery, index=GALLERY_MANIFEST)
    if (folder / REGISTRY_DIR).is_dir():
        copied.tree(folder / REGISTRY_DIR, models, index=REGISTRY_FILE)
    home.mkdir(parents=True, exist_ok=True)
    for name in home_files():
        if (folder / name).is_file():
            copied.file(folder / name, home / name)
    if (folder / ENROLMENTS_DIR).is_dir():
        copied.tree(folder / ENROLMENTS_DIR, home / ENROLMENTS_DIR)
    return new
