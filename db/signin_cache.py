"""Sign-in while the database is away: the people who signed in at this station, kept on its own disk.

A station keeps working through a database outage (its verdicts wait in the journal, :mod:`db.spool`), but a
sign-in needs the operators' PIN hashes, which live in the database. :class:`SignInDirectory` checks PINs in the
database and, each time a person signs in there, keeps their name, role and PIN hash in ``sign-in-cache.json``
under the station home (mode 0600; the same salted scrypt hash the database holds, never the PIN). While the
database cannot be reached, only the people kept there can sign in. Whenever the database can be reached,
:meth:`SignInDirectory.refresh` brings the file in line with it: a new PIN or role is taken over, and a person
deactivated or removed there is dropped, so they cannot sign in at the next outage.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from db.operators import OperatorRoster
from db.pins import verify_pin
from db.records import OperatorInfo
from db.spool import UNREACHABLE_ERRORS
from models.files import write_bytes_atomic

CACHE_FILENAME = "sign-in-cache.json"
_FORMAT = "cupcheck-sign-in-cache/1"


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
    """The file of people who signed in at this station (a damaged or missing file holds nobody).

    Args:
        path: the file, ``<station home>/sign-in-cache.json``.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def people(self) -> dict[str, CachedPerson]:
        """Everyone kept, by name."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("format") != _FORMAT:
                return {}
            return {p["name"]: CachedPerson(**p) for p in data["people"]}
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def verify(self, name: str, pin: str) -> OperatorInfo | None:
        """The kept person when ``pin`` is theirs, else ``None``."""
        person = self.people().get(name.strip())
        if person is None or not verify_pin(pin, person.pin_hash):
            return None
        return person.info

    def remember(self, person: CachedPerson) -> None:
        """Keep ``person`` (replacing what was kept under their name)."""
        people = self.people()
        people[person.name] = person
        self._write(people)

    def replace(self, people: dict[str, CachedPerson]) -> None:
        """Keep exactly ``people``."""
        self._write(people)

    def _write(self, people: dict[str, CachedPerson]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"format": _FORMAT, "people": [asdict(p) for _, p in sorted(people.items())]}
        write_bytes_atomic(self.path, json.dumps(doc, indent=1).encode(), mode=0o600)  # PIN hashes: the owner only


class SignInDirectory:
    """Checks PINs in the database, and in the station's :class:`SignInCache` while the database is away.

    Args:
        roster: the database's operators.
        cache: the station's file of people who signed in there.

    Attributes:
        offline: the last check could not reach the database and was made against the cache.
    """

    def __init__(self, roster: OperatorRoster, cache: SignInCache) -> None:
        self.roster = roster
        self.cache = cache
        self.offline = False

    def verify_operator(self, name: str, pin: str) -> OperatorInfo | None:
        """The person when the PIN is theirs and they are active (the database's word, else the cache's)."""
        kept = self.cache.people()
        try:
            info = self.roster.verify(name, pin)
            stored = self.roster.pin_hashes([info.name]) if info is not None else {}
            gone = info is None and name.strip() in kept and not self.roster.active([name.strip()])
        except UNREACHABLE_ERRORS:
            self.offline = True
            return self.cache.verify(name, pin)
        self.offline = False
        if info is not None and info.name in stored:
            self.cache.remember(CachedPerson(info.id, info.name, info.role, stored[info.name]))
        elif gone:  # deactivated (or removed) since they were kept: not at the next outage either
            self.cache.replace({n: p for n, p in kept.items() if n != name.strip()})
        return info

    def refresh(self) -> bool:
        """Bring the cache in line with the database (new PINs and roles, people deactivated or gone dropped);
        return whether the database could be reached."""
        kept = self.cache.people()
        if not kept:
            return True
        try:
            infos = {i.name: i for i in self.roster.active(list(kept))}
            hashes = self.roster.pin_hashes(list(infos))
        except UNREACHABLE_ERRORS:
            return False
        self.cache.replace({n: CachedPerson(i.id, n, i.role, hashes[n]) for n, i in infos.items() if n in hashes})
        return True
