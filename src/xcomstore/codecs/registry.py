"""The codec registry: which codec stores a value, and which one reads an object back.

Besides the built-in codecs, users add their own: classes named in the `[xcomstore] codecs`
setting, and classes that installed packages declare under the `xcomstore.codecs` entry point
group. They are tried before the built-ins, but can never take a built-in's name: an object
says which codec wrote it, and an `arrow` object must always be read by the Arrow codec.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Final

from xcomstore.codecs.arrow import ArrowCodec
from xcomstore.codecs.base import Codec
from xcomstore.codecs.json import JsonCodec
from xcomstore.codecs.numpy import NumpyCodec
from xcomstore.codecs.raw import BytesCodec
from xcomstore.errors import ConfigError, ObjectFormatError

ENTRY_POINT_GROUP: Final = "xcomstore.codecs"
#: The setting naming codec classes, as settings.py labels it (codecs sit below core, so the
#: label is spelled here; a test keeps the two equal).
SETTING: Final = "[xcomstore] codecs (AIRFLOW__XCOMSTORE__CODECS)"
BUILTIN: Final = (ArrowCodec, NumpyCodec, BytesCodec)
_BUILTIN_NAMES: Final = frozenset(c.name for c in (*BUILTIN, JsonCodec))
_NAME_RE: Final = re.compile(r"[a-z][a-z0-9_]*")


class CodecRegistry:
    """Binary codecs, tried in order, and the JSON codec that takes every other value."""

    def __init__(self, json_codec: JsonCodec, binary: Iterable[Codec] | None = None) -> None:
        self.json = json_codec
        self.binary = tuple(binary) if binary is not None else tuple(c() for c in BUILTIN)
        self._by_name = {c.name: c for c in (*self.binary, json_codec)}

    @classmethod
    def configured(
        cls,
        json_codec: JsonCodec,
        names: Iterable[str] = (),
        *,
        plugins: Iterable[EntryPoint] | None = None,
    ) -> CodecRegistry:
        """The codecs classes `names` (the `codecs` setting) point to, in their order; then
        those of the `plugins` entry points (by default the installed ones), higher `priority`
        first, then by name; then the built-ins. Any bad codec raises ConfigError."""
        found = [_load_named(name) for name in names]
        found += _load_plugins(installed_plugins() if plugins is None else plugins)
        return cls(json_codec, (*_instances(found), *(c() for c in BUILTIN)))

    def binary_for(self, value: Any) -> Codec | None:
        """The binary codec made for this value's type, or None if it is a JSON value."""
        return next((c for c in self.binary if c.accepts(value)), None)

    def by_name(self, name: str) -> Codec:
        try:
            return self._by_name[name]
        except KeyError:
            raise ObjectFormatError(
                f"object was written with codec {name!r}, which this installation does not have"
            ) from None


@functools.lru_cache(maxsize=1)
def installed_plugins() -> tuple[EntryPoint, ...]:
    """The installed `xcomstore.codecs` entry points, found once per process: the search reads
    every installed package's metadata (tens of ms), and stores are made per configuration."""
    return tuple(entry_points(group=ENTRY_POINT_GROUP))


def _load_named(spec: str) -> tuple[object, str]:
    """What 'package.module:Class' or 'package.module.Class' names (importing its module), and
    where it came from, for messages."""
    where = f"{spec!r} in {SETTING}"
    module_name, colon, qualname = spec.partition(":")
    if not colon:
        module_name, _, qualname = spec.rpartition(".")
    if not module_name or not qualname:
        raise ConfigError(f"{where} is not a class name: write 'module:Class' or 'module.Class'")
    try:
        found: object = importlib.import_module(module_name)
    except Exception as exc:  # whatever the user's module raises, the setting is to blame
        raise ConfigError(f"{where}: cannot import {module_name!r}: {exc}") from exc
    for part in qualname.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ConfigError(f"{where}: module {module_name!r} has no {qualname!r}") from None
    return found, where


def _load_plugins(plugins: Iterable[EntryPoint]) -> list[tuple[object, str]]:
    """The entry points' classes with where each came from, higher priority first, then by name."""
    loaded = []
    for plugin in plugins:
        dist = getattr(plugin, "dist", None)
        where = f"entry point {plugin.name!r} = {plugin.value!r} (group {ENTRY_POINT_GROUP!r}"
        where += f", package {dist.name})" if dist is not None else ")"
        try:
            loaded.append((plugin.load(), where))
        except Exception as exc:  # a broken package must name itself, not fail somewhere later
            raise ConfigError(f"{where} cannot be loaded: {exc}") from exc
    for found, where in loaded:
        _check(found, where)
    return sorted(loaded, key=lambda item: (-_priority(item[0]), _name(item[0])))


def _instances(found: list[tuple[object, str]]) -> list[Codec]:
    """One codec per class (a class both named and installed keeps its first place); names unique."""
    taken: dict[str, tuple[object, str]] = {}
    codecs = []
    for kind, where in found:
        codec_class = _check(kind, where)
        name = codec_class.name
        if name in taken:
            if taken[name][0] is kind:
                continue
            raise ConfigError(f"{where}: the codec name {name!r} is already taken by {taken[name][1]}")
        taken[name] = (kind, where)
        try:
            codecs.append(codec_class())
        except Exception as exc:
            raise ConfigError(f"{where}: the codec cannot be created without arguments: {exc}") from exc
    return codecs


def _check(found: object, where: str) -> type[Codec]:
    """`found` as a Codec class that may join the registry, or a ConfigError saying why not."""
    if not (isinstance(found, type) and issubclass(found, Codec)):
        raise ConfigError(f"{where} is not a subclass of xcomstore.codecs.Codec: {found!r}")
    name = getattr(found, "name", None)
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ConfigError(f"{where}: the codec name {name!r} must be a plain identifier ([a-z][a-z0-9_]*)")
    if name == "pickle":
        # Unpickling runs code chosen by whoever can write to the store: never offered.
        raise ConfigError(f"{where}: a codec may not be named 'pickle': xcomstore never unpickles")
    if name in _BUILTIN_NAMES:
        raise ConfigError(f"{where}: {name!r} is a built-in codec's name; a codec cannot replace it")
    if not isinstance(_priority(found), int) or isinstance(_priority(found), bool):
        raise ConfigError(f"{where}: the codec's priority must be a whole number")
    return found


def _priority(found: object) -> Any:
    return getattr(found, "priority", 0)


def _name(found: object) -> str:
    return str(getattr(found, "name", ""))
