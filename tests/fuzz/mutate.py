"""Mutations of an object's payload, and `reseal`, which makes any mutant valid to the checksum.

The store is untrusted: whoever can write to the bucket can write any bytes and recompute the
(unkeyed) seal. So every mutant here is resealed — both digests of format version 3 — and the
decoders see bytes that passed every check a reader makes before decoding.

A table laid out as blocks (format version 4) has its first block mutated (it is an Arrow IPC
stream of its own): its lengths and digest in the index are then recomputed, and the payload
digest (the index's) with them, so the mutant reaches the decoders on whole and partial reads.

A mutation is a plain tuple (kind, *parameters) of JSON-able values, so a failing case is
reported as `[seed name, [mutation, ...]]` and replays exactly (`python -m tests.fuzz --replay`).
Positions are taken modulo the length of what they apply to, so any integers are valid.

Kinds, each on the "stored" payload (as in the object: compressed, for non-Arrow codecs) or the
"plain" one (decompressed, mutated, compressed again with the object's compression):
    flip pos bit · run pos length byte · truncate pos · delete pos length · insert pos hex ·
    dup pos length · int pos width value            generic byte-level mutations
    arrow_meta message slot mode value               an int64 of an IPC message's flatbuffer that
                                                     holds a length, offset, count or body size
    arrow_buffer message buffer element width value  an element of one body buffer (offsets,
                                                     validity, data) of an uncompressed batch
    arrow_offsets column element value               a column's offsets (or indices) in the first
                                                     batch, rewritten and re-encoded (any IPC
                                                     compression): the offsets no validation saw
    npy_header field value                           a .npy header dict entry (shape, descr,
                                                     fortran_order), re-padded as numpy does
    npy_text hex                                     the .npy header dict replaced by raw text
                                                     (both behind a zstd-framed array's magic too)
    npy_frame frame field value                      a zstd-framed array's frame: its raw or
                                                     frame length set, or (bomb) its body made a
                                                     frame of up to 200 MiB of zeros
    json_deep depth opener                           a JSON document nested `depth` levels deep
    bomb mib                                         `mib` MiB of zeros appended (compressed
                                                     payloads only): a decompression bomb
    header field choice                              a header field or meta entry rewritten
                                                     (HEADER_FIELDS); the payload mutations
                                                     still read the original header
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import struct
from collections.abc import Callable
from typing import Any

from xcomstore.codecs import numpy_zstd
from xcomstore.format import blocks, checksum, compression
from xcomstore.format.container import PREFIX_SIZE, SEAL_MAGIC, SEAL_SIZE, object_digest, parse_prefix

Mutation = tuple[Any, ...]
INTERESTING = (0, 1, -1, 7, 255, 1 << 16, (1 << 24) + 1, (1 << 31) - 1, 1 << 31, 1 << 32, 1 << 40, 1 << 62)
INTERESTING += ((1 << 63) - 1, -(1 << 63), -(1 << 31))


# -- the object ----------------------------------------------------------------------------------
def split(data: bytes) -> tuple[bytes, bytes, dict[str, Any]]:
    """An object's head (prefix and header), its stored payload, and its header as JSON."""
    end = PREFIX_SIZE + parse_prefix(data[:PREFIX_SIZE])
    return data[:end], data[end:-SEAL_SIZE], json.loads(data[PREFIX_SIZE:end])


def assemble(head: bytes, payload: bytes) -> bytes:
    """head + payload + a version 3 seal computed for exactly these bytes."""
    algorithm = json.loads(head[PREFIX_SIZE:]).get("checksum", checksum.SHA256)
    digest = _payload_digest(algorithm, payload, head)
    seal = struct.pack(
        ">Q32s32s8s", len(payload), digest, object_digest(head, len(payload), digest), SEAL_MAGIC
    )
    return head + payload + seal


def reseal(data: bytes) -> bytes:
    """`data` (an object whose payload was changed, its seal left as it was) sealed again: the
    payload digest and the object digest recomputed, as anyone with write access can."""
    head, payload, _ = split(data)
    return assemble(head, payload)


