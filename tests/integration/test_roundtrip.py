"""Every kind of value through real Airflow, for each store kind and compression.

The xcs_types DAG runs once per configuration; its checking tasks compare inside Airflow what
they pulled with what was pushed and report per value. These tests read those reports and
what the metadata DB and the store hold.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import xcs_common

from .conftest import SPECS, TYPES_CONFIGS, Target, param
from .harness import RunResult, is_reference, run_dir

pytestmark = pytest.mark.airflow

# Every store kind on the main DB, and the file store on PostgreSQL and MariaDB.
CONFIGS = TYPES_CONFIGS
NONZERO = [c for c in CONFIGS if SPECS[c].threshold != 0]
ZERO = [c for c in CONFIGS if SPECS[c].threshold == 0]
# A reference is a few hundred bytes whatever the value: it fits every DB's limits (MySQL's
# max_allowed_packet, 16 MiB by default on MariaDB, is the tightest).
REFERENCE_ROW_LIMIT = 1024

BOUNDARY = ["at_threshold", "above_threshold"]  # only exist with a threshold above 0
NAMES = [*xcs_common.VALUES, *BOUNDARY]
# What every one of these must be offloaded as, whatever the threshold: (codec, type names).
BIG: dict[str, tuple[str, set[str]]] = {
    "pandas_df": ("arrow", {"pandas.DataFrame"}),
    "pandas_df_indexed": ("arrow", {"pandas.DataFrame"}),
    "polars_df": ("arrow", {"polars.DataFrame"}),
    "arrow_table": ("arrow", {"pyarrow.Table", "pyarrow.lib.Table"}),
    **{n: ("numpy", {"numpy.ndarray"}) for n in xcs_common.VALUES if n.startswith("np_")},
    "bytes_big": ("bytes", {"bytes", "builtins.bytes"}),
    "bytes_small": ("bytes", {"bytes", "builtins.bytes"}),
    "json_big": ("json", {"dict", "builtins.dict"}),
    "mixed_big": ("json", {"dict", "builtins.dict"}),
    "tuple_big": ("json", {"tuple", "builtins.tuple"}),
    "above_threshold": ("json", {"str", "builtins.str"}),
}
INLINE = [*xcs_common.SMALL, "lookalike_dict", "at_threshold"]


@pytest.fixture
def target(request: pytest.FixtureRequest, all_targets: Any) -> Target:
    return all_targets(request.param)  # type: ignore[no-any-return]


@pytest.fixture
def run(request: pytest.FixtureRequest, types_runs: Any) -> RunResult:
    return types_runs(request.param)  # type: ignore[no-any-return]


def cases(configs: list[str], names: list[str] | None = None) -> pytest.MarkDecorator:
    """Parametrize `target` and `run` with each configuration (times each value `name`)."""
    params = []
    for config in configs:
        if names is None:
            params.append(param(config, config, config))
            continue
        for name in names:
            if name in BOUNDARY and config in ZERO:
                continue
            params.append(param(config, config, config, name, id=f"{config}-{name}"))
    fields = ("target", "run") if names is None else ("target", "run", "name")
    return pytest.mark.parametrize(fields, params, indirect=["target", "run"])


# -- the DAG as a whole ----------------------------------------------------------------------
@cases(CONFIGS)
def test_every_task_succeeds(target: Target, run: RunResult) -> None:
    assert run.state == "success", run.describe()


@cases(CONFIGS)
def test_exactly_one_object_per_reference(target: Target, run: RunResult) -> None:
    refs = run.references()
    assert refs, "nothing was offloaded"
    objects = target.store.objects(run_dir(refs[0].value["uri"]))
    assert objects == {target.store.key(r.value["uri"]) for r in refs}


@cases(CONFIGS)
def test_reference_rows_are_small(target: Target, run: RunResult) -> None:
    """What the DB holds for an offloaded value is a small row, whatever the value's size."""
    sizes = target.process.row_sizes(run)
    refs = {(r.task_id, r.map_index, r.key) for r in run.references()}
    assert refs
    assert refs <= set(sizes)
    too_big = {k: sizes[k] for k in refs if sizes[k] > REFERENCE_ROW_LIMIT}
    assert not too_big, f"reference rows above {REFERENCE_ROW_LIMIT} bytes: {too_big}"


