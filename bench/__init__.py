"""Benchmark: xcomstore vs common-io's XComObjectStorageBackend vs the default XCom backend.

Run `python -m bench --help` from the repository root; see bench/README.md.
"""
