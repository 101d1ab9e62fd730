"""The README's configuration table lists exactly the declared options, in order, with their defaults."""

from __future__ import annotations

from pathlib import Path

from xcomstore.core.settings import OPTIONS

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "### Configuration reference"


def table_rows() -> list[tuple[str, str]]:
    """(option, default) of each row of the first table under the heading, as written."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(HEADING))
    table = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            table.append(line)
        elif table or line.startswith("#"):
            break  # the table ended, or the section did without one
    # The first two cells never hold a "|"; the meaning (the third) may.
    cells = [row.split("|", 3)[1:3] for row in table[2:]]  # past the header and its rule
    return [(name.strip().strip("`"), default.strip()) for name, default in cells]


def test_table_lists_the_options_in_declared_order() -> None:
    assert [name for name, _ in table_rows()] == [o.name for o in OPTIONS]


def test_table_shows_the_declared_defaults() -> None:
    assert dict(table_rows()) == {o.name: o.shown_default for o in OPTIONS}
