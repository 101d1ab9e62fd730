"""The S3 server stopped, stalled or cutting connections, during pushes and pulls.

Short timeouts everywhere (one xcomstore retry, 1-2 s botocore timeouts, one s3fs attempt), so a
failure must arrive within seconds: the tests bound the time instead of waiting for a hang.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import botocore.exceptions
import pytest
from tests.faults.proxy import TcpProxy
from tests.lifecycle.stores import RawObjects, make_store, origin, s3_opener
from tests.servers.s3 import S3Server

from xcomstore.core.store import FilesystemOpener, XComStore
from xcomstore.errors import StoreUnavailableError, XComStoreError

pytestmark = pytest.mark.s3

VALUE = {"rows": list(range(2000))}
DEADLINE = 20.0  # seconds: retries=1, retry_timeout=10, botocore timeouts of 1-2 s


@pytest.fixture
def proxy(s3_server: S3Server) -> Iterator[TcpProxy]:
    forwarder = TcpProxy(s3_server.port)
    yield forwarder
    forwarder.close()


@pytest.fixture
def via_proxy(s3_server: S3Server, proxy: TcpProxy) -> FilesystemOpener:
    return s3_opener({**s3_server.storage_options(), "endpoint_url": proxy.endpoint_url}, read_timeout=1)


def assert_names_xcom(error: BaseException, stored_uri: str) -> None:
    message = str(error)
    assert str(origin()) in message, f"the error does not name the XCom: {message}"
    assert stored_uri in message, f"the error does not name the URI: {message}"


def test_push_while_s3_is_stopped(
    s3_url: str, s3_fast: FilesystemOpener, s3_outage: S3Server, raw: RawObjects
) -> None:
    store = make_store([s3_url], s3_fast)
    s3_outage.stop()
    began = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="after 2 attempts") as info:
        store.push(VALUE, origin())
    assert time.monotonic() - began < DEADLINE
    assert_names_xcom(info.value, f"{s3_url}/")
    s3_outage.start()
    assert raw.files(s3_url) == []


def test_pull_while_s3_is_stopped(s3_url: str, s3_fast: FilesystemOpener, s3_outage: S3Server) -> None:
    store = make_store([s3_url], s3_fast)
    stored = store.push(VALUE, origin())
    s3_outage.stop()
    with pytest.raises(StoreUnavailableError) as info:
        store.pull(stored)
    assert_names_xcom(info.value, stored["uri"])


def test_stalled_connection_on_pull_ends_in_a_clear_error(
    s3_url: str, s3_fast: FilesystemOpener, via_proxy: FilesystemOpener, proxy: TcpProxy
) -> None:
    stored = make_store([s3_url], s3_fast).push(VALUE, origin())
    store = make_store([s3_url], via_proxy, retry_timeout="8")
    proxy.stalled = True
    began = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="timeout") as info:
        store.pull(stored)
    assert time.monotonic() - began < DEADLINE
    assert_names_xcom(info.value, stored["uri"])
    proxy.stalled = False
    assert make_store([s3_url], via_proxy).pull(stored) == VALUE


def push_in_thread(store: XComStore) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def push() -> None:
        try:
            store.push(VALUE, origin())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=push, daemon=True)
    thread.start()
    return thread, errors


def test_stalled_connection_on_push_ends_in_a_clear_error(
    s3_url: str, via_proxy: FilesystemOpener, proxy: TcpProxy, raw: RawObjects
) -> None:
    store = make_store([s3_url], via_proxy, retry_timeout="3", write_timeout="2")
    proxy.stalled = True
    thread, errors = push_in_thread(store)
    thread.join(timeout=8)
    hanging = thread.is_alive()
    proxy.close()  # releases a hanging push
    thread.join(timeout=10)
    assert not hanging, (
        "the push was still hanging 8 s after it began (write_timeout = 2 s, retry_timeout = 3 s)"
    )
    assert len(errors) == 1, errors
    assert isinstance(errors[0], StoreUnavailableError), errors
    assert raw.files(s3_url) == []


def test_connections_cut_once_are_survived(s3_url: str, via_proxy: FilesystemOpener, proxy: TcpProxy) -> None:
    """README: transient errors such as connection resets are retried."""
    store = make_store([s3_url], via_proxy)
    proxy.cut_next = 1
    stored = store.push(VALUE, origin())
    proxy.cut_next = 1
    assert make_store([s3_url], via_proxy).pull(stored) == VALUE
    assert proxy.cut_next == 0
    assert proxy.accepted >= 4


def test_connection_cut_during_a_multipart_upload_leaves_no_upload_open(
    s3_server: S3Server, s3_url: str, proxy: TcpProxy, raw: RawObjects
) -> None:
    """A push whose connection drops after the first 5 MiB part: no partial object, and the
    multipart upload is aborted (or, if a retry completed the push, the object verifies)."""
    opener = s3_opener({**s3_server.storage_options(), "endpoint_url": proxy.endpoint_url}, 5 << 20)
    store = make_store([s3_url], opener, compression="none")
    payload = bytes(range(256)) * (48 << 12)  # 12 MiB: parts of 5 + 5 + 2 MiB
    proxy.cut_after = 7 << 20  # inside the second part
    try:
        stored = store.push(payload, origin())
    except (XComStoreError, botocore.exceptions.BotoCoreError, OSError):
        assert raw.files(s3_url) == [], "a failed push left an object"
    else:
        assert store.verify(stored["uri"]).origin == origin()
    assert proxy.cut_after is None, "the connection was never cut"
    assert raw.uploads_in_progress(s3_url) == [], "a multipart upload was left open"
