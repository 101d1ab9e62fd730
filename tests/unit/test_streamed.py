"""streamed: object stores that can stream a whole object through one request are read that way."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO

import fsspec
import pytest
from fsspec.implementations.dirfs import DirFileSystem

from xcomstore.storage.streamed import open_streamed, size_of

BODY = b"01234" + b"56789" * 1000
BIG = bytes(range(256)) * 12288  # 3 MiB: the first piece the reader takes and 3 buffers more


class _Object(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        self._head()

    def do_GET(self) -> None:
        self.wfile.write(self._head())

    def _head(self) -> bytes:
        body = BIG if self.path == "/big" else BODY
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return body

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


def _opened_counting(url: str) -> tuple[BinaryIO, list[Any]]:
    """`url` opened streamed (one call to fsspec's event loop: the open and the first piece),
    and the calls its reader makes to the loop from then on."""
    stream = open_streamed(fsspec.filesystem("http"), url)
    assert stream is not None
    raw: Any = stream.raw  # type: ignore[attr-defined]
    calls: list[Any] = []
    sync = raw._sync

    def counted(loop: object, func: object, *args: object) -> object:
        calls.append(func)
        return sync(loop, func, *args)

    raw._sync = counted
    return stream, calls


def test_a_body_read_to_its_end_takes_no_more_calls_to_the_event_loop(http_server_url: str) -> None:
    stream, calls = _opened_counting(f"{http_server_url}/object")
    if size_of(stream) is None:
        pytest.skip("this fsspec's HTTP file does not say the object's size")
    with stream:
        assert stream.read() == BODY  # the first piece holds it all: the end is known by size
        assert stream.read() == b""
    assert calls == []


def test_a_large_body_read_to_its_end_takes_a_call_per_buffer(http_server_url: str) -> None:
    stream, calls = _opened_counting(f"{http_server_url}/big")
    with stream:
        assert stream.read(len(BIG)) == BIG
        assert stream.read() == b""  # known to be at the end: no call
    assert [call.__name__ for call in calls] == ["_fill"] * len(calls)
    assert len(calls) <= 3  # a buffer (1 MiB) a call at most, and no close
    # marked closed: its finaliser has nothing left to do
    assert stream.raw._file.closed  # type: ignore[attr-defined]


def test_a_body_given_up_half_way_is_closed_on_the_event_loop(http_server_url: str) -> None:
    stream, calls = _opened_counting(f"{http_server_url}/big")
    with stream:
        assert stream.read(70_000) == BIG[:70_000]  # the first piece, and a buffer more
    assert len(calls) == 2  # the buffer, and the close, which lets the HTTP body go
    # fsspec's HTTP file let its body go
    assert stream.raw._file.r is None  # type: ignore[attr-defined]
