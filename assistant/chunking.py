"""Structure-aware chunking: Markdown sections, one FAQ entry per chunk, tight paragraphs.

Every chunk's ``text`` is exactly ``document.text[start:end]``, so a citation can point
at the span in the file. Chunk ids derive from the file and the chunk's content, never
from randomness, so they are stable across rebuilds.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .corpus import SourceDocument, as_markdown
from .markup import (
    HEADING,
    LIST_ITEM,
    QUOTE_MARKER,
    Table,
    caps_heading,
    in_indented_code,
    indent,
    is_html_only,
    is_quoted,
    leads_in,
    literal_blocks,
    literal_lines,
    numbered_headings,
    opens_code,
    setext_level,
    shows_nothing,
    tables,
    unquoted,
)

#: A paragraph or list longer than this is split into sentence or item windows.
MAX_CHUNK_CHARS = 640
#: Neighbouring paragraphs of one section are joined while they fit in this many characters.
#: Dev halves of the blind sets (bench/blind), hit@3 with 2:1 fusion: no joining 0.791 product /
#: 0.966 handbook; 450: 0.791 / 0.862; 550: 0.791 / 0.966 with 1:1 fusion 0.931 (top-3 context
#: ~1,050–1,140 characters, under the 1,500 budget).
MERGE_CHARS = 550

#: A sentence ends at . ! ? or … (and the quotes or brackets that close it, group 1) before a space
#: and a capital or digit, or before inline code or bold text ("… might fail to free space. `prune`
#: works …", as technical manuals write), perhaps opening a link or a bracket ("… for lookups.
#: [`dns.lookup()`][] uses …"); the space may hold a blockquote's next-line "> ".
_SENTENCE_END = re.compile(
    rf"(?<=[.!?…])([\"”’)]*)(?:[ \t]*\n{QUOTE_MARKER}|\s+)(?=[\"“‘(\[]?(?:[A-Z0-9]|`|\*\*[A-Z]))"
)


@dataclass(frozen=True)
class Chunk:
    """A passage of a source document, with where it sits."""

    id: str
    source: str
    title: str
    section: str  # heading path below the title, joined with " > "
    kind: str
    text: str
    start: int
    end: int
    #: The header and delimiter rows of the table the chunk starts inside (a long table cut into
    #: several chunks), so its rows keep their columns' names; "" for every other chunk.
    table_header: str = ""
    #: Whether the chunk starts where its section's text does, right under its heading (a code
    #: block there is introduced by the heading alone: "## Basic chat structure").
    opens_section: bool = False


#: A sentence of fewer words gets no vector of its own ("See below.").
MIN_SENTENCE_WORDS = 3


def sentence_texts(text: str, section: str, table_header: str = "") -> list[str]:
    """The texts embedded for a passage's sentences: each sentence after its nearest heading, a
    table row as its cells after their columns' names ("Plan: Pro; Price: $12"), the names read
    from ``table_header`` for the rows of a table the passage starts inside (`Chunk.table_header`).

    A passage's vector blurs several points together; a question about one of them is often
    nearer to the sentence that makes it. Retrieval ranks passages by their best sentence too
    (`HybridRetriever.sentences`).
    """
    heading = section.split(" > ")[-1].strip() if section else ""
    in_tables = tables(text, table_header)
    out = []
    for start, end in sentence_spans(text, table_header=table_header):
        table = next((t for t in in_tables if t.holds(start)), None)
        if table is not None and not table.row_of(start):
            continue  # the header or delimiter row: the names go with every row below them
        if shows_nothing(text[start:end]):
            continue
        sentence = table.words(text[start:end]) if table else " ".join(unquoted(text[start:end]).split())
        if len(sentence.split()) >= MIN_SENTENCE_WORDS:
            out.append(f"{heading}: {sentence}" if heading else sentence)
    return out


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    is_item: bool = False


def chunk_document(doc: SourceDocument) -> list[Chunk]:
    """Split one document into chunks, in document order."""
    doc = as_markdown(doc)
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    in_tables = tables(doc.text)
    for section, spans, opens in _sections(doc):
        first = spans[0][0].start if opens else -1
        for start, end in _pack(doc.text, spans, keep_whole=doc.kind == "faq"):
            text = doc.text[start:end]
            # A chunk that starts at a body row, its header left in the chunk before, starts inside its table.
            cut = next((t for t in in_tables if t.start < start < t.end and t.row_of(start)), None)
            # The same text twice in one file gets a different id for its second copy.
            key = f"{doc.source}\x00{section}\x00{text}"
            seen[key] = seen.get(key, 0) + 1
            digest = hashlib.sha256(f"{key}\x00{seen[key]}".encode()).hexdigest()[:24]
            chunks.append(
                Chunk(
                    id=digest,
                    source=doc.source,
                    title=doc.title,
                    section=section,
                    kind=doc.kind,
                    text=text,
                    start=start,
                    end=end,
                    table_header=f"{cut.header}\n{cut.delimiter}" if cut else "",
                    opens_section=bool(section) and start == first,
                )
            )
    return chunks


def _sections(doc: SourceDocument) -> Iterator[tuple[str, list[list[_Span]], bool]]:
    """Yield (heading path, blocks, whether they start right under the heading) per section, or
    per part of one that a callout's fence divides; a block is a list of line spans."""
    opens = False  # the document's opening text is under no heading
    path: list[tuple[int, str]] = []
    blocks: list[list[_Span]] = []
    current: list[_Span] = []
    section = ""
    offset = doc.body_start
    faq = doc.kind == "faq"
    plain = doc.source.lower().endswith(".txt")

    def flush_block() -> None:
        nonlocal current
        if current:
            blocks.append(current)
            current = []

    lines = doc.text[doc.body_start :].splitlines(keepends=True)
    bare = [line.rstrip("\r\n") for line in lines]
    literal = literal_blocks(bare, plain)
    numbered = numbered_headings(bare, literal) if plain else {}
    for i, line in enumerate(lines):
        start, offset = offset, offset + len(line)
        stripped = line.strip()
        block = literal.get(i)
        if block is None and i > 0 and setext_level(lines, i - 1, plain):
            continue  # the underline of the heading just read
        if block is not None and block.kind in ("comment", "definitions"):
            flush_block()  # shown to no reader: neither text nor the end of a chunk
            continue
        if block is not None and block.kind == "directive":
            # A callout's or tab's fence: its body, shown apart, is read apart, and no passage
            # holds a fence, which read alone would open code.
            flush_block()
            if blocks:
                yield section, blocks, opens
                blocks, opens = [], False
            continue
        if block is not None and block.kind == "fenced":
            # Fenced code stays with the paragraph that introduces it; not with a list item before it.
            if i == block.first and current and current[-1].is_item:
                flush_block()
            current.append(_Span(start + indent(line), start + len(line.rstrip())))
            continue
        if block is not None:  # an indented code block is a block of its own, blank lines and all
            if i == block.first:
                flush_block()
            if stripped:  # from the line's start: the indent is what makes it code
                current.append(_Span(start, start + len(line.rstrip())))
            if i == block.last:
                flush_block()
            continue
        if plain and not (path or blocks or current) and stripped.casefold() == doc.title.casefold():
            continue  # a text file's first line naming it ("Troubleshooting"): its title, no text
        heading = HEADING.match(stripped)
        if heading and plain and i > 0 and lines[i - 1].strip():
            heading = None  # in a text file, "# edit something" amid commands is a comment, no heading
        setext = setext_level(lines, i, plain)
        # A text file's heading is a line in capitals ("CORE HOURS") or a numbered line standing
        # alone before prose ("2. Backup the repository"), a level below its title.
        caps = (caps_heading(lines, i) or numbered.get(i, "")) if plain else ""
        if heading or setext or caps:
            flush_block()
            if blocks:
                yield section, blocks, opens
                blocks = []
            opens = True
            if caps:
                level, name = 2, caps
            else:
                level, name = (len(heading.group(1)), heading.group(2)) if heading else (setext, stripped)
            if level == 1 and name == doc.title:
                continue
            path = [(lvl, n) for lvl, n in path if lvl < level] + [(level, name)]
            section = " > ".join(n for _, n in path)
            if faq:
                # The question itself opens the chunk, so question and answer travel together.
                q_start = start + line.index(name)
                current = [_Span(q_start, q_start + len(name))]
                flush_block()
            continue
        if not stripped:
            flush_block()
            continue
        end = start + len(line.rstrip())
        start += indent(line)
        is_item = bool(LIST_ITEM.match(line))
        if current and current[-1].is_item and not is_item and line[:1] in " \t":
            current[-1] = _Span(current[-1].start, end, True)  # a wrapped list item's next line
            continue
        if (
            current
            and is_item
            and not current[-1].is_item
            and not leads_in(doc.text[current[-1].start : current[-1].end])
        ):
            flush_block()  # a list after a paragraph that does not introduce it
        elif current and not is_item and current[-1].is_item:
            flush_block()
        current.append(_Span(start, end, is_item))
    flush_block()
    if blocks:
        yield section, blocks, opens


