"""NumPy arrays as .npy (any shape, any dtype that needs no pickle)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, BinaryIO

from xcomstore.codecs.base import Codec, Description, root_module
from xcomstore.errors import RejectedValueError


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
        # write_array streams the data in chunks for non-file sinks: no whole copy is made.
        np.lib.format.write_array(sink, value, allow_pickle=False)
        return None

    def decode(self, source: BinaryIO, meta: Mapping[str, Any]) -> Any:
        import numpy as np

        return np.lib.format.read_array(source, allow_pickle=False)