def label(data: bytes) -> str:
    """The reference's checksum for the object `data`."""
    head, payload, header = split(data)
    algorithm = header.get("checksum", checksum.SHA256)
    return checksum.label(algorithm, _payload_digest(algorithm, payload, head))


def _payload_digest(algorithm: str, payload: bytes, head: bytes) -> bytes:
    """The payload digest: of the payload, or of its index for a blocked one (version 4)."""
    if struct.unpack_from(">H", head, 8)[0] >= 4:
        first, end = blocks.index_span(payload[-blocks.TRAILER_SIZE :], len(payload))
        return blocks.index_digest(algorithm, payload[first:end])
    hasher = checksum.new(algorithm)
    hasher.update(payload)
    return hasher.digest()


def _first_block(payload: bytes, algorithm: str) -> tuple[bytes, Callable[[bytes, str], bytes]]:
    """A blocked payload's first block (stored: compressed), and how to put a changed one back
    in its place, the index's entry for it recomputed (its raw length kept where the changed
    block no longer decompresses)."""
    first, end = blocks.index_span(payload[-blocks.TRAILER_SIZE :], len(payload))
    index = json.loads(payload[first:end])
    if not index["blocks"]:
        return b"", lambda block, name: payload
    plain = index["blocks"][0][0]

    def put_back(block: bytes, name: str) -> bytes:
        with contextlib.suppress(Exception):
            raw_length = len(block) if name == "none" else len(_decompress(name, block))
            index["blocks"][0][1] = raw_length
        index["blocks"][0][0] = len(block)
        hasher = checksum.new(algorithm)
        hasher.update(block)
        index["blocks"][0][2] = hasher.digest().hex()
        text = json.dumps(index, separators=(",", ":")).encode()
        trailer = struct.pack(">Q8s", len(text), blocks.INDEX_MAGIC)
        return block + payload[plain:first] + text + trailer

    return payload[:plain], put_back


def _decompress(name: str, payload: bytes) -> bytes:
    return compression.decompressing_reader(name, io.BytesIO(payload)).read()


def _compress(name: str, plain: bytes) -> bytes:
    sink = io.BytesIO()
    stream = compression.compressing_writer(name, sink)
    stream.write(plain)
    stream.close()
    return sink.getvalue()


HEADER_FIELDS: dict[str, tuple[Any, ...]] = {
    "codec": ("arrow", "numpy", "json", "bytes"),
    "compression": ("zstd", "lz4", "gzip", "none"),
    "meta.rows": (-1, 0, 1, 1 << 31, 1 << 40, "x", None, 2.5),
    "meta.columns": (-1, 0, 1 << 40, "x"),
    "meta.flavour": (
        "pyarrow.Table",
        "pandas.DataFrame",
        "pandas.Series",
        "polars.DataFrame",
        "polars.Series",
        "x",
    ),
    "meta.name": (None, [1, 2], {"a": 1}, "x" * 10_000, ["a", ["b", ["c"]]]),
    "meta.class": ("bytes", "bytearray", "dict", None),
    "meta.compression": ("zstd", "lz4", "gzip", "none", "x"),
    "meta.dtype": ("<f8", "|V16777216", "|O", "x"),
    "meta.shape": ([1 << 40], [-1], [], "x"),
}


def _header(head: bytes, field: str, choice: int) -> bytes:
    """The head with one header field (or `meta.` entry) set to a hostile value: the header is
    the writer's too, and resealed along with the payload."""
    doc = json.loads(head[PREFIX_SIZE:])
    choices = HEADER_FIELDS[field]
    value = choices[choice % len(choices)]
    if field.startswith("meta."):
        doc.setdefault("meta", {})[field[5:]] = value
    else:
        doc[field] = value
    raw = json.dumps(doc).encode()
    return head[:10] + struct.pack(">I", len(raw)) + raw


