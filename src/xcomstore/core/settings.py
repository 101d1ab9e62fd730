"""The `[xcomstore]` settings: declared once here, parsed and validated into a frozen Settings.

Each option is declared once, with its default, its description and its parser, and that one
declaration feeds the parsing here, the Airflow provider metadata and the README's table (a
test compares them), so none of them can disagree.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from xcomstore.core import routes
from xcomstore.core.retention import RetentionRule, parse_age, parse_rules
from xcomstore.core.routes import Route, Routing
from xcomstore.errors import ConfigError
from xcomstore.format import checksum, compression
from xcomstore.format.encryption import Keyring

SECTION: Final = "xcomstore"
# Keys that Airflow reads from the metadata DB outside the task (the scheduler's skip and
# depends-on-past checks): an offloaded value would be a reference there, so they stay inline.
AIRFLOW_INTERNAL_KEYS: Final = ("skipmixin_key", "past_depends_met")

#: Turns an option's text (stripped) into its Settings value. The second argument holds the
#: values parsed so far, by Settings field, for the checks that span options: OPTIONS is ordered
#: so that what a parser reads is always parsed before it.
Parser = Callable[[str, Mapping[str, Any]], Any]

_SIZE_RE: Final = re.compile(r"\s*(\d+)\s*([KMGT]i?B?|B)?\s*", re.IGNORECASE)


def _label(name: str) -> str:
    return f"[{SECTION}] {name} (AIRFLOW__{SECTION.upper()}__{name.upper()})"


@dataclass(frozen=True)
class Option:
    name: str
    default: str
    description: str
    example: str
    parse: Parser
    #: The Settings field the parsed value fills; empty when it is the option's name.
    fills: str = ""
    #: What an empty default means, as the docs show it: "(required)", "(none)",
    #: "(codec default)", or "" when empty simply means nothing is set.
    unset: str = ""

    def __post_init__(self) -> None:
        if self.default and self.unset:
            raise ValueError(f"option {self.name!r}: `unset` only describes an empty default")

    @property
    def settings_field(self) -> str:
        return self.fills or self.name

    @property
    def shown_default(self) -> str:
        """The default as the README's configuration table shows it."""
        return f"`{self.default}`" if self.default else self.unset


# -- parsers, one per option (in OPTIONS' order) -----------------------------------------------
def _paths(text: str, parsed: Mapping[str, Any]) -> tuple[str, ...]:
    paths = tuple(_path(p.strip()) for p in text.split(",") if p.strip()) or (_path(""),)
    if len(set(paths)) != len(paths):
        raise ConfigError(f"{_label('path')} names the same location twice: {text!r}")
    return paths


def _path(text: str, label: str = _label("path")) -> str:
    if not text:
        raise ConfigError(
            f"{_label('path')} is not set: name where offloaded values go, e.g. "
            "s3://aws_default@my-bucket/xcom or file:///var/lib/airflow/xcom"
        )
    if "://" not in text:
        raise ConfigError(f"{label} = {text!r} is not a URL: {_local_hint(text)}")
    scheme, _, rest = text.partition("://")
    if scheme == "file" and not rest.startswith("/"):
        # file://tmp/xcom is the folder /xcom on the host `tmp`, not ./tmp/xcom nor /tmp/xcom
        host = rest.partition("/")[0]
        raise ConfigError(f"{label} = {text!r} names the host {host!r}: {_local_hint(rest)}")
    return text.rstrip("/")


def _local_hint(folder: str) -> str:
    """How a local folder is written: file:// and its absolute path, three slashes in all."""
    if folder.startswith("/"):
        return f"write file://{folder} for a local folder"
    return f"a local folder needs its absolute path: file:///absolute/path/to/{folder} (file:///{folder} for /{folder})"


def _copies(text: str, parsed: Mapping[str, Any]) -> int:
    """0 for 'all'; otherwise a number of copies, which `path` must have as many locations for."""
    if text.lower() == "all":
        return 0
    locations = len(parsed["paths"])
    number = _integer(text, "required_copies")
    if not 1 <= number <= locations:
        raise ConfigError(
            f"{_label('required_copies')} = {text!r} must be 'all' or 1..{locations} "
            f"(the number of locations in path)"
        )
    return number


