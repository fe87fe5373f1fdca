"""Markdown's block structure, as much of it as the corpus reader and the chunker need (CommonMark).

Headings (``# Title`` and setext, a line underlined with ``===`` or ``---``), list items, lines
that introduce them, fenced and indented code blocks, HTML comments and link reference definitions,
blockquotes and tables (GFM, rows written between pipes). `corpus` (a document's title),
`chunking` (its sections, blocks and sentence texts) and `compose` (what a quote may hold) all
read them here, so they never disagree about what a heading or a list's lead-in is.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from types import MappingProxyType

HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
#: A setext heading's underline: "===" for level 1, "---" for level 2.
_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
#: The other underlines of a text file's headings, in reStructuredText's styles: "~~~~", "^^^^", "****".
_PLAIN_UNDERLINE = re.compile(r"^ {0,3}([~^*#+\"'`.:_])\1{2,}[ \t]*$")
#: The opening or closing line of a fenced code block (three or more ` or ~). No "^":
#: ``match(text, pos)`` anchors at ``pos``, where "^" would not match inside a text.
FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
#: A numbered line: "2. Backup the repository".
_NUMBERED = re.compile(r"\d+[.)][ \t]+\S")


#: A blockquote's markers at the start of a line: "> ", nested "> > " too (a pattern to build on).
QUOTE_MARKER = r"[ \t]{0,3}(?:>[ \t]?)+"
_QUOTE_MARKER = re.compile(rf"(?m)^{QUOTE_MARKER}")


def is_quoted(line: str) -> bool:
    """Whether ``line`` is a line of a blockquote ("> **Note:** ...")."""
    return _QUOTE_MARKER.match(line) is not None


#: A GitHub alert's first line ("> [!NOTE]"), which GitHub shows as the callout's title: "Note".
_ALERT = re.compile(rf"(?m)^{QUOTE_MARKER}\[!(NOTE|TIP|IMPORTANT|WARNING|CAUTION)\][ \t]*$")


def unquoted(text: str) -> str:
    """``text`` without the blockquote markers that open its lines: a hard-wrapped quoted
    paragraph's words, as its reader sees them ("> [!NOTE]" opening a GitHub alert as "Note:")."""
    return _QUOTE_MARKER.sub("", _ALERT.sub(lambda m: f"{m.group(1).capitalize()}:", text))


def indent(text: str) -> int:
    """How many characters of white space ``text`` opens with: where its words start."""
    return len(text) - len(text.lstrip())


def caps_heading(lines: Sequence[str], i: int) -> str:
    """The name of a plain-text heading on line ``i``, or "": a line in capitals that is a paragraph
    of its own and does not end as a sentence ("CORE HOURS"), as text files mark their sections.
    The name is given in sentence case ("Core hours"), as Markdown headings are written; a name in
    code ("TS_COMMAND", an environment variable) is given as written."""
    line = lines[i].strip()
    if not line or lines[i][:1] in " \t" or (i > 0 and lines[i - 1].strip()):
        return ""
    if i + 1 < len(lines) and lines[i + 1].strip():
        return ""
    letters = [c for c in line if c.isalpha()]
    if len(letters) < 2 or any(c.islower() for c in letters):
        return ""
    if LIST_ITEM.match(line) or line.startswith(("|", "#", ">")) or FENCE.match(line) or line[-1] in ".:;,!?":
        return ""
    return line if "_" in line else line[0] + line[1:].lower()


def numbered_headings(lines: Sequence[str], code: Container[int] = ()) -> dict[int, str]:
    """A text file's numbered headings: line -> name ("Backup the repository" for "2. Backup the
    repository"). Each is a numbered line at the margin, outside ``code`` (line indexes), that is a
    paragraph of its own, does not end as a sentence, and is followed by prose rather than by the
    next item, as text manuals number their sections. And every numbered paragraph of the file
    that prose or code follows is one: where one is not, the numbers count steps ("4. When done
    push your branch." then "git push …"), and even a step that ends without a full stop ("6. Push
    a backup of your branch, then") stays one. The number is left out, as a Markdown heading would
    write it (on the manual's dev half, headings with their numbers cost an off-topic refusal,
    0.533 -> 0.467; without, no figure moved)."""
    found: dict[int, str] = {}
    for i, text in enumerate(lines):
        line = text.strip()
        if i in code or not _NUMBERED.match(text) or (i > 0 and lines[i - 1].strip()):
            continue  # indented, in code or inside a paragraph: no numbered paragraph of the file
        j = next((j for j in range(i + 1, len(lines)) if lines[j].strip()), None)
        if j is None or (j not in code and LIST_ITEM.match(lines[j])):
            continue  # an item of a list, before the next item or at the end
        alone = not lines[i + 1].strip()
        if not alone or line[-1] in ".:;,!?" or j in code or not lines[j][:1].strip():
            return {}  # a step followed by its commands or notes: the numbers count steps
        found[i] = LIST_ITEM.sub("", line)
    return found


