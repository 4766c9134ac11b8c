"""The station's one configuration object, validated with pydantic and read from a TOML file.

A minimal file names nothing at all (every field has a default); a typical one::

    name = "packing-2"
    database_url = "postgresql+psycopg://cupcheck@dbhost/cupcheck"
    store = "/mnt/cupcheck-share"   # the site's stations keep their images in one shared folder
    models = "/mnt/cupcheck-share"  # ... and follow one registry of verdict models (the nightly retrain's)
    gallery = "/mnt/cupcheck-share" # ... and one gallery of enrolled types (optional: else each station its own)
    target_precision = 0.995
    audit_share = 0.02      # PASSes put in front of the supervisor to check
    sign_out_after_min = 30 # an operator who left is signed out after this long without a check (0: never)
    sound = true

    [camera]
    kind = "index"          # index | url | folder | simulator
    index = 0
    fps = 15

    [cup_region]            # the cup's inner circle in frame pixels (optional)
    cx = 640
    cy = 360
    radius = 300

Unknown keys are refused (``extra="forbid"``) so a typo never passes silently; :func:`load_config` and
:func:`config_from_dict` turn every problem into one :class:`ConfigError` listing ``where: what`` per line.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from calibration.risk import DEFAULT_TARGET
from models.runtime import DEFAULT_BACKEND, Backend

CONFIG_FILENAME = "station.toml"
DEFAULT_AUDIT_SHARE = 0.02
"""One PASS in fifty goes to a supervisor to check."""
DEFAULT_SIGN_OUT_MIN = 30.0
"""An operator window with no check or order for half an hour signs its operator out."""


class ConfigError(ValueError):
    """The configuration file is missing, is not TOML, or holds values the station cannot use."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CameraConfig(_Strict):
    """Where frames come from.

    Attributes:
        kind: ``index`` (a local webcam, the default: a station file without a camera section uses webcam 0),
            ``url`` (a network stream or a video file), ``folder`` (replay the
            images of a folder in name order) or ``simulator`` (synthetic cups).
        index: the webcam's OpenCV index for ``kind = "index"``.
        url: the stream address or file for ``kind = "url"``.
        folder: the image folder for ``kind = "folder"``.
        fps: how many frames per second the preview asks for.
        width: requested capture width in pixels (webcams), ``None`` for the camera's default.
        height: requested capture height in pixels.
        reconnect_s: seconds between attempts to reopen a lost camera.
        simulator_types: coin types the simulator's mint holds.
        simulator_seed: the simulator's seed (the same seed shows the same cups).
        simulator_size: side of the simulator's square frames in pixels.
        hold_s: seconds the simulator or folder replay shows one cup before the next.
    """

    kind: Literal["index", "url", "folder", "simulator"] = "index"
    index: int = Field(default=0, ge=0)
    url: str | None = None
    folder: Path | None = None
    fps: float = Field(default=15.0, gt=0, le=120)
    width: int | None = Field(default=None, gt=0)
    height: int | None = Field(default=None, gt=0)
    reconnect_s: float = Field(default=2.0, gt=0)
    simulator_types: int = Field(default=24, ge=2, le=2000)
    simulator_seed: int = 0
    simulator_size: int = Field(default=640, ge=128, le=2048)
    hold_s: float = Field(default=4.0, gt=0)

    @model_validator(mode="after")
    def _source_named(self) -> CameraConfig:
        if self.kind == "url" and not self.url:
            raise ValueError('kind = "url" needs url = "..."')
        if self.kind == "folder" and self.folder is None:
            raise ValueError('kind = "folder" needs folder = "..."')
        return self


class CupRegion(_Strict):
    """The cup's inner circle in frame pixels."""

    cx: float = Field(ge=0)
    cy: float = Field(ge=0)
    radius: float = Field(gt=0)


