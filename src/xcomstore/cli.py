"""`xcomstore`: list, inspect, fetch and verify stored XComs straight from the store.

Every command reads the store alone (each object describes itself in its header), except
`gc`, which reads the Airflow metadata DB (or its REST API) to find objects whose XCom is gone
(`gc --expired-only` does not), and `migrate --from-common-io`, which rewrites the rows that
common-io's backend wrote.

An object is named by its XCom id as `ls` prints it (dag_id/run_id/task_id[/map_index]/key),
by its URI, or by its path inside the store (or a local file's own path).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import re
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from xcomstore.airflow import common_io
from xcomstore.client import open_store
from xcomstore.core import layout
from xcomstore.core.retention import parse_age
from xcomstore.core.settings import Settings
from xcomstore.core.store import XComStore
from xcomstore.errors import (
    ConfigError,
    ForgedReferenceError,
    ObjectFormatError,
    ObjectNotFoundError,
    XComStoreError,
)
from xcomstore.identity import Origin
from xcomstore.ops import export
from xcomstore.ops.common_io_gc import collect_common_io
from xcomstore.ops.gc import DEFAULT_GRACE, GcSummary, collect
from xcomstore.ops.liveness import LiveIndex, MetadataDbIndex, RestApiIndex
from xcomstore.ops.migrate import migrate
from xcomstore.ops.preview import compression, header_json, preview
from xcomstore.ops.rekey import rekey
from xcomstore.ops.repair import repair
from xcomstore.ops.xcom_rows import MetadataDbRows
from xcomstore.sizes import human_bytes
from xcomstore.storage.headers import StoredObject, describe
from xcomstore.storage.location import Location, ObjectInfo
from xcomstore.version import __version__


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    global _stdout
    _stdout = sys.stdout
    try:
        # Stdout carries the command's output alone (one JSON document with --json): whatever
        # else prints or logs there while it runs (Airflow's logging, its providers' hooks) goes
        # to stderr, logging set up before now included.
        with contextlib.redirect_stdout(sys.stderr):
            _logging_to_stderr(_stdout)
            store = open_store(args.path)
            _logging_to_stderr(_stdout)
            return int(args.handler(store, args))
    except XComStoreError as exc:
        _say(f"xcomstore: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `xcomstore ls | head`
        return 0
    finally:
        _stdout = None


#: Where the command's output goes: stdout as it was when main() started.
_stdout: Any = None


def _out() -> Any:
    return _stdout or sys.stdout


def _logging_to_stderr(stdout: Any) -> None:
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream in (stdout, sys.__stdout__):
            handler.setStream(sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xcomstore", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"xcomstore {__version__}")
    _add_common(parser, None)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    ls = _command(sub, "ls", "list stored XComs", _ls)
    ls.add_argument("-l", "--long", action="store_true", help="add each object's URI")
    _add_filters(ls)

    show = _command(sub, "show", "header and a preview of one stored XCom", _show)
    show.add_argument("uri", metavar="OBJECT", help=_OBJECT_HELP)
    show.add_argument("--rows", type=int, default=10, help="table rows to preview")
    show.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="skip the checksum (a pass over the whole object): show what can be read, marked NOT VERIFIED",
    )

    get = _command(sub, "get", "write a stored value to a file", _get)
    get.add_argument("uri", metavar="OBJECT", help=_OBJECT_HELP)
    get.add_argument(
        "-o", "--output", help="file to write; its extension picks the format (default: <key>.<format> here)"
    )
    get.add_argument(
        "--format",
        choices=sorted(set(export.EXTENSIONS.values())),
        help="output format, whatever the extension: tables parquet, arrow, arrows, csv, json, jsonl; "
        "arrays npy, csv, json; JSON values json; bytes bin",
    )

    verify = _command(sub, "verify", "check objects' format, origin and checksum", _verify)
    verify.add_argument(
        "uris", nargs="*", metavar="OBJECT", help="objects to verify (default: all, or the filtered ones)"
    )
    _add_filters(verify)

    du = _command(sub, "du", "storage used per DAG or per run", _du)
    du.add_argument("--by", choices=["dag", "run"], default="dag")
    _add_filters(du)

    gc = _command(
        sub,
        "gc",
        "delete expired objects and orphans (objects whose XCom is gone); reads the metadata DB "
        "(or --api-url), except with --expired-only",
        _gc,
    )
    gc.add_argument(
        "--grace",
        type=_age,
        default=DEFAULT_GRACE,
        metavar="AGE",
        help="never delete objects younger than this (default 1h)",
    )
    gc.add_argument("--dry-run", action="store_true", help="only report what would be deleted")
    gc.add_argument("--expired-only", action="store_true", help="do not look for orphans")
    gc.add_argument(
        "--db-url", help="metadata DB URL, read-only (default: Airflow's [database] sql_alchemy_conn)"
    )
    gc.add_argument("--api-url", help="use the Airflow REST API at this URL instead of the DB")
    gc.add_argument("--api-user", help="Airflow API user (password from XCOMSTORE_API_PASSWORD)")
    gc.add_argument("--api-token", help="Airflow API bearer token (or XCOMSTORE_API_TOKEN)")

    mig = _command(
        sub,
        "migrate",
        "rewrite the XComs common-io's backend wrote as xcomstore's: reads and writes the metadata DB",
        _migrate,
    )
    mig.add_argument(
        "--from-common-io",
        action="store_true",
        required=True,
        help="the rows holding a path common-io wrote under [xcomstore] common_io_path "
        "(or [common.io] xcom_objectstorage_path), for their XCom",
    )
    mig.add_argument("--dry-run", action="store_true", help="only report what would be migrated")
    mig.add_argument("--dag-id", help="only this DAG's XComs")
    mig.add_argument("--keep", action="store_true", help="keep common-io's objects (gc collects them later)")
    mig.add_argument("--db-url", help="metadata DB URL (default: Airflow's [database] sql_alchemy_conn)")

    rep = _command(sub, "repair", "re-copy missing or damaged copies between locations", _repair)
    rep.add_argument("--dry-run", action="store_true", help="only report what would be copied")

    rk = _command(sub, "rekey", "re-encrypt objects under the active encryption key", _rekey)
    rk.add_argument("--dry-run", action="store_true", help="only report what would be re-encrypted")

    _command(
        sub,
        "check-config",
        "show the effective settings; write, read back and delete a probe in every location",
        _check_config,
    )
    return parser


_OBJECT_HELP = (
    "an XCom id as `ls` prints it (dag_id/run_id/task_id[/map_index]/key), a URI, or a path in the store"
)


def _add_common(parser: argparse.ArgumentParser, default: Any) -> None:
    """The options every command takes, before or after its name. After it, they default to
    SUPPRESS, so that a sub-command's default never overwrites what was given before it."""
    parser.add_argument(
        "--path",
        default=default,
        help="store URL (default: [xcomstore] path of the Airflow config)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=False if default is None else default,
        help="print JSON instead of a table",
    )