def setext_level(lines: Sequence[str], i: int, plain: bool = False) -> int:
    """The level of a setext heading on line ``i`` (a line of text underlined with === or ---), or 0.

    Only a line that opens its paragraph counts, so "---" under a paragraph's last line stays a rule.
    In a text file (``plain``) the heading may be indented as CommonMark allows (up to three spaces),
    and underlined as reStructuredText also writes it ("~~~~", "^^^^": level 2), where Markdown would
    read "~~~" as opening code and take the rest of the file for it.
    """
    line = lines[i]
    indented = indent(line) > 3 or line[:1] == "\t" if plain else line[:1] in " \t"
    if i + 1 >= len(lines) or not line.strip() or (i > 0 and lines[i - 1].strip()) or indented:
        return 0
    if LIST_ITEM.match(line) or HEADING.match(line.strip()) or FENCE.match(line):
        return 0
    underline = _UNDERLINE.match(lines[i + 1])
    if underline is not None:
        return 1 if underline.group(1)[0] == "=" else 2
    return 2 if plain and _PLAIN_UNDERLINE.match(lines[i + 1]) else 0


def _underlines(lines: Sequence[str], i: int, plain: bool) -> bool:
    """Whether line ``i`` of a text file underlines a heading (`setext_level`), so opens no code."""
    return plain and i > 0 and setext_level(lines, i - 1, plain=True) > 0


def leads_in(line: str) -> bool:
    """Whether a line introduces the list or code block after it: it ends in a colon, perhaps
    inside emphasis ("**Many pages → Sidebar:**")."""
    return line.rstrip().rstrip("*_").endswith(":")


def opens_code(text: str, pos: int = 0) -> bool:
    """Whether ``text`` at ``pos`` opens a fenced code block."""
    return FENCE.match(text, pos) is not None


#: A line of an indented code block opens with four spaces or a tab (CommonMark).
_CODE_INDENT = re.compile(r"(?: {4}|\t)")


def indented_code(lines: Sequence[str], plain: bool = False) -> frozenset[int]:
    """The indexes of ``lines`` that make up indented code blocks: lines indented by four spaces
    or a tab, after a blank line, outside fenced code and outside lists (a list item's indented
    paragraph is no code), with the blank lines between them. Plain-text manuals show commands
    and their output so ("    $ restic repair index")."""
    code: set[int] = set()
    fence = ""
    in_list = False  # from a list item until a line with words at the margin
    blank = True  # whether the line before this one was blank (or there was none)
    i = 0
    while i < len(lines):
        line = lines[i]
        if fence or (FENCE.match(line) and not _underlines(lines, i, plain)):
            in_list = in_list and line[:1].isspace()  # a fence inside an item keeps the list open
            fence, blank, i = fence_after(line, fence), False, i + 1
            continue
        if blank and line.strip() and _CODE_INDENT.match(line) and not LIST_ITEM.match(line) and not in_list:
            last = j = i
            while j < len(lines) and (not lines[j].strip() or _CODE_INDENT.match(lines[j])):
                last = j if lines[j].strip() else last
                j += 1
            code.update(range(i, last + 1))
            blank, i = False, last + 1
            continue
        if line.strip():
            # In a list, an indented line goes on with its item; out of one, a paragraph indented a
            # little (" Run all tests:", as some text files write every line) is prose at the
            # margin, and four spaces more after it are code.
            in_list = bool(LIST_ITEM.match(line)) or (in_list and line[:1].isspace())
        blank, i = not line.strip(), i + 1
    return frozenset(code)


#: An HTML comment's first line: "<!--" after at most three spaces (CommonMark's HTML block, type 2).
_COMMENT_OPENS = re.compile(r" {0,3}<!--")
#: Its last line: the first that holds "-->", with nothing after it.
_COMMENT_CLOSES = re.compile(r"-->\s*$")


