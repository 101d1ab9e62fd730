"""Byte counts for people: one formatter for the CLI, the UI, logs and error messages."""

from __future__ import annotations


def human_bytes(size: float) -> str:
    """`1234567` -> `1.2 MB` (decimal units, as storage consoles and `du -h --si` show them)."""
    if size < 1000:
        return f"{size:.0f} B"
    for unit in ("KB", "MB", "GB"):
        size /= 1000
        if size < 1000:
            return f"{size:.1f} {unit}"
    return f"{size / 1000:.1f} TB"
