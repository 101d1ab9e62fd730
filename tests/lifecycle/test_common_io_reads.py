"""Reading what common-io wrote: JSON decoded with Airflow's XComDecoder, decompressed as the
name's suffix says, bounded by max_size, and errors that name the XCom and the path."""

from __future__ import annotations

import bz2
import gzip
import json
import uuid
from pathlib import Path

import pytest

from xcomstore.airflow.common_io import CommonIoObjects
from xcomstore.core.settings import Settings
from xcomstore.errors import CorruptObjectError, ObjectFormatError, ObjectNotFoundError
from xcomstore.identity import Wanted
from xcomstore.storage.location import fsspec_filesystem

RUN = "manual__2026-01-02T03:04:05.123456+00:00"
UUID = "6f1c2b9e-4d3a-4e8b-9c7d-2a5e8f0b1c3d"  # a fixed uuid4: test ids are the same in every process (pytest-xdist)
HERE = Wanted(dag_id="dag", run_id=RUN, task_id="task", key="return_value")


def settings_for(**options: str) -> Settings:
    return Settings.from_mapping({"path": "file:///unused", **options})


# -- reading ----------------------------------------------------------------------------------
def objects(tmp_path: Path, **options: str) -> CommonIoObjects:
    base = f"file://{tmp_path}/common-io"
    return CommonIoObjects(base, settings_for(**options), fsspec_filesystem)


def put(tmp_path: Path, name: str, data: bytes, task: str = "task") -> str:
    file = tmp_path / "common-io" / "dag" / RUN / task / name
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(data)
    return f"file://{file}"


@pytest.mark.parametrize(
    ("suffix", "pack"),
    [("", bytes), (".gz", gzip.compress), (".bz2", bz2.compress)],
    ids=["none", "gz", "bz2"],
)
def test_reads_json_decompressed_as_the_suffix_says(tmp_path: Path, suffix: str, pack: object) -> None:
    value = {
        "rows": list(range(100)),
        "when": {"__classname__": "builtins.tuple", "__version__": 1, "__data__": [1, 2]},
    }
    uri = put(tmp_path, UUID + suffix, pack(json.dumps(value).encode()))  # type: ignore[operator]
    source = objects(tmp_path)
    found = source.find(uri, HERE)
    assert found is not None
    assert source.read(found, HERE) == {"rows": list(range(100)), "when": (1, 2)}  # XComDecoder's


@pytest.mark.parametrize(
    ("suffix", "pack"), [(".gz", gzip.compress), (".bz2", bz2.compress)], ids=["gz", "bz2"]
)
def test_a_decompression_bomb_stops_at_max_size(tmp_path: Path, suffix: str, pack: object) -> None:
    uri = put(tmp_path, UUID + suffix, pack(b"[" + b"0," * (8 << 20) + b"0]"))  # type: ignore[operator]
    source = objects(tmp_path, max_size="1MiB")
    found = source.find(uri, HERE)
    assert found is not None
    with pytest.raises(ObjectFormatError, match="more than its limit") as raised:
        source.read(found, HERE)
    assert str(HERE) in str(raised.value)
    assert uri in str(raised.value)


def test_errors_name_the_xcom_and_the_path(tmp_path: Path) -> None:
    source = objects(tmp_path)
    missing = source.find(f"file://{tmp_path}/common-io/dag/{RUN}/task/{UUID}.gz", HERE)
    assert missing is not None
    with pytest.raises(ObjectNotFoundError) as gone:
        source.read(missing, HERE)
    assert str(HERE) in str(gone.value)
    assert missing.uri in str(gone.value)
    uri = put(tmp_path, f"{uuid.uuid4()}.gz", b"not gzip at all")
    damaged = source.find(uri, HERE)
    assert damaged is not None
    with pytest.raises(CorruptObjectError, match="cannot be decoded") as bad:
        source.read(damaged, HERE)
    assert uri in str(bad.value)


def test_another_xcoms_path_or_no_xcom_is_a_string(tmp_path: Path) -> None:
    uri = put(tmp_path, UUID, b"{}")
    source = objects(tmp_path)
    assert source.find(uri, Wanted(dag_id="dag", run_id=RUN, task_id="other", key="k")) is None
    assert source.find(uri, None) is None
