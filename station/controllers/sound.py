"""The verdict's sound cue: a spoken word through espeak-ng when it is installed, else the system beep."""

from __future__ import annotations

import shutil
import subprocess
from typing import Protocol

from PySide6.QtWidgets import QApplication

from models.types import Decision


class SoundCue(Protocol):
    """Plays something for a decision."""

    def play(self, decision: Decision) -> None:
        """Sound the cue for ``decision``; must not block."""
        ...


class Silent:
    """No sound (tests, or ``sound = false``)."""

    def play(self, decision: Decision) -> None:
        """Do nothing."""


class SpokenCue:
    """Says ``pass_word`` or ``flag_word`` with espeak-ng in the background; beeps when espeak-ng is missing.

    Args:
        pass_word: spoken for a PASS.
        flag_word: spoken for a FLAG.
        program: the speech program's path (default: ``espeak-ng`` from ``PATH``).
    """

    def __init__(self, pass_word: str = "pass", flag_word: str = "check this cup", program: str | None = None):
        self._words = {Decision.PASS: pass_word, Decision.FLAG: flag_word}
        self._program = program or shutil.which("espeak-ng")
        self._running: subprocess.Popen[bytes] | None = None

    def play(self, decision: Decision) -> None:
        """Speak (or beep) without waiting; a cue still playing is cut short."""
        if self._program is None:
            QApplication.beep()
            return
        if self._running is not None and self._running.poll() is None:
            self._running.terminate()
        self._running = subprocess.Popen(
            [self._program, "-s", "150", self._words[decision]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
