"""`python -m bench.s3_upload`: one 80 MB upload to a local moto server, as one PUT and in parts.

Why an 80 MB array pushes slower than s3fs `pipe` against moto: `pipe` sends anything under
100 MiB as one PUT (holding the whole value in memory), while xcomstore streams 16 MiB parts of a
multipart upload, which moto completes by copying the parts together. This measures that
difference with s3fs alone, no xcomstore and no Airflow.
"""

from __future__ import annotations

import functools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.s3server import MotoServer

_MIB = 1 << 20
_RUNS = 5


def main() -> None:
    data = bytes(range(256)) * (80_000_000 // 256)
    with tempfile.TemporaryDirectory() as scratch:
        server = MotoServer(Path(scratch) / "moto.log")
        try:
            server.fs.mkdir("upload")
            view = memoryview(data)
            _time("s3fs pipe (one PUT below 100 MiB)", lambda key: server.fs.pipe(key, data))
            for part in (8, 16, 50):
                _time(
                    f"streamed, {part} MiB parts",
                    functools.partial(_stream, server, view=view, block_size=part * _MIB),
                )
            _time(
                "streamed, one part (one PUT)",
                functools.partial(_stream, server, view=view, block_size=128 * _MIB),
            )
        finally:
            server.stop()


def _stream(server: MotoServer, key: str, view: memoryview, block_size: int) -> None:
    with server.fs.open(key, "wb", block_size=block_size) as sink:
        for start in range(0, view.nbytes, _MIB):
            sink.write(view[start : start + _MIB])


def _time(label: str, upload: Callable[[str], None]) -> None:
    seconds = []
    for run in range(_RUNS):
        started = time.perf_counter()
        upload(f"upload/key-{run}")
        seconds.append(time.perf_counter() - started)
    print(f"{label:38s} median {statistics.median(seconds):.3f} s  best {min(seconds):.3f} s", flush=True)


if __name__ == "__main__":
    main()