# -- each value ------------------------------------------------------------------------------
@cases(CONFIGS, NAMES)
def test_value_round_trips(target: Target, run: RunResult, name: str) -> None:
    verdicts = run.reports.get("check_values")
    assert verdicts is not None, run.describe()
    assert verdicts[name] == "ok", f"{name}: {verdicts[name]}"


@cases(CONFIGS, list(BIG))
def test_big_value_is_offloaded_with_a_valid_reference(target: Target, run: RunResult, name: str) -> None:
    ref = run.value("push_values", name)
    assert is_reference(ref), f"{name} was kept inline: {str(ref)[:200]}"
    codec, type_names = BIG[name]
    assert ref["__xcomstore__"] == 1
    assert ref["codec"] == codec
    assert ref["type"] in type_names
    # A few bytes do not shrink: they are stored as they are, and the reference says so.
    expected = "none" if name == "bytes_small" else target.config.compression
    assert ref["compression"] == expected
    assert isinstance(ref["summary"], str)
    assert ref["summary"]
    assert re.fullmatch(r"blake3:[0-9a-f]{64}", ref["checksum"]), ref["checksum"]
    uri = ref["uri"]
    assert uri.startswith(target.config.path + "/xcs_types/"), uri
    encoded_run = re.sub(r"[^A-Za-z0-9._-]", lambda m: f"%{ord(m.group()):02X}", run.run_id)
    assert uri.endswith(f"/{encoded_run}/push_values/-1/{name}.xcs"), uri
    data = target.store.read(uri)
    assert ref["stored_bytes"] == len(data)


def test_summary_describes_a_dataframe(types_runs: Any) -> None:
    summary = types_runs("file-zstd").value("push_values", "pandas_df")["summary"]
    assert "DataFrame" in summary, summary
    assert "2000" in summary, summary


@cases(NONZERO, INLINE)
def test_small_value_is_stored_as_the_default_backend_would(
    target: Target, run: RunResult, name: str
) -> None:
    expected = target.process.default_forms([name])[name]
    assert run.value("push_values", name) == expected


@cases(NONZERO)
def test_threshold_is_inclusive(target: Target, run: RunResult) -> None:
    at, above = run.value("push_values", "at_threshold"), run.value("push_values", "above_threshold")
    assert at == "a" * (target.threshold - 2), "a value of exactly threshold bytes must stay inline"
    assert is_reference(above), "a value one byte above the threshold must be offloaded"


@cases(ZERO)
def test_threshold_zero_offloads_every_value(target: Target, run: RunResult) -> None:
    inline = [r.key for r in run.xcoms if r.task_id == "push_values" and not r.is_reference]
    assert not inline, f"kept inline with threshold 0: {inline}"


# -- mapped tasks and multiple_outputs -------------------------------------------------------
@cases(CONFIGS)
def test_each_map_index_has_its_own_object(target: Target, run: RunResult) -> None:
    refs = [run.value("make_frame", map_index=i) for i in range(3)]
    assert all(is_reference(r) for r in refs), refs
    uris = [r["uri"] for r in refs]
    assert len(set(uris)) == 3
    for index, uri in enumerate(uris):
        assert uri.endswith(f"/make_frame/{index}/return_value.xcs"), uri
        assert target.store.exists(uri)
    assert run.reports["check_frames"] == dict.fromkeys(["frame_0", "frame_1", "frame_2", "counts"], "ok")
    for index in range(3):
        assert run.state_of("frame_rows", index) == "success"


@cases(CONFIGS)
def test_multiple_outputs(target: Target, run: RunResult) -> None:
    assert is_reference(run.value("split", "frame"))
    assert is_reference(run.value("split", "return_value"))
    meta = run.value("split", "meta")
    if target.threshold > 0:
        assert meta == {"rows": xcs_common.ROWS}
    assert run.reports["check_split"] == {"frame": "ok", "meta": "ok", "whole": "ok"}
