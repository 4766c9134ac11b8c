"""Architecture contracts: each third-party layer is imported from one place only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "calibration", "db", "station")

# library -> the package prefixes (or single modules) allowed to import it
CONTRACTS: dict[str, tuple[str, ...]] = {
    "PySide6": ("station",),
    "ultralytics": ("models.detector",),
    "sqlalchemy": ("db",),
    "alembic": ("db",),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _modules() -> list[tuple[str, Path]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            found.append((".".join(rel.parts), path))
    return found


@pytest.mark.parametrize("library", sorted(CONTRACTS))
def test_library_imported_only_where_allowed(library: str) -> None:
    allowed = CONTRACTS[library]
    offenders = [
        name
        for name, path in _modules()
        if library in _imports(path) and not any(name == a or name.startswith(a + ".") for a in allowed)
    ]
    assert offenders == [], f"{library} may only be imported in {allowed}, found in {offenders}"


def test_contract_checker_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("import PySide6.QtCore\nfrom sqlalchemy import select\nfrom . import x\n")
    assert _imports(sample) == {"PySide6", "sqlalchemy"}


def test_building_the_cli_parser_imports_no_heavy_library() -> None:
    """``cupcheck --help`` and argument errors must answer at once: command modules import models lazily."""
    import subprocess
    import sys

    code = (
        "import sys, station.cli\n"
        "station.cli.build_parser()\n"
        "print(','.join(sorted(m for m in ('torch', 'ultralytics', 'timm', 'lightgbm', 'faiss', 'PySide6',"
        " 'sqlalchemy', 'cv2') if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "", f"building the parser imported: {out.stdout.strip()}"
