"""Decoders never crash the process (security issue, point 3). Each object here is valid, then
has payload bytes changed and is re-sealed, as whoever can write to the bucket can: string
offsets that decrease, go negative or point past the data, dictionary indices out of range, a
.npy that needs pickle or claims absurd records. Before this point polars segfaulted inside
from_arrow, a pyarrow Table came back invalid (and aborted the process when used), and a polars
PanicException (a BaseException) escaped. Every read runs in a child process
(tests/faults/hostile.py): it must end in an xcomstore error, by a normal exit, never a signal.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.faults import hostile

from xcomstore.errors import ObjectFormatError

WORDS = ["aaaa", "bbbb", "cccc", "dddd"]
GOOD_OFFSETS = struct.pack("<5i", 0, 4, 8, 12, 16)
BAD_OFFSETS = {
    "decreasing": struct.pack("<5i", 0, 12, 4, 8, 16),
    "negative": struct.pack("<5i", 0, -40, 8, 12, 16),
    "past-the-data": struct.pack("<5i", 0, 4, 8, 12, 1 << 20),
    "start-past-the-end": struct.pack("<5i", 1 << 30, 4, 8, 12, 16),
}
FLAVOURS = ["pyarrow.Table", "pandas.DataFrame", "polars.DataFrame", "polars.Series", "pandas.Series"]


def replace_once(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    def change(payload: bytes) -> bytes:
        assert payload.count(old) == 1, "the pattern to change must be found exactly once"
        return payload.replace(old, new)

    return change


def string_table(flavour: str) -> bytes:
    """A valid uncompressed Arrow object of one string column, as `flavour`."""
    import pyarrow as pa

    column = "values" if flavour.endswith("Series") else "s"
    ipc = hostile.arrow_ipc(pa.table({column: pa.array(WORDS)}))
    meta: dict[str, Any] = {"flavour": flavour, "rows": len(WORDS), "columns": 1}
    if flavour.endswith("Series"):
        meta = {"flavour": flavour, "name": "s", "rows": len(WORDS)}
    return hostile.sealed("arrow", "none", ipc, meta, type_name=flavour)


def assert_contained(report: dict[str, Any]) -> None:
    """An xcomstore error reached by a normal exit: no signal, nothing else escaping."""
    assert "signal" not in report, f"the reader died of signal {report.get('signal')}: {report}"
    assert report.get("outcome") == "error", report
    assert report["error"] in {"ObjectFormatError", "CorruptObjectError"}, report


def test_the_unchanged_object_reads(tmp_path: Path) -> None:
    report = hostile.run_read(tmp_path, string_table("polars.DataFrame"))
    assert report.get("outcome") == "value", report


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("damage", list(BAD_OFFSETS))
def test_bad_string_offsets_are_an_object_format_error(flavour: str, damage: str, tmp_path: Path) -> None:
    data = hostile.reseal(string_table(flavour), replace_once(GOOD_OFFSETS, BAD_OFFSETS[damage]))
    assert_contained(hostile.run_read(tmp_path, data))


@pytest.mark.parametrize("flavour", ["pyarrow.Table", "pandas.DataFrame", "polars.DataFrame"])
def test_dictionary_indices_out_of_range_are_an_object_format_error(flavour: str, tmp_path: Path) -> None:
    import pyarrow as pa

    indices = pa.array([0, 1, 0, 1, 1, 0, 1, 0], type=pa.int32())
    table = pa.table({"c": pa.DictionaryArray.from_arrays(indices, pa.array(["x", "y"]))})
    ipc = hostile.arrow_ipc(table)
    data = hostile.sealed("arrow", "none", ipc, {"flavour": flavour, "rows": 8, "columns": 1})
    good = struct.pack("<8i", 0, 1, 0, 1, 1, 0, 1, 0)
    bad = struct.pack("<8i", 0, 1, 0, 1 << 28, 1, 0, -3, 0)
    assert_contained(hostile.run_read(tmp_path, hostile.reseal(data, replace_once(good, bad))))


@pytest.mark.parametrize("flavour", ["pyarrow.Table", "pandas.DataFrame", "polars.DataFrame"])
def test_bad_list_offsets_are_an_object_format_error(flavour: str, tmp_path: Path) -> None:
    import pyarrow as pa

    table = pa.table({"l": pa.array([[1, 2], [3, 4], [5, 6], [7, 8]], type=pa.list_(pa.int64()))})
    data = hostile.sealed(
        "arrow", "none", hostile.arrow_ipc(table), {"flavour": flavour, "rows": 4, "columns": 1}
    )
    good, bad = struct.pack("<5i", 0, 2, 4, 6, 8), struct.pack("<5i", 0, 6, 2, 4, 1 << 24)
    assert_contained(hostile.run_read(tmp_path, hostile.reseal(data, replace_once(good, bad))))


@pytest.mark.parametrize("flavour", ["pyarrow.Table", "polars.DataFrame"])
def test_invalid_utf8_is_an_object_format_error(flavour: str, tmp_path: Path) -> None:
    data = hostile.reseal(string_table(flavour), replace_once(b"bbbb", b"b\xff\xfeb"))
    assert_contained(hostile.run_read(tmp_path, data))


# -- NumPy -------------------------------------------------------------------------------------
def test_npy_of_objects_is_refused(tmp_path: Path) -> None:
    report = hostile.run_read(tmp_path, hostile.npy_header_only((2,), "|O", b"\x00" * 16))
    assert_contained(report)
    assert "Python objects" in report["message"], report


def test_npy_with_absurd_records_is_refused_before_allocating(tmp_path: Path) -> None:
    """No max_size, no reference: a 2 GB record is refused from its dtype alone."""
    report = hostile.run_read(tmp_path, hostile.npy_header_only((1,), [("a", "V2000000000")]))
    assert_contained(report)
    assert "records are 2000000000 bytes" in report["message"], report
    assert report["rss_growth"] < 64 << 20


def test_npy_shape_other_than_the_header_is_refused(tmp_path: Path) -> None:
    data = hostile.npy_header_only((2,), "<f8", b"\x00" * 16)
    data = hostile.sealed(
        "numpy",
        "none",
        data[len(data) - 80 - (len(data) - 80 - _payload_start(data)) : -80],
        {"dtype": "float64", "shape": [3]},
    )
    report = hostile.run_read(tmp_path, data)
    assert_contained(report)
    assert "shape" in report["message"], report


def _payload_start(data: bytes) -> int:
    from xcomstore.format.container import PREFIX_SIZE, parse_prefix

    return PREFIX_SIZE + parse_prefix(data[:PREFIX_SIZE])


# -- what escapes a decoder ---------------------------------------------------------------------
def _decode_with(raiser: Callable[[Any], Any]) -> Any:
    import io

    from xcomstore.format.container import decode_payload, open_object

    data = hostile.sealed("bytes", "none", b"payload")
    obj = open_object(io.BytesIO(data), len(data))
    return decode_payload(obj, raiser)


def test_a_polars_panic_is_an_object_format_error() -> None:
    from polars.exceptions import PanicException

    def panic(source: Any) -> Any:
        raise PanicException("index out of bounds")

    with pytest.raises(ObjectFormatError, match="PanicException"):
        _decode_with(panic)


@pytest.mark.parametrize("kind", [KeyboardInterrupt, SystemExit])
def test_interrupts_still_escape_a_decoder(kind: type[BaseException]) -> None:
    def interrupt(source: Any) -> Any:
        raise kind()

    with pytest.raises(kind):
        _decode_with(interrupt)
