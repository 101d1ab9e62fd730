"""The error hierarchy: what users can catch, what each error carries, and that no raw store
error escapes a public call of XComStore."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fsspec.implementations.local import LocalFileSystem

from xcomstore import errors
from xcomstore.core.observe import Observer
from xcomstore.core.settings import Settings
from xcomstore.core.store import XComStore
from xcomstore.identity import Origin

MakeStore = Callable[..., XComStore]
KEY = base64.b64encode(b"k" * 32).decode()


def test_every_error_is_an_xcomstore_error_and_keeps_its_builtin_base() -> None:
    builtin = {
        errors.ConfigError: ValueError,
        errors.MissingKeyError: errors.ConfigError,
        errors.RejectedValueError: TypeError,
        errors.ObjectNotFoundError: FileNotFoundError,
        errors.CorruptObjectError: errors.ObjectFormatError,
        errors.StoreUnavailableError: OSError,
        errors.StoreAccessError: errors.StoreUnavailableError,
        errors.ForgedReferenceError: errors.XComStoreError,
        errors.UnsafePathError: errors.ForgedReferenceError,
        errors.UnknownFormatError: ValueError,
        errors.OutsideTaskError: RuntimeError,
    }
    for error, base in builtin.items():
        assert issubclass(error, errors.XComStoreError), error
        assert issubclass(error, base), error


def test_an_error_carries_its_object_and_xcom_as_attributes(
    make_xcom_store: MakeStore, origin: Origin, store_dir: Path
) -> None:
    store = make_xcom_store(threshold="0")
    stored = store.push({"v": 1}, origin)
    (store_dir / "dag/run/task/-1/return_value.xcs").unlink()
    with pytest.raises(errors.ObjectNotFoundError) as info:
        store.pull(stored)
    assert info.value.uri == stored["uri"]
    assert str(info.value.xcom) == str(origin)
    assert str(info.value).startswith(f"XCom {origin} at {stored['uri']}: ")


def test_about_fills_in_only_what_is_not_known() -> None:
    error = errors.CorruptObjectError("bad seal", uri="file:///a/x.xcs")
    error.about(uri="file:///b/y.xcs", xcom="d/r/t/k")
    assert (error.uri, error.xcom) == ("file:///a/x.xcs", "d/r/t/k")
    assert str(error) == "XCom d/r/t/k at file:///a/x.xcs: bad seal"
    assert str(errors.ConfigError("plain")) == "plain"


class RefusingFileSystem(LocalFileSystem):  # type: ignore[misc]
    """A local filesystem that refuses every write, delete and listing, as a read-only bucket
    or a folder owned by someone else does (root ignores file modes, so they can't be used)."""

    def _open(self, path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        if "w" in mode:
            raise PermissionError(13, "Permission denied", path)
        return super()._open(path, mode, *args, **kwargs)

    def rm_file(self, path: str) -> None:
        raise PermissionError(13, "Permission denied", path)

    def find(self, path: str, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", path)


def refusing_store(store_dir: Path, **options: str) -> XComStore:
    settings = Settings.from_mapping({"path": f"file://{store_dir}", "threshold": "0", **options})
    return XComStore.from_settings(settings, opener=lambda url: (RefusingFileSystem(), str(store_dir)))


def test_no_raw_permission_error_leaves_a_public_call(
    make_xcom_store: MakeStore, origin: Origin, store_dir: Path
) -> None:
    stored = make_xcom_store(threshold="0").push({"v": 1}, origin)
    refusing = refusing_store(store_dir)
    calls: dict[str, Callable[[], Any]] = {
        "push": lambda: refusing.push({"v": 2}, origin),
        "purge": lambda: refusing.purge(stored),
        "list": lambda: list(refusing.list()),
    }
    for name, call in calls.items():
        with pytest.raises(errors.StoreAccessError, match="Permission denied") as info:
            call()
        assert info.value.uri, name
        assert isinstance(info.value.__cause__, PermissionError), name
    assert refusing.pull(stored) == {"v": 1}, "reading is still allowed"


class Recorder(Observer):
    def __init__(self) -> None:
        self.failures: list[str] = []

    def failed(self, operation: str, error: BaseException) -> None:
        self.failures.append(operation)


def test_a_missing_key_is_a_configuration_error_without_fail_over(tmp_path: Path, origin: Origin) -> None:
    paths = f"file://{tmp_path}/a, file://{tmp_path}/b"
    writer = XComStore.from_settings(
        Settings.from_mapping({"path": paths, "threshold": "0", "encryption_keys": f"k1:{KEY}"})
    )
    stored = writer.push({"v": 1}, origin)
    assert len(stored["replicas"]) == 1
    recorder = Recorder()
    reader = XComStore.from_settings(Settings.from_mapping({"path": paths}), observer=recorder)
    with pytest.raises(errors.MissingKeyError, match="'k1'"):
        reader.pull(stored)
    assert "read copy" not in recorder.failures, "the second copy was tried as if the first were damaged"
