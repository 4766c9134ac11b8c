"""The verdict log's verbs: log a verdict, rank cups for review, relabel, export labelled data for retraining.

Images (the cup photograph, coin crops and masks) live in a content-addressed store under the station home
(:mod:`db.store`); rows refer to them by ``captures/ab/cdef....ext``. :meth:`VerdictRepository.log_verdict` writes
the files first, atomically, then every row in one transaction. If the transaction fails, the files it wrote stay
behind as *orphans*: they are harmless because their names are their contents' hashes (a later identical capture
reuses them, nothing half-written is ever visible) and :meth:`VerdictRepository.gc_orphan_images` removes those
that no row references once they are older than a grace period (so a write still in flight is never collected).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from db.export import export_cups
from db.operators import NotSupervisorError as NotSupervisorError  # raised by relabel
from db.operators import OperatorRoster, operator_named, require_supervisor
from db.operators import UnknownOperatorError as UnknownOperatorError  # raised by log_verdict and relabel
from db.records import (
    AsideCup,
    AuditEntry,
    OperatorInfo,
    OrderCheck,
    PruneReport,
    ReviewItem,
    StationModel,
    StoredCoin,
    TrainingExport,
    VerdictRecord,
    audit_pick,
    jpeg_size,
)
from db.review import ReviewWeights, informativeness, labels_per_type, newest_key, queue_query, rank_queue
from db.schema import (
    CUP_LABEL_KINDS,
    Capture,
    Coin,
    Cup,
    Label,
    LabelKind,
    Operator,
    Order,
    RelabelAudit,
    Role,
    Station,
    Verdict,
    utcnow,
)
from db.session import init_db, make_engine, make_session_factory
from db.store import STORE_DIR, ContentStore, StoredBlob
from models.reasons import only_the_count
from models.types import Decision

_GC_BATCH = 500
PRUNED_REF = ""
"""A capture's reference once :meth:`VerdictRepository.prune_images` dropped its photograph."""
_log = logging.getLogger(__name__)


class OrderMismatchError(ValueError):
    """An order number was logged with a different expected type than the one on record."""


class AnyRuling(Enum):
    """The type of :data:`ANY_RULING`."""

    ANY = "any"


ANY_RULING = AnyRuling.ANY
"""``expected_label`` left out: :meth:`VerdictRepository.relabel` replaces whatever ruling is in force."""

WITHDRAWN = "none"
"""An audit row's new value when a ruling was withdrawn (:meth:`VerdictRepository.withdraw_ruling`): no ruling of
its own is in force on the target since."""


class RulingChanged(RuntimeError):
    """The ruling in force on a cup or coin is not the one the caller saw: someone ruled on it (or withdrew its
    ruling) meanwhile, and nothing was written. Ruling again, having seen it, replaces it.

    Attributes:
        whose: what was ruled on, in words (``"cup 12"``, ``"coin 2 of cup 12"``).
        operator: who changed it last.
        value: what they ruled (``"corrected:t0001"``; :data:`WITHDRAWN` for a withdrawal).
        at: when (UTC).
    """

    def __init__(self, whose: str, operator: str, value: str, at: datetime) -> None:
        self.whose = whose
        self.operator = operator
        self.value = value
        self.at = at
        super().__init__(
            f"{whose} was ruled meanwhile by {operator}: {value} ({at:%Y-%m-%d %H:%M} UTC); "
            "rule again, having seen it, to replace it"
        )


