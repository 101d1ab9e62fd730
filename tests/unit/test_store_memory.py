"""StoreContract on fsspec's memory:// filesystem."""

from __future__ import annotations

import pytest
from fsspec.implementations.memory import MemoryFileSystem
from tests.contracts.store_contract import StoreContract

from xcomstore.storage.location import Location, fsspec_filesystem
from xcomstore.storage.retry import RetryPolicy


class TestMemoryStore(StoreContract):
    # MemoryFileSystem publishes a file when it is opened: only a rename makes writes atomic.
    renames_atomically = True
    has_directories = True
    reports_mtime = True  # its "created" time: a memory file is written once, when created

    @pytest.fixture
    def location(self, clean_memory_fs: MemoryFileSystem, retry: RetryPolicy) -> Location:
        url = "memory://xcom-tests/store"
        fs, root = fsspec_filesystem(url)
        assert isinstance(fs, MemoryFileSystem)
        return Location(url, fs, root, retry)
