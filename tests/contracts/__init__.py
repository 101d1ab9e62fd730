"""Contract suites: behaviour every implementation of an interface must have, written once.

The modules here are not collected (their names do not start with test_) and their classes'
names do not start with Test: a collected module subclasses a contract once per implementation
and provides the contract's abstract fixtures. Capability flags (class attributes) tell the
contract what the implementation does where implementations legitimately differ, so a test
asserts the right behaviour for each instead of skipping.
"""
