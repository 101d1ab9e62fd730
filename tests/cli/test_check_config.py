"""`xcomstore check-config` proves each location works: it writes, reads back and deletes a
probe object there, and fails on a location it cannot write. Paths that are not what they
look like (`file://tmp/xcom` names the host `tmp`) are refused when the settings are read."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tests.lifecycle.stores import run_cli

from xcomstore.core.settings import Settings
from xcomstore.errors import ConfigError


def test_each_location_is_written_read_and_cleaned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = f"file://{tmp_path}/one", f"file://{tmp_path}/two"
    done = run_cli(capsys, "--path", f"{first}, {second}", "check-config", "--json")
    assert done.code == 0, done.err
    report = json.loads(done.out)
    assert [loc["url"] for loc in report["locations"]] == [first, second]
    for loc in report["locations"]:
        assert loc["ok"] is True
        assert set(loc["seconds"]) == {"write", "read", "delete"}
    assert report["settings"]["paths"] == [first, second]
    assert report["settings"]["threshold"] == 65536
    for folder in ("one", "two"):
        assert list((tmp_path / folder).iterdir()) == [], "the probe is left behind"


def test_text_names_every_location_and_the_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = f"file://{tmp_path}/one", f"file://{tmp_path}/two"
    done = run_cli(capsys, "--path", f"{first},{second}", "check-config")
    assert done.code == 0, done.err
    assert first in done.out
    assert second in done.out
    assert "compression" in done.out
    assert "required_copies" in done.out
    assert "write" in done.out.lower()
    assert "delete" in done.out.lower()


def test_keys_are_never_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="  # base64 of 32 bytes
    monkeypatch.setenv("AIRFLOW__XCOMSTORE__ENCRYPTION_KEYS", f"k1:{secret}")
    done = run_cli(capsys, "--path", f"file://{tmp_path}/s", "check-config", "--json")
    assert done.code == 0, done.err
    assert secret not in done.out
    assert json.loads(done.out)["settings"]["encryption_keys"] == ["k1"]


def test_an_unwritable_location_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = f"file://{tmp_path}/good"
    done = run_cli(capsys, "--path", f"{good}, file:///proc/xcom", "check-config")
    assert done.code == 1, done.out + done.err
    assert "file:///proc/xcom" in done.out + done.err
    assert "configuration OK" not in done.out
    report = json.loads(run_cli(capsys, "--path", f"{good}, file:///proc/xcom", "check-config", "--json").out)
    assert [loc["ok"] for loc in report["locations"]] == [True, False]
    assert report["locations"][1]["error"]


@pytest.mark.s3
def test_on_s3(s3_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    done = run_cli(capsys, "--path", s3_url, "check-config", "--json")
    assert done.code == 0, done.err
    (loc,) = json.loads(done.out)["locations"]
    assert loc["ok"] is True, loc


@pytest.mark.s3
def test_on_s3_a_missing_bucket_fails(s3_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    url = s3_url.replace("@", "@no-such-bucket-", 1)
    done = run_cli(capsys, "--path", url, "check-config")
    assert done.code == 1, done.out
    assert url in done.out + done.err


# -- the path parser ---------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["file://tmp/xcom", "file://var/lib/xcom"])
def test_a_host_in_a_file_url_is_refused(text: str) -> None:
    folder = text[len("file://") :]
    with pytest.raises(ConfigError) as caught:
        Settings.from_mapping({"path": text})
    message = str(caught.value)
    assert f"file:///{folder}" in message, message
    assert "absolute" in message


@pytest.mark.parametrize(
    ("text", "suggested"),
    [("/var/lib/xcom", "file:///var/lib/xcom"), ("tmp/xcom", "file:///absolute/path/to/tmp/xcom")],
)
def test_a_path_without_a_scheme_gets_a_file_url_that_works(text: str, suggested: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_mapping({"path": text})
    assert suggested in str(caught.value)
    assert not re.search("file://[^/]", str(caught.value)), "suggests a URL with a host"


def test_file_urls_that_work_are_kept() -> None:
    assert Settings.from_mapping({"path": "file:///tmp/xcom/"}).paths == ("file:///tmp/xcom",)
