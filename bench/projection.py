"""Column projection and typed reads: a few columns of a large table against the whole of it.

`python -m bench.projection` pushes a table of 20 float64 columns (800 MB by default) through
XComStore (no Airflow: the store alone) into a local folder, and with `--s3` into a moto S3
server too, then times, best of `--repeats`:

    full        store.pull(ref)                                 every column
    2 columns   store.pull(ref, columns=["c3", "c17"])          only those blocks are read
    typed       store.pull(ref, columns=[...], to="polars")     a pandas frame read as polars

and the bytes each read moved: on files, what the process read (/proc/self/io rchar), on S3,
what the ranged GETs returned (counted by a wrapper around s3fs). The target: 2 of 20 columns
move at most 1.3x their bytes and take at most 0.2x the full pull.

moto itself copies the whole object for every GET (its FakeKey.value) and slices a range out of
that copy, so a read of a few columns of a large object would pay per request what the full
pull pays once; S3 reads only the range. So the S3 server here is moto behind bench/s3_front.py,
which answers GETs, whole or ranged, from moto's copy of the object, reading only what is asked
(writes, lists and HEADs are moto's); `--moto-gets` measures moto's own GETs instead.
`--azure` runs the same on Azurite, whose ranged reads read only the range from its file.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.s3server import add_moto_gets

COLUMNS = 20
WANTED = ["c3", "c17"]


def _rchar() -> int:
    with open("/proc/self/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("rchar"))


class _Counting:
    """An fsspec filesystem whose ranged reads are counted."""

    def __init__(self, fs: Any) -> None:
        self._fs = fs
        self.read = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fs, name)

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kw: Any) -> bytes:
        data = bytes(self._fs.cat_file(path, start=start, end=end, **kw))
        self.read += len(data)
        return data


def _best(repeats: int, read: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        value = read()
        times.append(time.perf_counter() - started)
        del value
    return min(times)


def frame_of(rows: int) -> Any:
    """COLUMNS float64 columns of noise (it barely compresses), `rows` long."""
    import numpy as np
    import pandas as pd

    return pd.DataFrame({f"c{i}": np.random.default_rng(i).random(rows) for i in range(COLUMNS)})


@contextlib.contextmanager
def _moto(direct_gets: bool) -> Iterator[Any]:
    from bench.s3server import MotoServer

    with tempfile.TemporaryDirectory() as logs:
        server = MotoServer(Path(logs) / "moto.log", direct_gets=direct_gets)
        try:
            yield server
        finally:
            server.stop()


def _store(url: str, opener: Any | None = None, compression: str = "none") -> Any:
    from xcomstore.core.settings import Settings
    from xcomstore.core.store import XComStore

    settings = Settings.from_mapping({"path": url, "compression": compression})
    return XComStore.from_settings(settings, **({"opener": opener} if opener else {}))


def run(where: str, url: str, opener: Any, frame: Any, repeats: int, compression: str) -> None:
    from xcomstore.identity import Origin

    origin = Origin(dag_id="bench", run_id="run", task_id="task", map_index=-1, key="return_value")
    store = _store(url, opener, compression)
    started = time.perf_counter()
    ref = store.push(frame, origin)
    push = time.perf_counter() - started
    wanted_bytes = len(WANTED) * len(frame) * 8
    full = _best(repeats, lambda: store.pull(ref))
    part = _best(repeats, lambda: store.pull(ref, columns=WANTED))
    typed = _best(repeats, lambda: store.pull(ref, columns=WANTED, to="polars"))
    assert store.pull(ref, columns=WANTED).equals(frame[WANTED]), f"{where}: the columns read differ"
    if where == "file":
        before = _rchar()
        store.pull(ref, columns=WANTED)
        moved = _rchar() - before
    else:
        counting: list[_Counting] = []

        def counted(u: str) -> tuple[Any, str]:
            fs, root = opener(u)
            counting.append(_Counting(fs))
            return counting[-1], root

        _store(url, counted, compression).pull(ref, columns=WANTED)
        moved = counting[0].read
    size = frame.memory_usage().sum() / 1e6
    print(
        f"{where:5} {compression:5} {size:5.0f} MB  push {push:6.2f} s  full pull {full:6.2f} s  "
        f"2 columns {part:6.3f} s ({part / full:.2f}x)  as polars {typed:6.3f} s  "
        f"moved {moved / 1e6:6.1f} MB ({moved / wanted_bytes:.2f}x the columns' {wanted_bytes / 1e6:.0f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows (x 20 float64 columns)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--s3", action="store_true", help="also on a local moto S3 server")
    add_moto_gets(parser)
    parser.add_argument("--azure", action="store_true", help="also on a local Azurite blob server")
    parser.add_argument("--compression", default="none")
    args = parser.parse_args()
    frame = frame_of(args.rows)
    folder = tempfile.mkdtemp(prefix="xcs-projection-")
    try:
        from xcomstore.storage.location import fsspec_filesystem

        run("file", f"file://{folder}/store", fsspec_filesystem, frame, args.repeats, args.compression)
    finally:
        shutil.rmtree(folder)
    if args.s3:
        with _moto(direct_gets=not args.moto_gets) as server:
            import s3fs

            def opener(url: str) -> tuple[Any, str]:
                fs = s3fs.S3FileSystem(
                    endpoint_url=server.endpoint, key="testing", secret="testing", skip_instance_cache=True
                )
                return fs, url.removeprefix("s3://").split("@")[-1]

            url = server.make_bucket("projection").replace("bench_s3@", "")
            run("s3", url, opener, frame, args.repeats, args.compression)
    if args.azure:
        _on_azurite(frame, args.repeats, args.compression)


def _on_azurite(frame: Any, repeats: int, compression: str) -> None:
    """The same on Azurite (scripts/install-servers), which answers a ranged read from its
    file: what a store that reads only the asked range does."""
    import fsspec
    from tests.servers.azure import start_azure

    with tempfile.TemporaryDirectory(prefix="xcs-azurite-") as data:
        server = start_azure(Path(data))
        try:
            server.create_bucket("projection")

            def opener(url: str) -> tuple[Any, str]:
                fs = fsspec.filesystem("abfs", skip_instance_cache=True, **server.storage_options())
                return fs, url.removeprefix("abfs://").split("@")[-1]

            run("azure", "abfs://projection/store", opener, frame, repeats, compression)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
