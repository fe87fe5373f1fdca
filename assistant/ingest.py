"""Ingestion: chunk the corpus, embed only what changed, and swap in a new index generation."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .chunking import Chunk, chunk_document, sentence_texts
from .config import CHUNKER_VERSION, Settings
from .corpus import Corpus, load_corpus
from .embeddings import Embedder, Vector
from .errors import (
    AssistantError,
    CorpusError,
    CorpusFileError,
    CorpusFileUnreadableError,
    EmbeddingModelError,
    IndexCorruptError,
    IndexDamagedError,
    StoreError,
    printable_path,
)
from .store import COLLECTION_PREFIX, SENTENCE_PREFIX, FileEntry, Manifest, Store

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection
    from llama_index.core.schema import TextNode

logger = logging.getLogger(__name__)

#: Metadata keys that are shown to the embedder and BM25 along with a chunk's text.
EMBED_METADATA_KEYS = ("title", "section", "table_header")

#: Chunks embedded per group: each finished group is written to Chroma while the next one embeds.
WRITE_GROUP = 256

#: Called as progress(done, total) while chunks and their sentences are embedded.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class IndexPlan:
    """What a rebuild would do, worked out from the manifest and file hashes alone."""

    added: tuple[str, ...]
    updated: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: tuple[str, ...]
    full: bool
    reason: str = ""
    #: Indexed files that cannot be read right now: their indexed version stays until they can.
    kept: tuple[str, ...] = ()

    @property
    def up_to_date(self) -> bool:
        """True when the index already matches the corpus."""
        return not (self.full or self.added or self.updated or self.removed)


@dataclass(frozen=True)
class IndexReport:
    """What a rebuild did."""

    added: int
    updated: int
    removed: int
    unchanged: int
    chunks_embedded: int
    chunks_total: int
    documents: int
    full: bool
    generation: int
    seconds: float
    problems: tuple[CorpusFileError, ...] = field(default=())
    #: Files kept at their indexed version because they cannot be read right now.
    kept: int = 0
    #: Set when the store was found damaged, moved aside and rebuilt: what was wrong.
    repaired: str = ""
    #: Sentence vectors embedded (`chunking.sentence_texts`); those of unchanged chunks are reused.
    sentences_embedded: int = 0

    @property
    def changed(self) -> bool:
        """Whether a new index generation was written."""
        return self.full or bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        """One line for people."""
        kept = f" {_count(self.kept, 'file')} kept as indexed (cannot be read now)." if self.kept else ""
        if not self.changed:
            return (
                f"Index is up to date: {_count(self.unchanged, 'file')} unchanged, nothing embedded "
                f"({_count(self.chunks_total, 'chunk')}).{kept}"
            )
        repaired = (
            f"The index store was damaged ({self.repaired}); it was moved aside and rebuilt from the corpus. "
            if self.repaired
            else ""
        )
        return (
            f"{repaired}{'Full rebuild' if self.full else 'Index updated'}: {self.added} added, {self.updated} updated, "
            f"{self.removed} removed, {self.unchanged} unchanged; {_count(self.chunks_embedded, 'chunk')} embedded "
            f"({self.chunks_total:,} in the index) in {self.seconds:.1f}s.{kept}"
        )


def _count(n: int, noun: str) -> str:
    """``1 chunk``, ``2 chunks``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def plan_rebuild(corpus: Corpus, manifest: Manifest | None, embed_model: str, full: bool = False) -> IndexPlan:
    """Compare the corpus on disk with the manifest of the current index.

    Args:
        corpus: The corpus as it is now.
        manifest: The current index's manifest, or None when there is none.
        embed_model: The embedding model the index should be built with.
        full: Force a full rebuild.

    Returns:
        The plan; ``plan.up_to_date`` says whether there is anything to do.
    """
    hashes = corpus.hashes
    # A file that exists but cannot be read now (permissions, I/O) is not a deleted file.
    unreadable = {_source_of(p, corpus.root) for p in corpus.problems if isinstance(p, CorpusFileUnreadableError)}
    reason = ""
    if manifest is None:
        reason = "no index yet"
    elif manifest.embed_model != embed_model:
        reason = f"embedding model changed ({manifest.embed_model} -> {embed_model})"
    elif manifest.chunker_version != CHUNKER_VERSION:
        reason = f"chunker changed (version {manifest.chunker_version} -> {CHUNKER_VERSION})"
    elif full:
        reason = "full rebuild requested"
    old = manifest.files if manifest else {}
    kept = () if reason else tuple(sorted(s for s in old if s not in hashes and s in unreadable))
    return IndexPlan(
        added=tuple(sorted(s for s in hashes if s not in old)),
        updated=tuple(sorted(s for s in hashes if s in old and old[s].sha256 != hashes[s])),
        removed=tuple(sorted(s for s in old if s not in hashes and s not in kept)),
        unchanged=tuple(sorted(s for s in hashes if s in old and old[s].sha256 == hashes[s])),
        full=bool(reason),
        reason=reason,
        kept=kept,
    )