class VerdictRepository:
    """Reads and writes the verdict log; the only class the station, review and retrain code talk to.

    Args:
        engine: a migrated database (see :func:`db.session.init_db`).
        home: the station home (its verdict journal is kept there).
        store: the folder whose ``captures/`` holds the images (default ``home``). The stations of a site that
            share one database give it one shared folder, so a review window or a nightly retrain on any PC sees
            every station's photographs; names are content hashes written atomically, so stations never collide.
    """

    def __init__(self, engine: Engine, home: Path, store: Path | None = None) -> None:
        self.engine = engine
        self.home = Path(home)
        self.store = ContentStore(self.home if store is None else Path(store), shared=store is not None)
        self._sessions: sessionmaker[Session] = make_session_factory(engine)
        self._writes: sessionmaker[Session] = make_session_factory(engine, writes=True)
        self.operators = OperatorRoster(engine)

    @classmethod
    def open(
        cls, home: Path, url: str | None = None, *, migrate: bool = True, store: Path | None = None
    ) -> VerdictRepository:
        """Open the station's database (SQLite under ``home`` unless ``url`` is given), migrating it to head.

        Args:
            home: the station home (database file when ``url`` is ``None``, the journal, and by default the images).
            url: a SQLAlchemy URL, e.g. ``postgresql+psycopg://cupcheck@dbhost/cupcheck``.
            migrate: run the Alembic upgrade first.
            store: the image folder shared by the site's stations (default ``home``).
        """
        engine = init_db(url, home=home) if migrate else make_engine(url, home=home)
        return cls(engine, home, store)

    # -- operators --------------------------------------------------------------------------------------------

    def add_operator(self, name: str, role: Role | str, pin: str, *, by: str | None = None) -> OperatorInfo:
        """Register an operator with a PIN (stored as a salted scrypt hash); see :meth:`OperatorRoster.add`.

        Raises:
            db.operators.OperatorError: a bad name, an unknown role or a too-short PIN.
            db.operators.OperatorExistsError: the name is taken.
        """
        return self.operators.add(name, role, pin, by=by)

    def check_supervisor(self, name: str, doing: str) -> None:
        """Refuse ``doing`` unless ``name`` is an active supervisor now; see :meth:`OperatorRoster.check_supervisor`.

        Raises:
            db.operators.UnknownOperatorError: nobody is registered under ``name``.
            NotSupervisorError: ``name`` is an operator, or was deactivated.
        """
        self.operators.check_supervisor(name, doing)

    def named_photographs(self, per_end: int = 10) -> list[str]:
        """A sample of the photographs the log names (its ``per_end`` oldest and newest not pruned), to tell whether
        a folder is the image store those verdicts were written into without reading every reference."""
        kept = select(Capture.ref).where(Capture.ref.startswith(f"{STORE_DIR}/"))  # a pruned photograph names none
        with self._sessions() as session:
            oldest = session.scalars(kept.order_by(Capture.id).limit(per_end)).all()
            newest = session.scalars(kept.order_by(Capture.id.desc()).limit(per_end)).all()
        return list(dict.fromkeys([*oldest, *newest]))

    def verify_operator(self, name: str, pin: str) -> OperatorInfo | None:
        """Return the operator when ``pin`` is right and the operator is active, else ``None``."""
        return self.operators.verify(name, pin)

    # -- logging ----------------------------------------------------------------------------------------------

    def log_verdict(self, record: VerdictRecord) -> int:
        """Store one verdict with its cup, photograph and coins; return the verdict's id.

        The images are written first (atomically, content-addressed), then all rows in one transaction, so a
        failure leaves no row behind. Idempotent: if a verdict with ``record.idempotency_key`` exists (a retry, a
        spool replay, or a concurrent duplicate), its id is returned and nothing is inserted.

        ``record.recheck_of`` links the cup to the earlier check it answers (``cups.recheck_of_id``). A link that
        names no logged verdict, or one of another expected type, is dropped with a warning: the verdict itself is
        stored whatever becomes of the link.

        Raises:
            UnknownOperatorError: the operator is not registered.
            OrderMismatchError: the order exists with another expected type.
            sqlalchemy.exc.OperationalError: the database cannot be reached (the spool catches this).
            sqlalchemy.exc.IntegrityError: a row breaks a constraint (e.g. two coins with one index).
        """
        width, height = jpeg_size(record.image_jpeg)
        image = self.store.put(record.image_jpeg, "jpg")
        crops = {c.index: self.store.put(c.crop_jpeg, "jpg") for c in record.coins if c.crop_jpeg is not None}
        masks = {c.index: self.store.put(c.mask_png, "png") for c in record.coins if c.mask_png is not None}
        try:
            with self._writes.begin() as session:
                existing = _verdict_id_for_key(session, record.idempotency_key)
                if existing is not None:
                    return existing
                return self._insert_rows(session, record, image, (width, height), crops, masks)
        except IntegrityError:
            with self._sessions() as session:
                existing = _verdict_id_for_key(session, record.idempotency_key)
            if existing is not None:
                return existing
            raise

    def _insert_rows(
        self,
        session: Session,
        record: VerdictRecord,
        image: StoredBlob,
        size: tuple[int, int],
        crops: dict[int, StoredBlob],
        masks: dict[int, StoredBlob],
    ) -> int:
        station_id = _get_or_create_station(session, record.station)
        operator = operator_named(session, record.operator)
        order_id = None
        if record.order is not None:
            order_id = _get_or_create_order(session, record.order, record.expected_type)
        cup = Cup(
            station_id=station_id,
            operator_id=operator.id,
            order_id=order_id,
            expected_type=record.expected_type,
            created_at=record.created_at,
            recheck_of_id=_earlier_check(session, record),
            expected_count=record.expected_count,
        )
        cup.capture = Capture(
            sha256=image.sha256, ref=image.ref, width=size[0], height=size[1], size_bytes=image.size_bytes
        )
        cup.coins = [
            Coin(
                index=c.index,
                x1=c.bbox[0],
                y1=c.bbox[1],
                x2=c.bbox[2],
                y2=c.bbox[3],
                diameter_mm=c.diameter_mm,
                confidence=c.confidence,
                partial=c.partial,
                top_type=c.top_type,
                top_side=c.top_side,
                top_score=c.top_score,
                crop_ref=crops[c.index].ref if c.index in crops else None,
                mask_ref=masks[c.index].ref if c.index in masks else None,
                embedding=c.embedding,
            )
            for c in record.coins
        ]
        verdict = Verdict(
            idempotency_key=record.idempotency_key,
            decision=record.decision,
            p_correct=record.p_correct,
            threshold=record.threshold,
            reasons=list(record.reasons),
            model_version=record.model_version,
            timings=dict(record.timings_ms),
            created_at=record.created_at,
        )
        cup.verdict = verdict
        session.add(cup)
        session.flush()
        return verdict.id

    def verdict_id_for_key(self, idempotency_key: str) -> int | None:
        """Return the id of the verdict logged under ``idempotency_key``, or ``None``."""
        with self._sessions() as session:
            return _verdict_id_for_key(session, idempotency_key)

    def cup_of_verdict(self, verdict_id: int) -> int:
        """The id of the cup a logged verdict judged (what :meth:`log_verdict` returned names the verdict).

        Raises:
            LookupError: no verdict has this id.
        """
        with self._sessions() as session:
            cup_id = session.scalar(select(Verdict.cup_id).where(Verdict.id == verdict_id))
        if cup_id is None:
            raise LookupError(f"no verdict {verdict_id}")
        return int(cup_id)

    def station_models(self) -> list[StationModel]:
        """Each station's newest checked cup with the model version that judged it, by station name (a station
        that has logged nothing is left out): after a promotion, which stations run the new model yet."""
        newest = (
            select(Cup.id)
            .where(Cup.station_id == Station.id)
            .order_by(Cup.created_at.desc())  # ix_cups_station_created: one index probe a station
            .limit(1)
            .correlate(Station)
            .scalar_subquery()
        )
        query = (
            select(Station.name, Verdict.model_version, Verdict.created_at)
            .join(Verdict, Verdict.cup_id == newest)
            .order_by(Station.name)
        )
        with self._sessions() as session:
            return [StationModel(name, version, at) for name, version, at in session.execute(query)]

    # -- review -----------------------------------------------------------------------------------------------

    def review_queue(
        self,
        limit: int = 20,
        station: str | None = None,
        *,
        margin: float = 0.25,
        weights: ReviewWeights | None = None,
        window: int = 5000,
        audit_share: float = 0.0,
        suspects: Collection[int] = (),
        suspects_since: datetime | None = None,
        order: str | None = None,
    ) -> list[ReviewItem]:
        """Rank flagged and low-margin cups by how much a person's label would teach the model.

        Candidates are cups whose verdict is FLAG, close calls (a PASS whose ``p_correct`` lies within ``margin`` of
        the way from the threshold to 1: with a threshold of 0.97 and the default 0.25, up to 0.9775; 1.0: every
        PASS), and about ``audit_share`` of the PASSes drawn for a person to check (:func:`db.records.audit_pick`;
        ``ReviewItem.audit``) whatever their score: the newest ``window`` of them. Audited PASSes are the only
        labels that measure PASS precision in the field, and the only positive examples of confident PASSes a
        retrain gets. A FLAG whose only reason is the coin count (:data:`models.reasons.ReasonKind.COUNT`: the
        coins passed, and the operator corrects the count and checks the cup again) is taken as the PASS its coins
        were. Each gets ``score = w_u·uncertainty + w_d·disagreement + w_r·rarity``:

        - uncertainty: ``max(1 - |p - threshold| / span, 1 - 2·|p - 0.5|)`` clipped to ``[0, 1]``, where ``span``
          is the room on ``p``'s side of the threshold (``1 - threshold`` above it, ``threshold`` below), so that
          with a strict threshold a sure PASS is not taken for a close call;
        - disagreement: ``|coins_wrong - (1 - p)|``, where ``coins_wrong`` is 1 when any coin's best match is
          another type than the expected one (one such coin makes the cup wrong) and 0 when none is, so the
          pooled voter and the per-coin evidence disagreeing scores high and agreeing scores low;
        - rarity: ``1 / (1 + n)``, with ``n`` the cups of this expected type labelled so far.

        A cup is labelled (:attr:`ReviewItem.labelled`) when it has a current ruling on the whole cup; a cup whose
        coins alone were ruled on stays among the unlabelled, since the retrain learns only from labelled cups
        (its coin rulings stay in its audit trail).

        Cups whose ruling cleanlab suspects (``suspects``, from the newest retrain: :attr:`ReviewItem.suspect`)
        come first, whatever their verdict, until someone rules on the whole cup again after ``suspects_since`` (a
        ruling on one of its coins leaves the doubted cup ruling as it was); then
        unlabelled cups by higher score, then newer, with one PASS drawn for audit after every three others
        (:func:`db.review.rank_queue`: a week's audits never push the FLAGs out), then the labelled ones the same way.

        A check that a later photograph of the same cup answers (the operator turned the coins it named and checked
        again: ``cups.recheck_of_id``) is left out: the later check is the cup's verdict, in the queue if it needs
        a person, with :attr:`ReviewItem.recheck_of` naming the earlier one.

        Args:
            limit: how many items to return.
            station: only this station's cups.
            margin: how close to the threshold a PASS must be to need review.
            weights: score weights.
            window: how many of the newest FLAGs and low-margin cups to score, and as many of the newest PASSes for
                the audit draw (suspects are always among them).
            suspects: cup ids whose rulings look wrong (:func:`models.registry.suspect_labels`).
            suspects_since: when they were ranked; a ruling made later is the second look.
            order: instead, every cup checked for this order number (at any station unless ``station`` is given),
                whatever its verdict, newest first: what a supervisor looks at when a customer says an order held a
                wrong coin. Scored alike; ``limit`` and ``window`` still bound it.
        """
        w = weights or ReviewWeights()
        stmt = queue_query(
            station=station,
            margin=margin,
            window=window,
            audit_share=audit_share,
            suspects=sorted(set(suspects)),
            order=order,
        )
        with self._sessions() as session:
            rows = session.execute(stmt).all()
            labelled = {t: int(n) for t, n in session.execute(labels_per_type()).all()}
        items = []
        for row in rows:
            # the ruling cleanlab doubts is the one on the whole cup: a coin ruled alone since leaves it unexamined
            cup_id, p, thr, ruled = row.cup_id, row.p_correct, row.threshold, row.cup_ruled_at
            decision = Decision(row.decision)
            is_pass = decision == Decision.PASS
            audit = is_pass and audit_pick(cup_id, audit_share)
            suspect = cup_id in suspects and (suspects_since is None or ruled is None or ruled <= suspects_since)
            passed_coins = is_pass or only_the_count(row.reasons)
            confident = passed_coins and p - thr > margin * (1.0 - thr)
            if confident and not audit and not suspect and order is None:
                continue  # a confident PASS (of its coins) that was not drawn for audit
            n, n_mis = int(row.n_coins), int(row.n_mismatch)
            share = n_mis / n if n else 0.0
            info = informativeness(p, thr, share, labelled.get(row.expected_type, 0), w)
            items.append(
                ReviewItem(
                    cup_id=cup_id,
                    verdict_id=row.verdict_id,
                    station=row.station,
                    expected_type=row.expected_type,
                    decision=decision,
                    p_correct=p,
                    threshold=thr,
                    n_coins=n,
                    n_instances=int(row.n_instances),
                    mismatch_share=share,
                    uncertainty=info.uncertainty,
                    disagreement=info.disagreement,
                    rarity=info.rarity,
                    score=info.score,
                    labelled=row.cup_ruled_at is not None,  # a coin ruled alone leaves its cup unlabelled
                    capture_ref=row.capture_ref,
                    created_at=row.created_at,
                    audit=audit,
                    reasons=tuple(row.reasons or ()),
                    recheck_of=row.recheck_of_id,
                    recheck_capture_ref=row.recheck_capture_ref,
                    recheck_reasons=tuple(row.recheck_reasons or ()),
                    suspect=suspect,
                    operator=row.operator,
                    order=row.order_number,
                    expected_count=row.expected_count,
                )
            )
        return sorted(items, key=newest_key)[:limit] if order is not None else rank_queue(items, limit)

    # -- relabel ----------------------------------------------------------------------------------------------

    def relabel(
        self,
        actor: str,
        cup_id: int,
        kind: LabelKind | str,
        *,
        coin_index: int | None = None,
        corrected_type: str | None = None,
        note: str = "",
        expected_label: int | AnyRuling | None = ANY_RULING,
    ) -> int:
        """Record a supervisor's ruling on a cup or one of its coins; return the new label's id.

        The previous label of the same target stops being current; the new label and an audit row (old value →
        new value) are written in one transaction.

        Args:
            actor: the supervisor's operator name.
            cup_id: the cup.
            kind: the ruling; a cup takes ``confirmed`` or ``corrected``, a coin any :class:`LabelKind`.
            coin_index: the coin's index within the cup; ``None`` labels the whole cup.
            corrected_type: the true type, required with ``corrected`` and refused otherwise.
            note: free text kept in the audit log.
            expected_label: the id of the label the caller saw in force on the target (``None``: none), as
                :meth:`rulings_in_force` read it; when another is in force now, nothing is written. Left out,
                whatever is in force is replaced.

        Raises:
            NotSupervisorError: ``actor`` is not an active supervisor.
            UnknownOperatorError: ``actor`` is not registered.
            LookupError: no such cup or coin.
            ValueError: the kind does not fit the target or ``corrected_type``.
            RulingChanged: the label in force is not ``expected_label`` (someone ruled meanwhile).
        """
        kind = LabelKind(kind)
        if (kind is LabelKind.CORRECTED) != (corrected_type is not None):
            raise ValueError("corrected_type is required with 'corrected' and only with it")
        if coin_index is None and kind not in CUP_LABEL_KINDS:
            raise ValueError(f"a cup can only be {sorted(k.value for k in CUP_LABEL_KINDS)}, not {kind.value!r}")
        with self._writes.begin() as session:
            op, ruled = _lock_target(session, actor, cup_id, coin_index, expected_label)
            old_value = None if ruled.label is None else _label_value(ruled.label.kind, ruled.label.corrected_type)
            if ruled.label is not None:
                ruled.label.is_current = False
                session.flush()
            now = utcnow()
            label = Label(
                cup_id=cup_id,
                coin_id=ruled.coin_id,
                target=ruled.target,
                kind=kind,
                corrected_type=corrected_type,
                operator_id=op.id,
                created_at=now,
                is_current=True,
            )
            session.add(label)
            session.add(
                RelabelAudit(
                    operator_id=op.id,
                    created_at=now,
                    cup_id=cup_id,
                    coin_id=ruled.coin_id,
                    target=ruled.target,
                    old_value=old_value,
                    new_value=_label_value(kind, corrected_type),
                    note=note,
                )
            )
            session.flush()
            return label.id

    def withdraw_ruling(
        self,
        actor: str,
        cup_id: int,
        *,
        coin_index: int | None = None,
        note: str = "",
        expected_label: int | AnyRuling | None = ANY_RULING,
    ) -> int:
        """Withdraw the ruling in force on a coin (or the whole cup), made by mistake; return the withdrawn label's id.

        The label stops being current and no other takes its place, so a coin falls back to its cup's ruling (what
        :meth:`training_export` gives a coin with no ruling of its own). The audit log keeps both: the ruling, and
        its withdrawal (old value → :data:`WITHDRAWN`, who and when).

        Args:
            actor: the supervisor's operator name.
            cup_id: the cup.
            coin_index: the coin's index within the cup; ``None``: the ruling on the whole cup.
            note: free text kept in the audit log.
            expected_label: as :meth:`relabel` takes it.

        Raises:
            NotSupervisorError: ``actor`` is not an active supervisor.
            UnknownOperatorError: ``actor`` is not registered.
            LookupError: no such cup or coin, or it has no ruling of its own to withdraw.
            RulingChanged: the label in force is not ``expected_label`` (someone ruled meanwhile).
        """
        with self._writes.begin() as session:
            op, ruled = _lock_target(session, actor, cup_id, coin_index, expected_label)
            if ruled.label is None:
                whose = f"cup {cup_id}" if coin_index is None else f"coin {coin_index + 1} of cup {cup_id}"
                raise LookupError(f"{whose} has no ruling of its own to withdraw")
            ruled.label.is_current = False
            session.add(
                RelabelAudit(
                    operator_id=op.id,
                    created_at=utcnow(),
                    cup_id=cup_id,
                    coin_id=ruled.coin_id,
                    target=ruled.target,
                    old_value=_label_value(ruled.label.kind, ruled.label.corrected_type),
                    new_value=WITHDRAWN,
                    note=note,
                )
            )
            session.flush()
            return ruled.label.id

    def withdrawn_since(self, since: datetime | None) -> tuple[datetime, ...]:
        """When each ruling withdrawn after ``since`` (``None``: ever) was withdrawn, oldest first: a model trained
        before then learnt what the supervisor took back, so the nightly retrain has work to do.

        Raises:
            ValueError: ``since`` is naive.
        """
        if since is not None and since.tzinfo is None:
            raise ValueError(f"since must be timezone-aware, not {since.isoformat()}")
        query = select(RelabelAudit.created_at).where(RelabelAudit.new_value == WITHDRAWN)
        if since is not None:
            query = query.where(RelabelAudit.created_at > since)
        with self._sessions() as session:
            return tuple(sorted(session.scalars(query).all()))

    def rulings_in_force(self, cup_id: int) -> dict[int | None, int]:
        """The id of each label in force on ``cup_id``, by coin index (``None``: the ruling on the whole cup): what a
        review window shows, and passes back to :meth:`relabel` as ``expected_label``."""
        with self._sessions() as session:
            rows = session.execute(
                select(Coin.index, Label.id)
                .outerjoin(Coin, Coin.id == Label.coin_id)
                .where(Label.cup_id == cup_id, Label.is_current)
            ).all()
        return {None if index is None else int(index): int(label_id) for index, label_id in rows}

    def cup_coins(self, cup_id: int) -> list[StoredCoin]:
        """Return the logged coins of ``cup_id`` in the detector's order (empty for an unknown cup)."""
        with self._sessions() as session:
            coins = session.scalars(select(Coin).where(Coin.cup_id == cup_id).order_by(Coin.index)).all()
            return [
                StoredCoin(
                    coin_id=c.id,
                    index=c.index,
                    bbox=(c.x1, c.y1, c.x2, c.y2),
                    confidence=c.confidence,
                    partial=c.partial,
                    diameter_mm=c.diameter_mm,
                    top_type=c.top_type,
                    top_side=c.top_side,
                    top_score=c.top_score,
                    crop_ref=c.crop_ref,
                    mask_ref=c.mask_ref,
                )
                for c in coins
            ]

    def read_blob(self, ref: str) -> bytes:
        """Return the bytes of a stored image (capture, crop or mask) by its reference."""
        return self.store.read(ref)

    def audit_trail(self, cup_id: int | None = None) -> list[AuditEntry]:
        """Return the relabel history, oldest first, optionally for one cup (its coins included)."""
        stmt = (
            select(RelabelAudit, Operator.name, Coin.index)
            .join(Operator, Operator.id == RelabelAudit.operator_id)
            .outerjoin(Coin, Coin.id == RelabelAudit.coin_id)
            .order_by(RelabelAudit.id)
        )
        if cup_id is not None:
            stmt = stmt.where(RelabelAudit.cup_id == cup_id)
        with self._sessions() as session:
            rows = session.execute(stmt).all()
        return [
            AuditEntry(
                id=a.id,
                operator=name,
                created_at=a.created_at,
                cup_id=a.cup_id,
                coin_id=a.coin_id,
                target=a.target,
                old_value=a.old_value,
                new_value=a.new_value,
                note=a.note,
                coin_index=index,
            )
            for a, name, index in rows
        ]

    # -- retraining -------------------------------------------------------------------------------------------

    def training_export(self, since: datetime | None = None) -> TrainingExport:
        """Return every labelled cup with a ruling of its own or of one of its coins made or withdrawn after a point
        in time, each whole: every coin under its ruling in force, whenever that was made (a coin corrected before
        the point in a cup confirmed after it is still the other type).

        A coin's ruling in force is its own current label, else its cup's current label (``inherited``). A first
        check that a labelled re-check answers (``cups.recheck_of_id``; it left the review queue, so nobody rules
        on it) comes too: the same coins, some turned over in place, so each of its coins takes the ruling of the
        re-check's coin whose box centre lies within half a coin of its own (``inherited``; none for a coin with
        no such twin, or whose twin was ruled ``wrong_side``), and the cup takes the re-check's cup ruling and its
        split (:attr:`~db.records.TrainingCup.split_cup_id`).

        What a model version has not been trained on is what was ruled after its labels were taken: the registry
        knows when (:func:`station.retrain_job.labels_taken`, its ``labels_until``), so the caller passes that
        time. A model's first verdict comes later (it is built, then promoted, then used), and rulings made in
        between would be missed.

        Args:
            since: pick only cups ruled on after this (timezone-aware) time; ``None`` exports everything labelled.

        Raises:
            ValueError: ``since`` is naive.
        """
        if since is not None and since.tzinfo is None:
            raise ValueError(f"since must be timezone-aware, not {since.isoformat()}")
        with self._sessions() as session:
            fresh = select(Label.cup_id).where(Label.is_current)
            if since is not None:  # a ruling made, or one withdrawn (its coin falls back to its cup's), since then
                changed = select(RelabelAudit.cup_id).where(RelabelAudit.created_at > since)
                fresh = fresh.where(or_(Label.created_at > since, Label.cup_id.in_(changed)))
            cup_ids = sorted(set(session.scalars(fresh.distinct()).all()))
            if not cup_ids:
                return TrainingExport(cups=(), coins=())
            return export_cups(session, cup_ids)

    # -- housekeeping -----------------------------------------------------------------------------------------

    def prune_images(
        self,
        before: datetime,
        *,
        station: str | None = None,
        audit_share: float = 0.0,
        dry_run: bool = False,
        min_age_s: float = 3600.0,
    ) -> PruneReport:
        """Drop the photographs and coin crops of old cups nobody will look at again, to keep the store bounded.

        A cup qualifies when it was checked before ``before``, PASSed, nobody ever ruled on it or on one of its
        coins, and the PASS audit (``audit_share``, the review window's) did not draw it. A check that a re-check
        answers (the operator turned coins over) goes with its re-check: both qualify when the re-check does and
        nobody ruled on either. Its verdict, its coins (boxes, matches, embeddings) and its capture's digest and
        size stay; the capture's reference becomes :data:`PRUNED_REF` (the review window says it was pruned) and the
        coins' crop and mask references are cleared. A file another cup still names stays, and so does one written
        or reused within ``min_age_s`` (a write in flight may be about to name it).

        Args:
            before: only cups checked before this time.
            station: only this station's cups (each station's images are in its own home's store).
            audit_share: the share of PASSes the review window draws for a person to check; those keep their images.
            dry_run: count, change nothing.
            min_age_s: grace period of a file, in seconds.
        """
        stmt = (
            select(Cup.id, Cup.recheck_of_id, Verdict.decision, Capture.ref == PRUNED_REF)
            .join(Verdict, Verdict.cup_id == Cup.id)
            .join(Capture, Capture.cup_id == Cup.id)
            .where(Cup.created_at < before)
        )
        if station is not None:
            stmt = stmt.join(Station, Station.id == Cup.station_id).where(Station.name == station)
        with self._sessions() as session:
            rows = session.execute(stmt).all()
            ruled = set(session.scalars(select(Label.cup_id).distinct()).all())
            answer = dict(
                session.execute(select(Cup.recheck_of_id, Cup.id).where(Cup.recheck_of_id.is_not(None))).all()
            )
        old = {cup: decision for cup, _, decision, _ in rows}
        checks: dict[int, set[int]] = {}  # each cup to prune, with the checks of the same cup whose rulings keep it
        for cup, first, _, pruned in rows:
            final = answer.get(cup, cup)  # a check a re-check answers goes with that re-check
            if pruned or {cup, first, final} & ruled or audit_pick(final, audit_share):
                continue  # done already, or a person ruled on some check of this cup, or the audit drew it
            if old.get(final) == Decision.PASS:  # the re-check too is old
                checks[cup] = {c for c in (cup, first, final) if c is not None}
        cups = sorted(checks)
        cutoff = time.time() - min_age_s
        files = n_bytes = 0
        done: set[int] = set()  # the cups of the batches so far: their images go (a dry run counts as if they had)
        for start in range(0, len(cups), _GC_BATCH):
            batch = cups[start : start + _GC_BATCH]
            with (self._sessions if dry_run else self._writes).begin() as session:
                # a ruling made since the cups were read keeps its cup (in the write transaction: none can slip in)
                related = sorted(set().union(*(checks[c] for c in batch)))
                now_ruled = set(session.scalars(select(Label.cup_id).where(Label.cup_id.in_(related))).all())
                batch = [c for c in batch if not checks[c] & now_ruled]
                done.update(batch)
                refs = _refs_of(session, batch) if batch else set()
                # identical bytes a cup that keeps its images names stay
                refs = {r for r, owners in _owners(session, sorted(refs)).items() if owners <= done}
                if not dry_run and batch:
                    session.execute(update(Capture).where(Capture.cup_id.in_(batch)).values(ref=PRUNED_REF))
                    session.execute(update(Coin).where(Coin.cup_id.in_(batch)).values(crop_ref=None, mask_ref=None))
            for ref in sorted(refs):
                path = self.store.path(ref)
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                if stat.st_mtime > cutoff:
                    continue
                files += 1
                n_bytes += stat.st_size
                if not dry_run:
                    self.store.remove(ref)
        return PruneReport(len(done), files, n_bytes)

    def set_aside(
        self, station: str, since: datetime, limit: int = 50, *, waiting_since: datetime | None = None
    ) -> list[AsideCup]:
        """The cups ``station`` flagged since ``since`` (and those nobody has ruled on since ``waiting_since``) that
        wait on its bench, newest first, with the rulings given on them since (:func:`db.activity.read_aside`)."""
        from db.activity import read_aside

        return read_aside(self.engine, station, since, limit, waiting_since=waiting_since)

    def order_checks(self, number: str, limit: int = 5) -> list[OrderCheck]:
        """The newest checks of cups for order ``number``, at every station (:func:`db.activity.read_order_checks`):
        whether an order scanned again was filled already."""
        from db.activity import read_order_checks

        return read_order_checks(self.engine, number, limit)

    def count_order_checks(self, number: str) -> int:
        """How many checks of cups for order ``number`` the log holds (:func:`db.activity.count_order_checks`)."""
        from db.activity import count_order_checks

        return count_order_checks(self.engine, number)

    def count_verdicts(self) -> int:
        """How many verdicts the log holds."""
        with self._sessions() as session:
            return int(session.scalar(select(func.count()).select_from(Verdict)) or 0)

    def stored_refs(self) -> set[str]:
        """Every image reference a capture or coin names (a pruned photograph names none)."""
        refs: set[str] = set()
        with self._sessions() as session:
            for column in (Capture.ref, Coin.crop_ref, Coin.mask_ref):
                refs.update(r for r in session.scalars(select(column).distinct()) if r)
        return refs

    def gc_orphan_images(self, min_age_s: float = 3600.0, now: float | None = None) -> list[str]:
        """Delete store files that no row references and that are older than ``min_age_s``; return their refs.

        Temporary files left by interrupted writes older than the grace period go too. The grace period keeps
        the files of a :meth:`log_verdict` still in flight (written, not yet committed); a file written again
        since it was listed (a journal replayed) is kept.

        Raises:
            OrphanSweepRefused: the store is a site's shared folder and this database is a station's own SQLite log
                or holds no verdict: it does not name the other stations' images.

        Args:
            min_age_s: grace period in seconds.
            now: the current time as a POSIX timestamp (for tests); ``time.time()`` by default.
        """
        if self.store.shared and (self.engine.dialect.name == "sqlite" or not self.count_verdicts()):
            which = "a station's own SQLite log" if self.engine.dialect.name == "sqlite" else "one with no verdict"
            raise OrphanSweepRefused(
                f"the image folder {self.store.root} is shared by a site's stations, and this database ({which}) "
                "does not name their images: nothing is swept (give the site's database: --db, or the station's "
                "--config)"
            )
        cutoff = (time.time() if now is None else now) - min_age_s
        old = [ref for ref, mtime in self.store.iter_refs() if mtime <= cutoff]
        removed: list[str] = []
        for start in range(0, len(old), _GC_BATCH):
            batch = old[start : start + _GC_BATCH]
            with self._sessions() as session:  # a fresh read per batch: a verdict committed meanwhile is seen
                owned = _owners(session, batch)
            for ref in batch:
                if owned[ref]:
                    continue
                try:  # written again since it was listed (a journal replayed): a verdict is about to name it
                    if self.store.path(ref).stat().st_mtime > cutoff:
                        continue
                except FileNotFoundError:
                    continue
                self.store.remove(ref)
                removed.append(ref)
        for path, mtime in list(self.store.iter_temp_files()):
            if mtime <= cutoff:
                path.unlink(missing_ok=True)
        return removed