def apply(data: bytes, mutations: list[Mutation]) -> bytes:
    """The object `data` with each mutation applied in turn (to its payload, or for "header"
    to its header), resealed."""
    head, payload, header = split(data)
    put_back = None
    if header.get("layout") == "blocks":
        payload, put_back = _first_block(payload, header.get("checksum", checksum.SHA256))
    for mutation in mutations:
        kind, *args = mutation
        if kind == "header":
            head = _header(head, *args)
            continue
        layer, function = _KINDS[kind]
        if layer == "either":
            layer, args = args[0], args[1:]
        if layer == "plain" and header["compression"] != "none":
            try:
                plain = _decompress(header["compression"], payload)
            except Exception:  # an earlier mutation broke the stream: mutate what is stored
                if _KINDS[kind][0] == "either":  # (a format-aware one means nothing there)
                    payload = function(payload, header, *args)
                continue
            payload = _compress(header["compression"], function(plain, header, *args))
        else:
            payload = function(payload, header, *args)
    if put_back is not None:
        payload = put_back(payload, header["compression"])
    return assemble(head, payload)


# -- generic -----------------------------------------------------------------------------------
def _at(data: bytes, pos: int) -> int:
    return pos % len(data) if data else 0


def _flip(data: bytes, header: Any, pos: int, bit: int) -> bytes:
    if not data:
        return data
    i = _at(data, pos)
    return data[:i] + bytes([data[i] ^ (1 << (bit % 8))]) + data[i + 1 :]


def _run(data: bytes, header: Any, pos: int, length: int, byte: int) -> bytes:
    i = _at(data, pos)
    run = bytes([byte % 256]) * min(length, len(data) - i)
    return data[:i] + run + data[i + len(run) :]


def _truncate(data: bytes, header: Any, pos: int) -> bytes:
    return data[: _at(data, pos)]


def _delete(data: bytes, header: Any, pos: int, length: int) -> bytes:
    i = _at(data, pos)
    return data[:i] + data[i + length :]


def _insert(data: bytes, header: Any, pos: int, text: str) -> bytes:
    i = _at(data, pos) if data else 0
    return data[:i] + bytes.fromhex(text) + data[i:]


def _dup(data: bytes, header: Any, pos: int, length: int) -> bytes:
    i = _at(data, pos)
    return data[: i + length] + data[i : i + length] + data[i + length :]


def _int(data: bytes, header: Any, pos: int, width: int, value: int) -> bytes:
    width = 8 if width == 8 else 4
    if len(data) < width:
        return data
    i = (pos % (len(data) - width + 1)) // width * width
    packed = struct.pack("<q" if width == 8 else "<i", _fit(value, width))
    return data[:i] + packed + data[i + width :]


def _fit(value: int, width: int) -> int:
    """`value` wrapped into a signed integer of `width` bytes."""
    bits = 8 * width
    value %= 1 << bits
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


# -- Arrow IPC ---------------------------------------------------------------------------------
def _messages(stream: bytes) -> list[tuple[int, int, int, int]]:
    """(metadata offset, metadata size, body offset, body size) of each IPC message."""
    import pyarrow as pa

    base = pa.py_buffer(stream)
    found = []
    try:
        for message in pa.ipc.MessageReader.open_stream(pa.BufferReader(base)):
            body = message.body
            found.append(
                (
                    message.metadata.address - base.address,
                    message.metadata.size,
                    body.address - base.address if body is not None else 0,
                    body.size if body is not None else 0,
                )
            )
    except (pa.ArrowException, ValueError, OSError):
        pass  # the stream was broken by an earlier mutation: mutate the messages read so far
    return found


def _arrow_meta(stream: bytes, header: Any, message: int, slot: int, mode: str, value: int) -> bytes:
    """Rewrite one of the int64s of a message's flatbuffer that could be a length, an offset, a
    null count or the body size: aligned, and between 0 and the stream's size."""
    messages = _messages(stream)
    if not messages:
        return stream
    start, size, _, _ = messages[message % len(messages)]
    slots = [
        p
        for p in range(start + (-start % 8), start + size - 7, 8)
        if 0 <= struct.unpack_from("<q", stream, p)[0] <= max(len(stream), 1 << 20)
    ]
    if not slots:
        return stream
    p = slots[slot % len(slots)]
    old = struct.unpack_from("<q", stream, p)[0]
    new = old + value if mode == "add" else old * 2 if mode == "double" else value
    return stream[:p] + struct.pack("<q", _fit(new, 8)) + stream[p + 8 :]


