"""Fixtures for the whole suite, registered as plugins (started or set up only when a test asks):
the object-store servers, and the stores and shared Airflow of tests/lifecycle and tests/faults."""

pytest_plugins = ["tests.servers.fixtures", "tests.lifecycle.fixtures"]