def _routes(text: str, parsed: Mapping[str, Any]) -> tuple[Route, ...]:
    """The rules, each URL checked as `path`'s are; no location may lie inside another."""
    try:
        rules = routes.parse_rules(text, lambda url: _path(url, "URL"), parsed["required_copies"])
        routes.check_nesting(Routing.of(rules, parsed["paths"]).urls)
    except ConfigError as exc:
        raise ConfigError(f"{_label('routes')}: {exc}") from None
    return rules


def _threshold(text: str, parsed: Mapping[str, Any]) -> int:
    return parse_size(text, "threshold")


def _compression(text: str, parsed: Mapping[str, Any]) -> str:
    try:
        compression.check(text, None)
    except ConfigError as exc:
        raise ConfigError(f"{_label('compression')}: {exc}") from None
    return text


def _level(text: str, parsed: Mapping[str, Any]) -> int | None:
    """A level the chosen `compression` accepts (parsed before), or None for its default."""
    level = _integer(text, "compression_level") if text else None
    try:
        compression.check(parsed["compression"], level)
    except ConfigError as exc:
        raise ConfigError(f"{_label('compression_level')}: {exc}") from None
    return level


def _checksum(text: str, parsed: Mapping[str, Any]) -> str:
    return checksum.check_name(text, _label("checksum"))


def _inline_keys(text: str, parsed: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(AIRFLOW_INTERNAL_KEYS) | set(_names(text))


def _retention(text: str, parsed: Mapping[str, Any]) -> float | None:
    try:
        return parse_age(text)
    except ValueError as exc:
        raise ConfigError(f"{_label('retention')}: {exc}") from None


def _rules(text: str, parsed: Mapping[str, Any]) -> tuple[RetentionRule, ...]:
    try:
        return parse_rules(text)
    except ConfigError as exc:
        raise ConfigError(f"{_label('retention_rules')}: {exc}") from None


def _allowed_types(text: str, parsed: Mapping[str, Any]) -> tuple[str, ...]:
    return _names(text) or ("*",)


def _max_size(text: str, parsed: Mapping[str, Any]) -> int | None:
    return parse_size(text, "max_size") if text else None


# 'pkg.module:Class' or 'pkg.module.Class': checked here, imported only by the codecs layer.
_CLASS_NAME_RE: Final = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*)?")


def _codecs(text: str, parsed: Mapping[str, Any]) -> tuple[str, ...]:
    """The codec class names, syntax checked so that a typo stops start-up; the classes are
    loaded by CodecRegistry.configured, as settings never import user code."""
    names = _names(text)
    for name in names:
        if not _CLASS_NAME_RE.fullmatch(name) or not {".", ":"} & set(name):
            raise ConfigError(
                f"{_label('codecs')}: {name!r} is not a class name: write 'module:Class' or 'module.Class'"
            )
    return names


def _signing_keys(text: str, parsed: Mapping[str, Any]) -> tuple[tuple[str, bytes], ...]:
    """('key_id', secret) pairs from 'id1:secret1, id2:secret2'."""
    keys = []
    for part in _names(text):
        key_id, colon, secret = part.partition(":")
        if not colon or not key_id.strip() or len(secret.strip()) < 16:
            raise ConfigError(
                f"{_label('signing_keys')}: each key must be '<key_id>:<secret of 16+ characters>'"
            )
        keys.append((key_id.strip(), secret.strip().encode()))
    if len({k for k, _ in keys}) != len(keys):
        raise ConfigError(f"{_label('signing_keys')}: a key id appears twice")
    return tuple(keys)


def _encryption_keys(text: str, parsed: Mapping[str, Any]) -> Keyring:
    return Keyring.parse(text, _label("encryption_keys"))


def _common_io_path(text: str, parsed: Mapping[str, Any]) -> str:
    """Empty (then Airflow's [common.io] xcom_objectstorage_path is used), or a URL."""
    if not text:
        return ""
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise ConfigError(f"{_label('common_io_path')} = {text!r} is not a URL: {_local_hint(text)}")
    if scheme == "file" and not rest.startswith("/"):
        raise ConfigError(f"{_label('common_io_path')} = {text!r} names a host: {_local_hint(rest)}")
    return text.rstrip("/")


def _whole(name: str) -> Parser:
    """A parser of a whole number of at least 0, as an int."""
    return lambda text, parsed: _integer(text, name)


def _seconds(name: str, *, least: int = 0) -> Parser:
    """A parser of a whole number of seconds, as a float; 0 becomes `least` (when set)."""
    return lambda text, parsed: float(_integer(text, name) or least)