def _command(sub: Any, name: str, help_text: str, run: Callable[[XComStore, argparse.Namespace], int]) -> Any:
    command = sub.add_parser(name, help=help_text, description=help_text)
    _add_common(command, argparse.SUPPRESS)
    command.set_defaults(handler=run)
    return command


def _add_filters(command: argparse.ArgumentParser) -> None:
    command.add_argument("--dag", help="only this dag_id")
    command.add_argument("--run", help="only this run_id (needs --dag)")
    command.add_argument("--task", help="only this task_id")
    command.add_argument("--key", help="only this XCom key")
    command.add_argument("--older-than", type=_age, metavar="AGE", help="e.g. 30m, 12h, 7d, 2w")
    command.add_argument("--newer-than", type=_age, metavar="AGE")


def _age(text: str) -> float:
    try:
        age = parse_age(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if age is None:
        raise argparse.ArgumentTypeError(f"{text!r}: an age is needed here, such as 30m, 12h or 7d")
    return age


@dataclass
class _Found:
    """What a listing found besides objects, to report after the objects."""

    skipped: list[str] = field(default_factory=list)  # "<uri>: <kind>"
    temporary: list[int] = field(default_factory=lambda: [0, 0])  # files, bytes

    def add(self, location: Location, info: ObjectInfo) -> None:
        if info.kind == "skipped":
            self.skipped.append(f"{location.uri(info.relpath)}: {info.reason}")
        elif info.kind == "temporary":
            self.temporary[0] += 1
            self.temporary[1] += info.size

    def lines(self) -> list[str]:
        lines = [f"skipped {entry}" for entry in self.skipped]
        count, size = self.temporary
        if count:
            lines.append(
                f"{count} temporary files, {human_bytes(size)} (left by interrupted writes; "
                f"`xcomstore gc` removes those older than {_duration(DEFAULT_GRACE)})"
            )
        return lines


def _selected(
    store: XComStore,
    args: argparse.Namespace,
    location: Location | None = None,
    found: _Found | None = None,
) -> Iterable[StoredObject]:
    if args.run and not args.dag:
        raise SystemExit("xcomstore: --run needs --dag")
    now = time.time()
    where = location or store.location
    prefix = layout.run_prefix(args.dag, args.run) if args.dag else ""
    for info in where.scan(prefix):
        if info.kind != "object":
            if found is not None:
                found.add(where, info)
            continue
        obj = describe(where, info)
        origin = obj.header.origin if obj.header else None
        if args.task and (origin is None or origin.task_id != args.task):
            continue
        if args.key and (origin is None or origin.key != args.key):
            continue
        age = now - obj.modified if obj.modified is not None else None
        if args.older_than is not None and (age is None or age < args.older_than):
            continue
        if args.newer_than is not None and (age is None or age > args.newer_than):
            continue
        yield obj


def _everywhere(store: XComStore, args: argparse.Namespace, found: _Found) -> Iterator[StoredObject]:
    """The selected objects of every configured location (`path`'s and the routes'), each
    XCom once: its copy in the first location, in the configured order, that holds it."""
    seen: set[str] = set()
    for location in store.locations:
        for obj in _selected(store, args, location, found):
            relpath = location.relative(obj.uri)
            if relpath not in seen:
                seen.add(relpath)
                yield obj


# -- naming objects ------------------------------------------------------------------------
_MAPPED_TASK = re.compile(r"(.+)\[(-1|\d+)\]")
_MAP_INDEX = re.compile(r"-1|\d+")


def xcom_id(origin: Origin) -> str:
    """How the CLI names an XCom: dag_id/run_id/task_id[/map_index]/key, the map index only
    for a mapped task. No brackets: a shell would take them for a glob."""
    index = f"/{origin.map_index}" if origin.map_index >= 0 else ""
    return f"{origin.dag_id}/{origin.run_id}/{origin.task_id}{index}/{origin.key}"


def _resolve(store: XComStore, name: str) -> str:
    """The URI of the object `name` names: a URI as it is; a local file inside a location;
    else an object path in the store or an XCom id, found in the first location holding it."""
    if "://" in name:
        return name
    local = _local_object(store, name)
    if local is not None:
        return local
    candidates = []
    if name.endswith(layout.SUFFIX):
        with contextlib.suppress(XComStoreError):
            candidates.append(layout.check_relative_path(name))
    candidates += [layout.object_path(origin) for origin in _id_origins(name)]
    for relpath in candidates:
        for location in store.locations:
            if location.exists(relpath):
                return location.uri(relpath)
    if not candidates:
        raise ObjectNotFoundError(f"{name!r} is not an XCom id ({_ID_FORM}), a URI, nor a path in the store")
    raise ObjectNotFoundError(
        f"no stored XCom {name!r} (looked for {store.location.uri(candidates[-1])} and in every location)"
    )


_ID_FORM = "dag_id/run_id/task_id[/map_index]/key"


def _local_object(store: XComStore, name: str) -> str | None:
    """The URI of a local file named by its own path, absolute or relative to here."""
    if not os.path.isfile(name):
        return None
    full = os.path.realpath(name)  # the same resolution as a local location's root
    for location in store.locations:
        if location.local and full.startswith(location.root + "/"):
            return location.uri(full[len(location.root) + 1 :])
    urls = ", ".join(location.url for location in store.locations)
    raise ForgedReferenceError(f"{name!r} is a file outside the configured location(s) {urls}")


def _id_origins(name: str) -> list[Origin]:
    """The XComs an id may mean, likeliest first: a key may hold slashes, so `t/2/k` is task t,
    map index 2, key k, or else key 2/k; `t[2]/k` (Origin's own spelling) is accepted too."""
    parts = name.split("/")
    if len(parts) < 4:
        return []
    dag_id, run_id, task_id, rest = parts[0], parts[1], parts[2], parts[3:]
    found = []
    mapped = _MAPPED_TASK.fullmatch(task_id)
    if mapped:
        found.append((mapped[1], int(mapped[2]), rest))
    if len(rest) > 1 and _MAP_INDEX.fullmatch(rest[0]):
        found.append((task_id, int(rest[0]), rest[1:]))
    found.append((task_id, -1, rest))
    return [
        Origin(dag_id=dag_id, run_id=run_id, task_id=task, map_index=index, key="/".join(key))
        for task, index, key in found
    ]


# -- commands -----------------------------------------------------------------------------
def _ls(store: XComStore, args: argparse.Namespace) -> int:
    found = _Found()
    objects = list(_everywhere(store, args, found))
    if args.json:
        _print_json([_object_json(o) for o in objects])
        _print_found(args, found.lines())
        return 0
    rows = [
        [
            _when(o.modified),
            human_bytes(o.size),
            o.header.type_name if o.header else "?",
            o.header.summary if o.header else f"UNREADABLE: {o.error}",
            xcom_id(o.header.origin) if o.header else "?",
            (o.header.expires or "never") if o.header else "",
            *([o.uri] if args.long else []),
        ]
        for o in objects
    ]
    _print_table(
        ["MODIFIED", "SIZE", "TYPE", "SUMMARY", "XCOM", "EXPIRES", *(["URI"] if args.long else [])], rows
    )
    _say(f"{len(objects)} objects, {human_bytes(sum(o.size for o in objects))}")
    _print_found(args, found.lines())
    return 0


def _show(store: XComStore, args: argparse.Namespace) -> int:
    args.uri = _resolve(store, args.uri)
    if args.verify:
        _verified(store, args.uri)
    shown = preview(store, args.uri, rows=args.rows)
    header = shown.header
    if args.json:
        doc = {"uri": args.uri, "verified": args.verify, "compression": compression(header)}
        _print_json({**doc, "header": header_json(header), "preview": shown.to_json()})
        return 0
    _say(f"{header.summary}  ({header.type_name}, codec {header.codec}, compression {compression(header)})")
    _say(f"xcom     {xcom_id(header.origin)}")
    _say(f"uri      {args.uri}")
    if args.verify:
        _say("checked  verified format, origin and checksum")
    else:
        _say("checked  NOT VERIFIED (--no-verify): the checksum was not read; what follows may be damaged")
    _say(f"created  {header.created}   expires {header.expires or 'never'}")
    _say(f"written  by {', '.join(f'{k} {v}' for k, v in header.producer.items())}")
    if shown.stats:
        _say("stats    " + ", ".join(f"{k}={v}" for k, v in shown.stats.items()))
    _say()
    if shown.kind == "table":
        _print_table([f"{n} ({t})" for n, t in shown.columns], [[str(c) for c in r] for r in shown.rows])
    elif shown.kind == "array":
        _say(f"first elements: {shown.rows[0] if shown.rows else []}")
    else:
        for line in shown.text.split("\n"):
            _say(line)
    return 0


def _verified(store: XComStore, uri: str) -> None:
    """Verify the object at `uri`; a damaged one is an error saying how to look at it anyway."""
    try:
        store.verify(uri)
    except ObjectFormatError as exc:
        exc.message += " (nothing shown; `xcomstore show --no-verify` shows what can be read)"
        raise


def _get(store: XComStore, args: argparse.Namespace) -> int:
    args.uri = _resolve(store, args.uri)
    header = store.verify(args.uri)
    if args.output:
        output = Path(args.output)
        fmt = export.file_format(header, output, args.format)
    else:
        fmt = export.file_format(header, Path("value"), args.format or export.file_formats(header)[0])
        output = Path(f"{_file_name(header.origin.key)}.{fmt}")
    try:
        size = export.write_file(store, args.uri, header, fmt, output)
    except OSError as exc:  # the output's folder is missing, read-only, full …
        _say(f"xcomstore: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    _say(f"wrote {output} ({fmt}, {human_bytes(size)}, {header.summary})")
    return 0


def _verify(store: XComStore, args: argparse.Namespace) -> int:
    found = _Found()
    uris = [_resolve(store, name) for name in args.uris] or [
        o.uri for loc in store.locations for o in _selected(store, args, loc, found)
    ]
    results: list[dict[str, Any]] = []
    for uri in uris:
        try:
            header = store.verify(uri)
            results.append({"uri": uri, "ok": True, "xcom": xcom_id(header.origin)})
        except XComStoreError as exc:
            results.append({"uri": uri, "ok": False, "error": str(exc)})
    bad = [r for r in results if not r["ok"]]
    if args.json:
        doc = {"checked": len(results), "failed": len(bad), "results": results, "skipped": found.skipped}
        _print_json(doc)
    else:
        _report(
            ["RESULT", "XCOM", "URI OR ERROR"],
            [["OK", r["xcom"], r["uri"]] if r["ok"] else ["FAIL", "", r["error"]] for r in results],
            [f"{'OK  ' if r['ok'] else 'FAIL'} {r.get('xcom') or r['error']}" for r in results],
        )
        for line in found.lines():
            _say(line)
        _say(f"{len(results)} checked, {len(bad)} failed, {len(found.skipped)} skipped (not regular files)")
    # Something that is not an object where objects live (a symlink, a FIFO) is a finding too.
    return 1 if bad or found.skipped else 0


def _du(store: XComStore, args: argparse.Namespace) -> int:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    found = _Found()
    for obj in _everywhere(store, args, found):
        origin = obj.header.origin if obj.header else None
        name = "(unreadable)" if origin is None else origin.dag_id
        if origin is not None and args.by == "run":
            name = f"{origin.dag_id}/{origin.run_id}"
        totals[name][0] += 1
        totals[name][1] += obj.size
    ordered = sorted(totals.items(), key=lambda item: -item[1][1])
    if args.json:
        _print_json([{args.by: k, "objects": n, "bytes": b} for k, (n, b) in ordered])
        _print_found(args, found.lines())
        return 0
    _print_table([args.by.upper(), "OBJECTS", "SIZE"], [[k, str(n), human_bytes(b)] for k, (n, b) in ordered])
    _print_found(args, found.lines())
    return 0


def _gc(store: XComStore, args: argparse.Namespace) -> int:
    index = None if args.expired_only else _live_index(args)
    with _Progress("gc") as progress:
        summary = collect(
            store,
            index,
            grace=args.grace,
            dry_run=args.dry_run,
            progress=lambda s: progress.show(_gc_status(s)),
        )
        legacy = None if index is None else common_io.configured(store.settings)
        if index is not None and legacy is not None:  # and what common-io left
            collect_common_io(
                legacy.location,
                index,
                summary,
                grace=args.grace,
                dry_run=args.dry_run,
                progress=lambda s: progress.show(_gc_status(s)),
            )
    if args.json:
        _print_json(summary.to_json())
    else:
        verb = "would remove" if args.dry_run else "removed"
        removed = sorted(summary.removed.items())
        _report(
            ["REASON", "WHAT", "COUNT", "SIZE"],
            [
                [r, "files" if r == "temporary" else "objects", str(n), human_bytes(b)]
                for r, (n, b) in removed
            ],
            [
                f"{verb} {n} {r} {'files' if r == 'temporary' else 'objects'} ({human_bytes(b)})"
                for r, (n, b) in removed
            ],
            title=verb,
        )
        _say(
            f"{summary.scanned} objects scanned, {summary.spared_young} spared as younger than the grace period"
        )
        if summary.folders_removed:
            _say(f"removed {summary.folders_removed} folders left empty")
        if summary.temporary_spared_young:
            _say(f"kept {summary.temporary_spared_young} temporary files younger than the grace period")
        if summary.unreadable:
            _say(f"kept {len(summary.unreadable)} unreadable objects: see `xcomstore verify`")
        if summary.unauthenticated_expiry:
            _say(
                f"kept {len(summary.unauthenticated_expiry)} expired objects of format version 1 or 2, whose "
                "expiry nothing authenticates: run gc with the metadata DB (without --expired-only) to "
                "collect those whose XCom is gone"
            )
        for entry in summary.skipped:
            _say(f"skipped {entry}")
        for error in summary.errors:
            _say(f"error: {error}", file=sys.stderr)
    return 1 if summary.errors else 0


def _live_index(args: argparse.Namespace) -> LiveIndex:
    if args.api_url:
        token = args.api_token or os.environ.get("XCOMSTORE_API_TOKEN")
        password = os.environ.get("XCOMSTORE_API_PASSWORD")
        return RestApiIndex(args.api_url, token=token, user=args.api_user, password=password)
    url = args.db_url or _airflow_db_url()
    if not url:
        raise ConfigError(
            "gc needs the metadata DB (--db-url, or Airflow's config) or --api-url; or use --expired-only"
        )
    return MetadataDbIndex(url)


def _airflow_db_url() -> str | None:
    try:
        from airflow.configuration import conf
    except ImportError:
        return None
    return str(conf.get("database", "sql_alchemy_conn"))


def _migrate(store: XComStore, args: argparse.Namespace) -> int:
    legacy = common_io.configured(store.settings)
    if legacy is None:
        raise ConfigError(
            "migrate --from-common-io needs where common-io wrote: [xcomstore] common_io_path, "
            "or [common.io] xcom_objectstorage_path"
        )
    url = args.db_url or _airflow_db_url()
    if not url:
        raise ConfigError("migrate needs the metadata DB: --db-url, or Airflow's config")
    with _Progress("migrate") as progress:
        summary = migrate(
            store,
            legacy,
            MetadataDbRows(url),
            dag_id=args.dag_id,
            dry_run=args.dry_run,
            keep=args.keep,
            progress=lambda s: progress.show(f"migrate: {s.scanned} rows read, {len(s.migrated)} migrated …"),
        )
    verb = "would migrate" if args.dry_run else "migrated"
    lines = [f"{verb} {entry}" for entry in summary.migrated]
    lines += [f"left as it is (the row changed meanwhile): {entry}" for entry in summary.changed]
    lines += [f"error: {entry}" for entry in summary.errors]
    lines.append(
        f"{summary.scanned} rows read: {len(summary.migrated)} {verb}, {summary.already} already "
        f"xcomstore references, {summary.other} other strings left as they are, "
        f"{summary.deleted} common-io objects deleted, {len(summary.errors)} errors"
    )
    return _finish(args, summary.to_json(), lines, failed=bool(summary.errors))


def _gc_status(summary: GcSummary) -> str:
    removed = sum(n for n, _ in summary.removed.values())
    size = human_bytes(sum(b for _, b in summary.removed.values()))
    return f"gc: {summary.scanned} objects scanned, {removed} to remove ({size}) …"


def _repair(store: XComStore, args: argparse.Namespace) -> int:
    with _Progress("repair") as progress:
        summary = repair(
            store,
            dry_run=args.dry_run,
            progress=lambda s: progress.show(
                f"repair: {s.checked} objects checked, {len(s.copied)} to copy …"
            ),
        )
    verb = "would copy" if args.dry_run else "copied"
    if not args.json:
        _report(
            ["ACTION", "FROM", "TO", "WHY"],
            [[verb, c["from"], c["to"], c["reason"]] for c in summary.copied]
            + [["UNRECOVERABLE", lost["object"], "", lost["reason"]] for lost in summary.unrecoverable],
            [f"{verb} {c['from']} → {c['to']} ({c['reason']})" for c in summary.copied]
            + [f"UNRECOVERABLE {lost['object']}: {lost['reason']}" for lost in summary.unrecoverable],
        )
    lines = [
        f"{summary.checked} objects checked, {len(summary.copied)} {verb}, {len(summary.unrecoverable)} unrecoverable"
        + (f", {len(summary.failed)} could not be copied" if summary.failed else "")
    ]
    if not args.json:
        for move in summary.failed:
            _say(f"error: could not copy {move['from']} → {move['to']}: {move['reason']}", file=sys.stderr)
    return _finish(args, summary.to_json(), lines, failed=bool(summary.unrecoverable or summary.failed))


def _rekey(store: XComStore, args: argparse.Namespace) -> int:
    with _Progress("rekey") as progress:
        summary = rekey(
            store,
            dry_run=args.dry_run,
            progress=lambda s: progress.show(
                f"rekey: {s.checked} objects checked, {len(s.rewritten)} to rewrite …"
            ),
        )
    verb = "would re-encrypt" if args.dry_run else "re-encrypted"
    if not args.json:
        _report(
            ["ACTION", "OBJECT"],
            [[verb, uri] for uri in summary.rewritten] + [["error", e] for e in summary.errors],
            [f"{verb} {uri}" for uri in summary.rewritten] + [f"error: {e}" for e in summary.errors],
        )
    lines = []
    lines.append(
        f"{summary.checked} objects checked, {len(summary.rewritten)} {verb}, {len(summary.errors)} errors"
    )
    return _finish(args, summary.to_json(), lines, failed=bool(summary.errors))


def _finish(args: argparse.Namespace, summary: dict[str, Any], lines: list[str], *, failed: bool) -> int:
    """Print a command's summary as JSON or as lines; exit status 1 when something failed."""
    if args.json:
        _print_json(summary)
    else:
        for line in lines:
            _say(line)
    return 1 if failed else 0


def _check_config(store: XComStore, args: argparse.Namespace) -> int:
    settings = _effective(store.settings)
    probes = [_probe(location) for location in store.locations]
    if args.json:
        _print_json({"settings": settings, "locations": probes})
    else:
        _print_table(["SETTING", "VALUE"], [[name, _shown(value)] for name, value in settings.items()])
        _say()
        rows = [[p["url"], *(_ms(p["seconds"].get(s)) for s in _PROBE_STEPS), _verdict(p)] for p in probes]
        _print_table(["LOCATION", "WRITE", "READ", "DELETE", "RESULT"], rows)
        failed = sum(1 for p in probes if not p["ok"])
        if failed:
            _say(f"{failed} of {len(probes)} locations do not work", file=sys.stderr)
        else:
            _say(f"configuration OK: {len(probes)} location(s) written, read back and cleaned up")
    return 1 if any(not p["ok"] for p in probes) else 0


_PROBE_STEPS = ("write", "read", "delete")


def _probe(location: Location) -> dict[str, Any]:
    """Write, read back and delete a small object: what a push, a pull and gc need of the store.
    Its name is hidden (a leading dot), so that a listing running meanwhile never shows it."""
    relpath = f".xcomstore-check-{uuid.uuid4().hex}"
    data = os.urandom(1024)
    seconds: dict[str, float] = {}
    step = "write"
    try:
        started = time.perf_counter()
        with location.writer(relpath) as out:
            out.write(data)
        seconds[step], step = time.perf_counter() - started, "read"
        started = time.perf_counter()
        if location.read_range(relpath, 0, None) != data:
            raise XComStoreError("the probe read back is not what was written")
        seconds[step], step = time.perf_counter() - started, "delete"
        started = time.perf_counter()
        if not location.delete(relpath) or location.exists(relpath):
            raise XComStoreError("the probe is still there after deleting it")
        seconds[step] = time.perf_counter() - started
    except Exception as exc:  # whatever the filesystem raises is the finding
        return {"url": location.url, "ok": False, "failed": step, "error": str(exc), "seconds": seconds}
    return {"url": location.url, "ok": True, "seconds": seconds}


def _effective(settings: Settings) -> dict[str, Any]:
    """Every setting as xcomstore understood it; of the keys, only their ids."""
    shown: dict[str, Any] = {}
    for item in dataclasses.fields(settings):
        value = getattr(settings, item.name)
        if item.name == "signing_keys":
            value = [key_id for key_id, _ in value]
        elif item.name == "encryption":
            shown["encryption_keys"] = [key_id for key_id, _ in value.keys]
            continue
        elif item.name == "required_copies":
            value = value or "all"
        elif item.name == "routes":
            value = [rule.text for rule in value]
        elif item.name == "retention_rules":
            value = [dataclasses.asdict(rule) for rule in value]
        elif isinstance(value, frozenset):
            value = sorted(value)
        elif isinstance(value, tuple):
            value = list(value)
        shown[item.name] = value
    return shown


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value) or "(none)"
    return "(none)" if value is None else str(value)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _verdict(probe: dict[str, Any]) -> str:
    return "OK" if probe["ok"] else f"FAILED at {probe['failed']}: {probe['error']}"


# -- output -------------------------------------------------------------------------------
def _object_json(obj: StoredObject) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": xcom_id(obj.header.origin) if obj.header else None,
        "uri": obj.uri,
        "size": obj.size,
        "modified": _when(obj.modified),
    }
    if obj.header:
        doc.update(header_json(obj.header))
    else:
        doc["error"] = obj.error
    return doc


