"""XComStoreContract on local folders (file://): two folders of one temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.contracts.projection_contract import ProjectionContract
from tests.contracts.xcomstore_contract import XComStoreContract


class TestXComStoreOnFiles(XComStoreContract):
    @pytest.fixture
    def urls(self, tmp_path: Path) -> tuple[str, str]:
        return f"file://{tmp_path}/store", f"file://{tmp_path}/copy"


class TestProjectionOnFiles(ProjectionContract):
    @pytest.fixture
    def urls(self, tmp_path: Path) -> tuple[str, str]:
        return f"file://{tmp_path}/store", f"file://{tmp_path}/copy"
