"""A small resumable epoch loop shared by the training scripts.

The caller supplies the parts (modules, optimizer, scheduler, its own random generators) and two functions:
``step(batch) -> loss`` and ``validate(epoch) -> metrics``. After every epoch the loop writes one state file (all
state dicts, the epoch, the metric history, the global RNG states and the generators') atomically, so an
interrupted run continues with ``resume=True`` and ends where an uninterrupted one would.
"""

from __future__ import annotations

import io
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from models.files import read_torch_checkpoint, write_bytes_atomic

StepFn = Callable[[Any], torch.Tensor]
ValidateFn = Callable[[int], dict[str, float]]
EpochEndFn = Callable[[int, dict[str, float]], None]


@dataclass
class LoopParts:
    """What one training run updates and saves.

    Attributes:
        modules: name → module; every state dict is saved and restored.
        optimizer: steps once per batch.
        scheduler: steps once per batch (``None`` for a constant rate).
        train_mode: called at the start of each epoch to put the modules in training mode (so a caller can keep
            frozen parts, e.g. BatchNorm, in eval mode).
        generators: name → a ``torch.Generator`` the batches draw from (augmentation); each one's state is saved
            and restored with the run's, as the global RNGs are.
    """

    modules: Mapping[str, torch.nn.Module]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    train_mode: Callable[[], None] | None = None
    generators: Mapping[str, torch.Generator] = field(default_factory=dict)


@dataclass
class LoopState:
    """Progress of a run: the next epoch to run and every finished epoch's metrics."""

    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


def _rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_state(path: Path, parts: LoopParts, state: LoopState, extra: dict[str, Any] | None = None) -> None:
    """Write the run's state atomically to ``path``."""
    doc = {
        "epoch": state.epoch,
        "history": state.history,
        "modules": {k: m.state_dict() for k, m in parts.modules.items()},
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict() if parts.scheduler is not None else None,
        "rng": _rng_state(),
        "generators": {k: g.get_state() for k, g in parts.generators.items()},
        "extra": extra or {},
    }
    buf = io.BytesIO()
    torch.save(doc, buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, buf.getvalue())


def _read_state(path: Path) -> dict[str, Any]:
    """The state file's dictionary.

    Raises:
        ValueError: the file is not a readable torch checkpoint, or not a state file.
    """
    doc = read_torch_checkpoint(path)
    if not isinstance(doc, dict) or not {"epoch", "history", "modules", "optimizer"} <= set(doc):
        raise ValueError(f"{path} is not a training state file (written by a resumable run)")
    return doc


def peek_state(path: Path) -> tuple[LoopState, dict[str, Any]]:
    """A state file's progress and ``extra`` dict, restoring nothing (what a finished run was set to).

    Raises:
        ValueError: the file is not a state file.
    """
    doc = _read_state(path)
    return LoopState(epoch=int(doc["epoch"]), history=list(doc["history"])), dict(doc.get("extra") or {})


def load_state(path: Path, parts: LoopParts) -> tuple[LoopState, dict[str, Any]]:
    """Restore modules, optimizer, scheduler, RNGs and generators from ``path``; returns the state and the
    ``extra`` dict. A generator the file does not hold (a state written before they were kept) keeps its seed.

    Raises:
        ValueError: the file is not a state file.
    """
    doc = _read_state(path)
    for k, m in parts.modules.items():
        m.load_state_dict(doc["modules"][k])
    parts.optimizer.load_state_dict(doc["optimizer"])
    if parts.scheduler is not None and doc["scheduler"] is not None:
        parts.scheduler.load_state_dict(doc["scheduler"])
    _set_rng_state(doc["rng"])
    saved = doc.get("generators") or {}
    for k, g in parts.generators.items():
        if k in saved:
            g.set_state(saved[k])
    return LoopState(epoch=int(doc["epoch"]), history=list(doc["history"])), dict(doc.get("extra") or {})


def fit(
    parts: LoopParts,
    batches: Callable[[int], Iterable[Any]],
    step: StepFn,
    *,
    epochs: int,
    state_file: Path,
    resume: bool = False,
    validate: ValidateFn | None = None,
    on_epoch_end: EpochEndFn | None = None,
    max_seconds: float | None = None,
    extra: dict[str, Any] | None = None,
    progress: bool = True,
) -> LoopState:
    """Run epochs ``state.epoch .. epochs - 1``, checkpointing after each.

    Args:
        parts: what is trained.
        batches: ``epoch -> iterable of batches`` (a data loader; may reseed per epoch).
        step: computes the loss of one batch (the loop does backward and the optimizer step).
        epochs: total epochs of the run.
        state_file: where the resumable state is written after every epoch.
        resume: continue from ``state_file`` if it exists.
        validate: ``epoch -> metrics`` after each epoch.
        on_epoch_end: called with the epoch and its metrics after the state is saved.
        max_seconds: stop (resumably) after the first epoch that ends past this many seconds.
        extra: saved with the state (e.g. the label map).
        progress: show a tqdm bar per epoch on stderr.

    Returns:
        The final state.
    """
    state = LoopState()
    if resume and state_file.is_file():
        state, _ = load_state(state_file, parts)
    t0 = time.perf_counter()
    while state.epoch < epochs:
        epoch = state.epoch
        if parts.train_mode is not None:
            parts.train_mode()
        else:
            for m in parts.modules.values():
                m.train()
        total, n = 0.0, 0
        epoch_t0 = time.perf_counter()
        bar = tqdm(batches(epoch), desc=f"epoch {epoch + 1}/{epochs}", unit="batch", disable=not progress)
        for batch in bar:
            loss = step(batch)
            parts.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            parts.optimizer.step()
            if parts.scheduler is not None:
                parts.scheduler.step()
            total += float(loss.detach())
            n += 1
            bar.set_postfix(loss=f"{total / n:.3f}")
        bar.close()
        metrics: dict[str, float] = {"epoch": float(epoch + 1), "loss": total / max(n, 1)}
        metrics["train_seconds"] = time.perf_counter() - epoch_t0
        for m in parts.modules.values():
            m.eval()
        if validate is not None:
            metrics.update(validate(epoch))
        state.epoch = epoch + 1
        state.history.append(metrics)
        save_state(state_file, parts, state, extra)
        if on_epoch_end is not None:
            on_epoch_end(epoch, metrics)
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            break
    return state
