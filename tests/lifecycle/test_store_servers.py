"""StoreContract on the three object-store servers: S3 (moto), Azure Blob (Azurite), GCS (the
emulator), each through its fsspec filesystem with no Airflow involved.

Object stores publish an upload when it completes (no temporary file, no rename), have no
folders of their own, and tell each object's last-modified time.
"""

from __future__ import annotations

from typing import Any

import fsspec
import pytest
from tests.contracts.store_contract import StoreContract
from tests.servers.azure import AzureServer
from tests.servers.gcs import GcsServer
from tests.servers.s3 import S3Server

from xcomstore.storage.location import Location
from xcomstore.storage.retry import RetryPolicy


def server_location(server: Any, bucket: str, retry: RetryPolicy) -> Location:
    """An empty Location at <bucket>/xcom on `server`, on a filesystem of its own (fsspec's
    instance cache must not carry a client across tests)."""
    fs = fsspec.filesystem(server.protocol, skip_instance_cache=True, **server.storage_options())
    return Location(f"{server.protocol}://{bucket}/xcom", fs, f"{bucket}/xcom", retry)


class ObjectStoreContract(StoreContract):
    renames_atomically = False
    has_directories = False
    reports_mtime = True


@pytest.mark.s3
class TestS3Store(ObjectStoreContract):
    """Through s3fs."""

    @pytest.fixture
    def location(self, s3_server: S3Server, s3_bucket: str, retry: RetryPolicy) -> Location:
        return server_location(s3_server, s3_bucket, retry)


@pytest.mark.azure
class TestAzureStore(ObjectStoreContract):
    """Through adlfs (abfs://), on a storage account without a hierarchical namespace."""

    @pytest.fixture
    def location(self, azure_server: AzureServer, azure_container: str, retry: RetryPolicy) -> Location:
        return server_location(azure_server, azure_container, retry)


@pytest.mark.gcs
class TestGcsStore(ObjectStoreContract):
    """Through gcsfs (gs://)."""

    @pytest.fixture
    def location(self, gcs_server: GcsServer, gcs_bucket: str, retry: RetryPolicy) -> Location:
        return server_location(gcs_server, gcs_bucket, retry)
