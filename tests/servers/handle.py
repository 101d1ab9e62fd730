"""What every running test server offers, whatever its kind: its process and port, store URLs,
and an Airflow connection to it. Each kind adds its endpoint, buckets and client options."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .process import ServerProcess, airflow_conn_json, airflow_conn_uri, conn_env_var


@dataclass(frozen=True)
class ServerHandle:
    process: ServerProcess
    protocol: ClassVar[str]  # of its ObjectStoragePath URLs
    conn_type: ClassVar[str]  # of the Airflow connection that reaches it

    @property
    def port(self) -> int:
        return self.process.port

    def credentials(self) -> tuple[str | None, str | None]:
        """The connection's login and password; none by default."""
        return None, None

    def airflow_conn_extra(self) -> Mapping[str, Any]:
        raise NotImplementedError

    def airflow_conn_json(self) -> str:
        """The connection in the JSON form of ``AIRFLOW_CONN_<ID>``."""
        login, password = self.credentials()
        return airflow_conn_json(
            self.conn_type, login=login, password=password, extra=self.airflow_conn_extra()
        )

    def airflow_conn_uri(self) -> str:
        login, password = self.credentials()
        extra = self.airflow_conn_extra()
        return airflow_conn_uri(self.conn_type, login=login or "", password=password or "", extra=extra)

    def airflow_env(self, conn_id: str) -> dict[str, str]:
        return {conn_env_var(conn_id): self.airflow_conn_json()}

    def url(self, conn_id: str, bucket: str, key: str = "") -> str:
        """The ObjectStoragePath URL of `key` in `bucket` (an Azure container) through `conn_id`."""
        return f"{self.protocol}://{conn_id}@{bucket}/{key}"

    def stop(self) -> None:
        self.process.stop()

    def start(self) -> float:
        """Start again on the same port, with the same data."""
        return self.process.start()
