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
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .compose import ExtractiveComposer, SentenceCache
from .embeddings import Embedder
from .errors import LLMError
from .followup import rewrite_followup
from .llm import (
    CONDENSE_SHARE,
    Budget,
    GenerationOptions,
    MarkerFilter,
    OutputFilter,
    backend_name,
    condense,
    known_hosts,
    llm_from_spec,
    messages,
    stream_reply,
    tidy,
    valid_standalone,
)
from .profile import CorpusProfile
from .refusal import Background, RefusalPolicy
from .retrieval import HybridRetriever, Passage
from .validation import Message, validate_history, validate_question

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

    from .config import Settings
    from .engine import Assistant

logger = logging.getLogger(__name__)

EXTRACTIVE = "extractive"


def refusal_text(profile: CorpusProfile) -> str:
    """What a refused question gets: what the corpus covers, and questions it does answer."""
    examples = "\n".join(f"- {q}" for q in profile.examples())
    return f"I can't answer that from {profile.topic}: they do not cover this question." + (
        f" You could ask, for example:\n{examples}" if examples else ""
    )


FALLBACK_NOTE = "The language model was unavailable ({reason}); this answer quotes the documents instead."
#: The rule for LLM answers that cite nothing: such an answer is not shown as if it were grounded;
#: the extractive answer (every sentence quoted and cited) is returned with this note instead.
UNCITED_NOTE = (
    "The language model's answer cited none of the passages, so it was not used; "
    "this answer quotes the documents instead."
)


