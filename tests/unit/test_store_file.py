"""StoreContract on a local folder (file://), plus what only the local filesystem shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.contracts.store_contract import DATA, OBJECT, Boom, StoreContract, write_then_fail

from xcomstore.storage.location import Location, fsspec_filesystem
from xcomstore.storage.retry import RetryPolicy


class TestFileStore(StoreContract):
    renames_atomically = True
    has_directories = True
    reports_mtime = True

    @pytest.fixture
    def location(self, tmp_path: Path, retry: RetryPolicy) -> Location:
        url = f"file://{tmp_path}/store"
        fs, root = fsspec_filesystem(url)
        return Location(url, fs, root, retry)

    def test_failed_write_leaves_no_temp_file(self, location: Location, tmp_path: Path) -> None:
        """Seen on the disk itself, not through fsspec."""
        temp_files: list[Path] = []
        with pytest.raises(Boom):
            write_then_fail(
                location, OBJECT, DATA, Boom(), lambda: temp_files.extend(tmp_path.rglob(".*.xcstmp-*"))
            )
        assert temp_files, "writes go to a hidden temp file beside the target"
        assert [p for p in tmp_path.rglob("*") if p.is_file()] == []

    def test_interrupted_write_leaves_no_file_on_disk(self, location: Location, tmp_path: Path) -> None:
        with pytest.raises(KeyboardInterrupt):
            write_then_fail(location, OBJECT, DATA, KeyboardInterrupt())
        assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
