"""The extractive composer: an answer made of verbatim sentences of the passages, each cited."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .chunking import sentence_spans
from .embeddings import Embedder
from .retrieval import Passage

_BULLET = re.compile(r"^(?:[-*+]|\d+[.)])\s+")
_NUMBER_ONLY = re.compile(r"^\d+[.)]?$")
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_STOPWORDS = frozenset(
    "a an the and or but of to in on for with by from at as is are was were be been being do does did "
    "doing have has had i me my we our you your it its they them their this that these those what which "
    "who whom how why when where whats what's can could should would will shall may might must about "
    "into than then so if any some all more most much many very just also there here get got one two "
    "between vs versus way ways thing things really actually kind sort need needs "
    # words nearly every passage uses; they say nothing about which sentence answers
    "prompt prompts prompting engineering engineer fine tune tuning tuned fine-tuning fine-tune fine-tuned "
    "model models language llm llms approach approaches method methods technique techniques".split()
)


def _terms(text: str) -> set[str]:
    out = set()
    for w in _WORD.findall(text.lower()):
        if w in _STOPWORDS or len(w) < 3:
            continue
        for suffix in ("ing", "ed", "es", "s"):
            if w.endswith(suffix) and len(w) - len(suffix) >= 4:
                w = w[: -len(suffix)]
                break
        out.add(w)
    return out


@dataclass(frozen=True)
class _Unit:
    """A quotable piece: one sentence, one list item, or a lead-in line with its list items."""

    passage: int  # index into the retrieved passages
    start: int  # absolute offsets in the source file
    end: int
    lines: tuple[str, ...]  # verbatim text; more than one line for a lead-in and its items
    is_list: bool

    @property
    def text(self) -> str:
        return " ".join(self.lines)


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

    A sentence scores ``cosine(question, sentence) + lexical * (share of the question's content
    words it contains) + prior * (its passage's similarity)``. The best sentence is always taken,
    then others within ``margin`` of it, up to ``max_units`` and at least ``min_units``, skipping
    near-duplicates. Quotes keep document order within each source; a source's paragraph opens
    with "According to *<title>*:".
    """

    cache: SentenceCache
    passages_used: int = 3
    lexical: float = 0.2
    prior: float = 0.1
    heading: float = 0.3
    margin: float = 0.2
    follow: int = 2
    min_units: int = 2
    max_units: int = 5
    duplicate_cosine: float = 0.9

    def compose(
        self, question: str, query_vector: Sequence[float], passages: Sequence[Passage]
    ) -> tuple[str, list[Passage]]:
        """Quote the sentences that best answer ``question``.

        Args:
            question: The (standalone) question.
            query_vector: Its embedding.
            passages: Retrieved passages, best first.

        Returns:
            The Markdown answer and the cited passages in marker order; ``("", [])`` when no
            passage holds a quotable sentence.
        """
        passages = list(passages[: self.passages_used])
        units = [u for i, p in enumerate(passages) for u in _units(i, p)]
        if not units:
            return "", []
        vectors = self.cache.vectors([u.text for u in units])
        q = np.asarray(query_vector, dtype=np.float32)
        q /= np.linalg.norm(q) or 1.0
        headings = self.cache.vectors([p.section or p.title for p in passages]) @ q
        q_terms = _terms(question)
        scores = []
        for unit, vector in zip(units, vectors):
            overlap = len(q_terms & _terms(unit.text)) / len(q_terms) if q_terms else 0.0
            scores.append(
                float(vector @ q)
                + self.lexical * overlap
                + self.prior * passages[unit.passage].similarity
                + self.heading * float(headings[unit.passage])
            )
        order = sorted(range(len(units)), key=lambda i: -scores[i])
        # The best sentence often names the topic and the next ones in its passage give the detail.
        best = order[0]
        chosen: list[int] = [best] + [
            j
            for j in range(best + 1, min(best + 1 + self.follow, len(units)))
            if units[j].passage == units[best].passage
        ]
        for i in order:
            if i in chosen:
                continue
            if len(chosen) >= self.max_units:
                break
            if len(chosen) >= self.min_units and scores[i] < scores[order[0]] - self.margin:
                break
            if any(float(vectors[i] @ vectors[j]) >= self.duplicate_cosine for j in chosen):
                continue
            if any(
                units[i].start < units[j].end
                and units[j].start < units[i].end
                and units[i].passage != units[j].passage
                and passages[units[i].passage].source == passages[units[j].passage].source
                for j in chosen
            ):
                continue  # the same words reached through two overlapping passages
            chosen.append(i)
        return _render([units[i] for i in chosen], [scores[i] for i in chosen], passages)