def _body_buffers(stream: bytes) -> list[tuple[int, int]]:
    """(offset in the stream, size) of every buffer of every uncompressed record batch."""
    import pyarrow as pa

    found: list[tuple[int, int]] = []
    base = pa.py_buffer(stream)
    try:
        reader = pa.ipc.open_stream(base)
        schema = reader.schema
        for message in pa.ipc.MessageReader.open_stream(pa.BufferReader(base)):
            if message.type != "record batch" or message.body is None:
                continue
            batch = pa.ipc.read_record_batch(message, schema)
            body = message.body
            for column in batch.columns:
                for buffer in _all_buffers(column):
                    inside = body.address <= buffer.address < body.address + body.size
                    if inside:  # compressed buffers were decompressed into new memory
                        found.append((buffer.address - base.address, buffer.size))
    except (pa.ArrowException, ValueError, OSError):
        pass
    return found


def _all_buffers(array: Any) -> list[Any]:
    buffers = [b for b in array.buffers() if b is not None and b.size]
    dictionary = getattr(array, "dictionary", None)
    if dictionary is not None:
        buffers += [b for b in dictionary.buffers() if b is not None and b.size]
    return buffers


def _arrow_buffer(stream: bytes, header: Any, buffer: int, element: int, width: int, value: int) -> bytes:
    buffers = _body_buffers(stream)
    if not buffers:
        return _int(stream, header, element, width, value)
    start, size = buffers[buffer % len(buffers)]
    width = 8 if width == 8 else 4
    if size < width:
        return stream
    i = start + (element % (size // width)) * width
    packed = struct.pack("<q" if width == 8 else "<i", _fit(value, width))
    return stream[:i] + packed + stream[i + width :]


def _arrow_offsets(stream: bytes, header: Any, column: int, element: int, value: int) -> bytes:
    """The first batch re-encoded with one column's offsets (strings, lists) or dictionary
    indices changed — what a writer that never validated could produce, under any compression."""
    import pyarrow as pa

    try:
        batch = pa.ipc.open_stream(stream).read_next_batch()
        return _with_offset(batch, header, column, element, value)
    except (pa.ArrowException, ValueError, OSError, StopIteration):
        # An earlier mutation broke the stream, or pyarrow checks these offsets as it builds
        # the array (lists): this mutation cannot be expressed, the stream stays as it was.
        return stream


def _with_offset(batch: Any, header: Any, column: int, element: int, value: int) -> bytes:
    import numpy as np
    import pyarrow as pa

    arrays = list(batch.columns)
    k = column % len(arrays)
    array = arrays[k]
    buffers = array.buffers()[: array.type.num_buffers]  # its own, not its children's
    dictionary = getattr(array, "dictionary", None)
    if len(buffers) < 2 or buffers[1] is None:
        raise ValueError("no offsets")
    width = 8 if pa.types.is_large_string(array.type) or pa.types.is_large_list(array.type) else 4
    if dictionary is not None:
        width = array.type.index_type.bit_width // 8
    kind = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}[width]
    numbers = np.frombuffer(buffers[1], dtype=kind).copy()
    if numbers.size == 0:
        raise ValueError("no offsets")
    numbers[element % numbers.size] = _fit(value, width)
    buffers = [buffers[0], pa.py_buffer(numbers.tobytes()), *buffers[2:]]
    if dictionary is not None:
        arrays[k] = pa.DictionaryArray.from_buffers(array.type, len(array), buffers, dictionary)
    else:
        arrays[k] = pa.Array.from_buffers(array.type, len(array), buffers, children=_children(array))
    ipc = (header.get("meta") or {}).get("compression")
    options = pa.ipc.IpcWriteOptions(compression={"zstd": "zstd", "lz4": "lz4_frame"}.get(ipc))
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, batch.schema, options=options) as writer:
        writer.write_batch(pa.record_batch(arrays, schema=batch.schema))
    return sink.getvalue()