#: A link reference definition: "[RFC 5952]: https://…" or "[`path.sep`]: #pathsep", perhaps with a
#: quoted title; what "[RFC 5952][]" in the text links to, shown to no reader (CommonMark).
_LINK_DEFINITION = re.compile(
    r" {0,3}\[[^\]\n]+\]:[ \t]*(?:<[^>\n]*>|\S+)(?:[ \t]+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?[ \t]*$"
)


#: A MyST directive's opening fence: "```{note}", "````{tab} Linux", ":::{warning}" (MyST Markdown,
#: as Sphinx projects write their docs).
_DIRECTIVE = re.compile(r" {0,3}(`{3,}|~{3,}|:{3,})\{([\w-]+)\}")
#: Directives whose body is Markdown that the page shows as text, in a callout, a box or a tab
#: (MyST's admonitions, Sphinx's version notes and boxes, sphinx-design and sphinx-inline-tabs).
#: Any other directive ("```{code-block} python", a project's own "```{pip-cli}") stays code.
PROSE_DIRECTIVES = frozenset(
    "admonition attention caution danger error hint important note seealso tip warning "
    "versionadded versionchanged versionremoved deprecated topic sidebar epigraph highlights "
    "pull-quote compound container only dropdown tab tab-set tab-item card grid grid-item "
    "grid-item-card".split()
)
#: A directive's option line, right under its opening fence: ":class: dropdown".
_DIRECTIVE_OPTION = re.compile(r" {0,3}:[\w-]+:(?:[ \t]|$)")


def _prose_directive(lines: Sequence[str], i: int) -> tuple[int, int | None] | None:
    """For a directive with a Markdown body opening on line ``i``: the last line of its opening
    (the fence and its option lines) and its closing fence's line (None when never closed)."""
    opens = _DIRECTIVE.match(lines[i])
    if opens is None or opens.group(2) not in PROSE_DIRECTIVES:
        return None
    last = i
    while last + 1 < len(lines) and _DIRECTIVE_OPTION.match(lines[last + 1]):
        last += 1
    marker = opens.group(1)
    for j in range(last + 1, len(lines)):
        closing = lines[j].strip()
        # A fence inside the body is shorter than the directive's own (MyST's rule for nesting).
        if closing[:1] == marker[0] and len(closing) >= len(marker) and closing == closing[0] * len(closing):
            return last, j
    return last, None


@dataclass(frozen=True)
class LiteralBlock:
    """Lines read as they are, never as Markdown: ``first`` to ``last``, both included."""

    first: int
    last: int
    #: "fenced" (code between fences, the fence lines included), "indented" (`indented_code`),
    #: "comment" (an HTML comment: "<!-- YAML\nadded: v0.1.25\n-->"), "definitions" (link
    #: reference definitions, which cannot interrupt a paragraph) or "directive" (the opening or
    #: closing fence of a MyST directive whose body is text: "```{note}"); the last three no
    #: reader sees.
    kind: str


def literal_blocks(lines: Sequence[str], plain: bool = False) -> dict[int, LiteralBlock]:
    """Each line of a code block, an HTML comment or a run of link reference definitions -> its
    block: fenced code with its fence lines (a fence never closed runs to the end), indented code
    from its first line to its last with words, a comment from its "<!--" to its "-->" (one never
    closed is text), definitions after a blank line, a text directive's fences (its body is
    Markdown, read as any other). Their lines are no heading, no list item and no paragraph's end."""
    indented = indented_code(lines, plain)
    blocks: dict[int, LiteralBlock] = {}
    closings: set[int] = set()  # the closing fences of text directives opened above
    i = 0
    while i < len(lines):
        if i in closings:
            block = LiteralBlock(i, i, "directive")
        elif i not in indented and (directive := _prose_directive(lines, i)) is not None:
            block = LiteralBlock(i, directive[0], "directive")
            if directive[1] is not None:
                closings.add(directive[1])
        elif i in indented:
            last = i
            while last + 1 in indented:
                last += 1
            block = LiteralBlock(i, last, "indented")
        elif FENCE.match(lines[i]) and not _underlines(lines, i, plain):
            fence, last = fence_after(lines[i], ""), i
            while fence and last + 1 < len(lines):
                last += 1
                fence = fence_after(lines[last], fence)
            block = LiteralBlock(i, last, "fenced")
        elif _COMMENT_OPENS.match(lines[i]):
            opened = lines[i][lines[i].index("<!--") + 4 :]
            ends = [i] if "-->" in opened else range(i + 1, len(lines))
            last = next((j for j in ends if "-->" in lines[j]), None)
            if last is None or not _COMMENT_CLOSES.search(lines[last]):
                i += 1
                continue
            block = LiteralBlock(i, last, "comment")
        elif _LINK_DEFINITION.match(lines[i]) and (i == 0 or not lines[i - 1].strip()):
            last = i
            while last + 1 < len(lines) and _LINK_DEFINITION.match(lines[last + 1]):
                last += 1
            block = LiteralBlock(i, last, "definitions")
        else:
            i += 1
            continue
        blocks.update(dict.fromkeys(range(block.first, block.last + 1), block))
        i = block.last + 1
    return blocks


