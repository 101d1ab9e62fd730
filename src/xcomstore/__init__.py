"""xcomstore: an Apache Airflow 3 XCom backend that keeps large values in object storage.

`xcomstore.XComStoreBackend` is the class to name in `[core] xcom_backend`. Importing this
package is cheap and has no side effects: the backend and Airflow load only when asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xcomstore.version import __version__

__all__ = ["XComStore", "XComStoreBackend", "__version__", "list", "open_store", "pull", "read"]

if TYPE_CHECKING:
    from xcomstore.airflow.backend import XComStoreBackend
    from xcomstore.airflow.pull import pull
    from xcomstore.client import list, open_store, read
    from xcomstore.core.store import XComStore


def __getattr__(name: str) -> Any:
    # Lazy: Airflow imports the backend in every component at start-up; keep that import light.
    if name == "XComStoreBackend":
        from xcomstore.airflow.backend import XComStoreBackend

        return XComStoreBackend
    if name == "XComStore":
        from xcomstore.core.store import XComStore

        return XComStore
    if name == "pull":  # in a running task
        from xcomstore.airflow.pull import pull

        return pull
    if name in ("read", "list", "open_store"):
        from xcomstore import client

        return getattr(client, name)
    raise AttributeError(f"module 'xcomstore' has no attribute {name!r}")
