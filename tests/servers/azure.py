"""An Azure Blob server (Azurite) on 127.0.0.1, with the well-known development account.

Azurite keeps its data in a work folder, so `stop()` then `start()` (same port) keeps every
container and blob.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from .handle import ServerHandle
from .process import (
    HOST,
    REPO_ROOT,
    ServerNotInstalledError,
    ServerProcess,
    require_modules,
    start_on_free_port,
)

# Azurite's fixed development account (public, documented, not a secret).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
SERVER_MODULES = ("adlfs", "azure.storage.blob")
AIRFLOW_MODULES = ("airflow.providers.microsoft.azure.fs.adls",)
# Where scripts/install-servers puts Azurite; AZURITE_BLOB overrides, PATH is the last resort.
LOCAL_BINS = (
    REPO_ROOT / ".tmp" / "node" / "node_modules" / ".bin" / "azurite-blob",
    REPO_ROOT / "node_modules" / ".bin" / "azurite-blob",
)


def azurite_binary() -> Path | None:
    """The azurite-blob executable, or None when it is not installed."""
    candidates = [Path(p) for p in (os.environ.get("AZURITE_BLOB"),) if p]
    candidates += list(LOCAL_BINS)
    on_path = shutil.which("azurite-blob")
    candidates += [Path(on_path)] if on_path else []
    return next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


def check_installed() -> Path:
    """Return azurite-blob's path; raise ServerNotInstalledError if it, node or adlfs is missing."""
    binary = azurite_binary()
    if binary is None:
        raise ServerNotInstalledError("Azure server: azurite-blob (npm package azurite) not found")
    if shutil.which("node") is None:
        raise ServerNotInstalledError("Azure server: node (Node.js) not found on PATH")
    require_modules(SERVER_MODULES, "Azure server (adlfs, azure-storage-blob)")
    return binary


def check_airflow_installed() -> None:
    """Raise ServerNotInstalledError if Airflow's abfs:// filesystem is missing."""
    require_modules(AIRFLOW_MODULES, "Airflow abfs:// (apache-airflow-providers-microsoft-azure)")


@dataclass(frozen=True)
class AzureServer(ServerHandle):
    """Facts and helpers for a running Azurite blob service."""

    account_name: str = ACCOUNT_NAME
    account_key: str = ACCOUNT_KEY
    # Airflow's Azure provider registers abfs, abfss and adl (not wasb) for ObjectStoragePath.
    protocol: ClassVar[str] = "abfs"
    conn_type: ClassVar[str] = "wasb"

    @property
    def endpoint_url(self) -> str:
        """The blob endpoint (path-style: the account is the first path segment)."""
        return f"http://{HOST}:{self.port}/{self.account_name}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account_name};"
            f"AccountKey={self.account_key};BlobEndpoint={self.endpoint_url};"
        )

    def client(self) -> Any:
        """An azure.storage.blob BlobServiceClient for this server."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def create_bucket(self, name: str) -> str:
        """Create a container (Azure's bucket)."""
        self.client().create_container(name)
        return name

    create_container = create_bucket

    def storage_options(self) -> dict[str, Any]:
        """Options for ``fsspec.filesystem("abfs", **options)`` (adlfs)."""
        return {"connection_string": self.connection_string}

    def airflow_conn_extra(self) -> dict[str, str]:
        # The provider's abfs filesystem uses extra.connection_string before anything else.
        return {"connection_string": self.connection_string}

    def credentials(self) -> tuple[str | None, str | None]:
        return self.account_name, None


def start_azure(workdir: Path | None = None, start_timeout: float = 30.0) -> AzureServer:
    """Start Azurite's blob service on a free port and return its handle once it answers."""
    binary = check_installed()
    data = workdir or Path(tempfile.mkdtemp(prefix="xcomstore-azurite-"))

    def make(port: int) -> ServerProcess:
        argv = [str(binary), "--blobHost", HOST, "--blobPort", str(port), "--location", str(data)]
        argv += ["--skipApiVersionCheck", "--disableTelemetry", "--loose", "--silent"]
        return ServerProcess(
            name="Azurite blob server",
            argv=argv,
            port=port,
            ready_url=f"http://{HOST}:{port}/{ACCOUNT_NAME}?comp=list",
            log_path=data / "azurite.log",
            start_timeout=start_timeout,
        )

    return AzureServer(process=start_on_free_port(make))
