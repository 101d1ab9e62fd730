"""settings: defaults, sizes, and errors that name the setting and its environment variable."""

from __future__ import annotations

import base64
import dataclasses

import pytest

from xcomstore.core.settings import AIRFLOW_INTERNAL_KEYS, OPTIONS, Option, Settings, parse_size
from xcomstore.errors import ConfigError

PATH = "file:///var/lib/xcom"
SECRET = "0123456789abcdef-secret"
KEY = base64.b64encode(bytes(range(32))).decode()


def settings(**options: str) -> Settings:
    return Settings.from_mapping({"path": PATH, **options})


def test_defaults() -> None:
    s = settings()
    assert s == Settings(paths=(PATH,))
    assert (s.threshold, s.compression, s.compression_level) == (65536, "zstd", None)
    assert s.inline_keys == frozenset(AIRFLOW_INTERNAL_KEYS)
    assert (s.retries, s.retry_timeout) == (3, 120.0)
    assert (s.path, s.paths, s.required_copies) == (PATH, (PATH,), 0)
    assert (s.retention, s.retention_rules) == (None, ())


def test_declared_defaults_parse_to_the_dataclass_defaults() -> None:
    raw = {o.name: o.default for o in OPTIONS}
    assert Settings.from_mapping({**raw, "path": PATH}) == Settings(paths=(PATH,))


def test_every_option_is_documented() -> None:
    for option in OPTIONS:
        assert option.description
        assert option.example


def test_all_options() -> None:
    s = settings(
        threshold="1MiB",
        compression=" lz4 ",
        compression_level="9",
        inline_keys=" row_count, status ,,",
        retries="5",
        retry_timeout="300",
    )
    assert s.threshold == 1 << 20
    assert (s.compression, s.compression_level) == ("lz4", 9)
    assert s.inline_keys == frozenset({*AIRFLOW_INTERNAL_KEYS, "row_count", "status"})
    assert (s.retries, s.retry_timeout) == (5, 300.0)


def test_path_trailing_slash_dropped() -> None:
    assert Settings.from_mapping({"path": "s3://conn@bucket/xcom/"}).path == "s3://conn@bucket/xcom"


def test_checksum_defaults_to_blake3_and_takes_sha256() -> None:
    assert Settings.from_mapping({"path": "file:///tmp/x"}).checksum == "blake3"
    assert Settings.from_mapping({"path": "file:///tmp/x", "checksum": " sha256 "}).checksum == "sha256"
    with pytest.raises(ConfigError, match=r"\[xcomstore\] checksum .*'md5'"):
        Settings.from_mapping({"path": "file:///tmp/x", "checksum": "md5"})


def test_negative_compression_level_for_zstd() -> None:
    assert settings(compression_level="-5").compression_level == -5


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("65536", 65536),
        ("64KiB", 64 * 1024),
        ("64kib", 64 * 1024),
        ("64K", 64_000),
        ("64KB", 64_000),
        ("1MB", 1_000_000),
        ("1MiB", 1 << 20),
        ("2 GiB", 2 << 30),
        (" 3 GB ", 3_000_000_000),
        ("1TiB", 1 << 40),
        ("100B", 100),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text, "threshold") == size
    assert settings(threshold=text).threshold == size


@pytest.mark.parametrize("text", ["", "-1", "1.5MB", "64 KiBs", "lots", "64PB", "MB", "0x10"])
def test_bad_size(text: str) -> None:
    with pytest.raises(ConfigError, match=r"\[xcomstore\] threshold \(AIRFLOW__XCOMSTORE__THRESHOLD\)"):
        settings(threshold=text)


