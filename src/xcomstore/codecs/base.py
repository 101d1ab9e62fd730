"""What a codec is: the piece that turns one family of Python types into payload bytes and back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, ClassVar

from xcomstore.format.streams import Budget, budget_of

__all__ = ["Budget", "Codec", "Description", "budget_of", "root_module"]


@dataclass(frozen=True)
class Description:
    """How a value is named to people: in the DB reference, the UI, logs and the CLI."""

    type_name: str  # e.g. "pandas.DataFrame"
    summary: str  # e.g. "DataFrame 1000000×10"
    meta: Mapping[str, Any] = field(default_factory=dict)  # what decode needs, kept in the header


class Codec(ABC):
    """Encodes values of some types into a stream, and decodes them back.

    Adding a type to xcomstore means writing one subclass and registering it: name it in the
    `[xcomstore] codecs` setting ('mypkg.codecs:PointCodec'), or declare it in your package's
    `xcomstore.codecs` entry point group. It is created without arguments, and tried before the
    built-in codecs (see CodecRegistry.configured).

    A codec must never unpickle (nor eval, nor import what a payload names): whoever can write
    to the store chooses the bytes decode() reads, and must not choose the code that runs. A
    codec named `pickle` is refused outright.
    """

    #: Written into each object's header; decoding looks the codec up by this name, among the
    #: registered codecs only. A plain identifier ([a-z][a-z0-9_]*), and not a built-in's
    #: name (arrow, numpy, bytes, json): it also is the value's category in `allowed_types`.
    name: ClassVar[str]
    #: Among entry-point codecs, higher ones are tried first (codecs named in the setting come
    #: before all of them, in the setting's order).
    priority: ClassVar[int] = 0
    #: Compressions the codec applies itself, better than a stream compressor could (e.g. Arrow
    #: compresses each column buffer, in parallel). Others are applied around its stream.
    native_compression: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def accepts(self, value: Any) -> bool:
        """Whether this codec stores `value`. Must not import heavy libraries needlessly."""

    @abstractmethod
    def describe(self, value: Any) -> Description: ...

    def type_name(self, value: Any) -> str:
        """The type name describe() gives `value`, cheaply: a read checks that the value it
        decoded is of the type its reference names (meta may steer a decoder: a flavour, a class)."""
        return self.describe(value).type_name

    def size_hint(self, value: Any) -> int:
        """A cheap estimate of the value's size in bytes, to skip measuring values far too big."""
        return 0

    def sample(self, value: Any) -> bytes | memoryview | None:
        """A few slices of what encode() will write for `value`, known without encoding it, by
        which the store judges whether compressing is worth it; None (the default) where the
        codec cannot tell: then the stream is compressed as configured."""
        return None

    @abstractmethod
    def encode(self, value: Any, sink: BinaryIO, compression: str) -> int | None:
        """Write `value` to `sink`. `compression` is one of `native_compression`, or "none".

        A codec that compresses natively returns the size its output would have had
        uncompressed (for the reference's `size`); others return None."""

    @abstractmethod
    def decode(self, source: BinaryIO, meta: Mapping[str, Any]) -> Any:
        """Read a value back from `source`, given the meta that describe() returned.

        `source` is bounded: it raises once more bytes than the read's budget have come out of
        it. A codec that allocates from sizes the payload claims (a shape, a row count, an
        uncompressed length) must first claim them: `budget_of(source).reserve(n, kind)`.
        `meta` is the object's header: authenticated by the seal, but anyone who can write to
        the store writes the seal too, so it is no more trusted than the payload."""


def root_module(value: Any) -> str:
    """The top-level package of a value's type, found without importing anything."""
    return type(value).__module__.partition(".")[0]