def _pack(text: str, blocks: list[list[_Span]], keep_whole: bool) -> Iterator[tuple[int, int]]:
    if keep_whole:
        yield blocks[0][0].start, blocks[-1][-1].end
        return
    merged: tuple[int, int] | None = None
    for start, end in _windows(text, blocks):
        if merged is not None and end - merged[0] <= MERGE_CHARS:
            merged = (merged[0], end)  # a short paragraph joins its neighbour in the same section
            continue
        if merged is not None:
            lead = _lead_in_at_end(text, *merged)
            if lead is None:
                yield merged
            else:  # "… pass the stream directly:" goes with the code or list it introduces
                if lead > merged[0]:
                    yield merged[0], _trimmed_end(text, merged[0], lead)
                start = lead
        merged = (start, end)
    if merged is not None:
        yield merged


def _lead_in_at_end(text: str, start: int, end: int) -> int | None:
    """Where the sentence that ends ``text[start:end]`` starts, when it introduces what comes next
    ("With OpenAI, you can pass the stream directly:"); else None."""
    spans = sentence_spans(text, start, end)
    if not spans or not leads_in(text[spans[-1][0] : spans[-1][1]]):
        return None
    return spans[-1][0]


def _trimmed_end(text: str, start: int, end: int) -> int:
    """``end`` moved back over the white space before it, to no earlier than ``start``."""
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def _windows(text: str, blocks: list[list[_Span]]) -> Iterator[tuple[int, int]]:
    for block in blocks:
        start, end = block[0].start, block[-1].end
        if end - start <= MAX_CHUNK_CHARS:
            yield start, end
            continue
        units = [u for span in _runs(block) for u in _units(text, span)]
        window_start, window_end = units[0]
        last_start = window_start  # where the window's last unit starts
        for u_start, u_end in units[1:]:
            if u_end - window_start > MAX_CHUNK_CHARS:
                if last_start > window_start and leads_in(text[last_start:window_end]):
                    # A lead-in line goes with the list items or code after it, not before them.
                    yield window_start, _trimmed_end(text, window_start, last_start)
                    window_start = last_start
                else:
                    yield window_start, window_end
                    window_start = u_start
            window_end, last_start = u_end, u_start
        yield window_start, window_end


