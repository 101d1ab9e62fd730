"""Users' codecs: by entry point (the installed example package) and by the `codecs` setting."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from fractions import Fraction
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from xcomstore_example_codec import FractionCodec, Point, PointCodec

from xcomstore.codecs import ArrowCodec, BytesCodec, CodecRegistry, JsonCodec, NumpyCodec
from xcomstore.codecs.registry import ENTRY_POINT_GROUP, SETTING, installed_plugins
from xcomstore.core.settings import Settings, _label
from xcomstore.core.store import XComStore
from xcomstore.errors import ConfigError, ObjectFormatError, RejectedValueError
from xcomstore.identity import Origin

FRACTION = "xcomstore_example_codec:FractionCodec"
MODULE = "xcs_plugin_test_codecs"
# Codecs that must not join a registry, each for its own reason, and two that may.
MODULE_SOURCE = '''
from xcomstore.codecs import Codec
from xcomstore_example_codec import PointCodec


class OtherPoint(PointCodec):
    """Another class with the example's name."""


class FakeArrow(PointCodec):
    name = "arrow"


class Pickle(PointCodec):
    name = "pickle"


class BadName(PointCodec):
    name = "Point-2"


class Unfinished(Codec):
    name = "unfinished"


class AnyPoint(PointCodec):
    """Takes Points too: named in the setting, it goes before the entry point's codec."""
    name = "anypoint"


class Urgent(PointCodec):
    name = "urgent"
    priority = 10


class Zebra(PointCodec):
    name = "zebra"
