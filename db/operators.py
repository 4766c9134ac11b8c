"""Who may sign in: register operators and supervisors, set a forgotten PIN, change a role, take away or give back
the right to sign in. Every change is kept in the append-only ``operator_audit`` (who was changed, what, old → new,
when, and from which account and computer).

A person is never deleted: their name stays on every cup they checked and every label they gave. Someone who leaves
is deactivated, and can no longer sign in. The last active supervisor can be neither deactivated nor made an
operator, since nobody could then review flagged cups or relabel them: add or reactivate another supervisor first.
"""

from __future__ import annotations

import getpass
import socket
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from db.pins import hash_pin, verify_pin
from db.records import OperatorChangeEntry, OperatorInfo, OperatorSummary
from db.schema import NAME_LEN, Cup, Operator, OperatorAudit, OperatorChange, Role
from db.session import make_session_factory

NAMES_LOCK_ID = 0x6F70657261746F72  # "operator": the PostgreSQL advisory lock that queues registrations of names


class OperatorError(ValueError):
    """A change to the operators that cannot be made (the message says why, in plain words)."""


class UnknownOperatorError(LookupError):
    """No operator of that name is registered."""


class OperatorExistsError(OperatorError):
    """The name is taken (or differs from a taken one only in upper and lower case)."""


class LastSupervisorError(OperatorError):
    """The change would leave no active supervisor."""


class NotSupervisorError(PermissionError):
    """The person acting may not make the change: not a supervisor, or deactivated since signing in."""