def _units(index: int, passage: Passage) -> list[_Unit]:
    """Split a passage into quotable units; a line ending in ':' keeps the list items after it."""
    raw: list[tuple[int, int, bool]] = []  # relative start, end, is list item
    for a, b in sentence_spans(passage.text):
        piece = passage.text[a:b]
        if _NUMBER_ONLY.match(piece.strip()):
            continue
        line_start = passage.text.rfind("\n", 0, a) + 1
        bullet = _BULLET.match(piece)
        is_item = bool(bullet) and a == line_start and piece.lstrip()[:1] in "-*+"
        if bullet:
            a += bullet.end()
        if passage.text[a:b].rstrip().endswith("?"):
            continue  # an FAQ entry's question line, not an answer
        raw.append((a, b, is_item))
    units: list[_Unit] = []
    i = 0
    while i < len(raw):
        a, b, is_item = raw[i]
        text = passage.text[a:b]
        if text.endswith(":") and i + 1 < len(raw) and raw[i + 1][2]:
            j = i + 1
            items = []
            while j < len(raw) and raw[j][2]:
                items.append(passage.text[raw[j][0] : raw[j][1]])
                j += 1
            end = raw[j - 1][1]
            units.append(_Unit(index, passage.start + a, passage.start + end, (text, *items), True))
            i = j
            continue
        if is_item:  # a list under a heading: its items travel together
            j = i
            while j < len(raw) and raw[j][2]:
                j += 1
            items = tuple(passage.text[x:y] for x, y, _ in raw[i:j])
            units.append(_Unit(index, passage.start + a, passage.start + raw[j - 1][1], items, True))
            i = j
            continue
        units.append(_Unit(index, passage.start + a, passage.start + b, (text,), False))
        i += 1
    return units


def _render(units: list[_Unit], scores: list[float], passages: list[Passage]) -> tuple[str, list[Passage]]:
    by_source: dict[str, list[tuple[_Unit, float]]] = {}
    for unit, score in sorted(zip(units, scores), key=lambda us: -us[1]):
        by_source.setdefault(passages[unit.passage].source, []).append((unit, score))
    cited: list[int] = []
    paragraphs: list[str] = []
    for members in by_source.values():
        members.sort(key=lambda us: us[0].start)
        title = passages[members[0][0].passage].title
        blocks: list[str] = [f"According to *{title}*:" if title else ""]
        for unit, _ in members:
            if unit.passage not in cited:
                cited.append(unit.passage)
            marker = f"[{cited.index(unit.passage) + 1}]"
            if unit.is_list:
                items = unit.lines
                if len(items) > 1 and items[0].endswith(":"):  # a lead-in line, then its items
                    blocks.append(items[0])
                    items = items[1:]
                lines = [f"- {item}" for item in items]
                lines[-1] += f" {marker}"
                blocks.append("\n" + "\n".join(lines) + "\n")
            else:
                blocks.append(f"{unit.lines[0]} {marker}")
        paragraph = ""  # prose runs on; a list gets lines of its own
        for b in blocks:
            if not b:
                continue
            if b.startswith("\n"):
                paragraph = paragraph.rstrip() + "\n" + b
            else:
                paragraph += ("" if not paragraph or paragraph.endswith("\n") else " ") + b
        paragraphs.append(paragraph.strip())
    return "\n\n".join(paragraphs), [passages[i] for i in cited]