def _verdict_id_for_key(session: Session, key: str) -> int | None:
    return session.scalar(select(Verdict.id).where(Verdict.idempotency_key == key))


def _earlier_check(session: Session, record: VerdictRecord) -> int | None:
    """The cup ``record`` re-checks, ``None`` for a first check or a link that cannot stand (warned)."""
    if record.recheck_of is None:
        return None
    row = session.execute(
        select(Cup.id, Cup.expected_type)
        .join(Verdict, Verdict.cup_id == Cup.id)
        .where(Verdict.idempotency_key == record.recheck_of)
    ).first()
    if row is None:
        _log.warning(
            "verdict %s re-checks %s, which is not logged: stored unlinked", record.idempotency_key, record.recheck_of
        )
        return None
    if row.expected_type != record.expected_type:
        _log.warning(
            "verdict %s re-checks a cup expected to be %s, not %s: stored unlinked",
            record.idempotency_key,
            row.expected_type,
            record.expected_type,
        )
        return None
    return int(row.id)


def _insert_ignoring_conflict(session: Session, table: Any, values: dict[str, Any], unique: str) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(table).values(**values).on_conflict_do_nothing(index_elements=[unique]))
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(table).values(**values).on_conflict_do_nothing(index_elements=[unique]))
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise NotImplementedError(dialect)


