"""Markdown's block structure, as much of it as the corpus reader and the chunker need (CommonMark).

Headings (``# Title`` and setext, a line underlined with ``===`` or ``---``), list items, lines
that introduce them and fenced code blocks. `corpus` (a document's title), `chunking` (its
sections and blocks) and `compose` (what a quote may hold) all read them here, so they never
disagree about what a heading or a list's lead-in is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
#: A setext heading's underline: "===" for level 1, "---" for level 2.
_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
#: The opening or closing line of a fenced code block (three or more ` or ~). No "^":
#: ``match(text, pos)`` anchors at ``pos``, where "^" would not match inside a text.
FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


def setext_level(lines: Sequence[str], i: int) -> int:
    """The level of a setext heading on line ``i`` (a line of text underlined with === or ---), or 0.

    Only a line that opens its paragraph counts, so "---" under a paragraph's last line stays a rule.
    """
    line = lines[i]
    if i + 1 >= len(lines) or not line.strip() or (i > 0 and lines[i - 1].strip()) or line[:1] in " \t":
        return 0
    if LIST_ITEM.match(line) or HEADING.match(line.strip()) or FENCE.match(line):
        return 0
    underline = _UNDERLINE.match(lines[i + 1])
    return 0 if underline is None else (1 if underline.group(1)[0] == "=" else 2)


def leads_in(line: str) -> bool:
    """Whether a line introduces the list or code block after it: it ends in a colon, perhaps
    inside emphasis ("**Many pages → Sidebar:**")."""
    return line.rstrip().rstrip("*_").endswith(":")


def opens_code(text: str, pos: int = 0) -> bool:
    """Whether ``text`` at ``pos`` opens a fenced code block."""
    return FENCE.match(text, pos) is not None


def fence_after(line: str, fence: str) -> str:
    """The fence open after ``line``: its marker when it opens one, "" when it closes ``fence``."""
    if not fence:
        opens = FENCE.match(line)
        return opens.group(1) if opens else ""
    stripped = line.strip()
    closes = stripped.startswith(fence) and stripped == stripped[0] * len(stripped)
    return "" if closes else fence


def headings(lines: Sequence[str]) -> Iterator[tuple[int, int, str]]:
    """``(line index, level, name)`` of each heading, outside fenced code ("# a comment" in code is none)."""
    fence = ""
    for i, line in enumerate(lines):
        if fence or FENCE.match(line):
            fence = fence_after(line, fence)
            continue
        atx = HEADING.match(line.strip())
        level = len(atx.group(1)) if atx else setext_level(lines, i)
        if level:
            yield i, level, atx.group(2) if atx else line.strip()


def first_heading(body: str) -> str | None:
    """The name of the first level-1 heading in a Markdown body, or None."""
    return next((name for _, level, name in headings(body.splitlines()) if level == 1), None)
