"""Fixtures for the whole suite: the object-store servers (started only when a test asks)."""

pytest_plugins = ["tests.servers.fixtures"]
