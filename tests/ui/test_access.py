"""The plugin's HTTP endpoints on a real API server: authentication, per-DAG permissions through
Airflow's auth manager, the JSON listings and previews, downloads, and escaping.

`analyst` is a viewer of team analytics: it may read sales_forecast (bundle of team analytics)
but not payroll (team finance); `admin` reads everything.
"""

from __future__ import annotations

import io
import json
from urllib.parse import urlencode

import numpy as np
import pyarrow.parquet as pq
import pytest

from . import setup_site as data
from .airflow_site import Site

pytestmark = pytest.mark.ui

SALES_RUN = {"run_id": data.SALES_RUN}
EXTRACT = {**SALES_RUN, "task_id": "extract", "map_index": -1, "key": "return_value"}
PAYROLL = {"run_id": data.PAYROLL_RUN, "task_id": "salaries", "key": "return_value"}


def _path(path: str, **query: object) -> str:
    return f"/xcomstore{path}?{urlencode(query)}" if query else f"/xcomstore{path}"


def _json(site: Site, path: str, token: str) -> dict[str, object]:
    status, _, body = site.get(path, token)
    assert status == 200, body[:500]
    return dict(json.loads(body))


# -- authentication and permissions ---------------------------------------------------------
def test_signed_out_api_gets_401(airflow_site: Site) -> None:
    for path in (_path("/api/dags"), _path("/api/dags/sales_forecast/runs")):
        status, _, body = airflow_site.get(path)
        assert status == 401, (path, body)


def test_signed_out_page_goes_to_login(airflow_site: Site) -> None:
    status, headers, _ = airflow_site.get(_path("/dags/sales_forecast"))
    assert status == 303
    assert "/auth/login?next=" in headers["location"]


def test_dag_list_holds_only_readable_dags(airflow_site: Site, tokens: dict[str, str]) -> None:
    assert _json(airflow_site, _path("/api/dags"), tokens["admin"])["dags"] == ["payroll", "sales_forecast"]
    assert _json(airflow_site, _path("/api/dags"), tokens["analyst"])["dags"] == ["sales_forecast"]
    status, _, page = airflow_site.get(_path("/"), tokens["analyst"])
    assert status == 200
    assert b"sales_forecast" in page
    assert b"payroll" not in page


@pytest.mark.parametrize(
    "path",
    [
        _path("/api/dags/payroll/runs"),
        _path("/api/dags/payroll/xcoms", run_id=data.PAYROLL_RUN),
        _path("/api/dags/payroll/xcom", **PAYROLL),
        _path("/dags/payroll/download", **PAYROLL),
        _path("/dags/payroll"),
        _path("/dags/payroll/run", run_id=data.PAYROLL_RUN),
        _path("/dags/payroll/xcom", **PAYROLL),
    ],
)
def test_user_without_access_to_the_dag_gets_403(
    airflow_site: Site, tokens: dict[str, str], path: str
) -> None:
    status, _, body = airflow_site.get(path, tokens["analyst"])
    assert status == 403, body[:300]
    assert b"91000" not in body
    assert b"salar" not in body


def test_the_403_is_airflows_own_decision(airflow_site: Site, tokens: dict[str, str]) -> None:
    """Airflow's XCom API refuses the same user the same DAG: the plugin applies its rules."""
    status, _, _ = airflow_site.get(f"/api/v2/dags/payroll/dagRuns/{data.PAYROLL_RUN}", tokens["analyst"])
    assert status == 403
    status, _, _ = airflow_site.get(_path("/api/dags/payroll/xcom", **PAYROLL), tokens["admin"])
    assert status == 200


# -- listings and previews ------------------------------------------------------------------
def test_run_listing(airflow_site: Site, tokens: dict[str, str]) -> None:
    runs = _json(airflow_site, _path("/api/dags/sales_forecast/runs"), tokens["analyst"])["runs"]
    assert isinstance(runs, list)
    assert {r["run_id"] for r in runs} == {data.SALES_RUN, data.SALES_RUN_2, data.XSS_RUN}
    listed = _json(airflow_site, _path("/api/dags/sales_forecast/xcoms", **SALES_RUN), tokens["analyst"])
    xcoms = {(x["task_id"], x["map_index"], x["key"]): x for x in listed["xcoms"]}  # type: ignore[attr-defined]
    assert set(xcoms) == {
        ("export", -1, "payload"),
        ("extract", -1, "return_value"),
        ("features", -1, "return_value"),
        *{("forecast", i, "return_value") for i in range(3)},
        ("report", -1, "summary"),
    }
    frame = xcoms[("extract", -1, "return_value")]
    assert (frame["type"], frame["codec"], frame["compression"]) == ("pandas.DataFrame", "arrow", "zstd")
    assert frame["summary"] == "DataFrame 50000×6"
    assert frame["expires"] is None
    assert frame["stored_bytes"] > 0
    assert frame["uri"].endswith("/extract/-1/return_value.xcs")


def test_task_filter(airflow_site: Site, tokens: dict[str, str]) -> None:
    path = _path("/api/dags/sales_forecast/xcoms", **SALES_RUN, task_id="forecast", map_index=1)
    xcoms = _json(airflow_site, path, tokens["analyst"])["xcoms"]
    assert [(x["task_id"], x["map_index"]) for x in xcoms] == [("forecast", 1)]  # type: ignore[attr-defined]