def _concurrency(text: str, parsed: Mapping[str, Any]) -> int:
    number = _integer(text, "max_concurrency")
    if number < 1:
        raise ConfigError(
            f"{_label('max_concurrency')} = {text!r} must be at least 1 (1 reads values one after another)"
        )
    return number


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


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


# Parsed in this order: `path` before `required_copies` before `routes`, `compression` before its level.
OPTIONS: Final = (
    Option(
        "path",
        "",
        "Where offloaded values are written: any ObjectStoragePath URL, with the Airflow "
        "connection id as the user part (s3://aws_default@bucket/xcom, gs://conn@bucket/x, "
        "abfs://conn@container/x, file:///var/lib/xcom). Required. Several comma-separated "
        "URLs write every value to each of them; reads try them in order.",
        "s3://aws_default@my-bucket/xcom, gs://google_cloud_default@my-backup/xcom",
        _paths,
        fills="paths",
        unset="(required)",
    ),
    Option(
        "required_copies",
        "all",
        "With several locations in `path` (or in a route): how many copies must be written for a push to "
        "succeed ('all', or a number from 1). Copies that fail beyond that are logged, "
        "counted in metrics, and restored by `xcomstore repair`.",
        "1",
        _copies,
    ),
    Option(
        "routes",
        "",
        "Rules that send some XComs elsewhere than `path`, first match wins: "
        "'<field>=<glob>[, <field>=<glob>...] -> <url>[, <url>...]' separated by ';' or new lines, "
        "field one of dag_id, task_id, run_id, key, team (the DAG's team in multi-team mode). "
        "Several URLs are replicas, as in `path`; XComs no rule matches go to `path`. Reads follow "
        "a reference only into the locations of the route that placed it (see Routing).",
        "dag_id=finance_* -> s3://finance@finance-bucket/xcom; team=ml -> gs://ml@models/xcom, s3://dr@dr/xcom",
        _routes,
    ),
    Option(
        "threshold",
        "64KiB",
        "Values whose JSON form is larger than this many bytes go to the object store; smaller "
        "ones stay in the metadata DB exactly as with the default backend. Accepts 65536, 64KiB, "
        "1MB. 0 offloads everything (except Airflow's internal keys). Tables, arrays and bytes "
        "that Airflow cannot store as JSON always go to the store.",
        "1MiB",
        _threshold,
    ),
    Option(
        "compression",
        "zstd",
        "Compression of offloaded values: zstd, lz4, gzip or none. Bytes and array frames that "
        "would not shrink by an eighth are stored uncompressed.",
        "lz4",
        _compression,
    ),
    Option(
        "compression_level",
        "",
        "Compression level; empty for the codec's default (zstd 3, lz4 0, gzip 6).",
        "9",
        _level,
        unset="(codec default)",
    ),
    Option(
        "checksum",
        "blake3",
        "The checksum each stored object is sealed with and checked against on every read: "
        "blake3 (fast), or sha256 where a FIPS-approved hash is required. Objects keep the one "
        "they were written with, so changing it never makes older objects unreadable.",
        "sha256",
        _checksum,
    ),
    Option(
        "inline_keys",
        "",
        "Comma-separated XCom keys that always stay in the metadata DB, whatever their size. "
        f"{', '.join(AIRFLOW_INTERNAL_KEYS)} always do.",
        "row_count,status",
        _inline_keys,
    ),
    Option(
        "retention",
        "never",
        "Default time-to-live of offloaded values (30m, 12h, 7d, 2w, or never). The expiry is "
        "written into each object's header; `xcomstore gc` deletes expired objects.",
        "30d",
        _retention,
    ),
    Option(
        "retention_rules",
        "",
        "Overrides of `retention` by pattern, first match wins: "
        "'<field>=<pattern>:<age>' separated by ';', field one of dag_id, run_id, task_id, key.",
        "dag_id=reports_*:90d; key=scratch_*:1d; task_id=archive:never",
        _rules,
    ),
    Option(
        "allowed_types",
        "*",
        "What may be pushed, comma-separated: categories (json, table, array, bytes) and/or "
        "patterns of type names (pandas.DataFrame, numpy.ndarray, dict, mypkg.*). A push of "
        "anything else fails the task and stores nothing. '*' allows all.",
        "table, array, json",
        _allowed_types,
    ),
    Option(
        "max_size",
        "",
        "Largest value that may be pushed, in bytes before compression (65536, 64KiB, 2GB); "
        "empty for no limit. A larger value fails the task and stores nothing.",
        "2GiB",
        _max_size,
        unset="(none)",
    ),
    Option(
        "codecs",
        "",
        "Your own codecs, comma-separated, as 'module:Class' or 'module.Class' names of "
        "xcomstore.codecs.Codec subclasses. They are tried in this order before the codecs of "
        "installed packages (the xcomstore.codecs entry point group) and the built-in ones; "
        "none may take a built-in codec's name (arrow, numpy, bytes, json) nor be a pickle.",
        "mypkg.codecs:PointCodec",
        _codecs,
    ),
    Option(
        "signing_keys",
        "",
        "Keys that sign references, as 'key_id:secret' separated by commas; the first signs new "
        "references, all verify. When set, a reference without a valid signature (e.g. written "
        "through the REST API) is refused on read and never purged. Keep it secret: use "
        "AIRFLOW__XCOMSTORE__SIGNING_KEYS_SECRET or _CMD.",
        "k2026:9f1c…, k2025:77ab…",
        _signing_keys,
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
        _encryption_keys,
        fills="encryption",
    ),
    Option(
        "retries",
        "3",
        "How many times a failed store operation is retried (with exponential backoff) before "
        "the task fails.",
        "5",
        _whole("retries"),
    ),
    Option(
        "write_timeout",
        "600",
        "Seconds one attempt to write a value may take before it is abandoned (and retried): "
        "a stalled connection then ends in an error instead of a hung task.",
        "1800",
        _seconds("write_timeout", least=1),
    ),
    Option(
        "retry_timeout",
        "120",
        "Seconds after which retrying a store operation stops, whatever `retries` says.",
        "300",
        _seconds("retry_timeout"),
    ),
    Option(
        "common_io_path",
        "",
        "Where common-io's XCom backend wrote its objects, for XComs written before switching "
        "to xcomstore; empty: Airflow's [common.io] xcom_objectstorage_path. A row holding "
        "exactly a path common-io writes there, for that XCom, is read (and purged) as "
        "common-io's object; any other string stays a string. `xcomstore migrate "
        "--from-common-io` rewrites them as xcomstore objects.",
        "s3://aws_default@my-bucket/common-io-xcom",
        _common_io_path,
    ),
    Option(
        "max_concurrency",
        "16",
        "How many offloaded values a task reads at once when it receives many together (all "
        "map indexes of a mapped task: xcom_pull, iterating or slicing its lazy sequence, "
        "xcomstore.pull with map_index=None). Values come back in order; at most this many "
        "(and two more, read ahead) are held at a time. 1 reads them one after another. 16 keeps "
        "two cores busy against a store that answers in tens of milliseconds; an S3 connection "
        "opens 10 connections at most unless its extra says config_kwargs.max_pool_connections.",
        "4",
        _concurrency,
    ),
)
_KNOWN: Final = {o.name: o for o in OPTIONS}


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
    routes: tuple[Route, ...] = ()  # the rules; `routing` adds `path` as the fallback
    retention: float | None = None  # seconds; None keeps forever
    retention_rules: tuple[RetentionRule, ...] = ()
    allowed_types: tuple[str, ...] = ("*",)
    max_size: int | None = None
    codecs: tuple[str, ...] = ()  # class names; CodecRegistry.configured loads them
    signing_keys: tuple[tuple[str, bytes], ...] = ()
    encryption: Keyring = field(default_factory=Keyring)
    common_io_path: str = ""  # empty: [common.io] xcom_objectstorage_path, read by the Airflow glue
    max_concurrency: int = 16

    @property
    def path(self) -> str:
        """The primary location: written first, read first."""
        return self.paths[0]

    @property
    def routing(self) -> Routing:
        """Every route, in order, `path` last: where each XCom goes."""
        return Routing.of(self.routes, self.paths)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, str], *, source: str = "") -> Settings:
        """Validate raw option strings; any unknown, missing or bad option raises ConfigError."""
        _reject_unknown(raw, source)
        parsed: dict[str, Any] = {}
        for option in OPTIONS:
            parsed[option.settings_field] = option.parse(raw.get(option.name, option.default).strip(), parsed)
        return cls(**parsed)


def _reject_unknown(raw: Mapping[str, str], source: str) -> None:
    for name in raw:
        if name not in _KNOWN:
            close = difflib.get_close_matches(name, _KNOWN, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            where = f" in {source}" if source else ""
            raise ConfigError(
                f"unknown setting {_label(name)}{where}{hint} Known settings: {', '.join(_KNOWN)}."
            )
