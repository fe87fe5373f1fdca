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
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from .compose import ExtractiveComposer, SentenceCache
from .embeddings import Embedder
from .errors import LLMError
from .followup import (
    bare_phrase,
    context_of,
    may_follow,
    neutral_like,
    refers_back,
    stands_alone,
    substitute,
    with_context,
)
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
from .retrieval import HybridRetriever, Passage, merge_rankings
from .tokens import TokenCounter, fit
from .validation import Message, validate_history, validate_question

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

    from .config import Settings
    from .engine import Assistant

logger = logging.getLogger(__name__)

EXTRACTIVE = "extractive"


#: The line a refusal's example questions follow (the page and clients find them by it).
EXAMPLES_LEAD = "You could ask, for example:"


def refusal_text(
    profile: CorpusProfile, nearest: Passage | None = None, quote: str = "", missing: Sequence[str] = ()
) -> str:
    """What a refused question gets: what the corpus covers, and questions it does answer.

    Args:
        profile: The corpus's titles and example questions.
        nearest: The closest passage when it stands above the floor of the corpus's background: the
            question may be covered in words the engine did not match, so the reply says it is
            unsure and where to look, rather than that the documents say nothing.
        quote: The closest passage's best sentences, with [1] markers (`ExtractiveComposer`),
            shown after the unsure opening.
        missing: Names in code the question uses and the corpus never writes
            (`CorpusProfile.unknown_names`), said in the opening.
    """
    examples = "\n".join(f"- {q}" for q in profile.examples())
    never = f" They never mention {_listed(missing)}." if missing else ""
    if nearest is not None:
        where = f"“{nearest.title}”" + (f", under “{nearest.heading}”" if nearest.heading else "")
        if quote:
            opening = (
                f"I'm not sure {profile.topic} cover this question.{never} "
                f"The closest they come is in {where}:\n\n{quote}\n\n"
            )
        else:
            opening = (
                f"I'm not sure {profile.topic} cover this question.{never} The closest they come is in {where}; "
                "try asking about that in other words. "
            )
    else:
        opening = f"I can't answer that from {profile.topic}: they do not cover this question.{never} "
    return opening + (f"{EXAMPLES_LEAD}\n{examples}" if examples else "").rstrip()