def _children(array: Any) -> list[Any] | None:
    values = getattr(array, "values", None)
    return [values] if values is not None and not hasattr(array, "dictionary") else None


# -- .npy ----------------------------------------------------------------------------------------
NPY_FIELDS: dict[str, tuple[Any, ...]] = {
    "descr": (
        "|V16777216",
        "|V0",
        "<U100000000",
        "|S1000000000",
        "|O",
        "<f8",
        ">i4",
        "|S0",
        "<M8[ns]",
        "<m8[D]",
        "bogus",
        "<f2",
        "|b1",
        [("a", "<i4"), ("b", "|V1000000")],
        [("a", "|O")],
        [("a", "<f8", (1 << 20, 1 << 20))],
    ),
    "shape": (
        (),
        (0,),
        (1,),
        (16,),
        (1 << 31,),
        (1 << 40,),
        (1 << 62, 4),
        (-1,),
        (3, -2),
        (10**6, 10**6),
        (2,) * 64,
    ),
    "fortran_order": (True, False, 1, "yes"),
}
NPY_TEXTS = (
    "{'descr': '<f8', 'fortran_order': False, 'shape': (" + "1," * 5000 + ")}",
    "{'descr': '<f8', 'fortran_order': False, 'shape': " + "(" * 200 + ")" * 200 + "}",
    "{'descr': '<f8', 'fortran_order': False}",
    "[1, 2, 3]",
    "{'descr': {'names': ['a'], 'formats': ['<i4'], 'offsets': [1099511627776]}, 'fortran_order': False, 'shape': (4,)}",
    "{'descr': {'names': ['a', 'b'], 'formats': ['<i4', '<i4'], 'offsets': [0, 0], 'itemsize': 4}, 'fortran_order': False, 'shape': (4,)}",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (9" + "9" * 5000 + ",)}",
)


def _npy_parts(data: bytes) -> tuple[int, dict[str, Any], bytes] | None:
    """(major version, header dict, the array bytes after the header) of a .npy stream."""
    if not data.startswith(b"\x93NUMPY") or len(data) < 10:
        return None
    major = data[6]
    size_format, start = ("<H", 10) if major == 1 else ("<I", 12)
    (length,) = struct.unpack_from(size_format, data, 8)
    try:
        fields = ast.literal_eval(data[start : start + length].decode("latin1"))
    except Exception:  # ValueError, SyntaxError, MemoryError, RecursionError, SystemError (deep)
        return None
    if not isinstance(fields, dict):
        return None
    return major, fields, data[start + length :]


def _npy_pack(major: int, text: str, rest: bytes) -> bytes:
    """A .npy stream with `text` as its header, padded to 64 bytes as numpy writes it."""
    raw = text.encode("latin1")
    size_format, start = ("<H", 10) if major == 1 and len(raw) < 65000 else ("<I", 12)
    major = 1 if start == 10 else 2
    padding = -(start + len(raw) + 1) % 64
    raw += b" " * padding + b"\n"
    return b"\x93NUMPY" + bytes([major, 0]) + struct.pack(size_format, len(raw)) + raw + rest


def _unframed(mutate: Function) -> Function:
    """`mutate` applied to the .npy header of a zstd-framed array payload too (behind its magic)."""

    def mutated(data: bytes, header: Any, *args: Any) -> bytes:
        if data.startswith(numpy_zstd.MAGIC):
            return numpy_zstd.MAGIC + mutate(data[len(numpy_zstd.MAGIC) :], header, *args)
        return mutate(data, header, *args)

    return mutated


