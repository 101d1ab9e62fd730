"""`xcomstore show` verifies the object before showing it (or says plainly, with --no-verify,
that it did not), and exits non-zero on a damaged one; `ls --json` and `show --json` report the
compression the payload really has: an Arrow table's own buffer compression included."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.lifecycle.stores import Place, RawObjects, flip_payload_byte, make_store, origin, run_cli

from xcomstore.airflow.plugin import views
from xcomstore.ops import preview


def frame(rows: int = 200_000) -> pd.DataFrame:
    return pd.DataFrame({"id": np.arange(rows), "x": np.linspace(0, 1, rows)})


def push(place: Place, value: Any, key: str = "value", **options: str) -> str:
    store = make_store([place.url], place.opener, **options)
    return str(store.push(value, origin(key=key))["uri"])


def said(err: str) -> list[str]:
    """The CLI's own lines on stderr (Airflow's provider hooks may log there too)."""
    return [line for line in err.splitlines() if line.startswith(("xcomstore", "Traceback"))]


def test_show_of_a_damaged_object_fails_naming_the_damage(
    place: Place, raw: RawObjects, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = push(place, frame())
    raw.write(uri, flip_payload_byte(raw.read(uri)))
    for extra in ([], ["--json"]):
        done = run_cli(capsys, "--path", place.url, "show", uri, *extra)
        assert done.code == 2, done.out
        (line,) = said(done.err)
        assert "checksum" in line
        assert "--no-verify" in line
        assert "id (int64)" not in done.out  # no preview of what failed its checksum


def test_show_says_it_verified(place: Place, capsys: pytest.CaptureFixture[str]) -> None:
    uri = push(place, frame(100))
    done = run_cli(capsys, "--path", place.url, "show", uri)
    assert done.code == 0, done.err
    assert "verified format, origin and checksum" in done.out
    done = run_cli(capsys, "--path", place.url, "show", uri, "--json")
    assert done.json()["verified"] is True


def test_show_no_verify_says_plainly_it_did_not(
    place: Place, raw: RawObjects, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = push(place, np.arange(100_000.0))
    raw.write(uri, flip_payload_byte(raw.read(uri)))
    done = run_cli(capsys, "--path", place.url, "show", uri, "--no-verify")
    assert done.code == 0, done.err
    assert "NOT VERIFIED" in done.out
    assert (
        run_cli(capsys, "--path", place.url, "show", uri, "--no-verify", "--json").json()["verified"] is False
    )
    # A table is stored as blocks, each verified as it is read: a damaged one is never shown.
    uri = push(place, frame())
    raw.write(uri, flip_payload_byte(raw.read(uri)))
    done = run_cli(capsys, "--path", place.url, "show", uri, "--no-verify")
    assert done.code != 0
    assert "does not match its checksum" in done.err


@pytest.mark.parametrize(
    ("value", "compression", "expected"),
    [
        (frame(100), "zstd", "zstd"),  # Arrow compresses its own buffers; the stream is "none"
        (frame(100), "gzip", "gzip"),
        (frame(100), "none", "none"),
        (np.arange(1000), "zstd", "zstd"),
        ({"a": list(range(100))}, "gzip", "gzip"),
    ],
)
def test_ls_and_show_json_report_the_real_compression(
    place: Place, capsys: pytest.CaptureFixture[str], value: Any, compression: str, expected: str
) -> None:
    uri = push(place, value, compression=compression)
    (listed,) = run_cli(capsys, "--path", place.url, "ls", "--json").json()
    assert listed["compression"] == expected
    shown = run_cli(capsys, "--path", place.url, "show", uri, "--json").json()
    assert shown["compression"] == expected
    assert shown["header"]["compression"] == expected
    header = make_store([place.url], place.opener).head(uri)
    assert views.compression(header) == preview.compression(header) == expected
