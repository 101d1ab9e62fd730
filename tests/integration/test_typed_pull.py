"""Typed and partial reads from a running task (dags/xcs_typed_pull.py): `xcomstore.pull` with
`columns` and `to` gives the columns asked for, in the library asked for, whatever library
pushed the frame; of a mapped task, a list in map-index order; anything it cannot give is a
ProjectionError naming what was asked and what there is. On a file and an S3 store."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import param

pytestmark = pytest.mark.airflow

POLARS, PANDAS, ARROW = "polars.DataFrame", "pandas.DataFrame", "pyarrow.Table"


@pytest.mark.parametrize("name", [param("file-zstd"), param("s3-zstd")])
def test_a_task_pulls_the_columns_and_library_it_asks_for(name: str, all_targets: Any) -> None:
    run = all_targets(name).process.dag_test("xcs_typed_pull")
    assert run.state == "success", run.describe()
    assert run.row("pandas_frame").is_reference, "the frame was meant to be offloaded"
    got = {row.key: row.value for row in run.xcoms if row.task_id == "read"}
    assert got["pandas_as_polars"] == {"type": POLARS, "columns": ["c2", "c7"], "rows": 2000}
    assert got["pandas_as_arrow"]["type"] == ARROW
    assert got["pandas_as_arrow"]["columns"][:20] == [f"c{i}" for i in range(20)]
    assert got["polars_as_pandas"] == {"type": PANDAS, "columns": ["c0"], "rows": 2000}
    assert got["polars_columns"] == {"type": POLARS, "columns": ["c19", "c3"], "rows": 2000}
    assert got["shards"] == [{"type": POLARS, "columns": ["c5"], "rows": 2000}] * 3
    assert got["array"] == {"type": "numpy.ndarray", "shape": [200, 300]}
    missing = got["missing"]
    assert missing["error"] == "ProjectionError", missing
    assert "'nope'" in missing["message"], missing
    assert "c19" in missing["message"], f"the columns there are not listed: {missing}"
    assert "xcs_typed_pull" in missing["message"], f"the XCom is not named: {missing}"
    assert got["dict_columns"]["error"] == "ProjectionError", got["dict_columns"]
    assert got["array_as_pandas"]["error"] == "ProjectionError", got["array_as_pandas"]
