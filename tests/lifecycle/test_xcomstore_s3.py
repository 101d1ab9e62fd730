"""XComStoreContract on the S3 server (moto): two prefixes of a fresh bucket, reached by s3fs with
short timeouts through an Airflow-style `s3://<conn>@bucket/...` URL."""

from __future__ import annotations

from typing import Any

import pytest
from tests.contracts.projection_contract import ProjectionContract
from tests.contracts.xcomstore_contract import XComStoreContract
from tests.lifecycle.stores import make_store, origin
from tests.servers.s3 import S3Server

from xcomstore.core.store import FilesystemOpener


class OnS3:
    """The stores of a contract: two prefixes of a fresh bucket, through s3fs with short timeouts."""

    @pytest.fixture
    def urls(self, s3_server: S3Server, s3_bucket: str, s3_conn_id: str, s3_url: str) -> tuple[str, str]:
        return s3_url, s3_server.url(s3_conn_id, s3_bucket, "xcom-copy")

    @pytest.fixture
    def opener(self, s3_fast: FilesystemOpener) -> FilesystemOpener:
        return s3_fast


@pytest.mark.s3
class TestXComStoreOnS3(OnS3, XComStoreContract):
    pass


@pytest.mark.s3
class TestProjectionOnS3(OnS3, ProjectionContract):
    pass


@pytest.mark.s3
def test_a_pull_is_one_request(s3_url: str, s3_fast: FilesystemOpener) -> None:
    """A whole read is one GET: the object's size comes from its response, not from a HEAD
    before it (a fan-in of 1,000 values made 2,000 requests)."""
    calls: list[str] = []

    def counted(url: str) -> tuple[Any, str]:
        fs, root = s3_fast(url)
        call = fs._call_s3

        async def recorded(method: str, *args: Any, **kwargs: Any) -> Any:
            calls.append(method)
            return await call(method, *args, **kwargs)

        fs._call_s3 = recorded
        return fs, root

    stored = make_store([s3_url], s3_fast).push({"rows": list(range(20_000))}, origin())
    reader = make_store([s3_url], counted)
    assert reader.pull(stored) == {"rows": list(range(20_000))}
    assert calls == ["get_object"]
