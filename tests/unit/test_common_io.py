"""common-io's paths: exactly the names common-io 1.x writes are taken for its objects, for the
XCom they were written for; gc under common-io's path deletes only its orphans. (Reading them:
tests/lifecycle/test_common_io_reads.py; a real DAG run under common-io 1.11:
tests/lifecycle/test_common_io.py.)"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path

import pytest

from xcomstore.core import common_io
from xcomstore.core.settings import Settings
from xcomstore.errors import ConfigError
from xcomstore.identity import Wanted
from xcomstore.ops.common_io_gc import REASON, collect_common_io
from xcomstore.ops.gc import GcSummary
from xcomstore.ops.liveness import LiveXComs
from xcomstore.storage.location import Location, fsspec_filesystem

BASE = "s3://aws_default@bucket/common-io"
RUN = "manual__2026-01-02T03:04:05.123456+00:00"
UUID = "6f1c2b9e-4d3a-4e8b-9c7d-2a5e8f0b1c3d"  # a fixed uuid4: test ids are the same in every process (pytest-xdist)
HERE = Wanted(dag_id="dag", run_id=RUN, task_id="task", key="return_value")


def path(name: str, task: str = "task") -> str:
    return f"{BASE}/dag/{RUN}/{task}/{name}"


@pytest.mark.parametrize(
    ("name", "compression"),
    [
        (UUID, None),
        (f"{UUID}.gz", "gzip"),
        (f"{UUID}.bz2", "bz2"),
        (f"{UUID}.zst", "zstd"),
        (f"{UUID}.json", None),
        (f"{UUID}.json.gz", "gzip"),
    ],
)
def test_serialize_value_names_are_common_io_objects(name: str, compression: str | None) -> None:
    found = common_io.parse(path(name), BASE)
    assert found is not None
    assert (found.dag_id, found.run_id, found.task_id, found.key) == ("dag", RUN, "task", None)
    assert (found.compression, found.relpath, found.uri) == (
        compression,
        f"dag/{RUN}/task/{name}",
        path(name),
    )
    assert found.belongs_to(HERE)


@pytest.mark.parametrize("ti", [UUID, "42"])
def test_store_value_names_are_common_io_objects(ti: str) -> None:
    found = common_io.parse(path(f"ti-{ti}/return_value.json.gz"), BASE)
    assert found is not None
    assert (found.key, found.compression) == ("return_value", "gzip")
    assert found.belongs_to(HERE)
    assert not found.belongs_to(Wanted(dag_id="dag", run_id=RUN, task_id="task", key="other"))


def test_store_value_keys_are_quoted_or_hashed() -> None:
    quoted = common_io.parse(path("ti-1/a%2Fb%20c.json"), BASE)
    assert quoted is not None
    assert quoted.belongs_to(Wanted(dag_id="dag", run_id=RUN, task_id="task", key="a/b c"))
    long_key = "k" * 201
    hashed = common_io.parse(path(f"ti-1/{hashlib.sha256(long_key.encode()).hexdigest()}.json"), BASE)
    assert hashed is not None
    assert hashed.belongs_to(Wanted(dag_id="dag", run_id=RUN, task_id="task", key=long_key))


@pytest.mark.parametrize(
    "value",
    [
        path(f"{UUID}.json.exe"),
        path(f"{UUID}.exe"),  # not a suffix fsspec writes
        path(UUID.upper()),
        path(str(uuid.uuid1())),  # not a uuid4
        path(f"{UUID}/extra"),
        path(f"../{UUID}"),
        f"{BASE}/dag/{RUN}/../task/{UUID}",
        f"{BASE}/dag/./task/{UUID}",
        f"{BASE}/dag/{UUID}",  # too few segments
        f"{BASE}x/dag/{RUN}/task/{UUID}",  # another base that starts like it
        f"s3://bucket/common-io/dag/{RUN}/task/{UUID}",  # without the connection id
        path("ti-x/return_value.json"),
        path("ti-1/return_value"),
        path("ti-1/a/b.json"),
        " " + path(UUID),
        path(UUID) + "\n",
        "just a string",
        "",
    ],
)
def test_anything_else_is_a_string(value: str) -> None:
    assert common_io.parse(value, BASE) is None


@pytest.mark.parametrize("value", [None, 1, ["x"], {"uri": path(UUID)}, path(UUID).encode()])
def test_only_strings_are_paths(value: object) -> None:
    assert common_io.parse(value, BASE) is None


def test_no_base_no_path() -> None:
    assert common_io.parse(path(UUID), "") is None


@pytest.mark.parametrize(
    "wanted",
    [
        Wanted(dag_id="other", run_id=RUN, task_id="task", key="return_value"),
        Wanted(dag_id="dag", run_id="manual__other", task_id="task", key="return_value"),
        Wanted(dag_id="dag", run_id=RUN, task_id="other", key="return_value"),
    ],
)
def test_a_path_belongs_to_its_own_xcom(wanted: Wanted) -> None:
    found = common_io.parse(path(UUID), BASE)
    assert found is not None
    assert not found.belongs_to(wanted)


def test_prior_runs_match_any_run() -> None:
    found = common_io.parse(path(UUID), BASE)
    assert found is not None
    assert found.belongs_to(Wanted(dag_id="dag", task_id="task", key="anything"))


def settings_for(**options: str) -> Settings:
    return Settings.from_mapping({"path": "file:///unused", **options})


def test_the_option_is_a_url() -> None:
    assert settings_for(common_io_path="s3://conn@bucket/x/").common_io_path == "s3://conn@bucket/x"
    with pytest.raises(ConfigError, match="common_io_path"):
        settings_for(common_io_path="/var/xcom")
    with pytest.raises(ConfigError, match="common_io_path"):
        settings_for(common_io_path="file://var/xcom")


def put(tmp_path: Path, name: str, data: bytes, task: str = "task") -> str:
    file = tmp_path / "common-io" / "dag" / RUN / task / name
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(data)
    return f"file://{file}"


# -- gc ---------------------------------------------------------------------------------------
class Rows:
    """A run's XCom rows as the metadata DB index answers (a dict, not a DB)."""

    def __init__(self, live: LiveXComs) -> None:
        self._live = live

    def live(self, dag_id: str, run_id: str) -> LiveXComs:
        return self._live if (dag_id, run_id) == ("dag", RUN) else {}


