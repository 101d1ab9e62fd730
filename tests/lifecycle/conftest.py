"""Fixtures of the lifecycle tests: copies in several locations, retention, gc, repair, the CLI."""

from tests.lifecycle.fixtures import *  # noqa: F403