@functools.lru_cache(maxsize=64)
def literal_lines(text: str) -> Mapping[int, LiteralBlock]:
    """`literal_blocks` of ``text``'s lines, read once per text: the chunker's sentence blocks and
    `in_indented_code` ask it of the same passage text."""
    return MappingProxyType(literal_blocks(text.split("\n")))


def in_indented_code(text: str, pos: int) -> bool:
    """Whether ``pos`` falls on a line of an indented code block of ``text`` (`indented_code`)."""
    block = literal_lines(text).get(text.count("\n", 0, pos))
    return block is not None and block.kind == "indented"


def fence_after(line: str, fence: str) -> str:
    """The fence open after ``line``: its marker when it opens one, "" when it closes ``fence``."""
    if not fence:
        opens = FENCE.match(line)
        return opens.group(1) if opens else ""
    stripped = line.strip()
    closes = stripped.startswith(fence) and stripped == stripped[0] * len(stripped)
    return "" if closes else fence


#: A paragraph's opening that Markdown would read as a block's start rather than as text.
_READS_AS_BLOCK = re.compile(r"(?:#|>|[-+*](?:\s|$)|\d+[.)](?:\s|$))")


def as_paragraph(text: str) -> str:
    """``text`` written as a Markdown paragraph that reads as text: "# of retries" or "1. is not a
    list" escaped, so a renderer (`rst`, `htmldoc`) never turns prose into a heading or a list."""
    return "\\" + text if _READS_AS_BLOCK.match(text) else text


def fenced(code: str, language: str = "") -> str:
    """``code`` as a fenced block, with a fence the code cannot end ("~~~~" when it holds "```")."""
    fence = "~~~~" if "```" in code else "```"
    return f"{fence}{language}\n{code}\n{fence}"


def headings(lines: Sequence[str]) -> Iterator[tuple[int, int, str]]:
    """``(line index, level, name)`` of each heading, outside code and comments ("# a comment" in
    code is none)."""
    literal = literal_blocks(lines)
    for i, line in enumerate(lines):
        if i in literal:
            continue
        atx = HEADING.match(line.strip())
        level = len(atx.group(1)) if atx else setext_level(lines, i)
        if level:
            yield i, level, atx.group(2) if atx else line.strip()


def first_heading(body: str) -> str | None:
    """The name of the first level-1 heading in a Markdown body, or None."""
    return next((name for _, level, name in headings(body.splitlines()) if level == 1), None)


#: One HTML tag or comment: "<aside class="pquote">", "</p>", "<img src=… alt="…">", "<!-- … -->".
_HTML_TAG = r"(?:<!--[\s\S]*?-->|</?[A-Za-z][\w:-]*(?:\s[^<>]*)?/?>)"
_HTML_ONLY = re.compile(rf"^\s*{_HTML_TAG}(?:\s*{_HTML_TAG})*\s*$")


def shows_nothing(text: str) -> bool:
    """Whether ``text`` is markup no reader of the rendered page sees: HTML tags or comments
    (`is_html_only`), or link reference definitions."""
    return is_html_only(text) or all(_LINK_DEFINITION.match(line) for line in text.split("\n"))


def is_html_only(line: str) -> bool:
    """Whether a line holds nothing but HTML tags, as the pull-quotes and figures of Markdown written
    for a site generator are wrapped ("<aside markdown="1" class="pquote">", "</aside>"): markup
    around words, never words to quote or embed."""
    return bool(_HTML_ONLY.match(line))


