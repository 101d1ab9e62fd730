"""Fixtures of the fault tests: policy, encryption, signing, outages, damaged objects."""

from tests.lifecycle.fixtures import *  # noqa: F403
