"""MySQL/MariaDB refuse a statement larger than max_allowed_packet (16 MiB by default on
MariaDB, 64 MiB on MySQL 8), so Airflow's default backend cannot store a large XCom there.
xcomstore's row is a small reference whatever the value's size.
"""

from __future__ import annotations

from typing import Any

import pytest
import xcs_common

from .conftest import Target, param
from .harness import is_reference, run_dir

pytestmark = pytest.mark.airflow

BIG = xcs_common.BIG_BYTES


@pytest.mark.parametrize("name", [param("maria-file-zstd")])
def test_a_100_mib_value_on_mariadb_is_a_small_row(all_targets: Any, name: str) -> None:
    target: Target = all_targets(name)
    run = target.process.dag_test("xcs_big")
    assert run.state == "success", run.describe()
    # The downstream task compared the whole value with what was pushed.
    assert run.reports["check_big"] == {"big": "ok"}, run.reports
    ref = run.value("push_big")
    assert is_reference(ref), str(ref)[:200]
    assert ref["size"] >= BIG, ref
    size = target.process.row_sizes(run)[("push_big", -1, "return_value")]
    assert size < 1024, f"the DB row of a {BIG}-byte value takes {size} bytes"
    assert target.store.objects(run_dir(ref["uri"])) == {target.store.key(ref["uri"])}


@pytest.mark.parametrize("name", [param("maria-default")])
def test_the_default_backend_cannot_store_it_on_mariadb(all_targets: Any, name: str) -> None:
    """Documentation, for contrast: without xcomstore the same push fails the task."""
    target: Target = all_targets(name)
    run = target.process.dag_test("xcs_big")
    assert run.state_of("push_big") == "failed", run.describe()
    assert run.state_of("check_big") == "upstream_failed", run.describe()
    assert not run.has_row("push_big"), "the default backend stored the value after all"
    # Airflow hides the driver's message from the task; the execution API logs the statement.
    assert "Database error" in run.failure("push_big"), run.failure("push_big")
    assert "INSERT INTO xcom" in run.log, run.describe()
    # ... and this is why: the server refuses any statement above max_allowed_packet.
    assert max_allowed_packet() < BIG


def max_allowed_packet() -> int:
    import MySQLdb

    from .harness import MYSQL_HOST, MYSQL_PORT, MYSQL_USER

    conn = MySQLdb.connect(host=MYSQL_HOST, port=MYSQL_PORT, user=MYSQL_USER)
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT @@max_allowed_packet")
        return int(cursor.fetchone()[0])
    finally:
        conn.close()
