"""XComStoreContract on the S3 server (moto): two prefixes of a fresh bucket, reached by s3fs with
short timeouts through an Airflow-style `s3://<conn>@bucket/...` URL."""

from __future__ import annotations

import pytest
from tests.contracts.projection_contract import ProjectionContract
from tests.contracts.xcomstore_contract import XComStoreContract
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
