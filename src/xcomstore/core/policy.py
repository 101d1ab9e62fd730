"""What may be pushed: allowed types (by category or type-name pattern) and a size limit.

A rejected push raises RejectedValueError before anything is written, naming the key, the type
or size, and the setting; a value that outgrows the limit while streaming aborts its write.
"""

from __future__ import annotations

import fnmatch
from typing import Final

from xcomstore.core.settings import Settings
from xcomstore.errors import RejectedValueError
from xcomstore.identity import Origin
from xcomstore.sizes import human_bytes

#: Codec name → the category users allow in `allowed_types`.
CATEGORIES: Final = {"arrow": "table", "numpy": "array", "bytes": "bytes", "json": "json"}


def check_type(settings: Settings, origin: Origin, codec: str, type_name: str) -> None:
    allowed = settings.allowed_types
    category = CATEGORIES.get(codec, codec)
    if category in allowed or any(fnmatch.fnmatchcase(type_name, p) for p in allowed):
        return
    raise RejectedValueError(
        f"XCom {origin.key!r} of task {origin.task_id!r}: a {type_name} ({category}) may not be pushed: "
        f"[xcomstore] allowed_types = {', '.join(allowed)} (AIRFLOW__XCOMSTORE__ALLOWED_TYPES). Nothing was stored."
    )


def check_size(settings: Settings, origin: Origin, size: int) -> None:
    if settings.max_size is not None and size > settings.max_size:
        raise RejectedValueError(
            f"XCom {origin.key!r} of task {origin.task_id!r}: the value's {human_bytes(size)} exceed "
            f"[xcomstore] max_size = {human_bytes(settings.max_size)} (AIRFLOW__XCOMSTORE__MAX_SIZE). "
            "Nothing was stored."
        )
