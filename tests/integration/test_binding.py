"""A reference copied from another DAG's XCom is refused on every read path (security point 6).

A task of one DAG can write any value into its own XCom row (bypassing serialize_value), so a
mapped instance can plant another DAG's genuine reference there. Signing does not stop that:
the reference was signed by this deployment. Only the binding check (the object's path must
name the XCom being read) does, and Airflow reaches the backend by several paths; each is
exercised here by a real DAG (dags/xcs_binding.py), with and without signing keys.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, NamedTuple

import pytest

from xcomstore.airflow import binding
from xcomstore.core.reference import is_reference
from xcomstore.errors import ForgedReferenceError
from xcomstore.identity import Wanted

from .conftest import SPECS, Spec, Target, param
from .harness import RunResult

pytestmark = pytest.mark.airflow

# Signed references: the stolen one carries a valid signature, so only the binding refuses it.
SPECS.setdefault(
    "binding-signed",
    Spec("binding-signed", extra_env={"AIRFLOW__XCOMSTORE__SIGNING_KEYS": "kb:binding-signing-secret-0123"}),
)
CONFIGS = [param("file-zstd"), param("binding-signed")]
MARK = "XCS-BINDING-SECRET"  # dags/xcs_binding_secret.py: in the secret value
N, THIEF = 3, 1
# The readers that go through the sequence (or all map indexes) and so meet the forged row.
READERS = ["iterate", "index", "slices", "pull_all", "pull_indexes"]


@pytest.fixture(params=CONFIGS)
def target(request: pytest.FixtureRequest, all_targets: Any) -> Target:
    return all_targets(request.param)  # type: ignore[no-any-return]


def _stolen(target: Target) -> dict[str, Any]:
    run = target.process.dag_test("xcs_binding_secret")
    assert run.state == "success", run.describe()
    ref = run.value("secret")
    assert is_reference(ref), f"the secret was not offloaded: {str(ref)[:200]}"
    signed = "AIRFLOW__XCOMSTORE__SIGNING_KEYS" in target.config.extra_env
    assert ("sig" in ref) == signed, f"signing_keys set: {signed}, but the reference is {ref}"
    return ref  # type: ignore[no-any-return]


def _assert_refused(run: RunResult, task_id: str, map_index: int = -1) -> None:
    assert run.state_of(task_id, map_index) == "failed", run.describe()
    assert not run.has_row(task_id, map_index=map_index), f"{task_id} produced a value"
    message = run.failure(task_id, map_index)
    assert "ForgedReferenceError" in message, f"{task_id}[{map_index}] failed otherwise:\n{message}"
    assert "belongs to another XCom" in message, message
    assert "xcs_binding/" in message, f"the error does not name the XCom read:\n{message}"
    assert MARK not in run.task_log(task_id, map_index), f"{task_id} saw the other DAG's value"


def test_stolen_reference_is_refused_on_every_read_path(target: Target) -> None:
    stolen = _stolen(target)
    env = {"XCS_STOLEN_REF": json.dumps(stolen), "XCS_THIEF_INDEX": str(THIEF)}
    run = target.process.dag_test("xcs_binding", env=env)
    assert run.value("produce", map_index=THIEF) == stolen, "the forged row was not planted"
    # .expand over the output: only the instance given the forged row fails.
    _assert_refused(run, "consume", THIEF)
    for index in set(range(N)) - {THIEF}:
        assert run.state_of("consume", index) == "success", run.describe()
        assert run.value("consume", map_index=index) == f"part-{index}"
    for task_id in READERS:
        _assert_refused(run, task_id)
    assert MARK not in run.log, "the other DAG's value appeared in the run's log"


def test_mapped_fan_in_of_offloaded_values_still_works(target: Target) -> None:
    run = target.process.dag_test("xcs_binding")
    assert run.state == "success", run.describe()
    parts = [f"part-{i}" for i in range(N)]
    assert all(run.row("produce", map_index=i).is_reference for i in range(N))
    assert [run.value("consume", map_index=i) for i in range(N)] == parts
    assert run.value("iterate") == parts
    assert run.value("index") == {"len": N, "one": "part-1", "last": f"part-{N - 1}"}
    assert run.value("slices") == parts
    assert run.value("pull_all") == parts
    assert run.value("pull_indexes") == parts


# -- where Airflow gives no identity: refused, never read unchecked (no DAG run needed) --------
class Row(NamedTuple):
    """What the SDK hands deserialize_value on its sequence paths: the value alone."""

    value: Any


ORIGIN = {"key": "return_value", "dag_id": "d", "task_id": "t", "run_id": "r", "map_index": 0}
OWN = Wanted(dag_id="d", run_id="r", task_id="t", key="return_value")


class FakeSequence:
    """The fields LazyXComSequence has (SDK 3.1-3.3), reading rows as it does."""

    def __init__(self, backend: Any, rows: list[Any], task_id: str = "t") -> None:
        self._xcom_arg = SimpleNamespace(
            operator=SimpleNamespace(dag_id="d", task_id=task_id), key="return_value"
        )
        self._ti = SimpleNamespace(run_id="r")
        self.backend, self.rows = backend, rows

    def __getitem__(self, index: int) -> Any:
        return self.backend.deserialize_value(Row(self.rows[index]))


def _offloaded(backend: Any, value: str = "v" * 1000, **origin: Any) -> Any:
    ref = backend.serialize_value(value, **{**ORIGIN, **origin})
    assert is_reference(ref)
    return ref


def test_a_read_with_no_identity_refuses_an_offloaded_value(backend: Any) -> None:
    ref = _offloaded(backend)
    with pytest.raises(ForgedReferenceError, match="gave no identity"):
        backend.deserialize_value(Row(ref))
    assert backend.deserialize_value(Row({"inline": 1})) == {"inline": 1}  # the row itself
    with binding.reading(OWN):
        assert backend.deserialize_value(Row(ref)) == "v" * 1000


def test_a_purge_with_no_identity_deletes_nothing(backend: Any) -> None:
    ref = _offloaded(backend)
    backend.purge(Row(ref))  # logs, never fails the task
    with binding.reading(OWN):
        assert backend.deserialize_value(Row(ref)) == "v" * 1000


def test_a_bound_sequence_reads_only_its_own_task(backend: Any) -> None:
    class Sequence(FakeSequence):
        pass

    binding.bind(Sequence)
    own, other = _offloaded(backend), _offloaded(backend, "o" * 1000, task_id="other")
    assert Sequence(backend, [own])[0] == "v" * 1000
    with pytest.raises(ForgedReferenceError, match="belongs to another XCom"):
        Sequence(backend, [other])[0]
    assert Sequence(backend, [other], task_id="other")[0] == "o" * 1000


def test_a_sequence_of_unknown_layout_is_refused(backend: Any) -> None:
    class Unknown(FakeSequence):
        pass

    binding.bind(Unknown)
    sequence = Unknown(backend, [_offloaded(backend)])
    del sequence._xcom_arg
    with binding.reading(OWN), pytest.raises(ForgedReferenceError, match="gave no identity"):
        sequence[0]  # an outer read's identity does not cover it


def test_the_sdk_lazy_sequence_is_bound(backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.execution_time.lazy_sequence import LazyXComSequence

    getitem = LazyXComSequence.__getitem__
    assert getattr(getitem, "__xcomstore_bound__", False)
    assert binding.install()
    assert LazyXComSequence.__getitem__ is getitem  # wrapped once
    fields: Any = FakeSequence(backend, [])  # stand-ins for the XComArg and task instance
    real: Any = LazyXComSequence(xcom_arg=fields._xcom_arg, ti=fields._ti)
    assert binding.sequence_wanted(real) == OWN
    monkeypatch.setattr(binding, "_SEQUENCE_MODULES", ("no.such.module",))
    assert not binding.install()