def _npy_frames(data: bytes) -> tuple[bytes, list[tuple[int, bytes]], bytes] | None:
    """(magic and .npy header, the (raw length, zstd frame) pairs, what trails them) of a
    zstd-framed array payload; None for any other payload."""
    parts = _npy_parts(data[len(numpy_zstd.MAGIC) :]) if data.startswith(numpy_zstd.MAGIC) else None
    if parts is None:
        return None
    rest = parts[2]
    frames, at = [], 0
    while at + 8 <= len(rest):
        raw, size = struct.unpack_from(">II", rest, at)
        frames.append((raw, rest[at + 8 : at + 8 + size]))
        at += 8 + size
    return data[: len(data) - len(rest)], frames, rest[at:]


def _npy_frame(data: bytes, header: Any, index: int, field: str, value: int) -> bytes:
    """One frame of a zstd-framed array changed: its raw length or frame length set to
    `value`, or (bomb) its body replaced by a frame of `value` % 200 MiB of zeros."""
    found = _npy_frames(data)
    if found is None or not found[1]:
        return data
    head, frames, tail = found
    k = index % len(frames)
    raw, frame = frames[k]
    size = len(frame)
    if field == "raw":
        raw = value % (1 << 32)
    elif field == "length":
        size = value % (1 << 32)
    else:
        frame = _zstd_frame(bytes((value % 200) << 20))
        size = len(frame)
    frames[k] = (raw, frame)
    body = b"".join(struct.pack(">II", r, len(f) if i != k else size) + f for i, (r, f) in enumerate(frames))
    return head + body + tail


def _zstd_frame(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(data)


def _npy_header(data: bytes, header: Any, field: str, value: int) -> bytes:
    parts = _npy_parts(data)
    if parts is None:
        return data
    major, fields, rest = parts
    choices = NPY_FIELDS[field]
    chosen = choices[value % len(choices)]
    fields[field] = tuple(chosen) if isinstance(chosen, tuple) else chosen
    return _npy_pack(major, repr(fields), rest)


def _npy_text(data: bytes, header: Any, text: int) -> bytes:
    parts = _npy_parts(data)
    if parts is None:
        return data
    major, _, rest = parts
    return _npy_pack(major, NPY_TEXTS[text % len(NPY_TEXTS)], rest)


# -- decompression bombs -------------------------------------------------------------------------
def _bomb(data: bytes, header: Any, mib: int) -> bytes:
    """`mib` MiB of zeros after the value: a few KB once compressed (left alone uncompressed,
    where it would only make a big object). The reader's bound, not the object, must stop it."""
    if header["compression"] == "none":
        return data
    return data + bytes(mib << 20)


# -- JSON ----------------------------------------------------------------------------------------
def _json_deep(data: bytes, header: Any, depth: int, opener: int) -> bytes:
    """A document nested `depth` levels: a recursive decoder must refuse it, not overflow."""
    open_, close = [(b"[", b"]"), (b'{"a":', b"}"), (b'{"__classname__":', b"}")][opener % 3]
    return open_ * depth + b"1" + close * depth


Function = Callable[..., bytes]
_KINDS: dict[str, tuple[str, Function]] = {
    "flip": ("either", _flip),
    "run": ("either", _run),
    "truncate": ("either", _truncate),
    "delete": ("either", _delete),
    "insert": ("either", _insert),
    "dup": ("either", _dup),
    "int": ("either", _int),
    "arrow_meta": ("plain", _arrow_meta),
    "arrow_buffer": ("plain", _arrow_buffer),
    "arrow_offsets": ("plain", _arrow_offsets),
    "npy_header": ("plain", _unframed(_npy_header)),
    "npy_text": ("plain", _unframed(_npy_text)),
    "npy_frame": ("plain", _npy_frame),
    "json_deep": ("plain", _json_deep),
    "bomb": ("plain", _bomb),
}
GENERIC = ("flip", "run", "truncate", "delete", "insert", "dup", "int")
STRUCTURED = {
    "arrow": ("arrow_meta", "arrow_buffer", "arrow_offsets"),
    "numpy": ("npy_header", "npy_text", "npy_frame"),
    "json": ("json_deep",),
    "bytes": (),
}
