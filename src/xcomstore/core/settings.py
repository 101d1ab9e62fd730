"""The `[xcomstore]` settings: declared once here, parsed and validated into a frozen Settings.

Declaring each option once (name, default, description) feeds both the validation here and the
Airflow provider metadata, so the two can never disagree.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from xcomstore.core.retention import RetentionRule, parse_age, parse_rules
from xcomstore.errors import ConfigError
from xcomstore.format import checksum, compression
from xcomstore.format.encryption import Keyring

SECTION: Final = "xcomstore"
# Keys that Airflow reads from the metadata DB outside the task (the scheduler's skip and
# depends-on-past checks): an offloaded value would be a reference there, so they stay inline.
AIRFLOW_INTERNAL_KEYS: Final = ("skipmixin_key", "past_depends_met")


@dataclass(frozen=True)
class Option:
    name: str
    default: str
    description: str
    example: str


OPTIONS: Final = (
    Option(
        "path",
        "",
        "Where offloaded values are written: any ObjectStoragePath URL, with the Airflow "
        "connection id as the user part (s3://aws_default@bucket/xcom, gs://conn@bucket/x, "
        "abfs://conn@container/x, file:///var/lib/xcom). Required. Several comma-separated "
        "URLs write every value to each of them; reads try them in order.",
        "s3://aws_default@my-bucket/xcom, gs://google_cloud_default@my-backup/xcom",
    ),
    Option(
        "required_copies",
        "all",
        "With several locations in `path`: how many copies must be written for a push to "
        "succeed ('all', or a number from 1). Copies that fail beyond that are logged, "
        "counted in metrics, and restored by `xcomstore repair`.",
        "1",
    ),
    Option(
        "threshold",
        "64KiB",
        "Values whose JSON form is larger than this many bytes go to the object store; smaller "
        "ones stay in the metadata DB exactly as with the default backend. Accepts 65536, 64KiB, "
        "1MB. 0 offloads everything (except Airflow's internal keys). Tables, arrays and bytes "
        "that Airflow cannot store as JSON always go to the store.",
        "1MiB",
    ),
    Option(
        "compression",
        "zstd",
        "Compression of offloaded values: zstd, lz4, gzip or none.",
        "lz4",
    ),
    Option(
        "compression_level",
        "",
        "Compression level; empty for the codec's default (zstd 3, lz4 0, gzip 6).",
        "9",
    ),
    Option(
        "checksum",
        "blake3",
        "The checksum each stored object is sealed with and checked against on every read: "
        "blake3 (fast), or sha256 where a FIPS-approved hash is required. Objects keep the one "
        "they were written with, so changing it never makes older objects unreadable.",
        "sha256",
    ),
    Option(
        "inline_keys",
        "",
        "Comma-separated XCom keys that always stay in the metadata DB, whatever their size. "
        f"{', '.join(AIRFLOW_INTERNAL_KEYS)} always do.",
        "row_count,status",
    ),
    Option(
        "retention",
        "never",
        "Default time-to-live of offloaded values (30m, 12h, 7d, 2w, or never). The expiry is "
        "written into each object's header; `xcomstore gc` deletes expired objects.",
        "30d",
    ),
    Option(
        "retention_rules",
        "",
        "Overrides of `retention` by pattern, first match wins: "
        "'<field>=<pattern>:<age>' separated by ';', field one of dag_id, run_id, task_id, key.",
        "dag_id=reports_*:90d; key=scratch_*:1d; task_id=archive:never",
    ),
    Option(
        "allowed_types",
        "*",
        "What may be pushed, comma-separated: categories (json, table, array, bytes) and/or "
        "patterns of type names (pandas.DataFrame, numpy.ndarray, dict, mypkg.*). A push of "
        "anything else fails the task and stores nothing. '*' allows all.",
        "table, array, json",
    ),
    Option(
        "max_size",
        "",
        "Largest value that may be pushed, in bytes before compression (65536, 64KiB, 2GB); "
        "empty for no limit. A larger value fails the task and stores nothing.",
        "2GiB",
    ),
    Option(
        "signing_keys",
        "",
        "Keys that sign references, as 'key_id:secret' separated by commas; the first signs new "
        "references, all verify. When set, a reference without a valid signature (e.g. written "
        "through the REST API) is refused on read and never purged. Keep it secret: use "
        "AIRFLOW__XCOMSTORE__SIGNING_KEYS_SECRET or _CMD.",
        "k2026:9f1c…, k2025:77ab…",
    ),
    Option(
        "encryption_keys",
        "",
        "Encrypt offloaded values client-side with AES-256-GCM: keys as "
        "'key_id:<base64 of 32 bytes>' separated by commas; the first encrypts, all decrypt, so "
        "keys rotate by putting a new one first (then `xcomstore rekey`). Empty: no encryption. "
        "Keep it secret: AIRFLOW__XCOMSTORE__ENCRYPTION_KEYS_SECRET (secrets backend) or _CMD, "
        "or write 'key_id:var:<variable>' / 'key_id:conn:<connection>' to take the key from an "
        "Airflow variable or a connection's password.",
        "k2026:3q2+7w…=, k2025:Zm9v…=",
    ),
    Option(
        "retries",
        "3",
        "How many times a failed store operation is retried (with exponential backoff) before "
        "the task fails.",
        "5",
    ),
    Option(
        "write_timeout",
        "600",
        "Seconds one attempt to write a value may take before it is abandoned (and retried): "
        "a stalled connection then ends in an error instead of a hung task.",
        "1800",
    ),
    Option(
        "retry_timeout",
        "120",
        "Seconds after which retrying a store operation stops, whatever `retries` says.",
        "300",
    ),
)
_KNOWN: Final = {o.name: o for o in OPTIONS}
_SIZE_RE: Final = re.compile(r"\s*(\d+)\s*([KMGT]i?B?|B)?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Settings:
    paths: tuple[str, ...]
    threshold: int = 65536
    compression: str = "zstd"
    compression_level: int | None = None
    checksum: str = checksum.DEFAULT
    inline_keys: frozenset[str] = frozenset(AIRFLOW_INTERNAL_KEYS)
    retries: int = 3
    retry_timeout: float = 120.0
    write_timeout: float = 600.0
    required_copies: int = 0  # 0: all of them
    retention: float | None = None  # seconds; None keeps forever
    retention_rules: tuple[RetentionRule, ...] = ()
    allowed_types: tuple[str, ...] = ("*",)
    max_size: int | None = None
    signing_keys: tuple[tuple[str, bytes], ...] = ()
    encryption: Keyring = field(default_factory=Keyring)

    @property
    def path(self) -> str:
        """The primary location: written first, read first."""
        return self.paths[0]

    @classmethod
    def from_mapping(cls, raw: Mapping[str, str], *, source: str = "") -> Settings:
        """Validate raw option strings; any unknown, missing or bad option raises ConfigError."""
        _reject_unknown(raw, source)
        value = {o.name: raw.get(o.name, o.default).strip() for o in OPTIONS}
        level = (
            _integer(value["compression_level"], "compression_level") if value["compression_level"] else None
        )
        try:
            compression.check(value["compression"], None)
        except ConfigError as exc:
            raise ConfigError(f"{_label('compression')}: {exc}") from None
        try:
            compression.check(value["compression"], level)
        except ConfigError as exc:
            raise ConfigError(f"{_label('compression_level')}: {exc}") from None
        extra_keys = {k.strip() for k in value["inline_keys"].split(",") if k.strip()}
        paths = _paths(value["path"])
        return cls(
            paths=paths,
            required_copies=_copies(value["required_copies"], len(paths)),
            retention=_age(value["retention"], "retention"),
            retention_rules=_rules(value["retention_rules"]),
            allowed_types=_names(value["allowed_types"], "allowed_types") or ("*",),
            max_size=parse_size(value["max_size"], "max_size") if value["max_size"] else None,
            signing_keys=_keys(value["signing_keys"], "signing_keys"),
            encryption=Keyring.parse(value["encryption_keys"], _label("encryption_keys")),
            threshold=parse_size(value["threshold"], "threshold"),
            compression=value["compression"],
            compression_level=level,
            checksum=checksum.check_name(value["checksum"], _label("checksum")),
            inline_keys=frozenset(AIRFLOW_INTERNAL_KEYS) | extra_keys,
            retries=_integer(value["retries"], "retries"),
            retry_timeout=float(_integer(value["retry_timeout"], "retry_timeout")),
            write_timeout=float(_integer(value["write_timeout"], "write_timeout") or 1),
        )


def _label(name: str) -> str:
    return f"[{SECTION}] {name} (AIRFLOW__{SECTION.upper()}__{name.upper()})"


def _reject_unknown(raw: Mapping[str, str], source: str) -> None:
    for name in raw:
        if name not in _KNOWN:
            close = difflib.get_close_matches(name, _KNOWN, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            where = f" in {source}" if source else ""
            raise ConfigError(
                f"unknown setting {_label(name)}{where}{hint} Known settings: {', '.join(_KNOWN)}."
            )


def _paths(text: str) -> tuple[str, ...]:
    paths = tuple(_path(p.strip()) for p in text.split(",") if p.strip()) or (_path(""),)
    if len(set(paths)) != len(paths):
        raise ConfigError(f"{_label('path')} names the same location twice: {text!r}")
    return paths


def _copies(text: str, locations: int) -> int:
    if text.lower() == "all":
        return 0
    number = _integer(text, "required_copies")
    if not 1 <= number <= locations:
        raise ConfigError(
            f"{_label('required_copies')} = {text!r} must be 'all' or 1..{locations} "
            f"(the number of locations in path)"
        )
    return number


def _names(text: str, name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _keys(text: str, name: str) -> tuple[tuple[str, bytes], ...]:
    """('key_id', secret) pairs from 'id1:secret1, id2:secret2'."""
    keys = []
    for part in _names(text, name):
        key_id, colon, secret = part.partition(":")
        if not colon or not key_id.strip() or len(secret.strip()) < 16:
            raise ConfigError(f"{_label(name)}: each key must be '<key_id>:<secret of 16+ characters>'")
        keys.append((key_id.strip(), secret.strip().encode()))
    if len({k for k, _ in keys}) != len(keys):
        raise ConfigError(f"{_label(name)}: a key id appears twice")
    return tuple(keys)


def _age(text: str, name: str) -> float | None:
    try:
        return parse_age(text)
    except ValueError as exc:
        raise ConfigError(f"{_label(name)}: {exc}") from None


def _rules(text: str) -> tuple[RetentionRule, ...]:
    try:
        return parse_rules(text)
    except ConfigError as exc:
        raise ConfigError(f"{_label('retention_rules')}: {exc}") from None


def _path(text: str) -> str:
    if not text:
        raise ConfigError(
            f"{_label('path')} is not set: name where offloaded values go, e.g. "
            "s3://aws_default@my-bucket/xcom or file:///var/lib/airflow/xcom"
        )
    if "://" not in text:
        raise ConfigError(f"{_label('path')} = {text!r} is not a URL: write file://{text} for a local folder")
    return text.rstrip("/")


def _integer(text: str, name: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise ConfigError(f"{_label(name)} = {text!r} is not a whole number") from None
    if number < 0 and name != "compression_level":
        raise ConfigError(f"{_label(name)} = {text!r} must not be negative")
    return number


def parse_size(text: str, name: str) -> int:
    """Bytes from '65536', '64KiB', '1MB', '2 GiB'."""
    match = _SIZE_RE.fullmatch(text)
    if not match:
        raise ConfigError(f"{_label(name)} = {text!r} is not a size in bytes (e.g. 65536, 64KiB, 1MB)")
    number, unit = int(match.group(1)), (match.group(2) or "").lower()
    base = 1024 if "i" in unit else 1000
    scale = base ** "kmgt".index(unit[0]) * base if unit[:1] in ("k", "m", "g", "t") else 1
    return number * scale
