"""What may be pushed: which XComs (origin), allowed types (by category or type-name pattern)
and a size limit.

A rejected push raises RejectedValueError before anything is written, naming the key, the type
or size, and the setting; a value that outgrows the limit while streaming aborts its write.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Final

from xcomstore.core.settings import Settings
from xcomstore.errors import RejectedValueError
from xcomstore.identity import Origin
from xcomstore.sizes import human_bytes

#: Codec name → the category users allow in `allowed_types`.
CATEGORIES: Final = {"arrow": "table", "numpy": "array", "bytes": "bytes", "json": "json"}

# Airflow 3.3's own limits: dag and task ids match its KEY_REGEX (sdk/definitions/_internal/
# node.py), ids fit its ID_LEN columns and keys its String(512) xcom.key column.
_AIRFLOW_ID: Final = re.compile(r"[\w.-]+")
_ID_LENGTH: Final = 250
_KEY_LENGTH: Final = 512
# C0 controls, DEL and C1 controls: httpx refuses the first two in a URL, all are invisible in
# logs and the UI.
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f]")
_PERCENT_ESCAPE: Final = re.compile("%[0-9A-Fa-f]{2}")


def check_origin(origin: Origin) -> None:
    """Refuse an XCom that Airflow would then refuse, or read back under another name.

    The task SDK puts the key into the execution API's URL as it is, and the API server routes
    it as `{key:path}`: "." and ".." segments are normalised away (another key, or 404),
    "?" and "#" end the path, a %XX escape is decoded, and a key ending in "/item/<n>" or
    "/slice" is taken for those routes. None of these reads back the XCom that was pushed.
    """
    problem = _origin_problem(origin)
    if problem is not None:
        raise RejectedValueError(f"XCom {_shown(origin)}: {problem}. Nothing was stored.")


def _origin_problem(origin: Origin) -> str | None:
    if type(origin.map_index) is not int or origin.map_index < -1:
        return f"map_index {origin.map_index!r} is not -1 (unmapped) or a task's index (0 and up)"
    fields = {"dag_id": origin.dag_id, "run_id": origin.run_id, "task_id": origin.task_id, "key": origin.key}
    for name, text in fields.items():
        problem = _text_problem(name, text)
        if problem is not None:
            return problem
    for name in ("dag_id", "task_id"):
        if not _AIRFLOW_ID.fullmatch(fields[name]):
            return f"{name} may hold only letters, digits, '_', '.' and '-' (Airflow's rule for ids)"
    return _key_problem(origin.key)


def _text_problem(name: str, text: object) -> str | None:
    if not isinstance(text, str) or not text:
        return f"{name} must be a non-empty string"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return f"{name} holds a lone surrogate, which is not text UTF-8 can encode"
    if _CONTROL.search(text):
        return f"{name} holds a control character"
    limit = _KEY_LENGTH if name == "key" else _ID_LENGTH
    if len(text) > limit:
        return f"{name} is {len(text)} characters long, Airflow stores at most {limit}"
    return None


def _key_problem(key: str) -> str | None:
    segments = key.split("/")
    if "." in segments or ".." in segments:
        return "the key has a '.' or '..' segment, which the execution API's URL drops"
    if "?" in key or "#" in key:
        return "the key holds '?' or '#', where the execution API's URL would end"
    if _PERCENT_ESCAPE.search(key):
        return "the key holds a %XX escape, which the execution API decodes into another key"
    if len(segments) > 1 and (segments[-2] == "item" or segments[-1] == "slice"):
        return "the key ends like the execution API's /item/<n> or /slice routes, which would answer instead"
    return None


def _shown(origin: Origin) -> str:
    # repr() escapes control characters and lone surrogates: the message itself stays printable.
    return f"{origin.key!r} of task {origin.task_id!r}"


def check_type(settings: Settings, origin: Origin, codec: str, type_name: str) -> None:
    allowed = settings.allowed_types
    category = CATEGORIES.get(codec, codec)
    if category in allowed or any(fnmatch.fnmatchcase(type_name, p) for p in allowed):
        return
    raise RejectedValueError(
        f"a {type_name} ({category}) may not be pushed: [xcomstore] allowed_types = {', '.join(allowed)} "
        "(AIRFLOW__XCOMSTORE__ALLOWED_TYPES). Nothing was stored.",
        xcom=origin,
    )


def check_size(settings: Settings, origin: Origin, size: int) -> None:
    if settings.max_size is not None and size > settings.max_size:
        raise RejectedValueError(
            f"the value's {human_bytes(size)} exceed [xcomstore] max_size = {human_bytes(settings.max_size)} "
            "(AIRFLOW__XCOMSTORE__MAX_SIZE). Nothing was stored.",
            xcom=origin,
        )
