"""Routes: which locations an XCom's object goes to, chosen by ordered rules, first match wins.

    [xcomstore] routes = dag_id=finance_* -> s3://finance@finance-bucket/xcom;
                         key=model_* -> gs://ml@models/xcom, s3://dr@dr/xcom

Each rule is `field=glob[, field=glob...] -> url[, url...]` (rules separated by `;` or new
lines); every condition must hold (fnmatchcase globs) for the rule to match. An XCom no rule
matches goes to `path`, the fallback route. Several URLs are replicas of that route, written
together (`required_copies` of them must succeed), exactly as several `path` URLs are.

Each route carries a fingerprint of the decision that picks it: the conditions of the rules up
to and including its own, and its URLs (the fallback's: every rule's conditions and `path`). A reference records the
fingerprint of the route that placed it, so a reader can tell whether that decision still
stands (same fingerprint: the reference must lead into that route's locations) or the routes
changed since it was written (any configured location: old objects stay readable).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from xcomstore.errors import ConfigError
from xcomstore.identity import Origin

FIELDS: Final = ("dag_id", "task_id", "run_id", "key", "team")
FINGERPRINT_LENGTH: Final = 12  # hex digits: a label telling routes apart, not a secret


class _UnknownTeam:
    """The team of an XCom that cannot be told where it is read (a CLI read, another DAG's
    XCom): a `team=` condition may or may not hold for it."""

    def __repr__(self) -> str:
        return "UNKNOWN_TEAM"


UNKNOWN_TEAM: Final = _UnknownTeam()
#: A DAG's team (Airflow's multi-team mode), None for none, or UNKNOWN_TEAM.
Team = str | None | _UnknownTeam


@dataclass(frozen=True)
class Condition:
    field: str  # one of FIELDS
    pattern: str  # an fnmatchcase glob
    # The glob compiled once (what fnmatchcase does, without its per-call cache lookup).
    _match: Callable[[str], object] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_match", re.compile(fnmatch.translate(self.pattern)).match)

    def holds(self, origin: Origin, team: Team) -> bool | None:
        """Whether the XCom meets the condition; None when its team is unknown."""
        if self.field == "team":
            if isinstance(team, _UnknownTeam):
                return None
            return team is not None and self._match(team) is not None
        return self._match(getattr(origin, self.field)) is not None


@dataclass(frozen=True)
class Route:
    """Where the XComs of one rule (or of none: the fallback) are written."""

    number: int  # the rule's place in `routes`, from 1; 0 for the fallback `path`
    text: str  # the rule as written, for messages ("" for the fallback)
    conditions: tuple[Condition, ...]
    urls: tuple[str, ...]
    fingerprint: str = ""

    @property
    def name(self) -> str:
        if not self.number:
            return f"the fallback path ({', '.join(self.urls)})"
        return f"rule {self.number} of [xcomstore] routes ({self.text!r})"

    def matches(self, origin: Origin, team: Team) -> bool | None:
        """True if every condition holds, False if one does not, None if that depends on the team."""
        result: bool | None = True
        for condition in self.conditions:
            holds = condition.holds(origin, team)
            if holds is False:
                return False
            if holds is None:
                result = None
        return result


@dataclass(frozen=True)
class Routing:
    """The routes in their order, the fallback last."""

    routes: tuple[Route, ...]

    @classmethod
    def of(cls, rules: tuple[Route, ...], paths: tuple[str, ...]) -> Routing:
        fallback = Route(0, "", (), paths)
        return cls(tuple(_fingerprinted((*rules, fallback))))

    @property
    def fallback(self) -> Route:
        return self.routes[-1]

    @property
    def uses_team(self) -> bool:
        return any(c.field == "team" for route in self.routes for c in route.conditions)

    @property
    def urls(self) -> tuple[str, ...]:
        """Every configured location: the fallback's first (the primary), then the rules', once each."""
        ordered = [self.fallback, *self.routes[:-1]]
        return tuple(dict.fromkeys(url for route in ordered for url in route.urls))

    def choose(self, origin: Origin, team: Team) -> Route:
        """The route a push of `origin` takes: the first rule that matches, else the fallback.

        With the team unknown, only if no `team=` condition decides it: else ConfigError, as
        guessing could put a team's value in a location other teams share.
        """
        routes = list(self.possible(origin, team))
        if len(routes) > 1:
            raise ConfigError(
                f"where it goes depends on its DAG's team ({routes[0].name}), which is "
                "not known here (in a task, the backend reads it from the task's run context). "
                "Nothing was stored."
            )
        return routes[0]

    def possible(self, origin: Origin, team: Team) -> Iterator[Route]:
        """The routes `origin` may take with what is known of its team (one, when it is known)."""
        for route in self.routes:
            matched = True if not route.conditions else route.matches(origin, team)
            if matched is not False:
                yield route
            if matched is True:
                return

    def by_fingerprint(self, fingerprint: str) -> Route | None:
        return next((r for r in self.routes if r.fingerprint == fingerprint), None)


def _fingerprinted(routes: tuple[Route, ...]) -> Iterator[Route]:
    """Each route with the fingerprint of the conditions of the rules up to its own and of its
    URLs: changing a later rule leaves an earlier route's references as they are."""
    decided = hashlib.sha256()
    for route in routes:
        decided.update(f"{_canonical(route.conditions)}\n".encode())
        placed = decided.copy()
        placed.update(("->" + "\n".join(route.urls)).encode())
        yield Route(
            route.number, route.text, route.conditions, route.urls, placed.hexdigest()[:FINGERPRINT_LENGTH]
        )


