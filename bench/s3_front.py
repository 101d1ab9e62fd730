"""`python -m bench.s3_front PORT LATENCY_MS [--direct-gets]`: moto's S3 server behind a front that
answers as S3 does where moto_server does not, for the benches.

- **Connections kept alive.** moto's application is served by uvicorn (through a2wsgi; Airflow
  installs both) rather than moto_server's werkzeug, which closes the connection after every
  response: S3 keeps connections alive, and a client that must connect for each GET spends a
  fifth of its CPU doing so, which would be measured as the backend's.
- **Latency.** Each request is held LATENCY_MS before it is handled, as a remote store's first
  byte comes late (AWS's S3 performance guidelines speak of roughly 100-200 ms for small
  objects). The wait is an asyncio sleep, so it costs the machine no CPU: on a 2-core machine
  against a local moto, the server's and the client's CPU per request bound what concurrency can
  gain, where against a real store the waiting dominates. The benches say which they measured.
- **GETs read only what they ask for** (`--direct-gets`). moto copies the whole object into
  memory for every GET, and slices a range out of that copy: 2 columns of an 800 MB object cost
  it 800 MB per request, where S3 reads only the range. With `--direct-gets` the front answers a
  plain GET of an object, whole or one byte range, itself: from moto's own copy of the object
  (its spooled file), read at the offset in pieces as the body is sent, with the headers moto
  gives the object. Everything else (writes, lists, HEADs, versions, errors) goes to moto.
"""

from __future__ import annotations

import asyncio
import re
import sys
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Asgi = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]
# moto (WSGI, blocking) handles each request on one of these threads, after its wait: more than
# any max_concurrency the benches use.
_THREADS = 64
# "bytes=FIRST-LAST" or "bytes=FIRST-": the ranges a reader of xcomstore's objects asks for.
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
_PIECE = 8 << 20  # read and sent at a time
# Headers of a GET that only moto answers: conditions on the object, a customer's encryption key.
_MOTO_S = frozenset(
    {
        b"if-match",
        b"if-none-match",
        b"if-modified-since",
        b"if-unmodified-since",
        b"x-amz-server-side-encryption-customer-key",
    }
)


def delayed(app: Asgi, seconds: float) -> Asgi:
    """The ASGI application `app`, each HTTP request held `seconds` before it is handled."""

    async def handle(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await asyncio.sleep(seconds)
        await app(scope, receive, send)

    return handle


def direct_gets(app: Asgi) -> Asgi:
    """The ASGI application `app` (moto's), a plain GET of an object answered here."""

    async def handle(scope: Scope, receive: Any, send: Any) -> None:
        wanted = _wanted(scope) if scope["type"] == "http" else None
        if wanted is None:
            await app(scope, receive, send)
            return
        key, first, last, ranged = wanted
        # what moto answers a GET with: the object's metadata (its content type among them), then
        # its own headers (ETag, last-modified, encryption, version, ...)
        given = {**key.metadata, **key.response_dict}
        headers = {name.lower(): str(value) for name, value in given.items()}
        headers["content-length"] = str(last - first + 1)
        headers["accept-ranges"] = "bytes"
        if ranged:  # S3 gives no whole-object checksum with part of an object
            headers = {k: v for k, v in headers.items() if not k.startswith("x-amz-checksum-")}
            headers["content-range"] = f"bytes {first}-{last}/{key.size}"
        start = {"type": "http.response.start", "status": 206 if ranged else 200}
        await send({**start, "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})
        for offset in range(first, last + 1, _PIECE):
            piece = await asyncio.to_thread(_read, key, offset, min(_PIECE, last + 1 - offset))
            await send({"type": "http.response.body", "body": piece, "more_body": offset + _PIECE <= last})

    return handle


def _wanted(scope: Scope) -> tuple[Any, int, int, bool] | None:
    """(moto's key, first and last byte, whether a range was asked) for a plain path-style GET
    of an existing object, whole or one satisfiable byte range; None for anything else, which
    moto answers (its errors included)."""
    if scope["method"] != "GET" or scope.get("query_string"):
        return None
    bucket, _, name = urllib.parse.unquote(scope["path"]).lstrip("/").partition("/")
    headers = dict(scope["headers"])
    header = headers.get(b"range", b"").decode().strip()
    match = _RANGE.fullmatch(header)
    if not name or (header and match is None) or not _MOTO_S.isdisjoint(headers):
        return None
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    try:
        key = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_object(bucket, name)
    except Exception:  # no such bucket: moto's own error answer
        return None
    if key is None or key.size == 0:
        return None
    if match is None:
        return key, 0, key.size - 1, False
    first = int(match[1])
    last = min(int(match[2]) if match[2] else key.size - 1, key.size - 1)
    return (key, first, last, True) if first <= last else None


def _read(key: Any, offset: int, size: int) -> bytes:
    with key.lock:  # moto's own lock around its buffer's position
        key._value_buffer.seek(offset)
        data: bytes = key._value_buffer.read(size)
        return data


def main() -> None:
    import uvicorn
    from a2wsgi import WSGIMiddleware
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    port, latency_ms = int(sys.argv[1]), float(sys.argv[2])
    moto: Asgi = WSGIMiddleware(DomainDispatcherApplication(create_backend_app), workers=_THREADS)  # type: ignore[arg-type,assignment]
    app = direct_gets(moto) if "--direct-gets" in sys.argv[3:] else moto
    app = delayed(app, latency_ms / 1000) if latency_ms else app
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