'''


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module of test codecs, importable as MODULE for this test."""
    (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(MODULE_SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    return MODULE


def plugin(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def registry(*names: str, plugins: tuple[EntryPoint, ...] | None = None) -> CodecRegistry:
    return CodecRegistry.configured(JsonCodec(), names, plugins=plugins)


# -- through the store -------------------------------------------------------------------------
def test_point_round_trips_through_its_entry_point_codec(
    make_xcom_store: Callable[..., XComStore], origin: Origin
) -> None:
    store = make_xcom_store(threshold="0")
    stored = store.push(Point(1.5, -2.0), origin)
    assert stored["codec"] == "point"
    assert stored["type"] == "xcomstore_example_codec.Point"
    assert store.head(stored["uri"]).codec == "point"
    assert store.pull(stored) == Point(1.5, -2.0)


def test_fraction_round_trips_when_the_setting_names_it(
    make_xcom_store: Callable[..., XComStore], origin: Origin
) -> None:
    store = make_xcom_store(threshold="0", codecs=FRACTION)
    stored = store.push(Fraction(22, 7), origin)
    assert store.head(stored["uri"]).codec == "fraction"
    assert store.pull(stored) == Fraction(22, 7)


def test_fraction_is_rejected_as_before_without_the_setting(
    make_xcom_store: Callable[..., XComStore], origin: Origin
) -> None:
    with pytest.raises(RejectedValueError, match=r"cannot store a fractions\.Fraction"):
        make_xcom_store(threshold="0").push(Fraction(22, 7), origin)


def test_an_object_of_an_unregistered_codec_is_refused(
    make_xcom_store: Callable[..., XComStore], origin: Origin
) -> None:
    writer = make_xcom_store(threshold="0")
    stored = writer.push(Point(0.0, 1.0), origin)
    reader = XComStore(writer.settings, writer.locations, CodecRegistry(JsonCodec()))
    with pytest.raises(ObjectFormatError, match="codec 'point', which this installation does not have"):
        reader.pull(stored)


def test_user_codec_category_is_its_name(make_xcom_store: Callable[..., XComStore], origin: Origin) -> None:
    store = make_xcom_store(allowed_types="json, point")
    assert store.pull(store.push(Point(3.0, 4.0), origin)) == Point(3.0, 4.0)
    with pytest.raises(RejectedValueError, match=r"Fraction \(fraction\) may not be pushed"):
        make_xcom_store(allowed_types="json, point", codecs=FRACTION).push(Fraction(1, 3), origin)


# -- order -------------------------------------------------------------------------------------
def test_installed_entry_point_codecs_come_before_the_built_ins() -> None:
    assert [p.name for p in installed_plugins()] == ["point"]
    kinds = [type(c) for c in registry().binary]
    assert kinds == [PointCodec, ArrowCodec, NumpyCodec, BytesCodec]


def test_setting_codecs_come_first_in_their_order(plugin_module: str) -> None:
    names = (f"{plugin_module}.AnyPoint", FRACTION)
    assert [c.name for c in registry(*names).binary] == [
        "anypoint",
        "fraction",
        "point",
        "arrow",
        "numpy",
        "bytes",
    ]
    assert registry(*names).binary_for(Point(0, 0)).name == "anypoint"  # type: ignore[union-attr]


def test_entry_point_codecs_by_priority_then_name(plugin_module: str) -> None:
    plugins = tuple(plugin(n, f"{plugin_module}:{n}") for n in ("Zebra", "AnyPoint", "Urgent"))
    assert [c.name for c in registry(plugins=plugins).binary][:3] == ["urgent", "anypoint", "zebra"]


def test_a_class_both_named_and_installed_is_used_once_at_the_setting_place() -> None:
    names = [c.name for c in registry(FRACTION, "xcomstore_example_codec.PointCodec").binary]
    assert names == ["fraction", "point", "arrow", "numpy", "bytes"]


# -- refusals ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no_such_module_xyz:Codec", "cannot import 'no_such_module_xyz'"),
        ("xcomstore_example_codec:NoSuchCodec", "has no 'NoSuchCodec'"),
        ("fractions:Fraction", "is not a subclass of xcomstore.codecs.Codec"),
        (f"{MODULE}:OtherPoint", f"entry point 'point' .* is already taken by '{MODULE}:OtherPoint'"),
        (f"{MODULE}:FakeArrow", "'arrow' is a built-in codec's name"),
        (f"{MODULE}:Pickle", "may not be named 'pickle'"),
        (f"{MODULE}:BadName", r"must be a plain identifier"),
        (f"{MODULE}:Unfinished", "cannot be created without arguments"),
    ],
)
def test_a_bad_codec_in_the_setting_is_a_config_error(plugin_module: str, name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        registry(name)
    assert f"{name!r} in [xcomstore] codecs (AIRFLOW__XCOMSTORE__CODECS)" in str(info.value)


def test_two_setting_classes_of_one_name(plugin_module: str) -> None:
    with pytest.raises(ConfigError, match=f"taken by '{plugin_module}:OtherPoint'"):
        registry(f"{plugin_module}:OtherPoint", "xcomstore_example_codec:PointCodec", plugins=())


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("no_such_module_xyz:Codec", "cannot be loaded"),
        ("fractions:Fraction", "is not a subclass"),
        (f"{MODULE}:FakeArrow", "built-in codec's name"),
        (f"{MODULE}:OtherPoint", "already taken by entry point 'point'"),
    ],
)
def test_a_bad_entry_point_is_a_config_error_naming_it(plugin_module: str, value: str, message: str) -> None:
    plugins = (*installed_plugins(), plugin("broken", value))
    with pytest.raises(ConfigError, match=message) as info:
        registry(plugins=plugins)
    assert f"entry point 'broken' = {value!r} (group 'xcomstore.codecs')" in str(info.value)


@pytest.mark.parametrize(
    "text", ["FractionCodec", "pkg:", ":Class", "pkg.module:Class:x", "pkg-x.Class", "a..B"]
)
def test_a_malformed_class_name_stops_the_settings(text: str) -> None:
    with pytest.raises(ConfigError, match="is not a class name") as info:
        Settings.from_mapping({"path": "file:///x", "codecs": text})
    assert "AIRFLOW__XCOMSTORE__CODECS" in str(info.value)


def test_setting_parses_names_and_registry_labels_it_alike() -> None:
    assert Settings.from_mapping({"path": "file:///x", "codecs": f" {FRACTION} ,, a.b.C "}).codecs == (
        FRACTION,
        "a.b.C",
    )
    assert _label("codecs") == SETTING
    assert FractionCodec.name == "fraction"
