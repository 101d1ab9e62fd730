"""`python -m bench.slow_s3 PORT LATENCY_MS`: moto's S3 server, each request answered after
LATENCY_MS milliseconds, as a remote store's first byte comes late (AWS's S3 performance
guidelines speak of roughly 100-200 ms for small objects).

The wait is a sleep in the request's own thread (moto serves each request on a thread of its
own), so it costs the machine no CPU: on a 2-core machine against a local moto, the server's
and the client's CPU per request bound what concurrency can gain, where against a real store
the waiting dominates. The bench says which of the two it measured.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from typing import Any


def delayed(app: Callable[..., Iterable[bytes]], seconds: float) -> Callable[..., Iterable[bytes]]:
    """The WSGI application `app`, each request held `seconds` before it is handled."""

    def handle(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        time.sleep(seconds)
        return app(environ, start_response)

    return handle


def main() -> None:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    port, latency_ms = int(sys.argv[1]), float(sys.argv[2])
    app = delayed(DomainDispatcherApplication(create_backend_app), latency_ms / 1000)
    run_simple("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
