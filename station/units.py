"""How the command line writes quantities people read at a glance."""

from __future__ import annotations


def size_text(n_bytes: int | float) -> str:
    """A file size as a person reads it: ``"512 B"``, ``"46 kB"``, ``"1.1 MB"``, ``"3.2 GB"`` (powers of 1000, as
    ``df -H`` and file managers write them)."""
    n = float(n_bytes)
    if n < 1e3:
        return f"{n:.0f} B"
    if n < 1e5:
        return f"{n / 1e3:.0f} kB" if n >= 1e4 else f"{n / 1e3:.1f} kB"
    if n < 1e9:
        return f"{n / 1e6:.1f} MB" if n < 1e8 else f"{n / 1e6:.0f} MB"
    return f"{n / 1e9:.1f} GB"
