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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .compose import ExtractiveComposer, SentenceCache
from .embeddings import Embedder
from .errors import LLMError
from .followup import rewrite_followup
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
from .refusal import RefusalPolicy
from .retrieval import HybridRetriever, Passage
from .validation import Message, validate_history, validate_question

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
