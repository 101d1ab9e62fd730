"""Every error xcomstore raises, in one hierarchy users can catch.

    XComStoreError
    ├── ConfigError (ValueError)            a setting is missing, misspelled or cannot work
    │   ├── MissingKeyError                 an object needs an encryption key not configured
    │   └── StartupConfigError (SystemExit) one found as Airflow loads the backend: one line
    ├── RejectedValueError (TypeError)      a value may not or cannot be stored; nothing was
    ├── UnknownFormatError (ValueError)     an export format this kind of value does not offer
    ├── OutsideTaskError (RuntimeError)     xcomstore.pull called where no Airflow task runs
    ├── ProjectionError (ValueError)        a read asked for columns or a type the value has not
    ├── ForgedReferenceError                a reference that is never followed
    │   └── UnsafePathError                 a symlink, FIFO or folder where a local object should be
    ├── ObjectFormatError                   bytes that are not a valid object
    │   └── CorruptObjectError              an object that fails its checksum or its reference
    ├── ObjectNotFoundError (FileNotFoundError)
    └── StoreUnavailableError (OSError)     talking to a store failed, after the retries
        └── StoreAccessError                the store refused (permissions, not a file, …):
                                            not retried, since trying again cannot help

Each error carries what it is about as attributes — `uri` (the object) and `xcom` (the XCom,
an Origin or a Wanted) — filled in by whichever layer knows them, and its message names both.
"""

from __future__ import annotations

from typing import TypeVar

E = TypeVar("E", bound="XComStoreError")


class XComStoreError(Exception):
    """Base class of every error raised by xcomstore."""

    def __init__(self, message: str, *, uri: str | None = None, xcom: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.uri = uri
        self.xcom = xcom  # an xcomstore.identity.Origin or Wanted (or its text)

    def about(self: E, *, uri: str | None = None, xcom: object | None = None) -> E:
        """Fill in the object and the XCom this error concerns, where not known yet."""
        self.uri = self.uri or uri or None
        self.xcom = self.xcom or xcom or None
        return self

    def __str__(self) -> str:
        if self.xcom:
            subject = f"XCom {self.xcom} at {self.uri}" if self.uri else f"XCom {self.xcom}"
        else:
            subject = self.uri or ""
        return f"{subject}: {self.message}" if subject else self.message


class ConfigError(XComStoreError, ValueError):
    """A setting is missing, misspelled or has a value that cannot work."""


class MissingKeyError(ConfigError):
    """An object is encrypted with a key that is not configured. A configuration matter: the
    copy is fine, so reads do not fail over to another copy as if it were damaged."""


class StartupConfigError(ConfigError, SystemExit):
    """A bad setting found as Airflow loads the backend: a ConfigError to whoever catches one
    (or any Exception: a DAG file's import error, a runner that logs it), and to the interpreter,
    when nothing does, a SystemExit, which it prints as one line (`code`) and exits 1 with. Airflow
    catches nothing around its commands, so a plain exception was a 70-line traceback through
    its import machinery, the message last."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = f"xcomstore: {message}"


class RejectedValueError(XComStoreError, TypeError):
    """A value cannot be stored: no codec takes its type, or a limit forbids it. Nothing was written."""


class UnknownFormatError(XComStoreError, ValueError):
    """An export (download, `xcomstore get`) was asked for a format this kind of value lacks."""


class OutsideTaskError(XComStoreError, RuntimeError):
    """`xcomstore.pull` resolves an XCom as the running task sees it: there must be one."""


class ProjectionError(XComStoreError, ValueError):
    """A read asked for what the value does not have: columns of a dict, a column the table
    lacks, a table library for an array. Nothing is wrong with the object: not failed over."""


class ForgedReferenceError(XComStoreError):
    """A reference points outside the configured locations, or is malformed: it is never followed."""


class UnsafePathError(ForgedReferenceError):
    """A local store holds a symlink, FIFO, device or folder where xcomstore would read, write
    or delete an object: it is never followed nor opened, so nothing outside the store is touched."""


class ObjectFormatError(XComStoreError):
    """Bytes that are not a valid xcomstore object (bad magic, truncated, future format version)."""


class CorruptObjectError(ObjectFormatError):
    """The object's payload does not match its checksum or the reference's."""


class ObjectNotFoundError(XComStoreError, FileNotFoundError):
    """The object a reference points to does not exist in any location."""


class StoreUnavailableError(XComStoreError, OSError):
    """Talking to the store failed, and kept failing after the configured retries. No raw
    OSError (or client library error) leaves a public call: it becomes one of these."""


class StoreAccessError(StoreUnavailableError):
    """The store refused the operation (permission denied, a directory where an object should
    be). Not retried: trying again cannot change the answer."""