def _source_of(problem: CorpusFileError, root: Path) -> str:
    """The corpus-relative name of a problem file, as the manifest spells it."""
    try:
        return problem.path.relative_to(root).as_posix()
    except ValueError:
        return problem.path.as_posix()


def chunk_to_node(chunk: Chunk, embedding: Vector | None = None) -> TextNode:
    """The LlamaIndex node for a chunk; Chroma metadata stays str/int only."""
    from llama_index.core.schema import TextNode

    metadata = {
        "source": chunk.source,
        "title": chunk.title,
        "section": chunk.section,
        "kind": chunk.kind,
        "start": chunk.start,
        "end": chunk.end,
    }
    if chunk.table_header:  # only where there is one: an empty value would change every chunk's embedded text
        metadata["table_header"] = chunk.table_header
    if chunk.opens_section:
        metadata["opens_section"] = 1
    return TextNode(
        id_=chunk.id,
        text=chunk.text,
        metadata=metadata,
        embedding=embedding,
        excluded_embed_metadata_keys=[k for k in metadata if k not in EMBED_METADATA_KEYS],
        excluded_llm_metadata_keys=["kind", "start", "end", "opens_section"],
        metadata_template="{value}",
        text_template="{metadata_str}\n\n{content}",
    )


def sentence_nodes(chunks: Sequence[TextNode]) -> list[TextNode]:
    """One node per sentence of each chunk (`chunking.sentence_texts`), for the sentence collection.

    A sentence node's id is its chunk's with ``#s<n>`` after it, its ``parent`` metadata names the
    chunk and its ``key`` hashes its text: a rebuild reuses the vectors of an unchanged chunk's
    sentences by id, and those of an unchanged sentence in a changed chunk by key.
    """
    from llama_index.core.schema import TextNode

    out = []
    for chunk in chunks:
        meta = chunk.metadata
        texts = sentence_texts(chunk.get_content(), str(meta.get("section", "")), str(meta.get("table_header", "")))
        for i, text in enumerate(texts):
            key = hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
            out.append(
                TextNode(
                    id_=f"{chunk.node_id}#s{i}",
                    text=text,
                    metadata={"parent": chunk.node_id, "key": key},
                    excluded_embed_metadata_keys=["parent", "key"],
                    excluded_llm_metadata_keys=["parent", "key"],
                )
            )
    return out


