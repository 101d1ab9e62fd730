"""The errors xcomstore raises. Every one of them says which XCom and which object it is about."""

from __future__ import annotations


class XComStoreError(Exception):
    """Base class of every error raised by xcomstore."""


class ConfigError(XComStoreError, ValueError):
    """A setting is missing, misspelled or has a value that cannot work."""


class RejectedValueError(XComStoreError, TypeError):
    """A value cannot be stored: no codec takes its type, or a limit forbids it. Nothing was written."""


class ForgedReferenceError(XComStoreError):
    """A reference points outside the configured locations, or is malformed: it is never followed."""


class ObjectFormatError(XComStoreError):
    """Bytes that are not a valid xcomstore object (bad magic, truncated, future format version)."""


class CorruptObjectError(ObjectFormatError):
    """The object's payload does not match its checksum or the reference's."""


class ObjectNotFoundError(XComStoreError, FileNotFoundError):
    """The object a reference points to does not exist in any location."""


class StoreUnavailableError(XComStoreError, OSError):
    """The store kept failing after the configured retries."""
