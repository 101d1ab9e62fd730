"""streamed: object stores that can stream a whole object through one request are read that way."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import fsspec
import pytest
from fsspec.implementations.dirfs import DirFileSystem

from xcomstore.storage.streamed import open_streamed, size_of

BODY = b"01234" + b"56789" * 1000


class _Object(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        self._head()

    def do_GET(self) -> None:
        self._head()
        self.wfile.write(BODY)

    def _head(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Object)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_local_files_are_opened_the_ordinary_way(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x")
    local = fsspec.filesystem("file")
    assert open_streamed(local, str(tmp_path / "a")) is None
    assert open_streamed(DirFileSystem(str(tmp_path), local), "a") is None  # wraps a sync fs


def test_http_objects_stream_front_to_back(http_server_url: str) -> None:
    fs = fsspec.filesystem("http")
    stream = open_streamed(fs, f"{http_server_url}/object")
    assert stream is not None
    with stream:
        assert not stream.seekable()
        assert stream.read(5) == b"01234"
        assert stream.read() == BODY[5:]


def test_the_size_is_learnt_from_the_first_piece_which_is_read_first(http_server_url: str) -> None:
    fs = fsspec.filesystem("http")
    stream = open_streamed(fs, f"{http_server_url}/object")
    assert stream is not None
    with stream:
        known = size_of(stream)
        assert known in (None, len(BODY))  # as the filesystem's streamed file says
        assert stream.read(3) == b"012"
        assert stream.read(4) == b"3456"
        assert stream.read() == BODY[7:]
        assert stream.read() == b""