class Indexer:
    """Builds and refreshes the index of a corpus."""

    def __init__(self, settings: Settings, embedder: Embedder, store: Store) -> None:
        self.settings = settings
        self.embedder = embedder
        self.store = store

    @classmethod
    def from_defaults(cls, settings: Settings | None = None) -> Indexer:
        """An indexer for the configured corpus, model and store."""
        settings = settings or Settings.from_env()
        return cls(settings, Embedder.from_defaults(settings), Store.from_settings(settings))

    def load_corpus(self) -> Corpus:
        """Read the configured corpus folder."""
        return load_corpus(self.settings.corpus_dir, self.settings.max_file_bytes)

    def current_manifest(self) -> Manifest | None:
        """The manifest, or None when missing or damaged (a damaged one is logged)."""
        try:
            return self.store.read_manifest()
        except IndexCorruptError as exc:
            logger.warning("%s", exc)
            return None

    def plan(self, full: bool = False, corpus: Corpus | None = None) -> IndexPlan:
        """What ``build`` would do now; reads file hashes and the manifest, loads no model.

        A missing or empty corpus folder with an index in place plans nothing: the index keeps
        answering as it is (``reason`` says why), and only `build` refuses to run.
        """
        manifest = self.current_manifest()
        try:
            corpus = corpus or self.load_corpus()
            if not corpus.documents:
                raise CorpusError(f"No readable .md, .txt, .rst or .html files in {corpus.root}")
        except CorpusError as exc:
            if manifest is None:
                raise
            logger.warning("%s; answering from the index as it is (generation %d)", exc, manifest.generation)
            return IndexPlan(
                (), (), (), tuple(sorted(manifest.files)), False, reason=f"{exc}; the index is kept as it is"
            )
        return plan_rebuild(corpus, manifest, self.settings.embed_model, full)

    def unchanged_report(self, manifest: Manifest, problems: tuple[CorpusFileError, ...] = ()) -> IndexReport:
        """The report of a build that had nothing to do."""
        return IndexReport(
            0,
            0,
            0,
            len(manifest.files),
            0,
            manifest.chunks,
            manifest.documents,
            False,
            manifest.generation,
            0.0,
            problems,
        )

    def build(
        self, full: bool = False, progress: Progress | None = None, lock_timeout: float | None = None
    ) -> IndexReport:
        """Bring the index up to date with the corpus, embedding only new or changed chunks.

        A build that fails leaves the previous generation in charge and removes only what it wrote.
        A store whose files are damaged (`IndexDamagedError`, or a SQLite check that fails after a
        store error) is moved aside and rebuilt from the corpus; the report's ``repaired`` says so.

        Args:
            full: Re-embed everything, even unchanged files.
            progress: Called as ``progress(done, total)`` while chunks are embedded.
            lock_timeout: Seconds to wait for another build; the store's `lock_timeout` when None.

        Returns:
            What was done.

        Raises:
            CorpusError: The corpus folder is missing or has no readable file.
            IndexLockedError: Another build kept the index locked for too long; nothing was touched.
            StoreError: The Chroma store failed; the previous index is kept.
        """
        with self.store.build_lock(lock_timeout):
            try:
                report = self._build(full, progress)
            except IndexDamagedError as exc:
                report = self._repair(self.store.integrity_problem() or str(exc), progress)
            except StoreError as exc:
                problem = self.store.integrity_problem()
                if problem is None:
                    raise
                logger.warning("The build failed (%s) on a damaged store", exc)
                report = self._repair(problem, progress)
            self._compile_model()
        return report

    def repair(self, problem: str, progress: Progress | None = None) -> IndexReport:
        """Move a damaged store aside and rebuild the index from the corpus (waits for the build lock).

        Args:
            problem: What was found wrong, for the log and the report.
            progress: Called as ``progress(done, total)`` while chunks are embedded.

        Returns:
            The report of the rebuild, with ``repaired`` set; when the store checks out by the time
            the lock is held (another process repaired it), a plain update.
        """
        with self.store.build_lock():
            current = self.store.integrity_problem()
            if current is None and self.store.read_manifest() is not None:
                with contextlib.suppress(IndexDamagedError):
                    return self._build(False, progress)
            report = self._repair(current or problem, progress)
            self._compile_model()
        return report

    def _repair(self, problem: str, progress: Progress | None) -> IndexReport:
        logger.warning("The index store is damaged (%s); moving it aside and rebuilding it from the corpus", problem)
        self.store.quarantine_local()
        self.store.manifest_path.unlink(missing_ok=True)  # it names collections that went with the store
        report = self._build(True, progress)
        return dataclasses.replace(report, repaired=problem)

    def _build(self, full: bool, progress: Progress | None) -> IndexReport:
        started = time.perf_counter()
        corpus = self.load_corpus()
        if not corpus.documents:
            raise CorpusError(
                f"No readable .md, .txt, .rst or .html files in {corpus.root}"
                + (f" ({len(corpus.problems)} could not be read)" if corpus.problems else "")
                + ". Add some, or point ASSISTANT_CORPUS at your corpus folder."
            )
        manifest = self.current_manifest()
        plan = plan_rebuild(corpus, manifest, self.settings.embed_model, full)
        if manifest is not None and not plan.full:
            unusable = self._unusable(manifest)
            if unusable:
                plan = plan_rebuild(corpus, manifest, self.settings.embed_model, full=True)
                plan = dataclasses.replace(plan, reason=unusable)
        for source in plan.kept:
            logger.warning("Keeping the indexed version of %s: it cannot be read now", printable_path(source))
        if plan.up_to_date and manifest is not None:
            logger.info("Index is up to date (generation %d)", manifest.generation)
            return dataclasses.replace(
                self.unchanged_report(manifest, corpus.problems),
                unchanged=len(plan.unchanged),
                kept=len(plan.kept),
                seconds=time.perf_counter() - started,
            )
        if plan.full:
            logger.info("Full rebuild: %s", plan.reason)
        generation = self._next_generation(manifest)
        try:
            embedded, sentences_embedded, new_manifest = self._write_generation(
                corpus, manifest, plan, generation, progress
            )
            self.store.write_manifest(new_manifest)
        except BaseException:
            self._discard(generation)
            raise
        self.store.collect_garbage(new_manifest)
        return IndexReport(
            added=len(plan.added),
            updated=len(plan.updated),
            removed=len(plan.removed),
            unchanged=len(plan.unchanged),
            chunks_embedded=embedded,
            chunks_total=new_manifest.chunks,
            documents=new_manifest.documents,
            full=plan.full,
            generation=generation,
            seconds=time.perf_counter() - started,
            problems=corpus.problems,
            kept=len(plan.kept),
            sentences_embedded=sentences_embedded,
        )

    def _unusable(self, manifest: Manifest) -> str:
        """Why the current generation cannot answer, judged from files alone (no Chroma import), or ''.

        Raises:
            IndexDamagedError: The embedded store's SQLite file fails its integrity check.
        """
        bm25 = self.store.bm25_dir(manifest.generation)
        if not (bm25 / "retriever.json").is_file():
            return f"the keyword index of generation {manifest.generation} is missing"
        if manifest.store != self.store.location:
            return f"the index was built in another store ({manifest.store})"
        if not self.store.chroma_url:
            if not (self.store.index_dir / "chroma" / "chroma.sqlite3").is_file():
                return "the Chroma store is missing"
            problem = self.store.integrity_problem()
            if problem:
                raise IndexDamagedError(f"The Chroma store is damaged ({problem})")
        return ""

    def _next_generation(self, manifest: Manifest | None) -> int:
        """One past the newest generation named by the manifest or found on disk (never reuse a pinned one)."""
        found = [manifest.generation] if manifest else []
        for path in self.store.index_dir.glob("bm25-g*"):
            rest = path.name[len("bm25-g") :].removesuffix(".tmp")
            if rest.isdigit():
                found.append(int(rest))
        return max(found, default=0) + 1

    def _compile_model(self) -> None:
        """Export the embedding model to ONNX beside the index, once, so that neither answering nor
        a later rebuild needs torch."""
        try:
            if self.embedder.compile_to(self.store.compiled_model_dir):
                logger.info("Exported the embedding model to %s", self.store.compiled_model_dir)
        except EmbeddingModelError as exc:  # answers still work, through the torch model
            logger.warning("%s; questions will be embedded with the torch model", exc)

    def _write_generation(
        self,
        corpus: Corpus,
        manifest: Manifest | None,
        plan: IndexPlan,
        generation: int,
        progress: Progress | None,
    ) -> tuple[int, int, Manifest]:
        from llama_index.core.schema import MetadataMode

        chunks_by_file = {doc.source: chunk_document(doc) for doc in corpus.documents}
        chunks = [c for file_chunks in chunks_by_file.values() for c in file_chunks]
        nodes = [chunk_to_node(c) for c in chunks]

        # Chunks whose id (file + content) is already in the current generation keep their vectors,
        # and so do their sentences (ids derive from the chunk's).
        kept_nodes = self._kept_nodes(manifest, plan.kept)
        nodes.extend(kept_nodes)
        sentences = sentence_nodes(nodes)
        reusable: dict[str, Vector] = {}
        if manifest is not None and not plan.full:
            known = {cid for entry in manifest.files.values() for cid in entry.chunk_ids}
            reused_chunks = {n.node_id for n in nodes if n.node_id in known}
            reusable = self._existing_embeddings(
                manifest.collection, sorted(reused_chunks - {n.node_id for n in kept_nodes})
            )
            reusable.update(
                self._existing_embeddings(
                    manifest.sentence_collection,
                    [n.node_id for n in sentences if n.metadata["parent"] in reused_chunks],
                )
            )
            by_key = self._embeddings_by_key(
                manifest.sentence_collection, [n.metadata["key"] for n in sentences if n.node_id not in reusable]
            )
            for n in sentences:
                if n.node_id not in reusable and n.metadata["key"] in by_key:
                    reusable[n.node_id] = by_key[n.metadata["key"]]
        reusable.update({n.node_id: n.embedding for n in kept_nodes if n.embedding is not None})
        to_embed = [n for n in nodes if n.node_id not in reusable]
        sentences_to_embed = [n for n in sentences if n.node_id not in reusable]
        logger.info(
            "Embedding %d of %d chunks and %d of %d sentences (the rest reused)",
            len(to_embed),
            len(nodes),
            len(sentences_to_embed),
            len(sentences),
        )

        total = len(to_embed) + len(sentences_to_embed)
        if total:
            # Embed with the ONNX export, made first if missing: its vectors are the torch model's to
            # 2e-7, it is 1.3 times as fast (640 passages of the Node.js docs: 7.6 s against 9.6 s),
            # and once it exists a rebuild never imports torch.
            self._compile_model()
            self.embedder.use_compiled(self.store.compiled_model_dir)
        if progress:
            progress(0, total)
        done = 0
        for name, group_nodes, embed_now in (
            (f"{COLLECTION_PREFIX}{generation}", nodes, to_embed),
            (f"{SENTENCE_PREFIX}{generation}", sentences, sentences_to_embed),
        ):
            writer = _ChromaWriter(self.store, name)
            try:
                for node in group_nodes:
                    if node.node_id in reusable:
                        node.embedding = reusable[node.node_id]
                writer.put([n for n in group_nodes if n.embedding is not None])
                # Longest first across the whole build, so every embedding batch pads to similar
                # lengths; each finished group goes to Chroma while the next one embeds.
                texts = {n.node_id: n.get_content(metadata_mode=MetadataMode.EMBED) for n in embed_now}
                embed_now.sort(key=lambda n: -len(texts[n.node_id]))
                group = max(WRITE_GROUP, self.embedder.batch_size)
                for start in range(0, len(embed_now), group):
                    part = embed_now[start : start + group]
                    vectors = self.embedder.embed_documents([texts[n.node_id] for n in part])
                    for node, vector in zip(part, vectors, strict=True):
                        node.embedding = vector
                    writer.put(part)
                    done += len(part)
                    if progress:
                        progress(done, total)
                writer.close()
            except BaseException:
                writer.abort()
                raise
        self._persist_bm25(nodes, generation)

        new_manifest = Manifest(
            generation=generation,
            embed_model=self.settings.embed_model,
            chunker_version=CHUNKER_VERSION,
            files={
                **{source: manifest.files[source] for source in plan.kept if manifest is not None},
                **{
                    doc.source: FileEntry(doc.sha256, tuple(c.id for c in chunks_by_file[doc.source]))
                    for doc in corpus.documents
                },
            },
            chunks=len(nodes),
            documents=len(corpus.documents) + len(plan.kept),
            built_at=time.time(),
            store=self.store.location,
        )
        return len(to_embed), len(sentences_to_embed), new_manifest

    def _kept_nodes(self, manifest: Manifest | None, kept: Sequence[str]) -> list[TextNode]:
        """The indexed chunks of files that cannot be read now, with their vectors, from the current generation."""
        if manifest is None or not kept:
            return []
        from llama_index.core.vector_stores.utils import metadata_dict_to_node

        ids = [cid for source in kept for cid in manifest.files[source].chunk_ids]
        got = self.store.collection(manifest.collection).get(ids=ids, include=["embeddings", "documents", "metadatas"])
        nodes = []
        for vector, text, metadata in zip(got["embeddings"], got["documents"], got["metadatas"], strict=True):
            node = metadata_dict_to_node(dict(metadata), text=text)
            node.embedding = [float(x) for x in vector]
            nodes.append(node)
        if len(nodes) != len(ids):
            raise IndexCorruptError(
                f"Generation {manifest.generation} lacks {len(ids) - len(nodes)} chunks of the files kept "
                f"({', '.join(kept)}). Run `assistant index --full`."
            )
        return nodes

    def _earlier(self, collection_name: str) -> Collection | None:
        """A collection of the current generation to reuse vectors from, or None when it is missing."""
        try:
            return self.store.collection(collection_name)
        except IndexDamagedError:
            raise
        except IndexCorruptError as exc:
            logger.warning("Cannot reuse embeddings, embedding them again: %s", exc)
            return None

    def _existing_embeddings(self, collection_name: str, ids: Sequence[str]) -> dict[str, Vector]:
        collection = self._earlier(collection_name) if ids else None
        if collection is None:
            return {}
        found: dict[str, Vector] = {}
        batch = 5000
        for i in range(0, len(ids), batch):
            got = collection.get(ids=list(ids[i : i + batch]), include=["embeddings"])
            for cid, vector in zip(got["ids"], got["embeddings"]):
                found[cid] = [float(x) for x in vector]
        return found

    def _embeddings_by_key(self, collection_name: str, keys: Sequence[str]) -> dict[str, Vector]:
        """Vectors of sentences with these text hashes in an earlier generation (see `sentence_nodes`)."""
        collection = self._earlier(collection_name) if keys else None
        if collection is None:
            return {}
        found: dict[str, Vector] = {}
        wanted = sorted(set(keys))
        batch = 500
        for i in range(0, len(wanted), batch):
            got = collection.get(where={"key": {"$in": wanted[i : i + batch]}}, include=["embeddings", "metadatas"])
            for meta, vector in zip(got["metadatas"], got["embeddings"]):
                found[str(meta["key"])] = [float(x) for x in vector]
        return found

    def _persist_bm25(self, nodes: list[TextNode], generation: int) -> None:
        from llama_index.retrievers.bm25 import BM25Retriever

        target = self.store.bm25_dir(generation)
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        try:
            BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=min(len(nodes), 20)).persist(
                str(tmp), show_progress=False
            )
        except Exception as exc:
            raise AssistantError(f"Building the keyword (BM25) index failed: {exc}") from exc
        tmp.rename(target)

    def _discard(self, generation: int) -> None:
        """Best-effort removal of what a failed build wrote; the manifest never named it."""
        logger.warning("Index build failed; keeping the previous index")
        for prefix in (COLLECTION_PREFIX, SENTENCE_PREFIX):
            with contextlib.suppress(BaseException):  # the collection may never have been created
                self.store.client.delete_collection(f"{prefix}{generation}")
        bm25 = self.store.bm25_dir(generation)
        shutil.rmtree(bm25, ignore_errors=True)
        shutil.rmtree(bm25.with_name(bm25.name + ".tmp"), ignore_errors=True)
        with contextlib.suppress(BaseException):
            self.store.remove_orphan_segments()


