"""`Assistant`: the one object apps hold. It opens the index and answers from it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Settings
from .embeddings import Embedder
from .errors import IndexCorruptError, InvalidQuestionError, StoreError
from .ingest import Indexer, IndexReport, Progress
from .retrieval import HybridRetriever, Passage
from .store import Store
from .validation import validate_question

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

    from .answer import Answer, AnswerEngine
    from .guide import GuideSession

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexStatus:
    """What the index holds, for status displays and health checks."""

    documents: int
    chunks: int
    generation: int
    built_at: float
    embed_model: str
    store: str
    corpus_dir: str


class Assistant:
    """Answers questions about prompt engineering vs fine-tuning from the indexed corpus.

    Build one with `Assistant.open()`; pass collaborators in to replace the defaults.
    """

    def __init__(self, settings: Settings, embedder: Embedder, store: Store, llm: LLM | None = None) -> None:
        self.settings = settings
        self.embedder = embedder
        self.store = store
        self.llm = llm
        self.indexer = Indexer(settings, embedder, store)
        self._retriever: HybridRetriever | None = None
        self._answers: AnswerEngine | None = None
        self._swap = threading.Lock()

    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        store: Store | None = None,
        llm: LLM | None = None,
        progress: Progress | None = None,
        corpus_dir: str | Path | None = None,
        index_dir: str | Path | None = None,
    ) -> Assistant:
        """Open the index, building or refreshing it first when it is missing or stale.

        Args:
            settings: Configuration; read from ``ASSISTANT_*`` variables when omitted.
            corpus_dir: Shortcut: the folder of documents to answer from (wins over ``settings``).
            index_dir: Shortcut: where the index is kept; by default a folder derived from the corpus.
            embedder: The embedding model; all-MiniLM-L6-v2 when omitted.
            store: The index store; the configured local folder or Chroma server when omitted.
            llm: Any LlamaIndex LLM to write answers; ``ASSISTANT_LLM`` or the extractive composer when omitted.
            progress: Called as ``progress(done, total)`` while a build embeds chunks.

        Returns:
            A ready assistant.
        """
        if settings is None:
            settings = Settings.from_env(corpus_dir=corpus_dir, index_dir=index_dir)
        elif corpus_dir is not None or index_dir is not None:
            changes = {"corpus_dir": Path(corpus_dir).expanduser()} if corpus_dir is not None else {}
            if index_dir is not None:
                changes["index_dir"] = Path(index_dir).expanduser()
            settings = settings.replace(**changes)
        bot = cls(
            settings,
            embedder or Embedder.from_defaults(settings),
            store or Store.from_settings(settings),
            llm,
        )
        bot.refresh(progress=progress)
        return bot

    # -- index ------------------------------------------------------------------------------

    def refresh(self, full: bool = False, progress: Progress | None = None) -> IndexReport:
        """Bring the index up to date with the corpus and switch to it.

        Queries running meanwhile finish on the previous generation; later ones see the new one.

        Returns:
            What the rebuild did (nothing, when the corpus is unchanged).
        """
        try:
            report = self.indexer.build(full=full, progress=progress)
            retriever = self._open_retriever()
        except (IndexCorruptError, StoreError) as exc:
            if self.settings.chroma_url is None and self.store.quarantine_local() is None:
                raise
            logger.warning("The index could not be opened (%s); rebuilding it from the corpus", exc)
            self.store.manifest_path.unlink(missing_ok=True)
            report = self.indexer.build(full=True, progress=progress)
            retriever = self._open_retriever()
        self.embedder.use_compiled(self.store.compiled_model_dir)
        with self._swap:
            self._retriever = retriever
        return report

    def _open_retriever(self) -> HybridRetriever:
        manifest = self.store.read_manifest()
        if manifest is None:
            raise IndexCorruptError("The index has no manifest. Run `assistant index`.")
        if self._retriever is not None and self._retriever.manifest.generation == manifest.generation:
            return self._retriever
        return HybridRetriever(self.embedder, self.store, manifest)

    @property
    def retriever(self) -> HybridRetriever:
        """The retriever of the current index generation."""
        if self._retriever is None:
            self.refresh()
        assert self._retriever is not None
        return self._retriever

    def status(self) -> IndexStatus:
        """Counts and facts about the index in use."""
        m = self.retriever.manifest
        return IndexStatus(
            documents=m.documents,
            chunks=m.chunks,
            generation=m.generation,
            built_at=m.built_at,
            embed_model=m.embed_model,
            store=m.store,
            corpus_dir=str(self.settings.corpus_dir),
        )

    # -- questions --------------------------------------------------------------------------

    def retrieve(self, question: str, k: int = 5) -> list[Passage]:
        """The passages that best match a question, best first.

        Args:
            question: What to search for.
            k: How many passages to return (1 to 50).

        Returns:
            Up to ``k`` passages with ``.text .source .title .section .score`` and offsets.

        Raises:
            InvalidQuestionError: The question is empty or too long, or ``k`` is out of range.
        """
        question = validate_question(question, self.settings.max_question_chars)
        if not isinstance(k, int) or not 1 <= k <= 50:
            raise InvalidQuestionError(f"k must be a whole number from 1 to 50, not {k!r}")
        return self.retriever.retrieve(question, k)

    @property
    def answers(self) -> AnswerEngine:
        """The answer engine (extractive by default, or the configured LLM)."""
        if self._answers is None:
            from .answer import AnswerEngine

            self._answers = AnswerEngine.from_defaults(self)
        return self._answers

    def ask(self, question: str, history: list[dict[str, str]] | None = None) -> Answer:
        """Answer a question from the corpus, with citations.

        Args:
            question: The question.
            history: Earlier turns, ``{"role": "user" | "assistant", "content": str}``, oldest first.

        Returns:
            The answer: ``.text`` with [n] markers, ``.citations``, ``.answerable``, ``.query``.

        Raises:
            InvalidQuestionError: The question or the history is malformed.
        """
        return self.answers.ask(question, history)

    def stream(self, question: str, history: list[dict[str, str]] | None = None) -> Iterator[str | Answer]:
        """Like `ask`, but yields text pieces as they are ready and ends with the full `Answer`."""
        return self.answers.stream(question, history)

    def guide(self) -> GuideSession:
        """Start a guided session that asks about your situation, then recommends an approach."""
        from .guide import GuideSession

        return GuideSession.from_assistant(self)