def _canonical(conditions: tuple[Condition, ...]) -> str:
    return ",".join(f"{c.field}={c.pattern}" for c in conditions)


def parse_rules(text: str, check_url: Callable[[str], str], required_copies: int) -> tuple[Route, ...]:
    """The rules of a `routes` setting, in order; any bad rule raises ConfigError naming it.

    `check_url` validates (and normalises) one URL as `path`'s are, raising ConfigError.
    `required_copies` (0 for all) must not exceed any rule's number of URLs.
    """
    rules: list[Route] = []
    for number, item in enumerate((i.strip() for i in re.split(r"[;\n]", text) if i.strip()), 1):
        try:
            rule = _rule(number, item, check_url, required_copies)
            _check_new(rule, rules)
        except ConfigError as exc:
            raise ConfigError(f"rule {number} ({item!r}): {exc}") from None
        rules.append(rule)
    return tuple(rules)


def _rule(number: int, item: str, check_url: Callable[[str], str], required_copies: int) -> Route:
    selector, arrow, targets = item.partition("->")
    if not arrow:
        raise ConfigError("is not '<field>=<glob>[, ...] -> <url>[, ...]'")
    conditions = tuple(_condition(part.strip()) for part in selector.split(",") if part.strip())
    if not conditions:
        raise ConfigError("has no condition before '->' (the XComs no rule matches go to path)")
    if len({c.field for c in conditions}) != len(conditions):
        raise ConfigError("names a field twice")
    urls = tuple(check_url(url.strip()) for url in targets.split(",") if url.strip())
    if not urls:
        raise ConfigError("has no URL after '->'")
    if len(set(urls)) != len(urls):
        raise ConfigError("names the same location twice")
    if required_copies > len(urls):
        raise ConfigError(
            f"has {len(urls)} URL(s), fewer than [xcomstore] required_copies = {required_copies}"
        )
    return Route(number, item, conditions, urls)


def _condition(part: str) -> Condition:
    field, equals, pattern = (p.strip() for p in part.partition("="))
    if not equals or not pattern:
        raise ConfigError(f"condition {part!r} is not <field>=<glob>")
    if field not in FIELDS:
        raise ConfigError(f"condition {part!r}: unknown field {field!r} (one of {', '.join(FIELDS)})")
    if not _closed_sets(pattern):
        raise ConfigError(f"condition {part!r}: bad glob {pattern!r} (a '[' is never closed)")
    return Condition(field, pattern)


def _closed_sets(pattern: str) -> bool:
    """Whether every '[' opens a set that ']' closes, as fnmatch reads it (`[]x]`, `[!]x]`
    hold a ']'); fnmatch would take an unclosed '[' literally, which is never what was meant."""
    at = pattern.find("[")
    while at >= 0:
        end = at + 1 + (pattern[at + 1 : at + 2] == "!")
        end = pattern.find("]", end + (pattern[end : end + 1] == "]"))
        if end < 0:
            return False
        at = pattern.find("[", end + 1)
    return True


def _check_new(rule: Route, earlier: list[Route]) -> None:
    for other in earlier:
        if set(other.conditions) == set(rule.conditions):
            raise ConfigError(f"repeats the conditions of rule {other.number}: it could never match")


def check_nesting(urls: tuple[str, ...]) -> None:
    """Refuse a location inside another: its objects would be listed (and collected) twice."""
    for url in urls:
        for other in urls:
            if other != url and url.startswith(other + "/"):
                raise ConfigError(f"location {url!r} lies inside location {other!r}")