class StreamNotice(str):
    """A streamed piece that says what happened: the LLM failed or cited nothing, and a fallback follows.

    It is a `str`, so consumers that only show text show it as a visible note between the two.
    ``retracts`` is true when LLM text was already streamed: that text is not part of the answer,
    and a consumer that can should remove it (the final `Answer` never contains it).
    """

    retracts: bool
    note: str

    def __new__(cls, note: str, retracts: bool) -> StreamNotice:
        text = f"\n\n---\n\n*{note}*\n\n" if retracts else f"*{note}*\n\n"
        piece = super().__new__(cls, text)
        piece.retracts = retracts
        piece.note = note
        return piece


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
        self._background: Background | None = None
        self._background_lock = threading.Lock()
        self.llm = llm
        self.backend = backend_name(llm) if llm is not None else EXTRACTIVE
        #: What the corpus is about, named in the LLM prompts.

    def background(self) -> Background:
        """The background similarity level of the index in use, measured once per generation."""
        retriever = self._retriever()
        known = self._background
        if known is None or known.collection != retriever.manifest.collection:
            with self._background_lock:
                known = self._background
                if known is None or known.collection != retriever.manifest.collection:
                    cache = self.settings.index_dir / "background.json"
                    known = self._background = Background.measure(retriever, self.embedder, cache)
        return known

    @property
    def topic(self) -> str:
        """What the corpus is about, from the index in use (for the LLM's prompts)."""
        return self._retriever().profile.topic

    @classmethod
    def from_defaults(cls, assistant: Assistant) -> AnswerEngine:
        """The engine an `Assistant` uses: its LLM, else ``ASSISTANT_LLM``, else extractive.

        Raises:
            LLMError: ``ASSISTANT_LLM`` is malformed or names an integration that is not installed.
        """
        settings = assistant.settings
        llm = (
            assistant.llm
            if assistant.llm is not None
            else llm_from_spec(settings.llm, settings.llm_timeout, settings.llm_max_tokens)
        )
        return cls(
            lambda: assistant.retriever,
            assistant.embedder,
            settings,
            ExtractiveComposer(SentenceCache(assistant.embedder)),
            RefusalPolicy(),
            llm,
        )

    def ask(
        self, question: str, history: list[dict[str, str]] | None = None, options: GenerationOptions | None = None
    ) -> Answer:
        """Answer a question from the corpus.

        Args:
            question: The question (at most ``settings.max_question_chars`` characters).
            history: Earlier turns, ``{"role": "user" | "assistant", "content": str}``, oldest first.
            options: ``max_tokens`` / ``temperature`` for the LLM of this one answer.

        Returns:
            The answer; ``answerable=False`` with a short explanation when the corpus does not cover it.

        Raises:
            InvalidQuestionError: The question is empty or too long, or the history is malformed.
        """
        answer = None
        for piece in self._run(question, history, stream=False, options=options):
            if isinstance(piece, Answer):
                answer = piece
        assert answer is not None
        return answer

    def stream(
        self, question: str, history: list[dict[str, str]] | None = None, options: GenerationOptions | None = None
    ) -> Iterator[str | Answer]:
        """Like `ask`, but yields the text in pieces as it is ready, then the full `Answer`.

        The final `Answer` is authoritative: if the LLM fails mid-stream (or its answer cites
        nothing), a `StreamNotice` piece says so, the extractive fallback follows, and the final
        `Answer` holds only the fallback, with the note.

        Raises:
            InvalidQuestionError: As `ask`, before anything is yielded.
        """
        prepared = self._prepare(question, history)  # validate now, not on first next()
        return self._generate(prepared, stream=True, options=options)

    # -- internals --------------------------------------------------------------------------

    def _run(
        self,
        question: str,
        history: list[dict[str, str]] | None,
        stream: bool,
        options: GenerationOptions | None = None,
    ) -> Iterator[str | Answer]:
        return self._generate(self._prepare(question, history), stream, options)

    def _prepare(self, question: str, history: Any) -> tuple[str, list[Message]]:
        return validate_question(question, self.settings.max_question_chars), validate_history(history)

    def _generate(
        self, prepared: tuple[str, list[Message]], stream: bool, options: GenerationOptions | None = None
    ) -> Iterator[str | Answer]:
        question, history = prepared
        budget = Budget(self.settings.llm_timeout)  # one budget for every LLM call of this answer
        query = self._standalone(question, history, budget)
        vector = self.embedder.embed_query(query)
        passages = self._retriever().retrieve(query, self.settings.top_k, embedding=vector)
        profile = self._retriever().profile
        asked_similarity = None
        if query != question and profile.coverage(question) < self.refusal.min_coverage:
            own = self._retriever().dense(self.embedder.embed_query(question), 1)
            asked_similarity = max((cosine for _, cosine in own), default=0.0)
        if not self.refusal.answerable(
            query, passages, profile, self.background(), asked=question, asked_similarity=asked_similarity
        ):
            logger.info("Refused (best similarity %.2f): %r", max((p.similarity for p in passages), default=0), query)
            answer = Answer(refusal_text(profile), (), False, query, backend=self.backend)
            yield answer.text
            yield answer
            return
        if self.llm is None:
            yield from self._extractive(query, vector, passages)
            return
        yield from self._generative(query, vector, passages, history, budget, options or GenerationOptions())

    def _standalone(self, question: str, history: list[Message], budget: Budget) -> str:
        if not history:
            return question
        if self.llm is not None:
            try:
                condensed = condense(self.llm, question, history, budget.share(CONDENSE_SHARE), self.topic)
            except LLMError as exc:
                logger.warning("Condensing with the LLM failed (%s); rewriting by rule", exc)
            else:
                valid = valid_standalone(condensed)
                if valid is not None:
                    return valid
                logger.warning(
                    "The LLM's condensed question is not one short question (%r); rewriting by rule", condensed[:200]
                )
        return rewrite_followup(question, history, self._retriever().profile)

    def _extractive(
        self, query: str, vector: Sequence[float], passages: list[Passage], note: str | None = None
    ) -> Iterator[str | Answer]:
        profile = self._retriever().profile
        text, cited = self.composer.compose(query, vector, passages, profile)
        if not text:
            answer = Answer(refusal_text(profile), (), False, query, note=note, backend=EXTRACTIVE)
        else:
            answer = Answer(text, tuple(cited), True, query, note=note, backend=EXTRACTIVE)
        for paragraph in answer.text.split("\n\n"):
            yield paragraph + "\n\n"
        yield answer

    def _fallback(
        self, query: str, vector: Sequence[float], passages: list[Passage], note: str, shown: bool
    ) -> Iterator[str | Answer]:
        """The extractive answer with ``note``, announced in the stream by a `StreamNotice`."""
        yield StreamNotice(note, retracts=shown)
        yield from self._extractive(query, vector, passages, note=note)

    def _generative(
        self,
        query: str,
        vector: Sequence[float],
        passages: list[Passage],
        history: list[Message],
        budget: Budget,
        options: GenerationOptions,
    ) -> Iterator[str | Answer]:
        assert self.llm is not None
        chat = messages(query, passages, history, self.topic)
        if options.max_tokens is None:
            options = GenerationOptions(self.settings.llm_max_tokens, options.temperature)
        cleaner, markers = OutputFilter(known_hosts(passages)), MarkerFilter(len(passages))
        parts: list[str] = []
        try:
            for piece in stream_reply(self.llm, chat, budget, options):
                shown = markers.feed(cleaner.feed(piece))
                if shown:
                    parts.append(shown)
                    yield shown
            tail = markers.feed(cleaner.flush()) + markers.flush()
            if tail:
                parts.append(tail)
                yield tail
        except LLMError as exc:
            logger.warning("%s; falling back to the extractive answer", exc)
            reason = "timed out" if "timed out" in str(exc).lower() else "it returned an error"
            yield from self._fallback(query, vector, passages, FALLBACK_NOTE.format(reason=reason), bool(parts))
            return
        text, cited = tidy("".join(parts)), markers.cited
        if not text:
            yield from self._fallback(
                query, vector, passages, FALLBACK_NOTE.format(reason="it returned nothing"), False
            )
            return
        if not cited:
            logger.warning("The LLM's answer cites no passage; falling back to the extractive answer")
            yield from self._fallback(query, vector, passages, UNCITED_NOTE, True)
            return
        yield Answer(text, tuple(passages[i] for i in cited), True, query, backend=self.backend)
