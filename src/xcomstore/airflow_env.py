"""What xcomstore takes from Airflow: its configuration, its connections, its serde.

Airflow is imported inside the functions only, so the CLI and Python API also work where
Airflow is not installed (then settings come from AIRFLOW__XCOMSTORE__* variables alone).
"""

from __future__ import annotations

import os
from typing import Any

from xcomstore.codecs import JsonCodec
from xcomstore.settings import OPTIONS, SECTION

ENV_PREFIX = f"AIRFLOW__{SECTION.upper()}__"


def airflow_available() -> bool:
    try:
        import airflow.sdk  # noqa: F401
    except ImportError:
        return False
    return True


def read_config() -> dict[str, str]:
    """The raw `[xcomstore]` options from airflow.cfg, env vars, _cmd and _secret variants."""
    from airflow.sdk.configuration import conf

    names = set((conf.getsection(SECTION) or {}).keys()) | _env_names()
    defaults = {o.name: o.default for o in OPTIONS}
    raw = {}
    for name in names:
        value = conf.get(SECTION, name, fallback=defaults.get(name, ""))
        raw[name] = "" if value is None else str(value)
    return raw


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


def airflow_filesystem(url: str) -> tuple[Any, str]:
    """Resolve a URL as Airflow does, so `s3://conn_id@bucket/...` uses that connection."""
    from airflow.sdk import ObjectStoragePath

    path = ObjectStoragePath(url)
    return path.fs, path.path


def serde_codec() -> JsonCodec:
    """JSON through Airflow's serde: offloaded values round-trip exactly like inline ones."""
    try:
        from airflow.sdk.serde import deserialize, serialize
    except ImportError:  # Airflow 3.0/3.1 keep serde in core
        from airflow.serialization.serde import deserialize, serialize  # type: ignore[no-redef]
    return JsonCodec(serialize, deserialize)