def test_gc_deletes_only_common_io_orphans(tmp_path: Path) -> None:
    live = put(tmp_path, f"{uuid.uuid4()}.gz", b"{}")
    orphan = put(tmp_path, f"{uuid.uuid4()}.gz", b"{}")
    unknown = put(tmp_path, f"{uuid.uuid4()}", b"{}", task="rest_api")  # values not known
    young = put(tmp_path, f"{uuid.uuid4()}", b"{}", task="gone")
    not_ours = put(tmp_path, "notes.txt", b"keep me", task="gone")
    old = time.time() - 7200
    for uri in (live, orphan, unknown, not_ours):
        os.utime(uri[len("file://") :], (old, old))
    index = Rows({("task", -1, "return_value"): frozenset({live}), ("rest_api", -1, "k"): None})
    location = Location(f"file://{tmp_path}/common-io", *fsspec_filesystem(f"file://{tmp_path}/common-io"))
    planned = collect_common_io(location, index, GcSummary(dry_run=True), dry_run=True)
    assert planned.removed == {REASON: [1, 2]}
    assert (planned.scanned, planned.spared_young) == (4, 1)
    assert os.path.exists(orphan[len("file://") :])
    collect_common_io(location, index, GcSummary(dry_run=False))
    left = {uri for uri in (live, orphan, unknown, young, not_ours) if os.path.exists(uri[len("file://") :])}
    assert left == {live, unknown, young, not_ours}
