"""A GCS JSON-API server (gcp-storage-emulator) on 127.0.0.1, used anonymously.

The emulator stores to a work folder, so `stop()` then `start()` (same port) keeps the data.

gcsfs >= 2026 defaults to its "zonal/HNS" layer, which asks the real Storage Control API over
gRPC about every bucket and hangs ~60 s against an emulator. gcsfs reads the switch
GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT once, at import, so this module sets it to "false" (unless
already set) and must be imported before gcsfs is; `check_installed` fails clearly otherwise.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from .handle import ServerHandle
from .process import (
    HOST,
    ServerProcess,
    require_modules,
    start_on_free_port,
)

ZB_HNS_SWITCH = "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"
os.environ.setdefault(ZB_HNS_SWITCH, "false")

PROJECT = "xcomstore-test"
SERVER_MODULES = ("gcp_storage_emulator", "gcsfs")
AIRFLOW_MODULES = ("airflow.providers.google.cloud.fs.gcs",)


class GcsfsConfigError(RuntimeError):
    """gcsfs was imported with its zonal/HNS layer on, which hangs against the emulator."""


def check_installed() -> None:
    """Raise ServerNotInstalledError if the emulator or gcsfs is missing, GcsfsConfigError if
    gcsfs was already imported with the zonal/HNS layer."""
    require_modules(SERVER_MODULES, "GCS server (gcp-storage-emulator, gcsfs)")
    gcsfs = sys.modules.get("gcsfs")
    if gcsfs is not None and gcsfs.GCSFileSystem.__name__ != "GCSFileSystem":
        raise GcsfsConfigError(
            f"gcsfs was imported with {ZB_HNS_SWITCH} on (now {os.environ.get(ZB_HNS_SWITCH)!r}); "
            f"its gRPC calls hang against the emulator. Set {ZB_HNS_SWITCH}=false in the "
            "environment, or import tests.servers before gcsfs."
        )


def check_airflow_installed() -> None:
    """Raise ServerNotInstalledError if Airflow's gs:// filesystem is missing."""
    require_modules(AIRFLOW_MODULES, "Airflow gs:// (apache-airflow-providers-google)")


@dataclass(frozen=True)
class GcsServer(ServerHandle):
    """Facts and helpers for a running gcp-storage-emulator."""

    project: str = PROJECT
    protocol: ClassVar[str] = "gs"
    conn_type: ClassVar[str] = "google_cloud_platform"

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def create_bucket(self, name: str) -> str:
        """Create a bucket through the JSON API (no client library needed)."""
        body = json.dumps({"name": name}).encode()
        request = urllib.request.Request(
            f"{self.endpoint_url}/storage/v1/b?project={self.project}",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10):
            return name

    def storage_options(self) -> dict[str, Any]:
        """Options for ``fsspec.filesystem("gs", **options)`` (gcsfs)."""
        return {"endpoint_url": self.endpoint_url, "token": "anon", "project": self.project}

    def airflow_conn_extra(self) -> dict[str, Any]:
        # Read by the Google provider's gs:// filesystem: anonymous credentials, gcs.endpoint.
        return {"is_anonymous": True, "project": self.project, "gcs.endpoint": self.endpoint_url}


def start_gcs(workdir: Path | None = None, start_timeout: float = 30.0) -> GcsServer:
    """Start the emulator on a free port and return its handle once it answers."""
    check_installed()
    data = workdir or Path(tempfile.mkdtemp(prefix="xcomstore-gcs-"))

    def make(port: int) -> ServerProcess:
        argv = [sys.executable, "-m", "gcp_storage_emulator", "start"]
        argv += ["--host", HOST, "--port", str(port), "--quiet"]
        return ServerProcess(
            name="GCS emulator",
            argv=argv,
            port=port,
            ready_url=f"http://{HOST}:{port}/storage/v1/b?project={PROJECT}",
            log_path=data / "gcs-emulator.log",
            env={"STORAGE_BASE": str(data)},  # on disk, so a restart keeps the data
            start_timeout=start_timeout,
        )

    return GcsServer(process=start_on_free_port(make))
