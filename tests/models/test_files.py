"""The lock file shared folders are changed under: a lock left by a process of this host that died is broken at
once; one whose holder runs, or runs on another host, is waited for."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from models.files import LockTimeout, exclusive_lock, holder_is_gone


def _dead_pid() -> int:
    """The pid of a process of this host that has ended (and been reaped)."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait(timeout=60)
    return done.pid


def _holder(host: str, pid: int) -> str:
    return f"{host} pid {pid} since {datetime.now(UTC).isoformat()}\n"


def test_a_fresh_lock_whose_holder_died_on_this_host_is_broken_at_once(tmp_path: Path) -> None:
    lock = tmp_path / "retrain.lock"
    lock.write_text(_holder(socket.gethostname(), _dead_pid()))  # a run killed with kill -9 a moment ago
    with exclusive_lock(lock, 0.0, 3 * 3600.0, "the nightly retrain"):
        assert f"pid {os.getpid()}" in lock.read_text()
    assert not lock.exists()


@pytest.mark.parametrize("holder", ["running-here", "another-host", "not-written-yet"])
def test_a_lock_whose_holder_may_still_run_is_waited_for(tmp_path: Path, holder: str) -> None:
    text = {
        "running-here": _holder(socket.gethostname(), os.getppid()),  # a process of this host that runs
        "another-host": _holder("another-pc", _dead_pid()),  # only that PC can tell whether it runs
        "not-written-yet": "",  # created, its holder line not yet written
    }[holder]
    lock = tmp_path / "registry.lock"
    lock.write_text(text)
    with pytest.raises(LockTimeout, match="is in use by"), exclusive_lock(lock, 0.1, 900.0, "the model registry"):
        pass
    assert lock.read_text() == text  # left as it was


def test_the_holder_line_is_read_as_the_lock_writes_it() -> None:
    here = socket.gethostname()
    assert holder_is_gone(_holder(here, _dead_pid()))
    assert not holder_is_gone(_holder(here, os.getpid()))  # this process: another thread holds it
    assert not holder_is_gone(f"{here} pid x since now")
    assert not holder_is_gone("garbage")
