"""Where an XCom's object lives: `<dag_id>/<run_id>/<task_id>/<map_index>/<key>.xcs`.

Each segment is percent-encoded so that no value (slashes, `..`, unicode, control characters,
very long names) can leave its place in the tree or collide with another XCom's path, and the
path can be decoded back to the XCom it holds.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from typing import Final
from urllib.parse import quote, unquote

from xcomstore.errors import ForgedReferenceError
from xcomstore.identity import Origin, Wanted

SUFFIX: Final = ".xcs"
EMPTY: Final = "~"  # '~' is always escaped inside a segment, so it is free to mark emptiness
MAX_SEGMENT: Final = 120  # keeps five segments well below S3's 1024-byte key limit
_HASHED_TAIL: Final = 16
_SAFE: Final = "-_."
_SEGMENT_RE: Final = re.compile(r"~|[A-Za-z0-9_\-%][A-Za-z0-9_.\-%]*(~[0-9a-f]{16})?")


def encode_segment(text: str) -> str:
    """Encode one path segment; the result never starts with '.', contains no '/', is bounded."""
    if not text:
        return EMPTY
    # quote() never escapes '~'; do it here so '~' only ever appears as our own marker.
    # surrogatepass: a lone surrogate (possible in a Python str) still gets a distinct path.
    encoded = quote(text.encode("utf-8", "surrogatepass"), safe=_SAFE).replace("~", "%7E")
    if encoded.startswith("."):
        encoded = "%2E" + encoded[1:]
    if len(encoded) <= MAX_SEGMENT:
        return encoded
    # Too long: keep a readable head and add a hash of the whole text, so two long names that
    # share a head still get different paths. The '~' marks the segment as shortened.
    head = encoded[: MAX_SEGMENT - _HASHED_TAIL - 1]
    head = head[: head.rfind("%")] if "%" in head[-2:] else head  # never cut an escape in two
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASHED_TAIL]
    return f"{head}~{digest}"


def decode_segment(segment: str) -> str:
    """Inverse of encode_segment (a shortened segment decodes to its head followed by '…')."""
    if segment == EMPTY:
        return ""
    head, shortened, _ = segment.partition("~")
    try:
        text = unquote(head, errors="surrogatepass")
    except UnicodeDecodeError:  # a shortened head may end inside a multi-byte character
        text = unquote(head, errors="replace")
    return text + ("…" if shortened else "")


def object_path(origin: Origin) -> str:
    """The relative path of the object holding this XCom."""
    segments = (origin.dag_id, origin.run_id, origin.task_id, str(origin.map_index), origin.key)
    return "/".join(encode_segment(s) for s in segments) + SUFFIX


def run_prefix(dag_id: str, run_id: str | None = None) -> str:
    """The relative folder of a DAG's (or one run's) objects, for listing and clean-up."""
    parts = [dag_id] if run_id is None else [dag_id, run_id]
    return "/".join(encode_segment(p) for p in parts)


def belongs_to(relpath: str, wanted: Wanted) -> bool:
    """Whether the object path names the XCom being read (fields left None match anything)."""
    dag, run, task, index, key = relpath.split("/")
    pairs = [(dag, wanted.dag_id), (task, wanted.task_id), (key[: -len(SUFFIX)], wanted.key)]
    if wanted.run_id is not None:
        pairs.append((run, wanted.run_id))
    same = all(segment == encode_segment(text) for segment, text in pairs)
    return same and (wanted.map_index is None or index == str(wanted.map_index))


def check_relative_path(relpath: str) -> str:
    """Accept only a path that object_path could have produced; refuse anything else."""
    if posixpath.normpath(relpath) != relpath or relpath.startswith("/"):
        raise ForgedReferenceError(f"object path {relpath!r} is not normalised")
    parts = relpath.split("/")
    if len(parts) != 5 or not parts[4].endswith(SUFFIX):
        raise ForgedReferenceError(f"object path {relpath!r} is not <dag>/<run>/<task>/<map>/<key>.xcs")
    parts[4] = parts[4][: -len(SUFFIX)]
    if not all(_SEGMENT_RE.fullmatch(p) for p in parts) or not re.fullmatch(r"-1|\d+", parts[3]):
        raise ForgedReferenceError(f"object path {relpath!r} has a segment xcomstore never writes")
    return relpath


def origin_of(relpath: str) -> Origin:
    """The XCom an object path names (long names come back shortened)."""
    dag, run, task, index, key = check_relative_path(relpath).split("/")
    return Origin(
        dag_id=decode_segment(dag),
        run_id=decode_segment(run),
        task_id=decode_segment(task),
        map_index=int(index),
        key=decode_segment(key[: -len(SUFFIX)]),
    )
