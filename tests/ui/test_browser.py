"""The XCom store pages in headless Chromium: sign in, open a run, open a DataFrame preview,
read the rendered table; the page inside Airflow's own UI; a DAG the user may not read."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from . import setup_site as data
from .airflow_site import Site
from .conftest import WAIT, log_in, screenshot

pytestmark = pytest.mark.ui

RUN_PAGE = "/xcomstore/dags/sales_forecast/run?" + urlencode({"run_id": data.SALES_RUN})


def _wait_for(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT).until(lambda d: d.find_element(By.CSS_SELECTOR, css))


def _table(element: Any) -> tuple[list[str], list[list[str]]]:
    """Header texts and row texts of a rendered <table>."""
    from selenium.webdriver.common.by import By

    head = [th.text for th in element.find_elements(By.CSS_SELECTOR, "thead th")]
    rows = [
        [td.text for td in tr.find_elements(By.CSS_SELECTOR, "td")]
        for tr in element.find_elements(By.CSS_SELECTOR, "tbody tr:not(.where)")
    ]
    return head, rows


def test_run_page_and_dataframe_preview(chromium: Any, airflow_site: Site, artifacts: Path) -> None:
    from selenium.webdriver.common.by import By

    log_in(chromium, airflow_site, "analyst", RUN_PAGE)
    head, rows = _table(_wait_for(chromium, "table#xcoms"))
    assert head[:4] == ["Task", "Key", "Type", "Summary"]
    listed = {(r[0], r[1]): r for r in rows}
    assert listed[("extract", "return_value")][2:4] == ["pandas.DataFrame", "DataFrame 50000×6"]
    assert listed[("features", "return_value")][2] == "numpy.ndarray"
    assert ("forecast[2]", "return_value") in listed
    locations = [td.text for td in chromium.find_elements(By.CSS_SELECTOR, "table#xcoms tr.where td")]
    assert any(
        t.startswith("LOCATION file://") and t.endswith("/extract/-1/return_value.xcs") for t in locations
    )
    screenshot(chromium, artifacts, "xcomstore-run.png")

    extract_row = next(
        tr
        for tr in chromium.find_elements(By.CSS_SELECTOR, "table#xcoms tbody tr")
        if tr.text.startswith("extract")
    )
    extract_row.find_element(By.LINK_TEXT, "Preview").click()
    head, rows = _table(_wait_for(chromium, "table#preview-table"))
    expected = data.orders(50_000, 1)
    assert [h.split("\n")[0] for h in head] == list(expected.columns)
    assert head[0].split("\n")[1] == "int64"
    assert rows[0][:4] == [
        str(expected.order_id[0]),
        expected.region[0],
        expected["product"][0],
        str(expected.quantity[0]),
    ]
    assert len(rows) == 20
    assert "First 20 rows of 50,000" in chromium.find_element(By.TAG_NAME, "h2").text
    screenshot(chromium, artifacts, "xcomstore-preview.png")


def _rows_in_airflow_tab(driver: Any) -> list[tuple[str, str]]:
    """(task, key) of the XCom table inside the "XCom store" tab's iframe."""
    driver.switch_to.frame(_wait_for(driver, "iframe[title='XCom store']"))
    try:
        _, rows = _table(_wait_for(driver, "table#xcoms"))
    finally:
        driver.switch_to.default_content()
    return [(r[0], r[1]) for r in rows]


def test_tabs_inside_the_airflow_ui(chromium: Any, airflow_site: Site, artifacts: Path) -> None:
    """The "XCom store" tabs of a DAG run and of a task instance in Airflow's own UI show the
    pages in their iframes, signed in with the UI's session."""
    run_page = f"/dags/sales_forecast/runs/{quote(data.SALES_RUN, safe='')}"
    log_in(chromium, airflow_site, "analyst", f"{run_page}/plugin/xcomstore-run")
    assert ("extract", "return_value") in _rows_in_airflow_tab(chromium)
    assert ("forecast[1]", "return_value") in _rows_in_airflow_tab(chromium)
    screenshot(chromium, artifacts, "xcomstore-in-airflow.png")
    chromium.get(f"{airflow_site.url}{run_page}/tasks/features/plugin/xcomstore-task")
    assert _rows_in_airflow_tab(chromium) == [("features", "return_value")]
    chromium.get(f"{airflow_site.url}/plugin/xcomstore")  # the Browse menu's entry
    chromium.switch_to.frame(_wait_for(chromium, "iframe[title='XCom store']"))
    try:
        assert _table(_wait_for(chromium, "table#dags"))[1] == [["sales_forecast"]]
    finally:
        chromium.switch_to.default_content()


def test_array_and_json_previews(chromium: Any, airflow_site: Site, artifacts: Path) -> None:
    from selenium.webdriver.common.by import By

    query = {"run_id": data.SALES_RUN, "task_id": "features", "key": "return_value"}
    log_in(chromium, airflow_site, "analyst", "/xcomstore/dags/sales_forecast/xcom?" + urlencode(query))
    facts = _wait_for(chromium, "dl#array-stats")
    terms = [dt.text for dt in facts.find_elements(By.TAG_NAME, "dt")]
    values = dict(zip(terms, [dd.text for dd in facts.find_elements(By.TAG_NAME, "dd")], strict=True))
    assert values["Shape"] == "(5000, 8)"
    assert values["dtype"] == "float64"
    assert float(values["Min"]) == data.values()[1][5].min()
    screenshot(chromium, artifacts, "xcomstore-array.png")
    query = {"run_id": data.SALES_RUN, "task_id": "report", "key": "summary"}
    chromium.get(airflow_site.url + "/xcomstore/dags/sales_forecast/xcom?" + urlencode(query))
    assert '"forecast horizon 28 days"' in _wait_for(chromium, "pre#preview-json").text
    screenshot(chromium, artifacts, "xcomstore-json.png")


def test_dag_the_user_may_not_read(chromium: Any, airflow_site: Site, artifacts: Path) -> None:
    from selenium.webdriver.common.by import By

    log_in(chromium, airflow_site, "analyst", "/xcomstore/")
    _, rows = _table(_wait_for(chromium, "table#dags"))
    assert rows == [["sales_forecast"]]
    chromium.get(airflow_site.url + "/xcomstore/dags/payroll/run?" + urlencode({"run_id": data.PAYROLL_RUN}))
    assert "Not allowed (403)" in _wait_for(chromium, "h1").text
    assert not chromium.find_elements(By.CSS_SELECTOR, "table")
    screenshot(chromium, artifacts, "xcomstore-forbidden.png")


def test_stored_markup_shows_as_text(chromium: Any, airflow_site: Site) -> None:
    from selenium.webdriver.common.by import By

    query = {"run_id": data.XSS_RUN, "task_id": "extract", "key": data.XSS}
    log_in(chromium, airflow_site, "analyst", "/xcomstore/dags/sales_forecast/xcom?" + urlencode(query))
    head, rows = _table(_wait_for(chromium, "table#preview-table"))
    assert head[0].split("\n")[0] == data.XSS
    assert rows[0][0] == data.XSS
    assert chromium.title != "pwned"
    assert not chromium.find_elements(By.CSS_SELECTOR, "main b, main script")