def _runs(block: list[_Span]) -> Iterator[_Span]:
    """The block's list items one by one, and each run of other lines as one (a wrapped paragraph)."""
    run: _Span | None = None
    for span in block:
        if span.is_item:
            if run is not None:
                yield run
                run = None
            yield span
        else:
            run = span if run is None else _Span(run.start, span.end)
    if run is not None:
        yield run


def _units(text: str, span: _Span) -> list[tuple[int, int]]:
    # A list item travels whole; one too long for a chunk is cut between its sentences, not at a space.
    whole = span.is_item and span.end - span.start <= MAX_CHUNK_CHARS
    units = [(span.start, span.end)] if whole else sentence_spans(text, span.start, span.end)
    # A code block is never cut: a passage that began inside one would read its closing fence as
    # an opening one and take the prose after it for code. Indented code is told within the span,
    # as `sentence_spans` told it, not by reading the whole document again for every unit.
    run = text[span.start : span.end]
    code = [opens_code(text, a) or in_indented_code(run, a - span.start) for a, _ in units]
    return [
        piece for (a, b), is_code in zip(units, code) for piece in ([(a, b)] if is_code else _hard_split(text, a, b))
    ]


def _hard_split(text: str, start: int, end: int, limit: int = MAX_CHUNK_CHARS) -> Iterator[tuple[int, int]]:
    """A unit longer than ``limit`` (a sentence without punctuation, a minified line) in pieces at spaces."""
    while end - start > limit:
        cut = text.rfind(" ", start + limit // 2, start + limit)
        cut = cut if cut > start else start + limit
        yield start, cut
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        yield start, end


#: A line that starts a block of its own rather than continuing the line before it.
_BLOCK_START = re.compile(r"^\s*(?:[-*+]\s|\d+[.)]\s|#|\|)")
#: Abbreviations after which a full stop does not end a sentence (English, not corpus-specific).
_ABBREVIATIONS = re.compile(
    r"(?:\b(?:e\.g|i\.e|etc|approx|vs|no|nos|mr|mrs|ms|dr|st|inc|ltd|co|fig|cf|incl|min|max)\.)$", re.IGNORECASE
)


def sentence_spans(text: str, start: int = 0, end: int | None = None, table_header: str = "") -> list[tuple[int, int]]:
    """Split ``text[start:end]`` into sentences, as absolute (start, end) offsets.

    A line break inside a paragraph is a space, not a sentence end (hard-wrapped Markdown and
    text, a blockquote's "> " lines too: `markup.unquoted` gives their words). A list item, a
    heading, a line of a table and a blank line start a new block, and a sentence never runs
    across blocks, so list items count as sentences of their own, and so does each table row,
    whole. ``table_header`` is the header of a table ``text`` starts inside
    (`Chunk.table_header`), whose rows are rows too.
    """
    end = len(text) if end is None else end
    in_tables = tables(text, table_header)
    spans: list[tuple[int, int]] = []
    for block_start, block_end, whole in _blocks(text, start, end, in_tables):
        cursor = block_start
        if whole:
            spans.append((block_start, block_end))  # code, a comment or a table row: one unit, never split
            continue
        for match in _SENTENCE_END.finditer(text, block_start, block_end):
            if _ABBREVIATIONS.search(text, max(block_start, match.start() - 8), match.start()):
                continue
            spans.append((cursor, match.start() + len(match.group(1))))
            cursor = match.end()
        spans.append((cursor, block_end))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        e = _trimmed_end(text, s, e)
        if s < e:
            out.append((s, e))
    return out


def _blocks(text: str, start: int, end: int, in_tables: Sequence[Table] = ()) -> Iterator[tuple[int, int, bool]]:
    """Runs of lines that belong together: a paragraph, one list item with its wrapped lines, or
    one line of a table (``in_tables``); each with whether it is one unit, never split into sentences
    (code, markup no reader sees, a table's line)."""
    block_start: int | None = None
    block_end = start
    block_quoted = False  # whether the block open is a blockquote's paragraph
    a = start
    pieces = text[start:end].split("\n")
    literal = literal_lines(text[start:end])
    for n, piece in enumerate(pieces):
        b = a + len(piece)
        next_a = b + 1
        if n in literal:  # code, a comment or link definitions: one block of its own, blank lines and all
            if n == literal[n].first:
                if block_start is not None:
                    yield block_start, block_end, False
                block_start = a
            if n == literal[n].last:
                yield block_start if block_start is not None else a, b, True
                block_start = None
            a = next_a
            continue
        quoted, words = is_quoted(piece), unquoted(piece)
        if not words.strip():  # a blank line, or a blockquote's (">"): a paragraph ends
            if block_start is not None:
                yield block_start, block_end, False
                block_start = None
            a = next_a
            continue
        in_table = any(t.holds(a + indent(piece)) for t in in_tables)
        if in_table or is_html_only(piece):
            # A line of tags is a block of its own (the words inside stand apart), as a table's line is.
            if block_start is not None:
                yield block_start, block_end, False
                block_start = None
            yield a, b, in_table
            a = next_a
            continue
        # A list item or heading starts a block, inside a blockquote too, and so does a quote's first line.
        if block_start is not None and (_BLOCK_START.match(words) or quoted != block_quoted):
            yield block_start, block_end, False
            block_start = None
        if block_start is None:
            block_start, block_quoted = a, quoted
        block_end = b
        a = next_a
    if block_start is not None:
        yield block_start, block_end, False
