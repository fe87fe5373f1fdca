"""`Assistant`: the one object apps hold. It opens the index and answers from it."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Settings
from .embeddings import Embedder, Vector
from .errors import (
    AssistantError,
    IndexCorruptError,
    IndexDamagedError,
    IndexLockedError,
    InvalidQuestionError,
    StoreError,
)
from .ingest import Indexer, IndexReport, Progress
from .retrieval import HybridRetriever, Passage
from .store import GenerationPin, Manifest, Store
from .validation import validate_question

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

    from .answer import Answer, AnswerEngine
    from .guide import GuideSession

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexSwitch:
    """The assistant moved to another index generation between two questions."""

    previous: int | None  # the generation answered from before, None at the first open
    generation: int
    reason: str  # "opened", "rebuilt", "a newer index was built", "the index was damaged and has been rebuilt"
    at: float  # time.time() of the switch


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
    #: The last generation switch (after a rebuild here or elsewhere), None when none happened yet.
    last_switch: IndexSwitch | None = None
    #: How many times the assistant switched generation since it opened (0 after the first open).
    switches: int = 0


class _Retriever(HybridRetriever):
    """A generation's retriever that hands search failures to its assistant, which may repair the index.

    Every search entry point (`retrieve`, `dense`, `keyword`) retries once on the retriever the
    assistant hands back: a newer generation, or the index rebuilt after damage.
    """

    on_failure: Callable[[_Retriever, BaseException], HybridRetriever | None] | None = None

    def retrieve(self, question: str, k: int = 5, embedding: Vector | None = None) -> list[Passage]:
        return self._guarded("retrieve", super().retrieve, question, k, embedding)

    def dense(self, embedding: Vector, k: int) -> Any:
        return self._guarded("dense", super().dense, embedding, k)

    def keyword(self, question: str, k: int) -> Any:
        return self._guarded("keyword", super().keyword, question, k)

    def _guarded(self, name: str, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        except (KeyboardInterrupt, SystemExit, InvalidQuestionError):
            raise
        except BaseException as exc:  # StoreError, Chroma's errors, or a panic of its Rust core on a damaged file
            replacement = self.on_failure(self, exc) if self.on_failure else None
            if replacement is None:
                if isinstance(exc, AssistantError):
                    raise
                raise StoreError(f"Searching the index failed: {exc}") from exc
            return getattr(replacement, name)(*args)


class Assistant:
    """Answers questions from the indexed corpus (this project's by default: prompt engineering vs fine-tuning).

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
        self._swap = threading.RLock()
        self._pin: GenerationPin | None = None
        self._stamp: tuple[int, int, int] | None = None  # manifest.json's inode, mtime and size when last read
        #: The last generation switch; see `check_index`.
        self.last_switch: IndexSwitch | None = None
        #: Generation switches since the first open.
        self.switches = 0

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

        Opening never waits on a build another process runs: the current generation answers
        meanwhile, and the next question switches to the new one. Only with no index at all does
        it wait (``ASSISTANT_LOCK_TIMEOUT`` seconds, then `IndexLockedError`). A damaged store is
        moved aside and rebuilt from the corpus.

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
        bot._open_index(progress=progress)
        return bot

    # -- index ------------------------------------------------------------------------------

    def refresh(self, full: bool = False, progress: Progress | None = None) -> IndexReport:
        """Rebuild the index from the corpus now (waiting for another build to end) and switch to it.

        Queries running meanwhile finish on the previous generation; later ones see the new one.
        A rebuild that fails leaves the previous generation answering, untouched.

        Returns:
            What the rebuild did (nothing, when the corpus is unchanged).

        Raises:
            IndexLockedError: Another build held the lock too long; nothing changed.
            StoreError: The build failed; the previous index still answers.
            CorpusError: The corpus folder is missing or empty; the previous index still answers.
        """
        report = self.indexer.build(full=full, progress=progress)
        self._switch_to_current("the index was damaged and has been rebuilt" if report.repaired else "rebuilt")
        return report

    def _open_index(self, progress: Progress | None = None) -> IndexReport:
        """Open the current generation, updating it first when the corpus changed and no build runs.

        Readers never wait on a build: with a usable generation on disk, a build running in another
        process, a failed update or a missing corpus all leave it answering (and are logged). Only
        with no index at all does opening wait for the lock, and then a timeout is an error.
        """
        manifest = self.indexer.current_manifest()
        if manifest is None:
            report = self.indexer.build(progress=progress)
        else:
            report = self.indexer.unchanged_report(manifest)
            plan = self.indexer.plan()
            if not plan.up_to_date:
                try:
                    report = self.indexer.build(progress=progress, lock_timeout=0)
                except IndexLockedError:
                    logger.warning(
                        "Another process is rebuilding the index; answering from generation %d meanwhile",
                        manifest.generation,
                    )
                except AssistantError as exc:
                    logger.warning(
                        "Updating the index failed (%s); answering from the previous index (generation %d)",
                        exc,
                        manifest.generation,
                    )
        self._switch_to_current("the index was damaged and has been rebuilt" if report.repaired else "opened")
        return report

    def _switch_to_current(self, reason: str) -> IndexSwitch | None:
        """Answer from the generation the manifest names, repairing a damaged store on the way."""
        try:
            try:
                return self._switch(reason)
            except IndexDamagedError as exc:
                self.indexer.repair(str(exc))
            except IndexCorruptError as exc:  # one generation is unusable (a missing collection or keyword index)
                logger.warning("The index could not be opened (%s); rebuilding it from the corpus", exc)
                self.indexer.build(full=True)
            except AssistantError:
                raise
            except Exception as exc:  # the store's own error, from a file damaged under it
                if not self._repair_if_damaged("Opening", exc):
                    raise StoreError(
                        f"The index could not be opened ({type(exc).__name__}: {exc}). "
                        "Run `assistant index --full` to rebuild it from the corpus."
                    ) from exc
            return self._switch("the index was damaged and has been rebuilt")
        finally:
            self._use_compiled()

    def _use_compiled(self) -> None:
        """Embed questions with the index's ONNX export; export it again now if it is damaged."""
        folder = self.store.compiled_model_dir
        if self.embedder.use_compiled(folder) or self.embedder.source_dir is None:
            return
        if not (folder / "meta.json").exists():
            return  # never exported here (or the export failed): the next build makes one
        try:
            with self.store.build_lock(timeout=0):
                self.embedder.compile_to(folder, force=True)
            logger.warning("Exported the embedding model to %s again: the export was damaged or stale", folder)
        except IndexLockedError:
            return  # a build is running; it checks the export itself
        except AssistantError as exc:
            logger.warning("%s; questions are embedded with the torch model", exc)
            return
        self.embedder.use_compiled(folder)

    def _switch(self, reason: str, only_if_changed: bool = False) -> IndexSwitch | None:
        with self._swap:
            stamp = self._manifest_stamp()
            if only_if_changed and (stamp is None or stamp == self._stamp):
                return None
            manifest = self.store.read_manifest()
            if manifest is None:
                if only_if_changed:
                    return None
                raise IndexCorruptError("The index has no manifest. Run `assistant index`.")
            current = self._retriever.manifest if self._retriever is not None else None
            if current is not None and (current.generation, current.built_at) == (
                manifest.generation,
                manifest.built_at,
            ):
                self._stamp = stamp
                return None
            retriever, pin = self._open_generation(manifest)
            old_pin, self._pin = self._pin, pin
            self._retriever = retriever
            self._stamp = stamp
            if old_pin is not None:
                old_pin.release()
            switch = IndexSwitch(current.generation if current else None, manifest.generation, reason, time.time())
            if current is not None:
                self.switches += 1
                logger.info(
                    "Switched from index generation %d to %d (%s)", current.generation, manifest.generation, reason
                )
            self.last_switch = switch
            return switch

    def _open_generation(self, manifest: Manifest) -> tuple[HybridRetriever, GenerationPin]:
        pin = self.store.pin(manifest.generation)  # before opening: garbage collection keeps it from now on
        try:
            retriever = _Retriever(self.embedder, self.store, manifest)
        except BaseException:
            pin.release()
            raise
        retriever.on_failure = self._recover
        return retriever, pin

    def _manifest_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.store.manifest_path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def check_index(self) -> IndexSwitch | None:
        """Switch to a newer index generation if one was built since the last question (by any process).

        A ``stat`` of the manifest when nothing changed; reading the new generation otherwise, never
        a rebuild. Every question runs this check, so callers need it only to learn about a switch
        before asking (a page that says "the index was updated", say).

        Returns:
            The switch, when one happened in this call; None otherwise (also when the newer
            generation cannot be opened: the current one keeps answering, and the failure is logged).
        """
        if self._retriever is None or self._manifest_stamp() == self._stamp:
            return None
        try:
            return self._switch("a newer index was built", only_if_changed=True)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            logger.warning("A newer index is on disk but cannot be opened (%s); keeping the current one", exc)
            return None

    def _recover(self, failed: HybridRetriever, exc: BaseException) -> HybridRetriever | None:
        """After a search failed: the retriever to retry with, or None to report the failure.

        A newer generation on disk is tried first (the failing one may have been removed); a store
        whose files fail the integrity check is moved aside and rebuilt from the corpus (logged).
        """
        with self._swap:
            if self._retriever is not failed and self._retriever is not None:
                return self._retriever
            if self.check_index() is not None:
                return self._retriever
            if not self._repair_if_damaged("Searching", exc):
                return None
            self._switch("the index was damaged and has been rebuilt")
            return self._retriever

    def _repair_if_damaged(self, doing: str, exc: BaseException) -> bool:
        """After ``exc`` while ``doing`` something with the index: move a store whose files fail the
        integrity check aside and rebuild it from the corpus (logged). False when the files check out."""
        problem = self.store.integrity_problem()
        if problem is None:
            return False
        logger.warning("%s the index failed (%s): the store is damaged; rebuilding it", doing, exc)
        self.indexer.repair(problem)
        return True

    @property
    def retriever(self) -> HybridRetriever:
        """The retriever of the current index generation (switching first if a newer one was built)."""
        if self._retriever is None:
            self._open_index()
        else:
            self.check_index()
        assert self._retriever is not None
        return self._retriever

    def status(self) -> IndexStatus:
        """Counts and facts about the index in use (after switching to a newer generation, if any)."""
        m = self.retriever.manifest
        return IndexStatus(
            documents=m.documents,
            chunks=m.chunks,
            generation=m.generation,
            built_at=m.built_at,
            embed_model=m.embed_model,
            store=m.store,
            corpus_dir=str(self.settings.corpus_dir),
            last_switch=self.last_switch,
            switches=self.switches,
        )

    def close(self) -> None:
        """Release the generation this assistant holds, so garbage collection may remove it."""
        with self._swap:
            if self._pin is not None:
                self._pin.release()
                self._pin = None

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
