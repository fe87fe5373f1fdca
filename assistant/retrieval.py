"""Hybrid retrieval: dense (Chroma) and keyword (BM25) results fused by reciprocal rank."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .embeddings import Embedder, Vector
from .errors import IndexCorruptError, StoreError
from .store import Manifest, Store

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore

logger = logging.getLogger(__name__)

#: How many candidates each retriever contributes before fusion, per passage asked for.
CANDIDATES_PER_RESULT = 4
MIN_CANDIDATES = 20


@dataclass(frozen=True)
class Passage:
    """A retrieved piece of the corpus: ``text`` is exactly ``file[start:end]``."""

    id: str
    text: str
    source: str
    title: str
    section: str
    start: int
    end: int
    score: float  # fused rank score; higher is better
    similarity: float  # cosine similarity between the question and the passage, -1..1
    kind: str = "article"

    @property
    def location(self) -> str:
        """Where the passage sits, for people: ``file › section``."""
        return f"{self.source} › {self.section}" if self.section else self.source

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


class HybridRetriever:
    """Retrieves passages from one index generation."""

    def __init__(self, embedder: Embedder, store: Store, manifest: Manifest) -> None:
        from llama_index.core.llms import MockLLM
        from llama_index.core.retrievers import QueryFusionRetriever
        from llama_index.retrievers.bm25 import BM25Retriever

        self.embedder = embedder
        self.manifest = manifest
        self._collection = store.collection(manifest.collection)
        try:
            self._bm25 = BM25Retriever.from_persist_dir(str(store.bm25_dir(manifest.generation)))
        except Exception as exc:
            raise IndexCorruptError(
                f"The keyword index for generation {manifest.generation} is missing or damaged ({exc}). "
                "Run `assistant index --full` to rebuild it."
            ) from exc
        self._dense = _dense_retriever(self._collection, MIN_CANDIDATES)
        self._fusion = QueryFusionRetriever(
            [self._dense, self._bm25],
            similarity_top_k=MIN_CANDIDATES,
            num_queries=1,  # never ask an LLM for query variants
            mode="reciprocal_rerank",
            use_async=False,
            llm=MockLLM(),  # required by the constructor, never called with num_queries=1
        )

    def retrieve(self, question: str, k: int = 5, embedding: Vector | None = None) -> list[Passage]:
        """The ``k`` passages that best match ``question``, best first, without duplicates.

        Args:
            question: The search text.
            k: How many passages to return.
            embedding: The question's embedding, when the caller already has it.

        Returns:
            Up to ``k`` passages.
        """
        from llama_index.core.schema import QueryBundle

        if k <= 0:
            return []
        candidates = max(MIN_CANDIDATES, k * CANDIDATES_PER_RESULT)
        self._dense.similarity_top_k = candidates
        self._bm25.similarity_top_k = min(candidates, self.manifest.chunks)
        self._fusion.similarity_top_k = candidates
        embedding = embedding if embedding is not None else self.embedder.embed_query(question)
        try:
            fused = self._fusion.retrieve(QueryBundle(query_str=question, embedding=embedding))
        except Exception as exc:
            raise StoreError(f"Searching the index failed: {exc}") from exc
        unique: list[NodeWithScore] = []
        seen: set[str] = set()
        for hit in fused:
            if hit.node.node_id not in seen:
                seen.add(hit.node.node_id)
                unique.append(hit)
            if len(unique) == k:
                break
        similarities = dict(self._dense.last_cosines())
        keyword_only = [h.node.node_id for h in unique if h.node.node_id not in similarities]
        similarities.update(self._similarities(keyword_only, embedding))
        return [_passage(hit, similarities.get(hit.node.node_id, 0.0)) for hit in unique]

    def _similarities(self, ids: Sequence[str], query: Vector) -> dict[str, float]:
        """Cosine similarities of passages the dense search did not return (keyword-only hits)."""
        if not ids:
            return {}
        import numpy as np

        got = self._collection.get(ids=list(ids), include=["embeddings"])
        q = np.asarray(query, dtype=np.float32)
        q /= np.linalg.norm(q) or 1.0
        out: dict[str, float] = {}
        for cid, vector in zip(got["ids"], got["embeddings"]):
            v = np.asarray(vector, dtype=np.float32)
            out[cid] = float(v @ q / (np.linalg.norm(v) or 1.0))
        return out


def _dense_retriever(collection: Collection, top_k: int) -> BaseRetriever:
    """A retriever that queries the Chroma collection with the question's precomputed embedding.

    It goes through LlamaIndex's `ChromaVectorStore` without a `VectorStoreIndex` around it (that
    would build a default node parser, ~0.5 s at start, and re-wrap every hit), and it keeps the
    cosine of each hit, so answers need no second trip to the store for similarities.
    """
    import math

    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle
    from llama_index.core.vector_stores.types import VectorStoreQuery
    from llama_index.vector_stores.chroma import ChromaVectorStore

    class ChromaDenseRetriever(BaseRetriever):
        def __init__(self) -> None:
            super().__init__()
            self.store = ChromaVectorStore(chroma_collection=collection)
            self.similarity_top_k = top_k
            # Per thread: the API answers on several threads with one retriever, and the fusion
            # retriever calls this one synchronously in the asking thread.
            self._local = threading.local()

        def last_cosines(self) -> dict[str, float]:
            """Cosine of each hit of this thread's last query."""
            return getattr(self._local, "cosines", {})

        def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
            query = VectorStoreQuery(query_embedding=query_bundle.embedding, similarity_top_k=self.similarity_top_k)
            result = self.store.query(query)
            # ChromaVectorStore reports exp(-cosine distance); the log gives the cosine back exactly.
            cosines = {n.node_id: 1.0 + math.log(s) for n, s in zip(result.nodes, result.similarities or [])}
            self._local.cosines = cosines
            return [NodeWithScore(node=n, score=cosines[n.node_id]) for n in result.nodes]

    return ChromaDenseRetriever()


def _passage(hit: NodeWithScore, similarity: float) -> Passage:
    meta = hit.node.metadata
    return Passage(
        id=hit.node.node_id,
        text=hit.node.get_content(),
        source=str(meta.get("source", "")),
        title=str(meta.get("title", "")),
        section=str(meta.get("section", "")),
        start=int(meta.get("start", 0)),
        end=int(meta.get("end", 0)),
        score=float(hit.score or 0.0),
        similarity=similarity,
        kind=str(meta.get("kind", "article")),
    )
