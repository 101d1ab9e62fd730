"""A store URL whose scheme has no filesystem installed: one ConfigError naming the package to
install, from Airflow's filesystem registry (its providers register the schemes) and, without
Airflow, from fsspec's."""

from __future__ import annotations

from typing import Any

import pytest

from xcomstore import cli
from xcomstore.airflow import environment
from xcomstore.errors import ConfigError


@pytest.fixture
def no_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Airflow's registry as it is with no provider installed: only file:// and local://."""
    from airflow.sdk.io import fs

    monkeypatch.setattr(fs, "_register_filesystems", lambda: dict(fs._BUILTIN_SCHEME_TO_FS))


@pytest.mark.parametrize(
    ("url", "package"),
    [
        ("s3://aws_default@bucket/xcom", "apache-airflow-providers-amazon"),
        ("gs://google_cloud_default@bucket/xcom", "apache-airflow-providers-google"),
        ("gcs://bucket/xcom", "apache-airflow-providers-google"),
        ("abfs://wasb_default@container/xcom", "apache-airflow-providers-microsoft-azure"),
        ("az://container/xcom", "apache-airflow-providers-microsoft-azure"),
        ("adl://store/xcom", "apache-airflow-providers-microsoft-azure"),
    ],
)
def test_airflow_without_the_provider_names_it(no_providers: None, url: str, package: str) -> None:
    with pytest.raises(ConfigError, match=package) as caught:
        environment.airflow_filesystem(url)
    assert "\n" not in str(caught.value)
    assert f"pip install {package}" in str(caught.value)


def test_an_unknown_scheme_is_a_config_error(no_providers: None) -> None:
    with pytest.raises(ConfigError, match="no filesystem for 'nosuch'"):
        environment.airflow_filesystem("nosuch://bucket/xcom")


def test_the_cli_says_it_in_one_line(
    no_providers: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["--path", "s3://aws_default@bucket/xcom", "check-config"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert "apache-airflow-providers-amazon" in err
    assert "Traceback" not in err


def test_without_airflow_fsspec_names_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec

    def missing(protocol: str) -> Any:
        raise ImportError(f"Install s3fs to access {protocol}")

    monkeypatch.setattr(fsspec, "get_filesystem_class", missing)
    with pytest.raises(ConfigError, match="pip install s3fs"):
        environment.plain_filesystem("s3://bucket/xcom")


def test_without_airflow_an_unknown_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no filesystem for 'nosuch'"):
        environment.plain_filesystem("nosuch://bucket/xcom")