def _listed(names: Sequence[str]) -> str:
    """Names in code for a sentence, each in backticks: "`a`", "`a` or `b`", "`a`, `b` or `c`"."""
    quoted = [f"`{n}`" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


FALLBACK_NOTE = "The language model was unavailable ({reason}); this answer quotes the documents instead."
#: The rule for LLM answers that cite nothing: such an answer is not shown as if it were grounded;
#: the extractive answer (every sentence quoted and cited) is returned with this note instead.
UNCITED_NOTE = (
    "The language model's answer cited none of the passages, so it was not used; "
    "this answer quotes the documents instead."
)
#: The same, when the reply broke off (a server killed mid-answer) before its first citation.
BROKE_OFF_NOTE = (
    "The language model's reply broke off before it finished, so it was not used; "
    "this answer quotes the documents instead."
)
#: Beside a cited reply that broke off: what came is shown, and may stop short.
INCOMPLETE_NOTE = "The language model's reply broke off before it finished; this answer may be incomplete."
#: The same, when the model stopped at its token limit before its first citation.
CUT_OFF_NOTE = (
    "The language model's answer reached its limit of {max_tokens} tokens before it cited a passage, "
    "so it was not used; this answer quotes the documents instead."
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
    #: The text stopped at the ``max_tokens`` asked for (`GenerationOptions`): a quoted answer cut
    #: after its last cited sentence that fits, or an LLM that reached its limit.
    truncated: bool = False

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
        tokens: TokenCounter | None = None,
    ) -> None:
        """Args:
        retriever: Returns the retriever to use now (it changes when the index is rebuilt).
        embedder: Embeds the question, once per call.
        settings: ``top_k`` and ``max_question_chars`` are read from it.
        composer: Writes extractive answers, and fallbacks when the LLM fails.
        refusal: Decides whether the corpus covers a question.
        llm: A LlamaIndex LLM to write answers; ``None`` for extractive answers only.
        tokens: Counts tokens, to cut quoted answers to a request's ``max_tokens`` (default:
            the embedding model's tokenizer).
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
        self.tokens = tokens or TokenCounter(lambda: settings.embed_model_path)

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
            options: ``max_tokens`` / ``temperature`` for this one answer. The LLM gets both; a
                quoted answer (no LLM, a fallback, a refusal) is cut after the last marked
                sentence within ``max_tokens`` and says so in ``truncated``.

        Returns:
            The answer; ``answerable=False`` with a short explanation when the corpus does not
            cover it. When the closest passage is nearer than questions about other things come
            (the engine is unsure rather than sure), the explanation says so and quotes that
            passage, which ``citations`` then holds.

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
        query, vector, passages, answerable = self._search(question, history, budget)
        if not answerable:
            logger.info("Refused (best similarity %.2f): %r", max((p.similarity for p in passages), default=0), query)
            nearest = max(passages, key=lambda p: p.similarity, default=None)
            if nearest is not None and nearest.similarity < self.background().floor:
                nearest = None  # as far from the corpus as most questions about anything else
            profile = self._retriever().profile
            quote, cited = self.composer.compose(query, vector, [nearest], profile) if nearest else ("", [])
            text = refusal_text(profile, nearest, quote, profile.unknown_names(question))
            answer = self._fitted(Answer(text, tuple(cited), False, query, backend=self.backend), options)
            yield answer.text
            yield answer
            return
        if self.llm is None:
            yield from self._extractive(query, vector, passages, options)
            return
        yield from self._generative(query, vector, passages, history, budget, options)

    def _search(
        self, question: str, history: list[Message], budget: Budget
    ) -> tuple[str, list[float], list[Passage], bool]:
        """What to search for, the passages found, and whether the corpus covers the question.

        Without history the question is searched as typed; when the corpus does not cover it as
        typed but it points at something it does not name ("Can I do both?"), it is searched
        after the documents' titles too and, if they pull it no further than neutral words would
        (`RefusalPolicy.implies_subject`), answered from both searches' passages. A follow-up is
        condensed by the LLM when there is one; otherwise it is searched as typed when it stands
        on its own and the corpus covers it, else together with the turns before it
        (`followup.context_of`). A question naming something in code the corpus never writes
        (`CorpusProfile.unknown_names`) is not covered, whatever path it takes.
        """
        # One retriever for the whole question: a rebuild that lands meanwhile is seen by the next one.
        retriever, background = self._retriever(), self.background()
        profile = retriever.profile
        condensed = self._condensed(question, history, budget) if history and self.llm is not None else None
        query = condensed or question
        vector, passages = self._find(retriever, query)
        if profile.unknown_names(question):
            # A name in code the corpus never writes, of a kind it documents ("st.cache_data" in a
            # corpus of other st. names): not covered, whatever else the question shares with it.
            # Dev halves of the blind sets (bench/blind): it refuses 2 of the streamlit corpus's 6
            # answered off-topic questions and no in-scope question or dialog turn of any corpus.
            return query, vector, passages, False
        # Coverage is read from the words the user typed, never from a subject a rewrite added.
        answerable = self.refusal.answerable(query, passages, profile, background, asked=question)
        stop = profile.stopwords

        def rewrite(turn: str, context: str) -> str | None:
            phrase = bare_phrase(turn, stop)
            # A shortened subject is searched by its titles' name: product dev follow-ups 0.706 -> 0.765,
            # test unchanged at 0.824; the other corpora's dialogs unchanged (bench/blind).
            phrase = (profile.subject_name(phrase) or phrase) if phrase else phrase
            return (
                substitute(phrase, context, stop, self.embedder.embed_texts, profile.names_subject) if phrase else None
            )

        context = context_of(history, rewrite) if history and condensed is None else None
        if context is None and not answerable and not history:
            implied = self.about_the_corpus(question, retriever)
            if implied is not None:
                # Answered from both searches: the one after the titles finds what the question points
                # at, the one as typed what it asks (dev, product: answer text 0.739 -> 0.765; the
                # titles' search alone 0.739, the question's alone 0.757; test 0.652 -> 0.661; the
                # other corpora unchanged, bench/blind). Sentences are scored against the question.
                return query, vector, merge_rankings(passages, implied[2]), True
        if (
            context is None
            or not may_follow(question)
            or (answerable and (not refers_back(question) or stands_alone(question)))
        ):
            return query, vector, passages, answerable  # a question of its own, judged on its own
        rewritten = rewrite(question, context)
        if rewritten:  # "And the disadvantages?": the earlier question, asked of something else
            vector, passages = self._find(retriever, rewritten)
            return (
                rewritten,
                vector,
                passages,
                self.refusal.answerable(rewritten, passages, profile, background, asked=question),
            )
        combined, vector, passages, best, neutral = self._after(retriever, question, context)
        return combined, vector, passages, self.refusal.follows_up(best, neutral, background)

    def _find(self, retriever: HybridRetriever, text: str) -> tuple[list[float], list[Passage]]:
        """The embedding of ``text`` (typos written as the corpus writes the word: they move it) and its passages."""
        vector = self.embedder.embed_query(retriever.profile.spelt(text, self.embedder.reads_whole))
        return vector, retriever.retrieve(text, self.settings.top_k, embedding=vector)

    def _after(
        self, retriever: HybridRetriever, question: str, context: str
    ) -> tuple[str, list[float], list[Passage], float, float]:
        """``question`` searched after ``context``: the text searched, its embedding and passages,
        their best similarity, and the best similarity of words that ask nothing after the same
        context (`followup.neutral_like`), which tells how far the question pulls away."""
        combined = with_context(question, context)
        vector, passages = self._find(retriever, combined)
        neutral = retriever.dense(self.embedder.embed_query(with_context(neutral_like(question), context)), 1)
        best = max((p.similarity for p in passages), default=0.0)
        return combined, vector, passages, best, max((c for _, c in neutral), default=0.0)

    def about_the_corpus(
        self, question: str, retriever: HybridRetriever | None = None
    ) -> tuple[str, list[float], list[Passage]] | None:
        """A first question that points at something it does not name, searched as if it followed
        the documents' titles ("How long does each one take?").

        Args:
            question: The question, asked with no history.
            retriever: The retriever the rest of the question used (default: the one in use now).

        Returns:
            What was searched, its embedding and the passages, when the question points back
            (`followup.refers_back`) and the titles pull it no further than neutral words would
            (`RefusalPolicy.implies_subject`); else None.
        """
        if not refers_back(question):
            return None
        retriever = retriever or self._retriever()
        combined, vector, passages, best, neutral = self._after(retriever, question, retriever.profile.subject_text)
        return (combined, vector, passages) if self.refusal.implies_subject(best, neutral) else None

    def _condensed(self, question: str, history: list[Message], budget: Budget) -> str | None:
        """The LLM's standalone version of a follow-up, or None when it failed or is not one question."""
        assert self.llm is not None
        try:
            condensed = condense(self.llm, question, history, budget.share(CONDENSE_SHARE), self.topic)
        except LLMError as exc:
            logger.warning("Condensing with the LLM failed (%s); searching with the earlier turns", exc)
            return None
        valid = valid_standalone(condensed)
        if valid is None:
            logger.warning(
                "The LLM's condensed question is not one short question (%r); searching with the earlier turns",
                condensed[:200],
            )
        return valid

    def _fitted(self, answer: Answer, options: GenerationOptions | None) -> Answer:
        """A quoted ``answer`` cut to the ``max_tokens`` of ``options`` (`tokens.fit`)."""
        if options is None or options.max_tokens is None:
            return answer
        cut = fit(answer.text, options.max_tokens, self.tokens)
        if cut is None:
            return answer
        return replace(answer, text=cut.text, citations=answer.citations[: cut.citations], truncated=True)

    def _extractive(
        self,
        query: str,
        vector: Sequence[float],
        passages: list[Passage],
        options: GenerationOptions | None,
        note: str | None = None,
    ) -> Iterator[str | Answer]:
        profile = self._retriever().profile
        text, cited = self.composer.compose(query, vector, passages, profile)
        if not text:
            answer = Answer(refusal_text(profile), (), False, query, note=note, backend=EXTRACTIVE)
        else:
            answer = Answer(text, tuple(cited), True, query, note=note, backend=EXTRACTIVE)
        answer = self._fitted(answer, options)
        # Paragraph by paragraph, so the pieces join to exactly ``answer.text``.
        for i, paragraph in enumerate(answer.text.split("\n\n")):
            yield ("\n\n" if i else "") + paragraph
        yield answer

    def _fallback(
        self,
        query: str,
        vector: Sequence[float],
        passages: list[Passage],
        options: GenerationOptions | None,
        note: str,
        shown: bool,
    ) -> Iterator[str | Answer]:
        """The extractive answer with ``note``, announced in the stream by a `StreamNotice`."""
        yield StreamNotice(note, retracts=shown)
        yield from self._extractive(query, vector, passages, options, note=note)

    def _generative(
        self,
        query: str,
        vector: Sequence[float],
        passages: list[Passage],
        history: list[Message],
        budget: Budget,
        asked: GenerationOptions | None,
    ) -> Iterator[str | Answer]:
        assert self.llm is not None
        chat = messages(query, passages, history, self.topic)
        options = asked or GenerationOptions()
        if options.max_tokens is None:
            options = GenerationOptions(self.settings.llm_max_tokens, options.temperature)
        cleaner, markers = OutputFilter(known_hosts(passages)), MarkerFilter(len(passages))
        parts: list[str] = []
        reply = stream_reply(self.llm, chat, budget, options)
        try:
            for piece in reply:
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
            yield from self._fallback(query, vector, passages, asked, FALLBACK_NOTE.format(reason=reason), bool(parts))
            return
        text, cited = tidy("".join(parts)), markers.cited
        if not text:
            yield from self._fallback(
                query, vector, passages, asked, FALLBACK_NOTE.format(reason="it returned nothing"), False
            )
            return
        cut_off = reply.finish_reason == "length"
        if not cited:
            logger.warning("The LLM's answer cites no passage; falling back to the extractive answer")
            if cut_off:
                note = CUT_OFF_NOTE.format(max_tokens=options.max_tokens)
            else:
                note = BROKE_OFF_NOTE if reply.broke_off else UNCITED_NOTE
            yield from self._fallback(query, vector, passages, asked, note, True)
            return
        if reply.broke_off:
            logger.warning("The LLM's reply ended without a finish reason; it may be incomplete")
        yield Answer(
            text,
            tuple(passages[i] for i in cited),
            True,
            query,
            note=INCOMPLETE_NOTE if reply.broke_off else None,
            backend=self.backend,
            truncated=cut_off,
        )
