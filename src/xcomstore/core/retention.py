"""How long stored objects live: a default time-to-live and per dag/task/key pattern overrides.

The expiry is computed at push time and written into the object's header, so `xcomstore gc`
can expire objects from the store alone, even after the rules or the metadata DB changed.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from xcomstore.errors import ConfigError
from xcomstore.identity import Origin

FOREVER: Final = ("never", "forever", "")
FIELDS: Final = ("dag_id", "run_id", "task_id", "key")
_AGE_RE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_AGE_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class RetentionRule:
    field: str  # one of FIELDS
    pattern: str  # fnmatch pattern, e.g. "reports_*"
    ttl: float | None  # seconds; None keeps forever

    def matches(self, origin: Origin) -> bool:
        return fnmatch.fnmatchcase(str(getattr(origin, self.field)), self.pattern)


def parse_age(text: str) -> float | None:
    """Seconds from '30m', '12h', '7d', '2w'; None for 'never' / 'forever' / ''."""
    if text.strip().lower() in FOREVER:
        return None
    match = _AGE_RE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not an age such as 30m, 12h, 7d, 2w or never")
    return float(match.group(1)) * _AGE_UNITS[match.group(2)]


def parse_rules(text: str) -> tuple[RetentionRule, ...]:
    """Rules from 'dag_id=reports_*:90d; key=scratch_*:1d; task_id=archive:never' (first match wins)."""
    rules = []
    for item in re.split(r"[;\n]", text):
        if not item.strip():
            continue
        selector, colon, age = item.rpartition(":")
        field, equals, pattern = selector.partition("=")
        field = field.strip()
        if not colon or not equals or field not in FIELDS or not pattern.strip():
            raise ConfigError(
                f"retention rule {item.strip()!r} is not <field>=<pattern>:<age> "
                f"with field one of {', '.join(FIELDS)} (e.g. dag_id=reports_*:90d)"
            )
        try:
            ttl = parse_age(age)
        except ValueError as exc:
            raise ConfigError(f"retention rule {item.strip()!r}: {exc}") from None
        rules.append(RetentionRule(field, pattern.strip(), ttl))
    return tuple(rules)


def expiry(
    origin: Origin, created: datetime, default_ttl: float | None, rules: Sequence[RetentionRule]
) -> datetime | None:
    """When an object pushed at `created` for `origin` expires (None: never)."""
    ttl = next((rule.ttl for rule in rules if rule.matches(origin)), default_ttl)
    return None if ttl is None else created + timedelta(seconds=ttl)