def test_dataframe_preview(airflow_site: Site, tokens: dict[str, str]) -> None:
    shown = _json(airflow_site, _path("/api/dags/sales_forecast/xcom", **EXTRACT, rows=5), tokens["analyst"])
    preview = shown["preview"]
    expected = data.orders(50_000, 1)
    assert preview["kind"] == "table"  # type: ignore[index]
    assert [c["name"] for c in preview["columns"]] == list(expected.columns)  # type: ignore[index]
    rows = preview["rows"]  # type: ignore[index]
    assert len(rows) == 5
    assert rows[0][:3] == [int(expected.order_id[0]), expected.region[0], expected["product"][0]]
    assert shown["header"]["formats"] == ["parquet", "csv", "arrows"]  # type: ignore[index]


def test_array_and_json_previews(airflow_site: Site, tokens: dict[str, str]) -> None:
    features = {**SALES_RUN, "task_id": "features", "key": "return_value"}
    array = _json(airflow_site, _path("/api/dags/sales_forecast/xcom", **features), tokens["analyst"])[
        "preview"
    ]
    values = data.values()[1][5]
    stats = array["stats"]  # type: ignore[index]
    assert stats["shape"] == [5000, 8]
    assert stats["dtype"] == "float64"
    assert stats["min"] == pytest.approx(values.min())
    assert stats["max"] == pytest.approx(values.max())
    report = {**SALES_RUN, "task_id": "report", "key": "summary"}
    text = _json(airflow_site, _path("/api/dags/sales_forecast/xcom", **report), tokens["analyst"])[
        "preview"
    ]["text"]  # type: ignore[index]
    assert '\n  "regions": {' in text  # pretty-printed


def test_missing_xcom_is_404(airflow_site: Site, tokens: dict[str, str]) -> None:
    path = _path("/api/dags/sales_forecast/xcom", **{**EXTRACT, "key": "nope"})
    status, _, body = airflow_site.get(path, tokens["analyst"])
    assert status == 404
    assert b"no object at" in body


# -- downloads ------------------------------------------------------------------------------
def test_download_parquet_and_csv(airflow_site: Site, tokens: dict[str, str]) -> None:
    expected = data.orders(50_000, 1)
    status, headers, body = airflow_site.get(
        _path("/dags/sales_forecast/download", **EXTRACT), tokens["analyst"]
    )
    assert status == 200
    assert 'filename="sales_forecast.extract.return_value.parquet"' in headers["content-disposition"]
    table = pq.read_table(io.BytesIO(body))
    assert table.num_rows == 50_000
    assert table.column("revenue").to_pylist()[:3] == list(expected.revenue[:3])
    status, _, body = airflow_site.get(
        _path("/dags/sales_forecast/download", **EXTRACT, format="csv"), tokens["analyst"]
    )
    assert status == 200
    assert body.count(b"\n") == 50_001


def test_download_array(airflow_site: Site, tokens: dict[str, str]) -> None:
    features = {**SALES_RUN, "task_id": "features", "key": "return_value"}
    status, _, body = airflow_site.get(_path("/dags/sales_forecast/download", **features), tokens["analyst"])
    assert status == 200
    np.testing.assert_array_equal(np.load(io.BytesIO(body), allow_pickle=False), data.values()[1][5])


def test_download_in_a_format_the_value_has_not_is_400(airflow_site: Site, tokens: dict[str, str]) -> None:
    features = {**SALES_RUN, "task_id": "features", "key": "return_value", "format": "csv"}
    status, _, _ = airflow_site.get(_path("/dags/sales_forecast/download", **features), tokens["analyst"])
    assert status == 400


# -- escaping -------------------------------------------------------------------------------
def test_stored_names_and_values_are_escaped(airflow_site: Site, tokens: dict[str, str]) -> None:
    query = {"run_id": data.XSS_RUN, "task_id": "extract", "key": data.XSS}
    for path in (
        _path("/dags/sales_forecast/run", run_id=data.XSS_RUN),
        _path("/dags/sales_forecast/xcom", **query),
    ):
        status, headers, body = airflow_site.get(path, tokens["analyst"])
        assert status == 200
        assert b"<script>" not in body
        assert b"<b>bold" not in body
        assert b"&lt;script&gt;document.title=" in body
        assert "script-src" not in headers["content-security-policy"]  # so default-src 'none' forbids scripts


def test_plugin_is_registered_with_airflow(airflow_site: Site, tokens: dict[str, str]) -> None:
    plugins = _json(airflow_site, "/api/v2/plugins", tokens["admin"])["plugins"]
    ours = next(p for p in plugins if p["name"] == "xcomstore")  # type: ignore[attr-defined]
    assert ours["fastapi_apps"][0]["url_prefix"] == "/xcomstore"
    assert {v["destination"] for v in ours["external_views"]} == {"nav", "dag", "dag_run", "task_instance"}
    errors = _json(airflow_site, "/api/v2/plugins/importErrors", tokens["admin"])
    assert errors["total_entries"] == 0