class _ChromaWriter:
    """Writes embedded nodes into a new Chroma collection on a background thread.

    sentence-transformers spends most of a batch in torch kernels that release the GIL, so Chroma's
    writes (HNSW inserts, SQLite) and its first import run beside the embedding instead of after it.
    Nodes are written in the order they are put, split under Chroma's batch limit.
    """

    _DONE = None

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name
        self.written = 0
        self._queue: queue.Queue[list[TextNode] | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"chroma-writer-{name}", daemon=True)
        self._thread.start()

    def put(self, nodes: list[TextNode]) -> None:
        """Queue nodes (with their embeddings) for writing; raises if an earlier write failed."""
        self._raise_if_failed()
        if nodes:
            self._queue.put(nodes)

    def close(self) -> None:
        """Wait until every queued node is written.

        Raises:
            StoreError: A write failed.
        """
        self._queue.put(self._DONE)
        self._thread.join()
        self._raise_if_failed()

    def abort(self) -> None:
        """Stop after the write in progress; the caller discards the collection."""
        with contextlib.suppress(queue.Empty):
            while True:  # drop what is still queued, so the writer reaches the end marker soon
                self._queue.get_nowait()
        self._queue.put(self._DONE)
        self._thread.join()

    def _raise_if_failed(self) -> None:
        if isinstance(self._error, AssistantError):
            raise self._error
        if self._error is not None:
            raise StoreError(
                f"Writing chunks to the Chroma store failed after {self.written}: {self._error}"
            ) from self._error

    def _run(self) -> None:
        try:
            from llama_index.vector_stores.chroma import ChromaVectorStore

            vector_store = ChromaVectorStore(chroma_collection=self.store.create_collection(self.name))
            limit = self.store.max_batch_size  # Chroma refuses larger writes
            while (nodes := self._queue.get()) is not self._DONE:
                for i in range(0, len(nodes), limit):
                    vector_store.add(nodes[i : i + limit])
                    self.written += len(nodes[i : i + limit])
        except BaseException as exc:  # handed to the building thread, which raises it
            self._error = exc
            while self._queue.get() is not self._DONE:  # keep the builder from blocking on a full queue
                pass