@pytest.mark.parametrize("text", ["64i", "64 iB", "1i", "64 K B"])
def test_size_with_dangling_unit(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_size(text, "threshold")


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("treshold", "threshold"),
        ("compresion", "compression"),
        ("paht", "path"),
        ("inline_key", "inline_keys"),
    ],
)
def test_unknown_setting_with_did_you_mean(name: str, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_mapping({"path": PATH, name: "1"}, source="airflow.cfg")
    message = str(info.value)
    assert f"AIRFLOW__XCOMSTORE__{name.upper()}" in message
    assert f"did you mean {hint!r}?" in message
    assert "in airflow.cfg" in message
    assert "Known settings:" in message


def test_unknown_setting_without_close_match() -> None:
    with pytest.raises(ConfigError, match="unknown setting") as info:
        Settings.from_mapping({"path": PATH, "zzzzzz": "1"})
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize(
    ("options", "setting"),
    [
        ({"compression": "brotli"}, "compression"),
        ({"compression": ""}, "compression"),
        ({"compression_level": "fast"}, "compression_level"),
        ({"compression_level": "1.5"}, "compression_level"),
        ({"threshold": "big"}, "threshold"),
        ({"retries": "-1"}, "retries"),
        ({"retries": "three"}, "retries"),
        ({"retry_timeout": "-5"}, "retry_timeout"),
        ({"retry_timeout": "soon"}, "retry_timeout"),
        ({"path": ""}, "path"),
        ({"path": "   "}, "path"),
        ({"path": "/var/lib/xcom"}, "path"),
        ({"path": "bucket/xcom"}, "path"),
        ({"path": f"{PATH}, bucket/xcom"}, "path"),
        ({"path": f"{PATH}, {PATH}/"}, "path"),
        ({"path": f"{PATH}, s3://b/x", "required_copies": "3"}, "required_copies"),
        ({"required_copies": "0"}, "required_copies"),
        ({"required_copies": "some"}, "required_copies"),
        ({"retention": "7 days"}, "retention"),
        ({"retention": "-1d"}, "retention"),
        ({"retention_rules": "dag_id=x"}, "retention_rules"),
        ({"retention_rules": "owner=x:1d"}, "retention_rules"),
        ({"retention_rules": "dag_id=x:soon"}, "retention_rules"),
        ({"max_size": "big"}, "max_size"),
        ({"max_size": "-1"}, "max_size"),
        ({"signing_keys": "k1:short"}, "signing_keys"),
        ({"signing_keys": "no-secret-at-all-here"}, "signing_keys"),
        ({"signing_keys": f":{SECRET}"}, "signing_keys"),
        ({"signing_keys": f"k1:{SECRET}, k1:{SECRET}x"}, "signing_keys"),
        ({"encryption_keys": "k1:short"}, "encryption_keys"),
        ({"encryption_keys": f"k1:{KEY}, k1:{KEY}"}, "encryption_keys"),
        ({"max_concurrency": "0"}, "max_concurrency"),
        ({"max_concurrency": "-2"}, "max_concurrency"),
        ({"max_concurrency": "many"}, "max_concurrency"),
    ],
)
def test_bad_value_names_setting_and_env_var(options: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_mapping({"path": PATH, **options})
    message = str(info.value)
    assert f"[xcomstore] {setting}" in message
    assert f"AIRFLOW__XCOMSTORE__{setting.upper()}" in message


def test_max_concurrency() -> None:
    assert settings().max_concurrency == 16
    assert (
        settings(max_concurrency=" 1 ").max_concurrency,
        settings(max_concurrency="32").max_concurrency,
    ) == (1, 32)
    with pytest.raises(ConfigError, match="must be at least 1"):
        settings(max_concurrency="0")


def test_several_paths() -> None:
    s = Settings.from_mapping({"path": " file:///a/ ,, s3://conn@bucket/x ", "required_copies": "1"})
    assert s.paths == ("file:///a", "s3://conn@bucket/x")
    assert s.path == "file:///a"
    assert s.required_copies == 1
    assert (
        Settings.from_mapping({"path": "file:///a,file:///b", "required_copies": "ALL"}).required_copies == 0
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30m", 1800.0),
        ("12h", 43200.0),
        ("7d", 604800.0),
        ("2w", 1209600.0),
        ("1.5h", 5400.0),
        ("never", None),
        ("Forever", None),
    ],
)
def test_retention(text: str, seconds: float | None) -> None:
    assert settings(retention=text).retention == seconds


def test_retention_rules() -> None:
    rules = settings(
        retention_rules="dag_id=reports_*:90d; key=scratch_*:1d\ntask_id=archive:never;"
    ).retention_rules
    assert [(r.field, r.pattern, r.ttl) for r in rules] == [
        ("dag_id", "reports_*", 90 * 86400.0),
        ("key", "scratch_*", 86400.0),
        ("task_id", "archive", None),
    ]


def test_allowed_types_and_max_size() -> None:
    s = settings(allowed_types=" table, numpy.ndarray ,, mypkg.* ", max_size="2GiB")
    assert s.allowed_types == ("table", "numpy.ndarray", "mypkg.*")
    assert s.max_size == 2 << 30
    assert settings(allowed_types=" , ").allowed_types == ("*",)
    assert settings().max_size is None


def test_signing_keys() -> None:
    s = settings(signing_keys=f" new:{SECRET}2 , old:{SECRET}1 ")
    assert s.signing_keys == (("new", f"{SECRET}2".encode()), ("old", f"{SECRET}1".encode()))
    assert settings().signing_keys == ()


def test_encryption_keys() -> None:
    s = settings(encryption_keys=f"k2:{KEY}, k1:{base64.b64encode(bytes(32)).decode()}")
    assert s.encryption
    assert s.encryption.active_id == "k2"
    assert dict(s.encryption.keys)["k2"] == bytes(range(32))
    assert not settings().encryption


@pytest.mark.parametrize("text", ["k1:short", f"k1:{KEY[:-4]}", "k1:not base64!", f":{KEY}", KEY])
def test_bad_encryption_keys(text: str) -> None:
    with pytest.raises(ConfigError, match=r"\[xcomstore\] encryption_keys"):
        settings(encryption_keys=text)


def test_missing_path() -> None:
    with pytest.raises(ConfigError, match="is not set") as info:
        Settings.from_mapping({})
    assert "AIRFLOW__XCOMSTORE__PATH" in str(info.value)


def test_path_without_scheme_suggests_file_url() -> None:
    with pytest.raises(ConfigError, match="file:///var/lib/xcom"):
        Settings.from_mapping({"path": "/var/lib/xcom"})


@pytest.mark.parametrize(
    ("compression", "level"), [("gzip", "10"), ("zstd", "23"), ("lz4", "-1"), ("none", "1")]
)
def test_level_out_of_range(compression: str, level: str) -> None:
    with pytest.raises(ConfigError, match=f"level {level} is out of range"):
        settings(compression=compression, compression_level=level)


def test_level_out_of_range_names_the_level_setting() -> None:
    with pytest.raises(ConfigError, match=r"AIRFLOW__XCOMSTORE__COMPRESSION_LEVEL"):
        settings(compression="gzip", compression_level="10")


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the type is the point
        settings(retries="x")


def test_each_option_fills_one_settings_field() -> None:
    filled = [o.settings_field for o in OPTIONS]
    assert sorted(filled) == sorted(f.name for f in dataclasses.fields(Settings))


def test_an_option_with_a_default_shows_it() -> None:
    shown = {o.name: o.shown_default for o in OPTIONS}
    assert (shown["threshold"], shown["path"], shown["inline_keys"]) == ("`64KiB`", "(required)", "")
    with pytest.raises(ValueError, match="only describes an empty default"):
        Option("x", "1", "d", "e", lambda text, parsed: text, unset="(none)")


def test_level_is_checked_against_the_compression_given_with_it() -> None:
    assert settings(compression="gzip", compression_level="9").compression_level == 9
    with pytest.raises(ConfigError, match="COMPRESSION_LEVEL"):
        settings(compression="lz4", compression_level="17")


def test_provider_metadata_lists_every_option_with_its_default() -> None:
    from xcomstore.airflow.provider import get_provider_info

    options = get_provider_info()["config"]["xcomstore"]["options"]
    assert list(options) == [o.name for o in OPTIONS]
    assert options["codecs"]["default"] == ""
    assert options["threshold"]["default"] == "64KiB"
