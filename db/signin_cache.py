"""Sign-in while the database is away: the people who signed in at this station, kept on its own disk.

A station keeps working through a database outage (its verdicts wait in the journal, :mod:`db.spool`), but a
sign-in needs the operators' PIN hashes, which live in the database. :class:`SignInDirectory` checks PINs in the
database and, each time a person signs in there, keeps their name, role and PIN hash in ``sign-in-cache.json``
under the station home (mode 0600; the same salted scrypt hash the database holds, never the PIN). While the
database cannot be reached, only the people kept there can sign in.

The file follows the database: every check made there takes over that name's PIN hash and role as the database
holds them now, or drops the name when that person may no longer sign in (refused or not), and
:meth:`SignInDirectory.refresh` does the same for everyone kept (at start, and whenever a sign-in dialog opens).
So a new PIN, a deactivation or a supervisor made an operator counts at the next outage too.

The file names the database it was taken from (its URL without the password): a file from another database (a PC
moved to another site, a home restored from another site's backup) holds nobody here, since its people are not this
site's and their cups would be recorded under whoever has the same name here.

Keeping the file is best-effort: a home whose disk is full (or that cannot be written) loses no sign-in, the
database's answer stands, and a warning is logged.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine
from sqlalchemy.engine import make_url

from db.operators import OperatorRoster
from db.pins import verify_pin
from db.records import OperatorInfo
from db.spool import UNREACHABLE_ERRORS
from models.files import write_bytes_atomic

CACHE_FILENAME = "sign-in-cache.json"
_FORMAT = "cupcheck-sign-in-cache/2"
_UNNAMED_FORMAT = "cupcheck-sign-in-cache/1"
"""A file written before the cache named its database: its names are taken over by the next refresh that reaches
the database (with the database's hashes and roles), its hashes are never trusted."""

_log = logging.getLogger(__name__)
_WRITES = threading.Lock()
"""Read-change-write of the file: a sign-in checked on one thread and a refresh on another never undo each other."""


def database_identity(database: Engine | URL | str) -> str:
    """What the cache file names its database by: the URL with the password masked (``sqlite:////srv/x/cupcheck.db``,
    ``postgresql+psycopg://cupcheck:***@dbhost/cupcheck``), so a new password is still the same database."""
    url = database.url if isinstance(database, Engine) else make_url(database)
    return url.render_as_string(hide_password=True)


@dataclass(frozen=True)
class CachedPerson:
    """One person as the station keeps them: their registration and PIN hash."""

    id: int
    name: str
    role: str
    pin_hash: str

    @property
    def info(self) -> OperatorInfo:
        """The operator as a sign-in returns them."""
        return OperatorInfo(id=self.id, name=self.name, role=self.role, active=True)


class SignInCache:
    """The file of people who signed in at this station (a damaged or missing file, or one taken from another
    database, holds nobody).

    Args:
        path: the file, ``<station home>/sign-in-cache.json``.
        database: the database its people come from, as :func:`database_identity` names it.
    """

    def __init__(self, path: Path, *, database: str) -> None:
        self.path = Path(path)
        self.database = database

    def people(self) -> dict[str, CachedPerson]:
        """Everyone kept for this database, by name."""
        database, people = self._read()
        return people if database == self.database else {}

    def names(self) -> list[str]:
        """The names a refresh looks up: this database's people, and those of a file written before the cache named
        its database (taken over with the database's hashes, never the file's)."""
        database, people = self._read()
        return sorted(people) if database in (self.database, None) else []

    def verify(self, name: str, pin: str) -> OperatorInfo | None:
        """The kept person when ``pin`` is theirs, else ``None``."""
        person = self.people().get(name.strip())
        if person is None or not verify_pin(pin, person.pin_hash):
            return None
        return person.info

    def remember(self, person: CachedPerson) -> bool:
        """Keep ``person`` (replacing what was kept under their name); see :meth:`update`."""
        return self.update({person.name: person})

    def update(self, changes: Mapping[str, CachedPerson | None]) -> bool:
        """Keep each named person as given, or drop them (``None``); everyone else kept stays as they are.

        Best-effort: a file that cannot be written (a full disk, a read-only home) is logged as a warning and
        ``False`` returned; the sign-in it was for goes on. When the change was to someone kept (a new PIN or role,
        a deactivation), the file is removed instead where the disk lets it: an out-of-date file would let an old
        PIN or a person who left in at the next outage, where none lets in nobody.
        """
        with _WRITES:
            before = self.people()
            people = dict(before)
            for name, person in changes.items():
                if person is None:
                    people.pop(name, None)
                else:
                    people[name] = person
            if people == before:
                return True  # nothing to write (a refresh as each dialog opens, most of the time)
            try:
                self._write(people)
            except OSError as err:
                stale = any(people.get(name) != person for name, person in before.items())
                if not stale:
                    why = "who signed in since cannot sign in from it while the database is away"
                else:
                    try:
                        self.path.unlink(missing_ok=True)
                        why = "it was out of date and is removed: nobody signs in from it while the database is away"
                    except OSError:
                        why = "it is out of date and could not be removed: a new PIN or a deactivation is not in it"
                _log.warning("the sign-in cache %s could not be written (%s); %s", self.path, err, why)
                return False
        return True

    def _read(self) -> tuple[str | None, dict[str, CachedPerson]]:
        """The database the file names (``None`` for a file written before it named one; ``""`` for a file that is
        missing, damaged or of another format) and its people."""
        try:
            data: Any = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("format") == _UNNAMED_FORMAT:
                database: str | None = None
            elif data.get("format") == _FORMAT and isinstance(data.get("database"), str):
                database = data["database"]
            else:
                return "", {}
            return database, {p["name"]: CachedPerson(**p) for p in data["people"]}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return "", {}

    def _write(self, people: dict[str, CachedPerson]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "format": _FORMAT,
            "database": self.database,
            "people": [asdict(p) for _, p in sorted(people.items())],
        }
        write_bytes_atomic(self.path, json.dumps(doc, indent=1).encode(), mode=0o600)  # PIN hashes: the owner only


class SignInDirectory:
    """Checks PINs in the database, and in the station's :class:`SignInCache` while the database is away.

    Args:
        roster: the database's operators.
        cache: the station's file of people who signed in there (naming the same database).

    Attributes:
        offline: the last check could not reach the database and was made against the cache.
    """

    def __init__(self, roster: OperatorRoster, cache: SignInCache) -> None:
        self.roster = roster
        self.cache = cache
        self.offline = False

    def verify_operator(self, name: str, pin: str) -> OperatorInfo | None:
        """The person when the PIN is theirs and they are active (the database's word, else the cache's).

        A check the database answers also brings that name's entry in the cache in line with it, whatever the answer:
        a person let in is kept with their PIN hash and role as the database holds them now; a person refused who
        was kept is kept with the database's new PIN hash and role, or dropped when they may no longer sign in. A
        wrong PIN of someone never kept keeps nothing.
        """
        name = name.strip()
        try:
            info = self.roster.verify(name, pin)
            now = self._as_registered([name])
        except UNREACHABLE_ERRORS:
            self.offline = True
            return self.cache.verify(name, pin)
        self.offline = False
        if info is not None or name in self.cache.people():
            self.cache.update({name: now.get(name)})
        return info

    def refresh(self) -> bool:
        """Bring the cache in line with the database (new PINs and roles, people deactivated or gone dropped);
        return whether the database could be reached."""
        names = self.cache.names()
        if not names:
            return True
        try:
            now = self._as_registered(names)
        except UNREACHABLE_ERRORS:
            return False
        self.cache.update({name: now.get(name) for name in names})
        return True

    def _as_registered(self, names: list[str]) -> dict[str, CachedPerson]:
        """Those of ``names`` who may sign in, as the database holds them now."""
        infos = self.roster.active(names)
        hashes = self.roster.pin_hashes([i.name for i in infos])
        return {i.name: CachedPerson(i.id, i.name, i.role, hashes[i.name]) for i in infos if i.name in hashes}
