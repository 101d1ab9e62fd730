"""What xcomstore takes from Airflow: its configuration, its connections, its serde.

Airflow is imported inside the functions only, so the CLI and Python API also work where
Airflow is not installed (then settings come from AIRFLOW__XCOMSTORE__* variables alone).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from typing import Any
from urllib.parse import urlsplit

from xcomstore.codecs import JsonCodec
from xcomstore.core.observe import Observer
from xcomstore.core.reference import Reference
from xcomstore.core.routes import Routing
from xcomstore.core.settings import OPTIONS, SECTION, Settings
from xcomstore.core.store import XComStore
from xcomstore.errors import ConfigError
from xcomstore.identity import Origin
from xcomstore.storage.location import fsspec_filesystem

ENV_PREFIX = f"AIRFLOW__{SECTION.upper()}__"


def airflow_available() -> bool:
    try:
        import airflow.sdk  # noqa: F401
    except ImportError:
        return False
    return True


def read_config() -> dict[str, str]:
    """The raw `[xcomstore]` options from airflow.cfg, env vars, _cmd and _secret variants."""
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # Airflow 3.1 and 3.2 read the configuration in core
        from airflow.configuration import conf

    names = set((conf.getsection(SECTION) or {}).keys()) | _env_names()
    defaults = {o.name: o.default for o in OPTIONS}
    raw = {}
    for name in names:
        value = conf.get(SECTION, name, fallback=defaults.get(name, ""))
        raw[name] = "" if value is None else str(value)
    for name in _KEY_OPTIONS:
        if raw.get(name):
            raw[name] = _resolve_keys(raw[name])
    return raw


_KEY_OPTIONS = ("encryption_keys", "signing_keys")


def config_fingerprint() -> tuple[Any, ...]:
    """Changes whenever read_config() could give something new inside a running process: the
    AIRFLOW__XCOMSTORE__* variables (airflow.cfg is read once, at start-up). About a µs (one
    lookup per option), where read_config() takes tens and may ask a secrets backend or the
    API (var:/conn: keys)."""
    data = getattr(os.environ, "_data", None)
    if isinstance(data, dict):  # CPython on POSIX: the raw bytes, nothing decoded
        return tuple(map(data.get, _ENV_KEYS_BYTES))
    return tuple(map(os.environ.get, _ENV_KEYS))


_ENV_KEYS = tuple(
    f"{ENV_PREFIX}{o.name.upper()}{suffix}" for o in OPTIONS for suffix in ("", "_CMD", "_SECRET")
)
_ENV_KEYS_BYTES = tuple(os.fsencode(key) for key in _ENV_KEYS)


def _resolve_keys(text: str) -> str:
    """Replace 'id:var:<name>' and 'id:conn:<conn_id>' by the Airflow variable / connection password."""
    resolved = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key_id, _, rest = part.partition(":")
        kind, _, name = rest.partition(":")
        if kind == "var" and name:
            from airflow.sdk import Variable

            rest = str(Variable.get(name))
        elif kind == "conn" and name:
            from airflow.sdk import Connection

            rest = str(Connection.get(name).password or "")
        resolved.append(f"{key_id}:{rest}")
    return ", ".join(resolved)


def read_env_config() -> dict[str, str]:
    """The raw options from AIRFLOW__XCOMSTORE__* variables, for use without Airflow."""
    return {
        name: os.environ[ENV_PREFIX + name.upper()]
        for name in _env_names()
        if ENV_PREFIX + name.upper() in os.environ
    }


def _env_names() -> set[str]:
    # getsection() ignores env-only sections, so the variables are scanned here; this is also
    # what catches a misspelled variable name.
    names = set()
    for var in os.environ:
        if var.startswith(ENV_PREFIX):
            names.add(var[len(ENV_PREFIX) :].lower().removesuffix("_cmd").removesuffix("_secret"))
    return names


# What registers each scheme's filesystem: for Airflow's ObjectStoragePath a provider (`[all]`
# installs s3fs, gcsfs and adlfs, but the schemes exist only once the provider is there); for
# fsspec alone the implementation package.
_PROVIDERS = {
    **dict.fromkeys(("s3", "s3a"), "apache-airflow-providers-amazon"),
    **dict.fromkeys(("gs", "gcs"), "apache-airflow-providers-google"),
    **dict.fromkeys(("abfs", "abfss", "az", "adl"), "apache-airflow-providers-microsoft-azure"),
}
_FSSPEC_PACKAGES = {
    **dict.fromkeys(("s3", "s3a"), "s3fs"),
    **dict.fromkeys(("gs", "gcs"), "gcsfs"),
    **dict.fromkeys(("abfs", "abfss", "az", "adl"), "adlfs"),
}


def missing_filesystem(url: str, package: str | None) -> ConfigError:
    """The one-line error for a store URL whose scheme nothing installed can open."""
    scheme = urlsplit(url).scheme
    if package is None:
        return ConfigError(f"no filesystem for {scheme!r} (in {url!r}): is the scheme right?")
    return ConfigError(f"no filesystem for {scheme!r} (in {url!r}) is installed: pip install {package}")


def check_filesystems(routing: Routing, *, with_airflow: bool) -> None:
    """Refuse at start-up a location whose scheme nothing installed can open, naming its route.

    Only what is installed is looked at (fsspec's registry, installed distributions): no module
    is imported and no connection opened, so every component and task process can afford it.
    """
    for route in routing.routes:
        for url in route.urls:
            missing = _unavailable(url, with_airflow)
            if missing is not None:
                where = "[xcomstore] path" if not route.number else route.name
                raise ConfigError(f"{where}: {missing}")


def _unavailable(url: str, with_airflow: bool) -> ConfigError | None:
    from fsspec.registry import known_implementations, registry

    scheme = urlsplit(url).scheme
    if scheme == "file" or scheme in registry:
        return None
    known = known_implementations.get(scheme)
    if known is None:
        return missing_filesystem(url, None)
    if importlib.util.find_spec(str(known["class"]).partition(".")[0]) is None:
        return missing_filesystem(url, _FSSPEC_PACKAGES.get(scheme, "the fsspec implementation"))
    provider = _PROVIDERS.get(scheme)
    if with_airflow and provider is not None:
        try:
            importlib.metadata.distribution(provider)
        except importlib.metadata.PackageNotFoundError:
            return missing_filesystem(url, provider)
    return None


def airflow_filesystem(url: str) -> tuple[Any, str]:
    """Resolve a URL as Airflow does, so `s3://conn_id@bucket/...` uses that connection."""
    if url.startswith("file://"):  # no connection to resolve: skip loading Airflow's providers
        return fsspec_filesystem(url)
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io.fs import has_fs

    scheme = urlsplit(url).scheme
    if not has_fs(scheme):  # else ObjectStoragePath's ValueError, as a traceback
        raise missing_filesystem(url, _PROVIDERS.get(scheme))
    path = ObjectStoragePath(url)
    return path.fs, path.path


def plain_filesystem(url: str) -> tuple[Any, str]:
    """fsspec_filesystem, with a scheme whose implementation is missing said in one line."""
    import fsspec

    scheme = urlsplit(url).scheme or "file"
    try:
        fsspec.get_filesystem_class(scheme)
    except ImportError:  # known to fsspec, its package not installed
        raise missing_filesystem(url, _FSSPEC_PACKAGES.get(scheme, "the fsspec implementation")) from None
    except ValueError:  # not known at all
        raise missing_filesystem(url, None) from None
    return fsspec_filesystem(url)


def serde_codec() -> JsonCodec:
    """JSON through Airflow's serde: offloaded values round-trip exactly like inline ones."""
    try:
        from airflow.sdk.serde import deserialize, serialize
    except ImportError:  # Airflow 3.0/3.1 keep serde in core
        from airflow.serialization.serde import deserialize, serialize  # type: ignore[no-redef]
    return JsonCodec(serialize, deserialize)


class StatsObserver(Observer):
    """Logs like the base Observer, and emits Airflow metrics (StatsD / OpenTelemetry)."""

    def __init__(self) -> None:
        # Stats, not the module-level functions: task-sdk 1.2 (Airflow 3.2) has the module
        # airflow.sdk.observability.stats but without them (only 1.3 adds incr, timing).
        try:
            from airflow.sdk.observability.stats import Stats
        except ImportError:  # before task-sdk 1.2 (Airflow 3.1)
            from airflow.stats import Stats
        self._stats = Stats

    def inline(self, origin: Origin, size: int) -> None:
        self._stats.incr("xcomstore.inline")
        self._stats.incr("xcomstore.inline_bytes", size)

    def stored(self, origin: Origin, ref: Reference, seconds: float) -> None:
        super().stored(origin, ref, seconds)
        self._transfer(ref, seconds, "offloaded", "written", "write")

    def loaded(self, ref: Reference, seconds: float) -> None:
        super().loaded(ref, seconds)
        self._transfer(ref, seconds, "read", "read", "read")

    def _transfer(self, ref: Reference, seconds: float, count: str, moved: str, timed: str) -> None:
        tags = {"codec": ref.codec, "compression": ref.compression}
        self._stats.incr(f"xcomstore.{count}", tags=tags)
        self._stats.incr(f"xcomstore.bytes_{moved}", ref.stored_bytes, tags=tags)
        self._stats.timing(f"xcomstore.{timed}_duration", seconds * 1000, tags=tags)

    def failed(self, operation: str, error: BaseException) -> None:
        super().failed(operation, error)
        self._stats.incr("xcomstore.errors", tags={"operation": operation, "kind": type(error).__name__})


def configured_store(path: str | None = None, **options: str) -> XComStore:
    """The store as configured for Airflow (airflow.cfg or AIRFLOW__XCOMSTORE__*), overridable.

    With Airflow installed, connection ids in URLs resolve through Airflow's connections and
    JSON values decode through its serde; without it, fsspec reads credentials from the
    environment and JSON values come back as stored.
    """
    with_airflow = airflow_available()
    raw = read_config() if with_airflow else read_env_config()
    raw.update(options)
    if path is not None:
        raw["path"] = path
    settings = Settings.from_mapping(raw, source="the configuration")
    if with_airflow:
        return XComStore.from_settings(settings, opener=airflow_filesystem, json_codec=serde_codec())
    return XComStore.from_settings(settings, opener=plain_filesystem)
