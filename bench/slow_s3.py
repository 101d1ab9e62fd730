"""`python -m bench.slow_s3 PORT LATENCY_MS`: moto's S3 server, each request answered after
LATENCY_MS milliseconds, as a remote store's first byte comes late (AWS's S3 performance
guidelines speak of roughly 100-200 ms for small objects).

moto's application is served by uvicorn (through a2wsgi; Airflow installs both) rather than
moto_server's werkzeug, which closes the connection after every response: S3 keeps connections
alive, and a client that must connect for each GET spends a fifth of its CPU doing so, which
would be measured as the backend's. The wait is an asyncio sleep before the request reaches
moto, so it costs the machine no CPU: on a 2-core machine against a local moto, the server's
and the client's CPU per request bound what concurrency can gain, where against a real store
the waiting dominates. The bench says which of the two it measured.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Asgi = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]
# moto (WSGI, blocking) handles each request on one of these threads, after its wait: more than
# any max_concurrency the benches use.
_THREADS = 64


def delayed(app: Asgi, seconds: float) -> Asgi:
    """The ASGI application `app`, each HTTP request held `seconds` before it is handled."""

    async def handle(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await asyncio.sleep(seconds)
        await app(scope, receive, send)

    return handle


def main() -> None:
    import uvicorn
    from a2wsgi import WSGIMiddleware
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    port, latency_ms = int(sys.argv[1]), float(sys.argv[2])
    moto = WSGIMiddleware(DomainDispatcherApplication(create_backend_app), workers=_THREADS)  # type: ignore[arg-type]
    app = delayed(moto, latency_ms / 1000)  # type: ignore[arg-type]
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
