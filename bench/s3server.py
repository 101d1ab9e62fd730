"""A throw-away S3 API server (moto_server on 127.0.0.1, a free port) for the --s3 variant."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CONN_ID = "bench_s3"
REGION = "us-east-1"
_KEY = "testing"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto_server did not listen on port {port} within {timeout} s")


def _command(port: int, latency_ms: float, direct_gets: bool) -> list[str]:
    """moto's own server, or bench/s3_front.py's front of the same application if it is to be
    slow or to answer GETs as S3 does."""
    if latency_ms or direct_gets:
        flags = ["--direct-gets"] if direct_gets else []
        return [sys.executable, "-m", "bench.s3_front", str(port), str(latency_ms), *flags]
    return [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)]


def add_moto_gets(parser: argparse.ArgumentParser) -> None:
    """The benches' `--moto-gets`: MotoServer's direct_gets off."""
    parser.add_argument(
        "--moto-gets",
        action="store_true",
        help="with S3: moto's own GETs, each copying the whole object (default: bench/s3_front.py's, "
        "reading only the bytes asked for)",
    )


class MotoServer:
    """Started by the bench, stopped by the bench; one bucket per case."""

    def __init__(self, log_path: Path, latency_ms: float = 0, *, direct_gets: bool = False) -> None:
        """`latency_ms`: each request answered that late, as a remote store's; `direct_gets`: a
        GET reads only the bytes it asks for, as S3's do (both bench/s3_front.py)."""
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log = log_path.open("wb")
        self._process = subprocess.Popen(
            _command(self.port, latency_ms, direct_gets),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        _wait_for_port(self.port, self._process, timeout=30)
        self._fs: Any = None

    @property
    def pid(self) -> int:
        return self._process.pid

    def env(self, case_dir: Path) -> dict[str, str]:
        """Dummy credentials, the region, and the Airflow connection named in s3://bench_s3@…"""
        connection = {
            "conn_type": "aws",
            "login": _KEY,
            "password": _KEY,
            "extra": {"endpoint_url": self.endpoint, "region_name": REGION},
        }
        return {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": _KEY,
            "AWS_SECRET_ACCESS_KEY": _KEY,
            "AWS_CONFIG_FILE": str(case_dir / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(case_dir / "no-aws-credentials"),
            f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(connection),
            "BENCH_S3_ENDPOINT": self.endpoint,
        }

    @property
    def fs(self) -> Any:
        if self._fs is None:
            import s3fs

            self._fs = s3fs.S3FileSystem(
                endpoint_url=self.endpoint, key=_KEY, secret=_KEY, skip_instance_cache=True
            )
        return self._fs

    def make_bucket(self, bucket: str) -> str:
        """Create the bucket; return the store URL for the backends."""
        self.fs.mkdir(bucket)
        return f"s3://{CONN_ID}@{bucket}/xcom"

    def bucket_bytes(self, bucket: str) -> int:
        self.fs.invalidate_cache()
        return bucket_bytes(self.fs, bucket)

    def drop_bucket(self, bucket: str) -> None:
        self.fs.invalidate_cache()
        self.fs.rm(bucket, recursive=True)

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log.close()


def bucket_bytes(fs: Any, bucket: str) -> int:
    """Bytes of all objects in `bucket`."""
    return int(sum(info["size"] for info in fs.find(bucket, detail=True).values()))
