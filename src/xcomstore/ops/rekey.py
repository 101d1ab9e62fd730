"""Re-encrypt stored objects under the active encryption key, so an old key can be retired.

Only the encryption changes: the plaintext payload, and so its digest (the checksum in every
reference in the metadata DB), stays the same. Objects stored before encryption was enabled
are encrypted too. Every rewritten object is the current format version, whose seal also
authenticates the new header (see format/container.py); an older object's header was not
authenticated, so rekey carries over what it says as it is.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from xcomstore.core import table_reads
from xcomstore.core.store import XComStore
from xcomstore.errors import CorruptObjectError, XComStoreError
from xcomstore.format import container
from xcomstore.storage.headers import read_header
from xcomstore.storage.location import Location


@dataclass
class RekeySummary:
    dry_run: bool
    checked: int = 0
    rewritten: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # the fields, as they are named


def rekey(
    store: XComStore, *, dry_run: bool = False, progress: Callable[[RekeySummary], None] | None = None
) -> RekeySummary:
    keyring = store.settings.encryption
    if not keyring:
        raise XComStoreError("rekey needs [xcomstore] encryption_keys: there is no key to encrypt with")
    summary = RekeySummary(dry_run)
    for location in store.locations:
        for info in location.list():
            summary.checked += 1
            if progress is not None and summary.checked % 100 == 0:
                progress(summary)
            try:
                header = read_header(location, info.relpath)
                if header.encryption and header.encryption.get("key_id") == keyring.active_id:
                    continue
                if not dry_run:
                    _rewrite(store, location, info.relpath)
                summary.rewritten.append(location.uri(info.relpath))
            except (XComStoreError, OSError) as exc:
                summary.errors.append(f"{location.uri(info.relpath)}: {exc}")
    return summary


def _rewrite(store: XComStore, location: Location, relpath: str) -> None:
    keyring = store.settings.encryption
    with location.reader(relpath) as (stream, size):
        obj = container.open_object(stream, size)
        header = dataclasses.replace(obj.header, encryption=keyring.new_params())
        pending = location.begin_write(relpath)
        try:
            if obj.header.layout == "blocks":  # each block checked as it is re-encrypted
                seal = table_reads.reencrypt(location, relpath, obj, keyring, pending.stream, header)
            else:
                plain, check = container.plaintext_stream(obj, keyring)
                seal = container.write_payload(
                    pending.stream, header, lambda out: shutil.copyfileobj(plain, out, 8 << 20), keyring
                )
                check()  # the old copy was intact and the old key right, before anything is replaced
            # Payload digests, whatever the versions: the header (and so the object digest) differs.
            if seal.digest != obj.seal.digest:
                raise CorruptObjectError("re-encrypted payload does not match the original")
        except BaseException:
            pending.abort()
            raise
    pending.commit()