# -- tables ---------------------------------------------------------------------------------

#: A table's delimiter row, under its header row: "|---|:---:|", or "--- | :---:" without the outer
#: pipes (a pipe somewhere is required: "---" alone is a rule or a heading's underline).
_TABLE_DELIMITER = re.compile(r"^\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*$")
#: A pipe that separates two cells (one written "\|" is part of a cell).
_CELL_SEPARATOR = re.compile(r"(?<!\\)\|")


def is_table_row(line: str) -> bool:
    """Whether a line may be a table row: it holds a pipe that separates cells, between pipes
    ("| a | b |") or not ("a | b", as GFM allows). Only a header and delimiter row above make it one
    (`tables`)."""
    return bool(_CELL_SEPARATOR.search(line))


def _is_delimiter(line: str, header: str) -> bool:
    """Whether ``line`` is the delimiter row under ``header``. A header without its outer pipes must
    have as many cells as the delimiter row, as GFM requires: a sentence holding a pipe is no header."""
    if "|" not in line or not _TABLE_DELIMITER.match(line):
        return False
    return header.lstrip().startswith("|") or len(table_cells(header)) == len(table_cells(line))


@dataclass(frozen=True)
class Table:
    """A table of a text: its header and delimiter rows verbatim, and where each body row lies."""

    header: str
    delimiter: str
    start: int  # the header row's offset in the text
    end: int  # where the last row ends
    rows: tuple[tuple[int, int], ...]  # each body row's (start, end) in the text, in order

    def holds(self, start: int) -> bool:
        """Whether a row of this table, its header and delimiter rows included, starts at ``start``."""
        return self.start <= start < self.end

    def row_of(self, start: int) -> bool:
        """Whether a body row of this table starts at ``start``."""
        return any(a == start for a, _ in self.rows)

    def words(self, row: str) -> str:
        """A body row as words: each cell after its column's name ("Plan: Pro; Price: $12")."""
        names, cells = table_cells(self.header), table_cells(row)
        return "; ".join(f"{n}: {c}" if n else c for n, c in zip_longest(names, cells, fillvalue="") if c)


def table_cells(row: str) -> list[str]:
    """The cells of a table row, outer pipes dropped ("| a | b \\| c |" gives "a" and "b | c")."""
    body = row.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [cell.strip().replace("\\|", "|") for cell in _CELL_SEPARATOR.split(body)]


def tables(text: str, continued: str = "") -> list[Table]:
    """The tables of ``text``: a header row, a delimiter row, then body rows, with or without their
    outer pipes; a line holding no cell separator ends a table. Read once per text: a passage's
    sentences and the caller splitting it both ask (`chunking.sentence_spans`).

    Args:
        text: The text, a whole file or a passage of one.
        continued: The header and delimiter rows (two lines) of a table that ``text`` starts inside,
            as a passage cut from a long table's middle does (`chunking.Chunk.table_header`): the
            rows ``text`` opens with are that table's. Without it such rows belong to no table.

    Returns:
        The tables, in order.
    """
    return list(_tables(text, continued))


@functools.lru_cache(maxsize=8)
def _tables(text: str, continued: str) -> tuple[Table, ...]:
    lines: list[tuple[int, int]] = []  # (start, end) of each line, without its indent or line break
    offset = 0
    for line in text.split("\n"):
        lines.append((offset + indent(line), offset + len(line.rstrip("\r"))))
        offset += len(line) + 1

    def rows_from(i: int) -> int:
        """The index of the first line at or after ``i`` that is no table row."""
        while i < len(lines) and is_table_row(text[lines[i][0] : lines[i][1]]):
            i += 1
        return i

    found: list[Table] = []
    i = 0
    header, _, delimiter = continued.partition("\n")
    if header and delimiter and (i := rows_from(0)):
        found.append(Table(header.strip(), delimiter.strip(), lines[0][0], lines[i - 1][1], tuple(lines[:i])))
    while i + 1 < len(lines):
        (a, b), (c, d) = lines[i], lines[i + 1]
        if not (is_table_row(text[a:b]) and _is_delimiter(text[c:d], text[a:b])):
            i += 1
            continue
        j = rows_from(i + 2)
        found.append(Table(text[a:b].strip(), text[c:d].strip(), a, lines[j - 1][1], tuple(lines[i + 2 : j])))
        i = j
    return tuple(found)
