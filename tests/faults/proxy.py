"""A TCP forwarder on 127.0.0.1 that can misbehave: stall every connection, or cut new ones.

Put in front of the S3 server, it turns a healthy server into a slow or flaky one without
touching the server: `stall` holds every byte in both directions (the client's connection stays
open and silent), `cut_next` closes the next connections as soon as they are accepted, and
`cut_after` drops the connections open once that many more bytes went to the server (new
connections are forwarded again afterwards: a transient cut).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class TcpProxy:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (host, target_port)
        self.stalled = False
        self.cut_next = 0  # how many of the next connections to close at once
        self.cut_after: int | None = None  # bytes to the server before the open connections drop
        self.accepted = 0
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server((host, 0))
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.target[0]}:{self.port}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.cut_next > 0:
                self.cut_next -= 1
                _close(client)
                continue
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            for source, sink, outgoing in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(source, sink, outgoing), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, outgoing: bool) -> None:
        try:
            while data := source.recv(65536):
                while self.stalled and not self._closed.is_set():
                    time.sleep(0.02)
                if outgoing and self.cut_after is not None:
                    self.cut_after -= len(data)
                    if self.cut_after < 0:
                        self.cut_after = None
                        self._drop_open_connections()
                        return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _close(source)
            _close(sink)

    def _drop_open_connections(self) -> None:
        sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _close(sock)

    def close(self) -> None:
        self._closed.set()
        _close(self._listener)
        self._drop_open_connections()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