def _get_or_create_station(session: Session, name: str) -> int:
    station_id = session.scalar(select(Station.id).where(Station.name == name))
    if station_id is None:
        _insert_ignoring_conflict(session, Station.__table__, {"name": name, "created_at": utcnow()}, "name")
        station_id = session.scalar(select(Station.id).where(Station.name == name))
    assert station_id is not None
    return station_id


def _get_or_create_order(session: Session, number: str, expected_type: str) -> int:
    row = session.execute(select(Order.id, Order.expected_type).where(Order.number == number)).first()
    if row is None:
        _insert_ignoring_conflict(
            session,
            Order.__table__,
            {"number": number, "expected_type": expected_type, "created_at": utcnow()},
            "number",
        )
        row = session.execute(select(Order.id, Order.expected_type).where(Order.number == number)).first()
    assert row is not None
    if row.expected_type != expected_type:
        raise OrderMismatchError(f"order {number!r} expects {row.expected_type!r}, not {expected_type!r}")
    return int(row.id)


def _label_value(kind: LabelKind, corrected_type: str | None) -> str:
    return f"{kind.value}:{corrected_type}" if kind is LabelKind.CORRECTED else kind.value


@dataclass(frozen=True)
class _Target:
    """A ruling's target, locked for the transaction: ``cup:<id>`` or ``coin:<id>``, and its label in force."""

    target: str
    coin_id: int | None
    label: Label | None


