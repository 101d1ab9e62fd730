"""XComs that common-io's object-storage backend wrote: read, purged and migrated from here.

After `[core] xcom_backend` moves from common-io to xcomstore, the rows common-io wrote still
hold the URL of their object. While `[xcomstore] common_io_path` (or, when empty, common-io's
own `[common.io] xcom_objectstorage_path`) names where common-io wrote, such a row is read as
the value common-io stored: the object's JSON, decompressed as its suffix says, decoded with
Airflow's XComDecoder, as common-io did. Which strings qualify is core.common_io's business.
"""

from __future__ import annotations

import json
from typing import Any

from xcomstore.airflow.environment import airflow_available, airflow_filesystem
from xcomstore.core import common_io
from xcomstore.core.common_io import CommonIoObject
from xcomstore.core.settings import Settings
from xcomstore.core.store import FilesystemOpener
from xcomstore.errors import CorruptObjectError, StoreAccessError, XComStoreError
from xcomstore.identity import Origin, Wanted
from xcomstore.storage.location import Location
from xcomstore.storage.retry import RetryPolicy, is_store_error

SECTION = "common.io"
OPTION = "xcom_objectstorage_path"


class CommonIoObjects:
    """The objects under one common-io base URL."""

    def __init__(self, base: str, settings: Settings, opener: FilesystemOpener) -> None:
        self.base = base.rstrip("/")
        self._settings = settings
        self._opener = opener
        self._location: Location | None = None

    @classmethod
    def configured(cls, settings: Settings, opener: FilesystemOpener) -> CommonIoObjects | None:
        """Those of the configured base, or None when no common-io path is set anywhere."""
        base = settings.common_io_path or airflow_common_io_path()
        return cls(base, settings, opener) if base else None

    @property
    def location(self) -> Location:
        """The base, opened on first use: most rows are no common-io path at all."""
        if self._location is None:
            retry = RetryPolicy(self._settings.retries, self._settings.retry_timeout)
            fs, root = self._opener(self.base)
            self._location = Location(self.base, fs, root, retry)
        return self._location

    def find(self, stored: Any, wanted: Wanted | None) -> CommonIoObject | None:
        """The common-io object a row's value names for the XCom being read, or None: a string
        that is not exactly such a path, or names another XCom's object, stays a string (and
        so does every one read with no known XCom: it cannot be checked)."""
        found = common_io.parse(stored, self.base)
        if found is None or wanted is None or not found.belongs_to(wanted):
            return None
        return found

    def read(self, obj: CommonIoObject, xcom: Wanted | Origin) -> Any:
        """The value common-io stored in `obj`, as its deserialize_value returned it; an error
        names the XCom and the object, where common-io returned the path instead."""
        try:
            stored = common_io.fetch(self.location, obj, self._settings.max_size)
        except XComStoreError as exc:
            exc.about(uri=obj.uri, xcom=xcom)
            raise
        except Exception as exc:
            if not is_store_error(exc):
                raise
            raise StoreAccessError(f"{type(exc).__name__}: {exc}", uri=obj.uri, xcom=xcom) from exc
        try:
            return decode(common_io.decompress(stored, obj, self._settings.max_size))
        except XComStoreError as exc:
            exc.about(uri=obj.uri, xcom=xcom)
            raise
        except Exception as exc:
            # trust boundary: the bytes are there but are not what common-io writes (JSON, in
            # the suffix's compression), or name a class the deserialization allow-list refuses.
            raise CorruptObjectError(
                f"common-io's object cannot be decoded ({type(exc).__name__}: {exc})",
                uri=obj.uri,
                xcom=xcom,
            ) from exc

    def delete(self, obj: CommonIoObject) -> bool:
        return self.location.delete(obj.relpath)


def configured(settings: Settings) -> CommonIoObjects | None:
    """common-io's objects as the configuration names them, connection ids resolved by Airflow."""
    return CommonIoObjects.configured(settings, airflow_filesystem)


def decode(text: bytes) -> Any:
    """JSON as common-io decoded it: Airflow's XComDecoder (serde's forms, its allow-list)."""
    from airflow.utils.json import XComDecoder

    return json.loads(text, cls=XComDecoder)


def airflow_common_io_path() -> str:
    """common-io's own `[common.io] xcom_objectstorage_path`, empty when not set."""
    if not airflow_available():
        return ""
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # Airflow 3.1 and 3.2 read the configuration in core
        from airflow.configuration import conf
    value = conf.get(SECTION, OPTION, fallback="")
    return str(value or "").strip()