def local_account() -> str:
    """``user@computer`` of this process: who made a change from a command line."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container's numeric user)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def check_name(name: str) -> str:
    """``name`` without surrounding blanks, as people sign in with it.

    Raises:
        OperatorError: empty, longer than the column, or holding a control character.
    """
    clean = name.strip()
    if not clean:
        raise OperatorError("a name cannot be empty")
    if len(clean) > NAME_LEN:
        raise OperatorError(f"a name has at most {NAME_LEN} characters, {clean[:20]!r}... has {len(clean)}")
    if any(not ch.isprintable() for ch in clean):
        raise OperatorError(f"a name cannot hold control characters: {clean!r}")
    return clean


class OperatorRoster:
    """The operators of one database (every station sharing it sees the same people).

    Args:
        engine: a migrated database.
    """

    def __init__(self, engine: Engine) -> None:
        self._sessions: sessionmaker[Session] = make_session_factory(engine)
        self._writes: sessionmaker[Session] = make_session_factory(engine, writes=True)

    def add(
        self,
        name: str,
        role: Role | str,
        pin: str,
        *,
        by: str | None = None,
        note: str = "",
        acting: str | None = None,
    ) -> OperatorInfo:
        """Register a person with a PIN (stored as a salted scrypt hash).

        Args:
            name: the sign-in name (surrounding blanks are dropped).
            role: ``operator`` or ``supervisor``.
            pin: at least four characters.
            by: who makes the change (default :func:`local_account`).
            note: why, for the history.
            acting: the signed-in supervisor making the change from a window, checked in the same transaction (a
                command line's account is not a person of the database: ``None``).

        Raises:
            OperatorError: a bad name, an unknown role, or a too-short PIN.
            OperatorExistsError: the name is taken, or differs from a taken one only in case.
            NotSupervisorError: ``acting`` is no longer an active supervisor.
        """
        name = check_name(name)
        role = _role(role)
        try:
            pin_hash = hash_pin(pin)
        except ValueError as err:
            raise OperatorError(str(err)) from err
        try:
            with self._writes.begin() as session:
                if acting is not None:
                    require_supervisor(session, acting, "add people")
                _queue_name_changes(session)
                taken = _name_folded(session, name)
                if taken is not None:
                    raise OperatorExistsError(
                        f"{taken!r} is already registered"
                        + ("" if taken == name else f" (names may not differ only in case: {name!r})")
                    )
                op = Operator(name=name, role=role, pin_hash=pin_hash, active=True)
                session.add(op)
                session.flush()
                _record(session, op, OperatorChange.ADDED, None, role.value, by, note)
                return _info(op)
        except IntegrityError as err:  # another PC registered the name between the check and the insert
            raise OperatorExistsError(f"{name!r} is already registered") from err

    def check_supervisor(self, name: str, doing: str) -> None:
        """Refuse ``doing`` unless ``name`` is an active supervisor now (see :func:`require_supervisor`)."""
        with self._sessions() as session:
            require_supervisor(session, name, doing)

    def verify(self, name: str, pin: str) -> OperatorInfo | None:
        """The operator when ``pin`` is right and the operator is active, else ``None``."""
        with self._sessions() as session:
            op = session.scalar(select(Operator).where(Operator.name == name))
        if op is None or not op.active or not verify_pin(pin, op.pin_hash):
            return None
        return _info(op)

    def set_pin(
        self, name: str, pin: str, *, by: str | None = None, note: str = "", acting: str | None = None
    ) -> OperatorInfo:
        """Give ``name`` a new PIN (a forgotten one, or one someone else learnt); the history never holds PINs.

        ``by``, ``note`` and ``acting`` as for :meth:`add`.

        Raises:
            UnknownOperatorError: nobody of that name.
            OperatorError: the PIN is too short.
            NotSupervisorError: ``acting`` is no longer an active supervisor.
        """
        try:
            pin_hash = hash_pin(pin)
        except ValueError as err:
            raise OperatorError(str(err)) from err
        with self._writes.begin() as session:
            if acting is not None:
                require_supervisor(session, acting, "set a PIN")
            op = operator_named(session, name.strip())
            op.pin_hash = pin_hash
            _record(session, op, OperatorChange.PIN, None, None, by, note)
            return _info(op)

    def set_role(
        self, name: str, role: Role | str, *, by: str | None = None, note: str = "", acting: str | None = None
    ) -> OperatorInfo:
        """Make ``name`` an operator or a supervisor (nothing is recorded when the role is already that).

        ``by``, ``note`` and ``acting`` as for :meth:`add`.

        Raises:
            UnknownOperatorError: nobody of that name.
            OperatorError: an unknown role.
            LastSupervisorError: ``name`` is the last active supervisor and would become an operator.
            NotSupervisorError: ``acting`` is no longer an active supervisor.
        """
        role = _role(role)
        with self._writes.begin() as session:
            if acting is not None:
                require_supervisor(session, acting, "change a role")
            op = operator_named(session, name.strip())
            if op.role is role:
                return _info(op)
            if op.role is Role.SUPERVISOR and op.active:
                _keep_a_supervisor(session, op, "made an operator")
            old = op.role.value
            op.role = role
            _record(session, op, OperatorChange.ROLE, old, role.value, by, note)
            return _info(op)

    def set_active(
        self, name: str, active: bool, *, by: str | None = None, note: str = "", acting: str | None = None
    ) -> OperatorInfo:
        """Give back (``active``) or take away the right to sign in; nothing is recorded when nothing changes.

        ``by``, ``note`` and ``acting`` as for :meth:`add`.

        Raises:
            UnknownOperatorError: nobody of that name.
            LastSupervisorError: ``name`` is the last active supervisor and would be deactivated.
            NotSupervisorError: ``acting`` is no longer an active supervisor.
        """
        with self._writes.begin() as session:
            if acting is not None:
                require_supervisor(session, acting, "deactivate or reactivate people")
            op = operator_named(session, name.strip())
            if op.active == active:
                return _info(op)
            if not active and op.role is Role.SUPERVISOR:
                _keep_a_supervisor(session, op, "deactivated")
            op.active = active
            action = OperatorChange.ACTIVATED if active else OperatorChange.DEACTIVATED
            _record(session, op, action, None, None, by, note)
            return _info(op)

    def active(self, names: list[str]) -> list[OperatorInfo]:
        """Those of ``names`` who are registered and may sign in."""
        if not names:
            return []
        stmt = select(Operator).where(Operator.name.in_(names), Operator.active.is_(True)).order_by(Operator.name)
        with self._sessions() as session:
            return [_info(op) for op in session.scalars(stmt)]

    def pin_hashes(self, names: list[str]) -> dict[str, str]:
        """The stored PIN hashes of those of ``names`` who may sign in (for a station's own sign-in cache,
        :mod:`db.signin_cache`)."""
        if not names:
            return {}
        stmt = select(Operator.name, Operator.pin_hash).where(Operator.name.in_(names), Operator.active.is_(True))
        with self._sessions() as session:
            return {name: pin_hash for name, pin_hash in session.execute(stmt)}

    def count_active(self, role: Role | str | None = None) -> int:
        """How many people may sign in (with ``role``: in that role)."""
        stmt = select(func.count()).select_from(Operator).where(Operator.active.is_(True))
        if role is not None:
            stmt = stmt.where(Operator.role == _role(role))
        with self._sessions() as session:
            return int(session.scalar(stmt) or 0)

    def summaries(self) -> list[OperatorSummary]:
        """Everyone registered, by name, with the cups they checked and when they checked the newest."""
        checks = (
            select(Cup.operator_id, func.count().label("cups"), func.max(Cup.created_at).label("last"))
            .group_by(Cup.operator_id)
            .subquery()
        )
        stmt = (
            select(Operator, checks.c.cups, checks.c.last)
            .outerjoin(checks, checks.c.operator_id == Operator.id)
            .order_by(Operator.name)
        )
        with self._sessions() as session:
            return [
                OperatorSummary(
                    name=op.name,
                    role=op.role.value,
                    active=op.active,
                    created_at=op.created_at,
                    cups=int(cups or 0),
                    last_check=_aware(last),
                )
                for op, cups, last in session.execute(stmt)
            ]

    def history(self, name: str | None = None) -> list[OperatorChangeEntry]:
        """The ``operator_audit`` rows, oldest first (with ``name``: that person's only).

        Raises:
            UnknownOperatorError: ``name`` is given and nobody has it.
        """
        stmt = (
            select(OperatorAudit, Operator.name)
            .join(Operator, Operator.id == OperatorAudit.operator_id)
            .order_by(OperatorAudit.id)
        )
        with self._sessions() as session:
            if name is not None:
                stmt = stmt.where(OperatorAudit.operator_id == operator_named(session, name.strip()).id)
            return [
                OperatorChangeEntry(
                    id=row.id,
                    operator=op_name,
                    action=row.action.value,
                    old_value=row.old_value,
                    new_value=row.new_value,
                    changed_by=row.changed_by,
                    created_at=row.created_at,
                    note=row.note,
                )
                for row, op_name in session.execute(stmt)
            ]


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError as err:
        raise OperatorError(f"unknown role {role!r}: one of {', '.join(r.value for r in Role)}") from err


def _queue_name_changes(session: Session) -> None:
    """Wait until no other transaction is registering a name, and keep the others waiting until this one ends.

    Only the exact name is unique in the table; names differing only in case are refused by reading the names and
    comparing them folded. Two PCs adding "Ána" and "ána" at the same moment on PostgreSQL would each read the names
    before the other's insert and both go in; a transaction-scoped advisory lock (released at commit or rollback)
    makes the second read wait for the first's commit, so it sees the first name. SQLite needs none: a writing
    transaction there holds the database's write lock from its ``BEGIN IMMEDIATE``.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": NAMES_LOCK_ID})


def require_supervisor(session: Session, name: str, doing: str) -> Operator:
    """``name``'s row; ``doing`` is refused unless they are an active supervisor in ``session``'s view of the
    database.

    Raises:
        UnknownOperatorError: nobody is registered under ``name``.
        NotSupervisorError: ``name`` is an operator, or was deactivated.
    """
    op = operator_named(session, name)
    if op.role is not Role.SUPERVISOR or not op.active:
        raise NotSupervisorError(f"{name!r} is not an active supervisor and may not {doing}")
    return op


def _name_folded(session: Session, name: str) -> str | None:
    """The registered name equal to ``name`` once upper and lower case are folded, if any (at most one:
    :meth:`OperatorRoster.add` refuses a second).

    Folded here, not by the database's ``lower()``: SQLite folds ASCII letters only.
    """
    key = name.casefold()
    return next((n for n in session.scalars(select(Operator.name)) if n.casefold() == key), None)


def operator_named(session: Session, name: str) -> Operator:
    """The operator row registered as ``name`` (exactly).

    A name registered under another case is not taken instead: the histories name people exactly, and a change
    meant for one spelling must not be written under another. The error names it, so the person can type it so.

    Raises:
        UnknownOperatorError: nobody is registered under it ("did you mean 'Ana'?" when only the case differs).
    """
    op = session.scalar(select(Operator).where(Operator.name == name))
    if op is None:
        folded = _name_folded(session, name)
        hint = "" if folded is None else f"; did you mean {folded!r}?"
        raise UnknownOperatorError(f"operator {name!r} is not registered{hint}")
    return op


def _keep_a_supervisor(session: Session, op: Operator, change: str) -> None:
    """Refuse a change that leaves no active supervisor.

    Every active supervisor's row is locked until the commit, in id order (PostgreSQL; SQLite's writers already
    queue), so two PCs each taking away one of the last two supervisors queue instead of both succeeding, and
    cannot deadlock: the second sees the first's change once it may go on.
    """
    active = session.scalars(
        select(Operator.id)
        .where(Operator.role == Role.SUPERVISOR, Operator.active.is_(True))
        .order_by(Operator.id)
        .with_for_update()
    ).all()
    if not [i for i in active if i != op.id]:
        raise LastSupervisorError(
            f"{op.name} is the only active supervisor and cannot be {change}: nobody could then review flagged cups "
            "or relabel them; add or reactivate another supervisor first"
        )


def _record(
    session: Session,
    op: Operator,
    action: OperatorChange,
    old: str | None,
    new: str | None,
    by: str | None,
    note: str,
) -> None:
    session.add(
        OperatorAudit(
            operator_id=op.id,
            action=action,
            old_value=old,
            new_value=new,
            changed_by=(by or local_account())[:255],
            note=note,
        )
    )


def _info(op: Operator) -> OperatorInfo:
    return OperatorInfo(id=op.id, name=op.name, role=Role(op.role).value, active=op.active)


def _aware(value: datetime | None) -> datetime | None:
    """A ``max()`` over a timezone-aware column comes back naive on SQLite; it is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
