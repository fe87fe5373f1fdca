"""Answers with citations: the refusal decision, the extractive composer, and the optional LLM path.

Without an LLM (the default) the answer quotes the corpus: `ExtractiveComposer` picks the
sentences of the retrieved passages that best answer the question and joins them, verbatim, with
a citation marker after each. With an LLM (``ASSISTANT_LLM`` or ``Assistant.open(llm=...)``) the
model writes the answer from the numbered passages; when it fails, the extractive answer is
returned with a note saying so.

Either way `RefusalPolicy` decides first whether the corpus covers the question at all, so an
off-topic question never reaches the LLM.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .chunking import sentence_spans
from .embeddings import Embedder
from .engine import validate_question
from .errors import LLMError
from .followup import Message, rewrite_followup, validate_history
from .llm import (
    MarkerFilter,
    backend_name,
    clean_markers,
    condense,
    generate,
    generate_stream,
    llm_from_spec,
    messages,
    tidy,
)
from .retrieval import HybridRetriever, Passage

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

    from .config import Settings
    from .engine import Assistant

logger = logging.getLogger(__name__)

EXTRACTIVE = "extractive"

#: Questions the corpus answers well, offered when a question is out of scope.
EXAMPLE_QUESTIONS = (
    "What is the difference between prompt engineering and fine-tuning?",
    "How long does fine-tuning take?",
    "What are the limitations of prompt engineering?",
)

REFUSAL = (
    "I can only answer questions about prompt engineering and fine-tuning of large language models, "
    "from the documents I was given, and they do not cover this question. You could ask, for example:\n"
    + "\n".join(f"- {q}" for q in EXAMPLE_QUESTIONS)
)

FALLBACK_NOTE = "The language model was unavailable ({reason}); this answer quotes the documents instead."


@dataclass(frozen=True)
class Answer:
    """An answer: Markdown ``text`` with [n] markers, and the passages they point at."""

    text: str
    citations: tuple[Passage, ...]  # citations[n - 1] is the passage behind marker [n]
    answerable: bool
    query: str  # the question actually searched, after follow-up rewriting
    note: str | None = None  # e.g. why the LLM was not used
    backend: str = EXTRACTIVE

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["citations"] = [p.to_dict() for p in self.citations]
        return data


# -- refusal --------------------------------------------------------------------------------

#: Terms only questions about this corpus use. A question naming one is answered from a weak match.
DOMAIN_TERMS = re.compile(
    r"\b(?:prompt engineering|prompting|prompt design|fine[- ]?tuning|finetuning|fine[- ]?tuned models?|lora|"
    r"low-rank|llms?|language models?|chatgpt|hyper-?parameters?|overfit\w*|dropout|regulari[sz]ation|"
    r"cross-?validation|training data|labell?ed data|retrain\w*|custom data|hybrid|synergy|combin\w+ (?:them|both)|"
    r"(?:both|the two|these|each) (?:approach|method|technique|strateg)\w*)\b",
    re.IGNORECASE,
)

#: Words that point at the corpus but also at other things ("fine-tune my golf swing", "a writing prompt").
AMBIGUOUS_TERMS = re.compile(r"\b(?:prompts?|fine[- ]?tunes?|finetunes?|datasets?|epochs?|gpt[\w-]*)\b", re.IGNORECASE)


@dataclass(frozen=True)
class RefusalPolicy:
    """Decides whether the corpus covers a question, from the best passage's cosine similarity.

    The similarity a question needs depends on what it names:

    ========================  =========  =======================================================
    the question names        threshold  why
    ========================  =========  =======================================================
    a `DOMAIN_TERMS` term     0.20       "what's regularization for?" tops at 0.21
    an `AMBIGUOUS_TERMS` one  0.30       "what do we have to invest in to fine-tune?" tops at 0.32
    neither                   0.36       "What is reinforcement learning from games like chess?"
                                         tops at 0.32; "How do I train a dog?" at 0.21
    ========================  =========  =======================================================

    Calibrated with all-MiniLM-L6-v2 on bench/questions.jsonl (57 in scope: none refused) and
    bench/offtopic.txt (40 off topic: 3 answered, all of them near-domain: "How do I fine tune my
    car engine?" 0.32, "How do I fine-tune my golf swing?" 0.31, "What's a good writing prompt for
    kids?" 0.35). Similarities are from `Passage.similarity`, the cosine between question and passage.

    The threshold is chosen from the words the user typed, not from a rewritten follow-up: the
    rewrite may add the previous subject ("What is the capital of France?" after a question on
    fine-tuning becomes "... for fine-tuning?", similarity 0.34), and that added term must not
    lower the bar.
    """

    with_domain_term: float = 0.20
    with_ambiguous_term: float = 0.30
    without_domain_term: float = 0.36

    def answerable(self, query: str, passages: Sequence[Passage], asked: str | None = None) -> bool:
        """Whether the passages answer ``query`` well enough to try.

        Args:
            query: The standalone question the passages were retrieved for.
            passages: The retrieved passages, with their similarities.
            asked: The question as the user typed it, when ``query`` is a rewrite of it.

        Returns:
            True when the best similarity reaches the threshold for the terms the user named.
        """
        if not passages:
            return False
        best = max(p.similarity for p in passages)
        named = asked if asked is not None else query
        if DOMAIN_TERMS.search(named):
            threshold = self.with_domain_term
        elif AMBIGUOUS_TERMS.search(named):
            threshold = self.with_ambiguous_term
        else:
            threshold = self.without_domain_term
        return best >= threshold


# -- extractive composer --------------------------------------------------------------------

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


# -- the engine -----------------------------------------------------------------------------


class AnswerEngine:
    """Turns a question (and the chat so far) into an `Answer`."""

    def __init__(
        self,
        retriever: Callable[[], HybridRetriever],
        embedder: Embedder,
        settings: Settings,
        composer: ExtractiveComposer,
        refusal: RefusalPolicy | None = None,
        llm: LLM | None = None,
    ) -> None:
        """Args:
        retriever: Returns the retriever to use now (it changes when the index is rebuilt).
        embedder: Embeds the question, once per call.
        settings: ``top_k`` and ``max_question_chars`` are read from it.
        composer: Writes extractive answers, and fallbacks when the LLM fails.
        refusal: Decides whether the corpus covers a question.
        llm: A LlamaIndex LLM to write answers; ``None`` for extractive answers only.
        """
        self._retriever = retriever
        self.embedder = embedder
        self.settings = settings
        self.composer = composer
        self.refusal = refusal or RefusalPolicy()
        self.llm = llm
        self.backend = backend_name(llm) if llm is not None else EXTRACTIVE

    @classmethod
    def from_defaults(cls, assistant: Assistant) -> AnswerEngine:
        """The engine an `Assistant` uses: its LLM, else ``ASSISTANT_LLM``, else extractive.

        Raises:
            LLMError: ``ASSISTANT_LLM`` is malformed or names an integration that is not installed.
        """
        settings = assistant.settings
        llm = assistant.llm if assistant.llm is not None else llm_from_spec(settings.llm, settings.llm_timeout)
        return cls(
            lambda: assistant.retriever,
            assistant.embedder,
            settings,
            ExtractiveComposer(SentenceCache(assistant.embedder)),
            RefusalPolicy(),
            llm,
        )

    def ask(self, question: str, history: list[dict[str, str]] | None = None) -> Answer:
        """Answer a question from the corpus.

        Args:
            question: The question (at most ``settings.max_question_chars`` characters).
            history: Earlier turns, ``{"role": "user" | "assistant", "content": str}``, oldest first.

        Returns:
            The answer; ``answerable=False`` with a short explanation when the corpus does not cover it.

        Raises:
            InvalidQuestionError: The question is empty or too long, or the history is malformed.
        """
        answer = None
        for piece in self._run(question, history, stream=False):
            if isinstance(piece, Answer):
                answer = piece
        assert answer is not None
        return answer

    def stream(self, question: str, history: list[dict[str, str]] | None = None) -> Iterator[str | Answer]:
        """Like `ask`, but yields the text in pieces as it is ready, then the full `Answer`.

        The final `Answer` is authoritative: if the LLM fails mid-stream, it holds the extractive
        fallback (with a note) rather than the pieces already shown.

        Raises:
            InvalidQuestionError: As `ask`, before anything is yielded.
        """
        prepared = self._prepare(question, history)  # validate now, not on first next()
        return self._generate(prepared, stream=True)

    # -- internals --------------------------------------------------------------------------

    def _run(self, question: str, history: list[dict[str, str]] | None, stream: bool) -> Iterator[str | Answer]:
        return self._generate(self._prepare(question, history), stream)

    def _prepare(self, question: str, history: Any) -> tuple[str, list[Message]]:
        return validate_question(question, self.settings.max_question_chars), validate_history(history)

    def _generate(self, prepared: tuple[str, list[Message]], stream: bool) -> Iterator[str | Answer]:
        question, history = prepared
        query = self._standalone(question, history)
        vector = self.embedder.embed_query(query)
        passages = self._retriever().retrieve(query, self.settings.top_k, embedding=vector)
        if not self.refusal.answerable(query, passages, asked=question):
            logger.info("Refused (best similarity %.2f): %r", max((p.similarity for p in passages), default=0), query)
            answer = Answer(REFUSAL, (), False, query, backend=self.backend)
            yield answer.text
            yield answer
            return
        if self.llm is None:
            yield from self._extractive(query, vector, passages)
            return
        yield from self._generative(query, vector, passages, history, stream)

    def _standalone(self, question: str, history: list[Message]) -> str:
        if not history:
            return question
        if self.llm is not None:
            try:
                return condense(self.llm, question, history)
            except LLMError as exc:
                logger.warning("Condensing with the LLM failed (%s); rewriting by rule", exc)
        return rewrite_followup(question, history)

    def _extractive(
        self, query: str, vector: Sequence[float], passages: list[Passage], note: str | None = None
    ) -> Iterator[str | Answer]:
        text, cited = self.composer.compose(query, vector, passages)
        if not text:
            answer = Answer(REFUSAL, (), False, query, note=note, backend=EXTRACTIVE)
        else:
            answer = Answer(text, tuple(cited), True, query, note=note, backend=EXTRACTIVE)
        for paragraph in answer.text.split("\n\n"):
            yield paragraph + "\n\n"
        yield answer

    def _generative(
        self, query: str, vector: Sequence[float], passages: list[Passage], history: list[Message], stream: bool
    ) -> Iterator[str | Answer]:
        assert self.llm is not None
        chat = messages(query, passages, history)
        try:
            if stream:
                markers = MarkerFilter(len(passages))
                parts: list[str] = []
                for piece in generate_stream(self.llm, chat):
                    shown = markers.feed(piece)
                    if shown:
                        parts.append(shown)
                        yield shown
                tail = markers.flush()
                if tail:
                    parts.append(tail)
                    yield tail
                text, cited = tidy("".join(parts)), markers.cited
            else:
                text, cited = clean_markers(generate(self.llm, chat), len(passages))
        except LLMError as exc:
            logger.warning("%s; falling back to the extractive answer", exc)
            reason = (
                "timed out"
                if "timed out" in str(exc).lower() or "timeout" in str(exc).lower()
                else "it returned an error"
            )
            yield from self._extractive(query, vector, passages, note=FALLBACK_NOTE.format(reason=reason))
            return
        if not text:
            yield from self._extractive(
                query, vector, passages, note=FALLBACK_NOTE.format(reason="it returned nothing")
            )
            return
        yield Answer(text, tuple(passages[i] for i in cited), True, query, backend=self.backend)
