"""Rendering: Jinja2 templates with autoescaping, and the JSON shapes shared by pages and API.

Everything that comes from the store (names, summaries, cells, JSON text, error messages) is
escaped by Jinja2's autoescape; nothing is marked safe.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from xcomstore.airflow.plugin.source import Entry, RunSummary
from xcomstore.format.header import Header
from xcomstore.ops import preview
from xcomstore.ops.export import formats_for
from xcomstore.ops.preview import compression
from xcomstore.sizes import human_bytes

CELL_CHARS = 200  # longer table cells are cut in the page (the JSON API has them whole)
_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"], default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = _TEMPLATES.get_template(template).render(
        url=lambda path, **query: url(request, path, **query), dag_path=dag_path, **context
    )
    return HTMLResponse(html, status_code=status_code)


def prefix(request: Request) -> str:
    """Where this app is mounted (the API server's root path included), without a final '/'."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def url(request: Request, path: str, **query: Any) -> str:
    """A link inside this app; query parameters whose value is None are left out."""
    params = {k: v for k, v in query.items() if v is not None}
    return prefix(request) + path + (f"?{urlencode(params)}" if params else "")


def dag_path(dag_id: str, page: str = "") -> str:
    return f"/dags/{quote(dag_id, safe='')}{page}"


def map_index(text: str | None) -> int | None:
    """A map index from a query: the Airflow UI may leave its `{MAP_INDEX}` placeholder in."""
    if text is None or not re.fullmatch(r"-?\d{1,9}", text.strip()):
        return None
    return int(text)


# -- JSON shapes -----------------------------------------------------------------------------
def header_json(header: Header) -> dict[str, Any]:
    doc = preview.header_json(header)
    doc["formats"] = list(formats_for(header))
    return doc


def entry_json(entry: Entry) -> dict[str, Any]:
    origin, header = entry.origin, entry.header
    return {
        **origin.to_json(),
        "type": header.type_name if header else None,
        "summary": header.summary if header else None,
        "codec": header.codec if header else None,
        "compression": compression(header) if header else None,
        "stored_bytes": entry.stored_bytes,
        "modified": when(entry.modified),
        "created": header.created if header else None,
        "expires": header.expires if header else None,
        "uri": entry.uri,
        "meta": dict(header.meta) if header else {},
        "error": entry.error,
    }


def run_json(run: RunSummary) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "objects": run.objects,
        "stored_bytes": run.stored_bytes,
        "modified": when(run.modified),
    }


# -- formatting ------------------------------------------------------------------------------
def when(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


def human(size: float | None) -> str:
    return "" if size is None else human_bytes(size)


def short_time(text: str | None, utc_suffix: bool = True) -> str:
    """'2026-11-24T13:25:22.123+00:00' as '2026-11-24 13:25:22 UTC'."""
    if not text:
        return ""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if moment.tzinfo and utc_suffix else "")


def cell(value: Any) -> str:
    text = "null" if value is None else json.dumps(value) if isinstance(value, bool) else str(value)
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def map_label(index: int | None) -> str:
    return "" if index is None or index < 0 else f"[{index}]"


def numeric_type(arrow_type: str) -> bool:
    """Whether an Arrow type name is a number's (its cells are aligned right)."""
    return arrow_type.startswith(("int", "uint", "float", "double", "halffloat", "decimal"))


_TEMPLATES.filters.update(human=human, short_time=short_time, cell=cell, map_label=map_label)
_TEMPLATES.tests.update(numeric_type=numeric_type)
