"""NumPy arrays as .npy (any shape, any dtype that needs no pickle)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, BinaryIO

from xcomstore.codecs.base import Codec, Description, root_module
from xcomstore.errors import RejectedValueError

_CHUNK = 16 << 20


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

        return np.lib.format.read_array(source, allow_pickle=False)