def _duration(seconds: float) -> str:
    """3600 -> "1h", 90 -> "90s": how an age is written on the command line."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "?"
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


# C0 and C1 controls and DEL (escape sequences, line breaks, backspaces), line and paragraph
# separators, and the bidi marks, embeddings, overrides and isolates that make a terminal show
# text in another order than it is (U+202E turns `exe.txt` into `txt.exe`).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# Of those, what json.dumps leaves raw: it escapes C0 controls in strings itself, and the line
# breaks of its indentation must stay.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 100


def _clean(text: str) -> str:
    """`text` with every character a terminal would act on written as an escape (`\\x1b`)."""
    return _UNSAFE.sub(lambda m: _SHORT.get(m[0]) or _escape(m[0]), text)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _say(*values: object, file: Any = None, flush: bool = False) -> None:
    """print(), with names from the store escaped: whoever wrote a DAG chose them."""
    print(_clean(" ".join(str(v) for v in values)), file=file or _out(), flush=flush)


def _file_name(key: str) -> str:
    """A file name in the working directory from an XCom key, which anyone writing a DAG
    chooses: only [A-Za-z0-9._-], no leading dot (hidden, or `..`), bounded in length."""
    name = _NAME_UNSAFE.sub("_", key).lstrip("._-")[:_MAX_NAME].rstrip(".")
    return name or "value"


def _print_found(args: argparse.Namespace, lines: list[str]) -> None:
    """Report what a listing skipped; on stderr under --json, so that stdout stays one document."""
    for line in lines:
        _say(line, file=sys.stderr if args.json else _out())


def _print_json(data: Any) -> None:
    # ensure_ascii=False keeps text readable; what a terminal would act on is escaped as \uXXXX.
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    print(_JSON_UNSAFE.sub(lambda m: f"\\u{ord(m[0]):04x}", text), file=_out())


def _print_table(headers: list[str], rows: list[list[str]], *, title: str | None = None) -> None:
    """A table: drawn by rich on a terminal; else columns padded to their widest cell, never
    cut, what a script or grep reads."""
    rows = [[_clean(c) for c in r] for r in rows]  # escaped first, so that widths are right
    console = _console(_out())
    if console is not None:
        from rich import box
        from rich.table import Table
        from rich.text import Text

        table = Table(*headers, box=box.SIMPLE_HEAD, title=title, header_style="bold", title_justify="left")
        for row in rows:
            table.add_row(*(Text(c) for c in row))  # Text, not markup: "[red]" in a name stays text
        console.print(table)
        return
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    for line in [headers, *rows]:
        _say("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)).rstrip())


def _report(headers: list[str], rows: list[list[str]], lines: list[str], *, title: str | None = None) -> None:
    """A table on a terminal; else one line per row, as scripts and logs have read them."""
    if not rows:
        return
    if _console(_out()) is not None:
        _print_table(headers, rows, title=title)
    else:
        for line in lines:
            _say(line)


def _console(stream: Any) -> Any:
    """A rich Console on `stream` when it is a terminal, else None (plain text)."""
    isatty = getattr(stream, "isatty", None)
    if not (callable(isatty) and isatty()) or os.environ.get("TERM") == "dumb":
        return None
    from rich.console import Console

    return Console(file=stream, highlight=False, markup=False, emoji=False)


class _Progress:
    """What a long run is at: a live line on stderr when it is a terminal, else a line now
    and then (as a log shows it)."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._live: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        console = _console(sys.stderr)
        if console is not None:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._live = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            self._live.start()
            self._task = self._live.add_task(f"{self._label} …", total=None)
        return self

    def show(self, status: str) -> None:
        if self._live is not None:
            self._live.update(self._task, description=_clean(status))
        else:
            _say(status, file=sys.stderr, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()


if __name__ == "__main__":
    sys.exit(main())
