"""NumPy arrays as .npy (any shape, any dtype that needs no pickle); zstd as frames of their own.

Uncompressed, the array's memory is written as it is and read straight into the new array;
with zstd, the bytes after the .npy header are numpy_zstd's independent frames, compressed and
decompressed on every core. Other compressions wrap the .npy as a stream.
"""

from __future__ import annotations

import importlib
import io
import math
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

from xcomstore.codecs import numpy_zstd
from xcomstore.codecs.base import Codec, Description, root_module
from xcomstore.errors import ObjectFormatError, RejectedValueError
from xcomstore.format.streams import budget_of

_CHUNK = 16 << 20
_ZSTD = "zstd"


def _write_header(sink: BinaryIO, value: Any) -> None:
    """The .npy header for `value`, in the oldest format version that can hold it."""
    import numpy as np

    header = np.lib.format.header_data_from_array_1_0(value)
    try:
        np.lib.format.write_array_header_1_0(sink, header)
    except ValueError:  # a header too long for format 1.0 (many structured fields)
        np.lib.format.write_array_header_2_0(sink, header)


class NumpyCodec(Codec):
    name = "numpy"
    native_compression = frozenset({_ZSTD})

    def accepts(self, value: Any) -> bool:
        if root_module(value) != "numpy":
            return False
        import numpy as np

        # Exactly ndarray: subclasses (masked arrays, matrix) would come back as plain arrays.
        return type(value) is np.ndarray

    def describe(self, value: Any) -> Description:
        shape = "×".join(str(n) for n in value.shape) or "scalar"
        meta = {"dtype": str(value.dtype), "shape": list(value.shape)}
        return Description("numpy.ndarray", f"ndarray {value.dtype} {shape}", meta)

    def size_hint(self, value: Any) -> int:
        return int(value.nbytes)

    def encode(self, value: Any, sink: BinaryIO, compression: str) -> int | None:
        import numpy as np

        if value.dtype.hasobject:
            raise RejectedValueError(
                f"a numpy array of dtype {value.dtype} holds Python objects, which could only be "
                "stored with pickle; xcomstore never pickles. Convert it to a typed array."
            )
        if compression == _ZSTD:
            return _encode_frames(value, sink)
        if not (value.flags.c_contiguous or value.flags.f_contiguous) or value.dtype.fields:
            # write_array streams other layouts in chunks itself: no whole copy is made.
            np.lib.format.write_array(sink, value, allow_pickle=False)
            return None
        _write_header(sink, value)
        # The array's own memory, in read-only slices: no copy at all, not even for hashing.
        order = "C" if value.flags.c_contiguous else "F"
        flat = memoryview(value.ravel(order=order).view(np.uint8)).toreadonly()
        for start in range(0, flat.nbytes, _CHUNK):
            sink.write(flat[start : start + _CHUNK])
        return None

    def decode(self, source: BinaryIO, meta: Mapping[str, Any]) -> Any:
        import numpy as np

        # The payload says which layout it is: the frames' magic, or the .npy's own.
        magic = source.read(len(numpy_zstd.MAGIC))
        framed = magic in numpy_zstd.MAGICS
        shape, fortran, dtype = _read_header(source, source if framed else io.BytesIO(magic))
        _check_header(shape, dtype, meta)
        # trust boundary: the header's shape × itemsize is checked against the budget before
        # anything is allocated; the data then comes through the bounded stream.
        count = math.prod(shape)
        budget_of(source).reserve(count * dtype.itemsize, ARRAY)
        array = np.empty(count, dtype=dtype)
        if dtype.itemsize:
            if framed:
                numpy_zstd.read_frames(source, array.view(np.uint8).data, magic)
            else:
                numpy_zstd.fill(source, array.view(np.uint8).data, "the .npy data")
        return array.reshape(shape, order="F" if fortran else "C")


def _encode_frames(value: Any, sink: BinaryIO) -> int:
    """The zstd layout: MAGIC, the .npy header, the data as frames; the size uncompressed."""
    header = io.BytesIO()
    _write_header(header, value)
    sink.write(numpy_zstd.MAGIC)
    sink.write(header.getvalue())
    numpy_zstd.write_frames(sink, _byte_chunks(value))
    return len(header.getvalue()) + int(value.nbytes)


def _byte_chunks(value: Any) -> Iterator[Any]:
    """The array's bytes in the .npy's order, in frames of about FRAME_BYTES: slices of its own
    memory when it is contiguous, else copies of nditer's buffer (which it reuses)."""
    import numpy as np

    size = numpy_zstd.FRAME_BYTES
    if (value.flags.c_contiguous or value.flags.f_contiguous) and not value.dtype.fields:
        flat = memoryview(value.ravel(order="C" if value.flags.c_contiguous else "F").view(np.uint8))
        for start in range(0, flat.nbytes, size):
            yield flat[start : start + size].toreadonly()
        return
    if not value.size or not value.itemsize:
        return
    fortran = np.lib.format.header_data_from_array_1_0(value)["fortran_order"]
    steps = np.nditer(
        value,
        flags=["external_loop", "buffered", "zerosize_ok"],
        buffersize=max(1, size // value.itemsize),
        order="F" if fortran else "C",
    )
    for chunk in steps:
        yield np.array(chunk).view(np.uint8)  # a copy: nditer reuses its buffer


ARRAY = "array"
# A structured or void dtype this wide is no real record: refused rather than trusted.
MAX_RECORD = 1 << 20


def _read_header(source: BinaryIO, magic: BinaryIO) -> tuple[tuple[int, ...], bool, Any]:
    """The .npy header, parsed by numpy's own reader (a literal, never a pickle); `magic` is
    where its first bytes are read from (those read already, or `source`)."""
    from numpy.lib import format as npy

    version = npy.read_magic(magic)
    if version == (1, 0):
        return npy.read_array_header_1_0(source)
    if version == (2, 0):
        return npy.read_array_header_2_0(source)
    # 3.0 (utf-8 field names) has no public reader; numpy's private one parses it the same way.
    impl: Any = getattr(npy, "_read_array_header", None)
    if impl is None:
        impl = importlib.import_module("numpy.lib._format_impl")._read_array_header
    return impl(source, version)  # type: ignore[no-any-return]


def _check_header(shape: tuple[int, ...], dtype: Any, meta: Mapping[str, Any]) -> None:
    """Refuse a dtype that needs pickle or is absurdly wide, and a shape other than the
    (authenticated) object header's."""
    if dtype.hasobject:
        raise ObjectFormatError(f"the .npy holds dtype {dtype}, which has Python objects: never unpickled")
    if (dtype.fields or dtype.kind == "V" or dtype.subdtype) and dtype.itemsize > MAX_RECORD:
        raise ObjectFormatError(f"the .npy's records are {dtype.itemsize} bytes, over {MAX_RECORD}")
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ObjectFormatError(f"the .npy has an invalid shape {shape!r}")
    declared = meta.get("shape")
    if isinstance(declared, list) and declared != list(shape):
        raise ObjectFormatError(f"the .npy has shape {list(shape)}, the object's header says {declared}")