def _lock_target(
    session: Session, actor: str, cup_id: int, coin_index: int | None, expected: int | AnyRuling | None
) -> tuple[Operator, _Target]:
    """Check ``actor`` may rule, lock the cup and the target's label in force, and compare it with ``expected``.

    The cup's row is locked first (PostgreSQL; SQLite's write transaction holds the whole file): a second ruling
    on it waits for this one and then finds it as the current label, instead of finding none and colliding with it.

    Raises:
        NotSupervisorError, UnknownOperatorError: ``actor`` may not rule.
        LookupError: no such cup or coin.
        RulingChanged: ``expected`` is given and another label (or none) is in force.
    """
    op = require_supervisor(session, actor, "relabel")
    cup = session.get(Cup, cup_id, with_for_update=True)
    if cup is None:
        raise LookupError(f"no cup {cup_id}")
    coin_id = None
    if coin_index is not None:
        coin_id = session.scalar(select(Coin.id).where(Coin.cup_id == cup_id, Coin.index == coin_index))
        if coin_id is None:
            raise LookupError(f"cup {cup_id} has no coin {coin_index}")
    target = f"cup:{cup_id}" if coin_id is None else f"coin:{coin_id}"
    label = session.scalar(select(Label).where(Label.target == target, Label.is_current).with_for_update())
    if expected is not ANY_RULING and (None if label is None else label.id) != expected:
        whose = f"cup {cup_id}" if coin_index is None else f"coin {coin_index + 1} of cup {cup_id}"
        raise _ruling_changed(session, whose, target, label)
    return op, _Target(target, coin_id, label)


