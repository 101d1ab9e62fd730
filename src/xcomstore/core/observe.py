"""What xcomstore reports as it works: one log line per offloaded value, and metric hooks.

The core calls an Observer; the Airflow backend plugs in one that also emits Airflow metrics.
"""

from __future__ import annotations

import logging

from xcomstore.core.reference import Reference
from xcomstore.identity import Origin
from xcomstore.sizes import human_bytes

log = logging.getLogger("xcomstore")


class Observer:
    """Receives events; this base reports them as log lines (one per offloaded value)."""

    def inline(self, origin: Origin, size: int) -> None:
        """A value stayed in the metadata DB."""

    def stored(self, origin: Origin, ref: Reference, seconds: float) -> None:
        log.info(
            "xcomstore: offloaded %s: %s, %s → %s %s, to %s in %.2fs",
            origin.key,
            ref.summary,
            human_bytes(ref.size),
            human_bytes(ref.stored_bytes),
            ref.compression,
            ref.uri,
            seconds,
        )

    def loaded(self, ref: Reference, seconds: float) -> None:
        log.info(
            "xcomstore: read %s (%s) from %s in %.2fs",
            ref.summary,
            human_bytes(ref.stored_bytes),
            ref.uri,
            seconds,
        )

    def failed(self, operation: str, error: BaseException) -> None:
        log.warning("xcomstore: %s failed: %s", operation, error)
