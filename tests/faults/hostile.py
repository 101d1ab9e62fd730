"""Hostile objects, as whoever can write to the bucket can make them, and a subprocess that reads one.

The seal's digests are unkeyed: an attacker who writes an object recomputes them, so every object
built here is correctly sealed, and only the decoders and the bounds stand between its bytes and
the reading process. Each object is read in a child process (`run_read`), which reports how the
read ended and how much its peak RSS grew: a bomb must not take the test runner down with it, and
a segfault must show as a signal, not as a dead pytest.

    python -m tests.faults.hostile <store dir> <object file> <max_size or ""> <reference size or "">
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import resource
import struct
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from xcomstore.format import checksum
from xcomstore.format.container import PREFIX_SIZE, SEAL_MAGIC, object_digest, parse_prefix, write_payload
from xcomstore.format.header import Header
from xcomstore.identity import Origin

ORIGIN = Origin(dag_id="dag", run_id="run", task_id="task", map_index=-1, key="return_value")
MiB = 1 << 20
_ZEROS = bytes(MiB)


def sealed(
    codec: str, compression: str, payload: bytes, meta: dict[str, Any] | None = None, type_name: str = "x"
) -> bytes:
    """A correctly sealed version 3 object holding `payload` (already compressed as `compression`)."""
    header = Header(
        codec=codec,
        compression=compression,
        type_name=type_name,
        summary="hostile",
        origin=ORIGIN,
        created="2026-01-01T00:00:00+00:00",
        meta=meta or {},
    )
    sink = io.BytesIO()
    write_payload(sink, header, lambda stream: stream.write(payload))
    return sink.getvalue()


def reseal(data: bytes, change: Callable[[bytes], bytes]) -> bytes:
    """The object with its payload changed by `change`, both digests recomputed (version 3)."""
    head_end = PREFIX_SIZE + parse_prefix(data[:PREFIX_SIZE])
    head, payload = data[:head_end], data[head_end:-80]
    algorithm = json.loads(data[PREFIX_SIZE:head_end])["checksum"]
    new = change(payload)
    hashed = checksum.new(algorithm)
    hashed.update(new)
    digest = hashed.digest()
    seal = struct.pack(">Q32s32s8s", len(new), digest, object_digest(head, len(new), digest), SEAL_MAGIC)
    return head + new + seal


def compressed_zeros(compression: str, size: int, prefix: bytes = b"", suffix: bytes = b"") -> bytes:
    """`prefix`, `size` zero bytes and `suffix`, compressed as a stream (never held whole)."""
    from xcomstore.format.compression import compressing_writer

    sink = io.BytesIO()
    stream = compressing_writer(compression, sink, 9 if compression == "gzip" else None)
    stream.write(prefix)
    for start in range(0, size, MiB):
        stream.write(_ZEROS[: min(MiB, size - start)])
    stream.write(suffix)
    stream.close()
    return sink.getvalue()


def json_bomb(compression: str, items: int) -> bytes:
    """A JSON list of `items` empty lists: a few bytes each compressed, ~64 B each as Python."""
    from xcomstore.format.compression import compressing_writer

    sink = io.BytesIO()
    stream = compressing_writer(compression, sink)
    stream.write(b"[[]")
    chunk = b",[]" * (MiB // 3)
    for _ in range(items // (MiB // 3)):
        stream.write(chunk)
    stream.write(b"]")
    stream.close()
    return sealed("json", compression, sink.getvalue(), type_name="list")


def npy_bomb(compression: str, size: int) -> bytes:
    """A float64 .npy of `size` bytes of zeros, compressed."""
    import numpy as np

    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        head, {"descr": "<f8", "fortran_order": False, "shape": (size // 8,)}
    )
    meta = {"dtype": "float64", "shape": [size // 8]}
    return sealed("numpy", compression, compressed_zeros(compression, size, head.getvalue()), meta)


def npy_header_only(shape: tuple[int, ...], descr: Any = "<f8", body: bytes = b"") -> bytes:
    """An uncompressed .npy whose header claims `shape` of `descr`, followed by `body` only."""
    import numpy as np

    head = io.BytesIO()
    np.lib.format.write_array_header_2_0(head, {"descr": descr, "fortran_order": False, "shape": shape})
    return sealed("numpy", "none", head.getvalue() + body, {"dtype": "float64", "shape": list(shape)})


def arrow_bomb(ipc_compression: str, rows: int, flavour: str) -> bytes:
    """One record batch of `rows` int64 zeros, its buffer compressed by Arrow itself. Built in
    a child process: the table itself is `rows` × 8 bytes."""
    script = (
        "import sys, pyarrow as pa, numpy as np\n"
        f"t = pa.table({{'a': pa.array(np.zeros({rows}, dtype=np.int64))}})\n"
        f"o = pa.ipc.IpcWriteOptions(compression={ipc_compression!r})\n"
        "s = pa.BufferOutputStream()\n"
        "with pa.ipc.new_stream(s, t.schema, options=o) as w: w.write_table(t)\n"
        "sys.stdout.buffer.write(s.getvalue().to_pybytes())\n"
    )
    ipc = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True).stdout
    native = {"zstd": "zstd", "lz4_frame": "lz4"}[ipc_compression]
    meta = {"flavour": flavour, "rows": rows, "columns": 1, "compression": native}
    return sealed("arrow", "none", ipc, meta, type_name=flavour)


def arrow_ipc(table: Any, compression: str | None = None, batch_rows: int | None = None) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table, max_chunksize=batch_rows)
    return bytes(sink.getvalue().to_pybytes())


def write_stream_table(store: Any, origin: Origin, value: Any, payload: Callable[[BinaryIO], Any]) -> str:
    """Write `value`'s object as xcomstore wrote tables before blocks: version 3, one Arrow
    stream (`payload` writes it, with Arrow's own zstd buffer compression); its URI."""
    from xcomstore.core import layout
    from xcomstore.format import container

    codec = store.codecs.binary_for(value)
    assert codec is not None
    described = codec.describe(value)
    header = dataclasses.replace(
        store._header(codec, described, origin, value),
        layout="stream",
        compression="none",
        meta={**described.meta, "compression": "zstd"},  # Arrow's own buffer compression
    )
    relpath = layout.object_path(origin)
    with store.location.writer(relpath) as sink:
        container.write_object(sink, header, payload)
    return str(store.location.uri(relpath))


# -- the reading child -----------------------------------------------------------------------
def run_read(
    tmp: Path, data: bytes, *, max_size: str = "", reference_size: int | None = None, timeout: float = 120
) -> dict[str, Any]:
    """Write `data` as the object of ORIGIN in a file:// store under `tmp` and read it in a
    child process: its report (outcome, error, message, rss_growth), or {"signal": n}."""
    from xcomstore.core import layout

    store = tmp / "store"
    target = store / layout.object_path(ORIGIN)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    size = "" if reference_size is None else str(reference_size)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run(
        [sys.executable, "-m", "tests.faults.hostile", str(store), str(target), max_size, size],
        capture_output=True,
        timeout=timeout,
        env=env,
        text=True,
    )
    if done.returncode < 0:
        return {"signal": -done.returncode, "stderr": done.stderr[-2000:]}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"exit": done.returncode, "stderr": done.stderr[-4000:]}
    return dict(json.loads(lines[-1]))


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _child(store_dir: str, target: str, max_size: str, reference_size: str) -> dict[str, Any]:
    import numpy  # noqa: F401  (imported before the baseline: not what the read costs)
    import pandas  # noqa: F401
    import polars  # noqa: F401
    import pyarrow  # noqa: F401

    from xcomstore.core.reference import Reference
    from xcomstore.core.settings import Settings
    from xcomstore.core.store import XComStore
    from xcomstore.errors import XComStoreError
    from xcomstore.format.container import open_object, reference_fields

    options = {"path": f"file://{store_dir}", **({"max_size": max_size} if max_size else {})}
    store = XComStore.from_settings(Settings.from_mapping(options))
    uri = store.location.uri(os.path.relpath(target, store_dir))
    raw = Path(target).read_bytes()
    obj = open_object(io.BytesIO(raw), len(raw))
    digest = checksum.label(obj.header.checksum, obj.seal.digest)
    header = obj.header
    del raw, obj
    baseline = _peak_rss()
    report: dict[str, Any] = {}
    try:
        if reference_size:
            # The reference a push of this object would have made, but for its size.
            fields = reference_fields(header)
            ref = Reference(
                uri=uri,
                type_name=str(fields["type"]),
                summary=header.summary,
                codec=str(fields["codec"]),
                compression=str(fields["compression"]),
                size=int(reference_size),
                stored_bytes=0,
                checksum=digest,
            )
            value = store.read_reference(ref)
        else:
            value = store.read(uri)
        report["outcome"] = "value"
        report["type"] = f"{type(value).__module__}.{type(value).__name__}"
        _use(value)
    except XComStoreError as exc:
        report.update(outcome="error", error=type(exc).__name__, message=str(exc))
    except BaseException as exc:  # what escapes the store: the test says this must not happen
        report.update(outcome="escaped", error=type(exc).__name__, message=str(exc)[:500])
    report["rss_growth"] = _peak_rss() - baseline
    return report


def _use(value: Any) -> None:
    """Touch the value as a task would: an invalid Arrow table crashes here, if anywhere."""
    if hasattr(value, "to_pandas"):
        value.to_pandas()
    if hasattr(value, "sum"):
        value.sum()
    repr(value)


def main(argv: Iterable[str]) -> None:
    report = _child(*argv)
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
    os._exit(0)  # skip interpreter teardown: a broken value must not crash on its way out