def _ruling_changed(session: Session, whose: str, target: str, label: Label | None) -> RulingChanged:
    """Who changed ``target``'s ruling last, to what and when: its newest audit row (the label in force, when the
    log holds no row for it)."""
    row = session.execute(
        select(Operator.name, RelabelAudit.new_value, RelabelAudit.created_at)
        .join(Operator, Operator.id == RelabelAudit.operator_id)
        .where(RelabelAudit.target == target)
        .order_by(RelabelAudit.id.desc())
        .limit(1)
    ).first()
    if row is not None:
        return RulingChanged(whose, row.name, row.new_value, row.created_at)
    if label is None:  # pragma: no cover - a label leaves an audit row, and so does its withdrawal
        return RulingChanged(whose, "?", WITHDRAWN, utcnow())
    name = session.scalar(select(Operator.name).where(Operator.id == label.operator_id)) or "?"
    return RulingChanged(whose, name, _label_value(label.kind, label.corrected_type), label.created_at)


class OrphanSweepRefused(ValueError):
    """The orphan sweep was asked of a shared image folder through a database that does not name the site's
    images (a station's own SQLite log, or an empty one): it would delete other stations' photographs."""


def _owners(session: Session, refs: Sequence[str]) -> dict[str, set[int]]:
    """Each of ``refs`` with the cups whose capture or coins name it."""
    out: dict[str, set[int]] = {r: set() for r in refs}
    for column, owner in ((Capture.ref, Capture.cup_id), (Coin.crop_ref, Coin.cup_id), (Coin.mask_ref, Coin.cup_id)):
        for start in range(0, len(refs), _GC_BATCH):
            for ref, cup in session.execute(select(column, owner).where(column.in_(refs[start : start + _GC_BATCH]))):
                if ref is not None:
                    out[ref].add(int(cup))
    return out


def _refs_of(session: Session, cups: Sequence[int]) -> set[str]:
    """The store references ``cups``' captures and coins name."""
    refs = {r for r in session.scalars(select(Capture.ref).where(Capture.cup_id.in_(cups))).all() if r}
    for crop, mask in session.execute(select(Coin.crop_ref, Coin.mask_ref).where(Coin.cup_id.in_(cups))).all():
        refs.update(r for r in (crop, mask) if r)
    return refs
