"""An S3 API server (moto) on 127.0.0.1.

Moto keeps everything in memory: `stop()` loses every bucket and object; `start()` comes back on
the same port and re-creates (empty) the buckets made through `create_bucket`.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .handle import ServerHandle
from .process import (
    HOST,
    ServerProcess,
    require_modules,
    start_on_free_port,
)

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
# us-east-1 needs no LocationConstraint, so bucket creation works from any client.
REGION = "us-east-1"
SERVER_MODULES = ("moto.server", "flask", "flask_cors", "boto3", "s3fs")
AIRFLOW_MODULES = ("airflow.providers.amazon.aws.fs.s3",)


def check_installed() -> None:
    """Raise ServerNotInstalledError if moto[server], boto3 or s3fs is missing."""
    require_modules(SERVER_MODULES, "S3 server (moto[server], s3fs)")


def check_airflow_installed() -> None:
    """Raise ServerNotInstalledError if Airflow's s3:// filesystem is missing."""
    require_modules(AIRFLOW_MODULES, "Airflow s3:// (apache-airflow-providers-amazon)")


@dataclass(frozen=True)
class S3Server(ServerHandle):
    """Facts and helpers for a running moto server."""

    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION
    _buckets: set[str] = field(default_factory=set, repr=False, compare=False)
    protocol: ClassVar[str] = "s3"
    conn_type: ClassVar[str] = "aws"

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def client(self) -> Any:
        """A boto3 S3 client for this server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        self._buckets.add(name)
        return name

    def storage_options(self) -> dict[str, Any]:
        """Options for ``fsspec.filesystem("s3", **options)`` (s3fs).

        No region here: s3fs's mkdir would send it as a LocationConstraint, which us-east-1
        rejects; requests to moto don't need one.
        """
        return {"endpoint_url": self.endpoint_url, "key": self.access_key, "secret": self.secret_key}

    def credentials(self) -> tuple[str | None, str | None]:
        return self.access_key, self.secret_key

    def airflow_conn_extra(self) -> dict[str, str]:
        return {"endpoint_url": self.endpoint_url, "region_name": self.region}

    def start(self) -> float:
        """Start again on the same port; re-create the known buckets (empty): moto keeps no data."""
        if self.process.running:
            return 0.0
        seconds = self.process.start()
        for name in sorted(self._buckets):
            self.client().create_bucket(Bucket=name)
        return seconds


def start_s3(workdir: Path | None = None, start_timeout: float = 30.0) -> S3Server:
    """Start moto on a free port and return its handle once it answers."""
    check_installed()
    logdir = workdir or Path(tempfile.mkdtemp(prefix="xcomstore-s3-"))

    def make(port: int) -> ServerProcess:
        return ServerProcess(
            name="moto S3 server",
            argv=[sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
            port=port,
            ready_url=f"http://{HOST}:{port}/moto-api/",
            log_path=logdir / "moto.log",
            start_timeout=start_timeout,
        )

    return S3Server(process=start_on_free_port(make))
