"""Calls handed to a background thread: only the newest read of each kind is drawn, whatever order answers come in,
and stopping the thread lets a call in progress finish."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import pytest
from PySide6.QtCore import QObject, Signal
from pytestqt.qtbot import QtBot

from station.worker import BackgroundCall, BackgroundThread, LatestReads


class Sender(QObject):
    """Hands calls to a worker in another thread, as a window's signal does."""

    send = Signal(object)


@dataclass(frozen=True)
class CupTag:
    ticket: int
    cup: int


@dataclass(frozen=True)
class QueueTag:
    ticket: int


def test_a_later_read_of_a_kind_makes_the_earlier_stale_and_other_kinds_stay_fresh() -> None:
    sent: list[BackgroundCall] = []
    reads = LatestReads(sent.append, (CupTag, QueueTag))
    assert not reads.busy
    first = CupTag(reads.ticket(CupTag), 1)
    reads.ask(first, lambda: "coins of cup 1")
    queue = QueueTag(reads.ticket(QueueTag))
    reads.ask(queue, lambda: "the queue")
    second = CupTag(reads.ticket(CupTag), 2)
    reads.ask(second, lambda: "coins of cup 2")
    assert [c.tag for c in sent] == [first, queue, second] and sent[0].fn() == "coins of cup 1"
    assert reads.busy
    assert reads.fresh(second) and reads.busy  # the newest cup read: drawn; two answers still to come
    assert not reads.fresh(first)  # overtaken by the read of cup 2
    assert not reads.fresh("someone else's answer") and reads.busy  # not one of these reads: nothing counted
    assert reads.fresh(queue) and not reads.busy


def test_answers_come_back_from_the_thread_in_the_order_asked(qtbot: QtBot) -> None:
    thread = BackgroundThread("test-reads")
    answers: list[tuple[object, object]] = []
    thread.worker.finished.connect(lambda tag, result: answers.append((tag, result)))
    thread.worker.failed.connect(lambda tag, error: answers.append((tag, type(error).__name__)))
    sender = Sender()
    sender.send.connect(thread.worker.call)  # queued: each read runs in the worker's thread
    reads = LatestReads(sender.send.emit, (CupTag,))
    try:
        for cup in (1, 2):
            reads.ask(CupTag(reads.ticket(CupTag), cup), lambda cup=cup: cup * 10)  # type: ignore[misc]
        reads.ask(CupTag(reads.ticket(CupTag), 3), lambda: 1 / 0)
        qtbot.waitUntil(lambda: len(answers) == 3, timeout=5000)
    finally:
        thread.stop()
    assert answers == [(CupTag(1, 1), 10), (CupTag(2, 2), 20), (CupTag(3, 3), "ZeroDivisionError")]
    assert [reads.fresh(tag) for tag, _ in answers] == [False, False, True] and not reads.busy


def test_stopping_waits_for_a_call_that_outlasts_the_patience(caplog: pytest.LogCaptureFixture) -> None:
    thread = BackgroundThread("test-slow")
    sender = Sender()
    sender.send.connect(thread.worker.call)  # queued: the call runs in the worker's thread
    started, done = threading.Event(), []

    def slow() -> str:  # an enrolment, a model's first load: longer than a window's patience
        started.set()
        time.sleep(0.5)
        done.append(threading.current_thread().name)
        return "written"

    sender.send.emit(BackgroundCall("job", slow))
    assert started.wait(timeout=5)
    with caplog.at_level(logging.WARNING, logger="station.worker"):
        thread.stop(patience_ms=100)
    assert len(done) == 1 and not thread.thread.isRunning()  # finished, not destroyed half-way
    assert done[0] != threading.main_thread().name
    assert "test-slow is still busy after 0.1 s; waiting for it to finish" in caplog.text