class StationConfig(_Strict):
    """Everything one station needs to start.

    Attributes:
        name: the station's name, recorded with every verdict.
        camera: the frame source.
        home: the station home (gallery, models, database, captures); ``None`` means ``$CUPCHECK_HOME`` or the
            user data directory.
        database_url: a SQLAlchemy URL; ``None`` means the SQLite file under the home.
        store: the folder whose ``captures/`` keeps the photographs and coin crops; ``None`` means the home. The
            stations sharing one database give it one shared folder (a network share), so the review window and the
            nightly retrain on any PC see every station's images.
        models: the folder whose ``models/`` holds the registry of verdict models (:mod:`models.registry`);
            ``None`` means the home. The stations sharing one database give it one shared folder, so the model the
            nightly retrain promotes there (or a supervisor rolls back to) is the one every station runs: a running
            station loads it between cups.
        gallery: the folder whose ``gallery/`` holds the enrolled coin types; ``None`` means the home. The stations
            of a site may share one, so a type enrolled once is checked at every station (each loads it between
            cups) and the nightly retrain judges every station's cups against the catalogue they were checked with.
        bundle: the verdict model's bundle JSON; ``None`` means the registry's model in force, else the one shipped
            with the package. A station given a bundle keeps it while it runs.
        target_precision: the precision a PASS must reach (default 99.5 %); the calibrated threshold is chosen
            for it. A loose target may certify a threshold under 0.5; a cup the voter scores under 0.5 still never
            passes (:data:`calibration.risk.PASS_FLOOR`), and the station's log says the floor applies.
        cup_region: the cup's inner circle, ``None`` for the whole frame.
        sound: play a sound cue with each verdict.
        auto_check: check a cup by itself once a new cup has been still for ``still_s`` (Space still works).
        still_s: seconds the view must be still before an automatic check.
        pass_word: what the sound cue says for a PASS.
        flag_word: what it says for a FLAG.
        backend: what runs the embedder, the mask segmenter and YOLO: ``onnx`` (ONNX Runtime, several times faster on a
            CPU) or ``torch`` (for a model ONNX cannot express); both give the same verdicts.
        audit_share: the share of PASSes the review window puts in front of a supervisor to check, whatever the
            model thought of them (:func:`db.records.audit_pick`); their rulings measure PASS precision in the
            field (``cupcheck retrain`` reports it) and give the retrain its confident positives.
        sign_out_after_min: minutes without a check or an order after which the operator window signs its
            operator out (0: never), so cups are not recorded under the name of someone who left the station.
    """

    name: str = Field(default="station-1", min_length=1, max_length=64)
    camera: CameraConfig = Field(default_factory=lambda: CameraConfig())
    home: Path | None = None
    database_url: str | None = None
    store: Path | None = None
    models: Path | None = None
    gallery: Path | None = None
    bundle: Path | None = None
    target_precision: float = Field(default=DEFAULT_TARGET, gt=0.5, lt=1.0)
    cup_region: CupRegion | None = None
    sound: bool = True
    auto_check: bool = False
    still_s: float = Field(default=0.8, gt=0, le=10)
    pass_word: str = "pass"
    flag_word: str = "check this cup"
    backend: Backend = DEFAULT_BACKEND
    audit_share: float = Field(default=DEFAULT_AUDIT_SHARE, ge=0.0, le=1.0)
    sign_out_after_min: float = Field(default=DEFAULT_SIGN_OUT_MIN, ge=0.0, le=24 * 60)


def _explain(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown setting (check the spelling)"
        lines.append(f"  {where}: {msg}")
    return "\n".join(lines)


def config_from_dict(data: Mapping[str, Any], *, origin: str = "configuration") -> StationConfig:
    """Validate a plain dict (as read from TOML) into a :class:`StationConfig`.

    Raises:
        ConfigError: with one ``where: what`` line per problem.
    """
    try:
        return StationConfig.model_validate(dict(data))
    except ValidationError as err:
        raise ConfigError(f"{origin} is not valid:\n{_explain(err)}") from err


def load_config(path: str | Path | None) -> StationConfig:
    """Read and validate a station TOML file; ``None`` gives the defaults. A relative path in the file is taken
    from the file's folder, not from wherever the command runs (:func:`anchored`).

    Raises:
        ConfigError: the file is missing, is not valid TOML (with line and column), or holds bad values.
    """
    if path is None:
        return StationConfig()
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise ConfigError(f"configuration file {file} does not exist") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read configuration file {file}: {err}") from err
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{file} is not valid TOML: {err}") from err
    return anchored(config_from_dict(data, origin=str(file)), Path(os.path.abspath(file)).parent)


PATH_KEYS = ("home", "store", "models", "gallery", "bundle")
"""The settings that name a file or folder (with ``camera.folder`` and a SQLite ``database_url``)."""


def anchored(config: StationConfig, folder: Path) -> StationConfig:
    """``config`` with every relative path it names (:data:`PATH_KEYS`, ``camera.folder``, the file of a SQLite
    ``database_url``) taken from ``folder``, the station file's own: the same file must name the same home whether
    the station, an operator's shell or a cron job in another folder reads it. ``~`` is the user's home."""
    update: dict[str, object] = {
        key: _anchor(value, folder) for key in PATH_KEYS if (value := getattr(config, key)) is not None
    }
    if config.camera.folder is not None:
        update["camera"] = config.camera.model_copy(update={"folder": _anchor(config.camera.folder, folder)})
    if config.database_url is not None and config.database_url.startswith("sqlite"):
        from db.session import anchored_url

        update["database_url"] = anchored_url(config.database_url, folder)
    return config.model_copy(update=update)


def _anchor(path: Path, folder: Path) -> Path:
    """``path`` with ``~`` expanded, taken from ``folder`` when it is relative."""
    path = path.expanduser()
    return path if path.is_absolute() else folder / path
