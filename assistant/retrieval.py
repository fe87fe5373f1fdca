"""Hybrid retrieval: passage vectors, sentence vectors (Chroma) and keywords (BM25), fused by reciprocal rank."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .embeddings import Embedder, Vector
from .errors import IndexCorruptError, IndexDamagedError, StoreError
from .profile import CorpusProfile
from .store import Manifest, Store

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection
    from llama_index.core.schema import TextNode

logger = logging.getLogger(__name__)

#: How deep each ranking is read before fusion: ``max(MIN_CANDIDATES, k * CANDIDATES_PER_RESULT)``.
#: Blind sets (bench/blind), hit@3 mean of the five dev halves (test) with the sentence ranking read
#: `SENTENCES_PER_PASSAGE` deep: 10 0.874 (0.894), 15 0.878 (0.889), 20 0.880 (0.908), 30 and
#: deeper 0.889 (0.915). In the full pipeline 30 gave dev answer text +2 questions (streamlit and
#: product2) but test product answer text 0.704 -> 0.696 and answer or citations 0.765 -> 0.757,
#: so 20 stays. For hit@10, reading 20, 40 or 60 deep gives the same dev mean (0.974).
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
    #: The cosine similarity between the question and the passage's nearest sentence, when that
    #: sentence was among the sentence search's hits; 0.0 otherwise.
    sentence_similarity: float = 0.0
    #: The header and delimiter rows of the table the passage starts inside, when a long table was
    #: cut into several passages; "" otherwise (`chunking.Chunk.table_header`).
    table_header: str = ""
    #: Whether the passage starts right under its section's heading (`chunking.Chunk.opens_section`).
    opens_section: bool = False

    @property
    def heading(self) -> str:
        """The passage's own heading: the last part of its section path ("" at the top of a file)."""
        return self.section.split(" > ")[-1].strip() if self.section else ""

    @property
    def location(self) -> str:
        """Where the passage sits, for people: ``file › section``."""
        return f"{self.source} › {self.section}" if self.section else self.source

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Fusion:
    """How the rankings combine: weighted reciprocal rank, ``w / (rank_offset + rank)``.

    Chosen on the dev half of the blind sets (bench/blind, both corpora); see `DEFAULT_FUSION`.
    """

    dense: float = 1.0  # passages by their own vector
    sentence: float = 1.0  # passages by their best sentence's vector
    keyword: float = 1.0  # passages by BM25
    #: The usual RRF constant (Cormack et al. 2009), measured here too. Blind sets (bench/blind), dev:
    #: hit@3 mean of the six halves 0.858 at 60, 0.864 at 20, 0.868 at 10, 0.873 at 5, 0.815 at 0;
    #: in the full pipeline 20 moved product hit@3 0.843 -> 0.852 but answer text 0.809 -> 0.800,
    #: product2 answer text 0.725 -> 0.750, nothing else; 5 lost product answer text (0.791) and
    #: off-topic refusals on three corpora (product 0.982 -> 0.964, handbook 1.000 -> 0.933, manual
    #: 0.533 -> 0.467) for streamlit, product2 and osguide answer text gains. No point beat 60 overall.
    rank_offset: int = 60
    #: BM25 hits scoring under this share of the best hit are left out of the keyword ranking: they
    #: match only words nearly every passage holds ("prompt engineering" in this product's corpus, a
    #: word of IDF ~0), so their order says nothing, yet reciprocal rank would count them as much
    #: as real matches. Blind sets (bench/blind), dev: product hit@3 0.826 -> 0.843, answer text
    #: 0.774 -> 0.783, answer or citations 0.809 -> 0.826, follow-ups 0.765 -> 0.824; the other three
    #: corpora unchanged. On the dev rankings, shares 0.02 to 0.1 give the same hit@3 (0.05 and 0.1
    #: the same answers too; 0.05 sits between them) and 0.01 none of the gain; 0.2 loses (product
    #: answer text 0.757, manual off-topic refused 0.533 -> 0.467). Test at 0.05: product answer
    #: text 0.678 -> 0.704, answer or citations 0.748 -> 0.765, follow-ups 0.824 -> 0.882, hit@3
    #: unchanged at 0.800; every other test figure unchanged. Measured afterwards: on product2, a
    #: set written later, even on answers (hit@3 2 of 80 questions fewer, answer text the same,
    #: follow-ups 2 of 12 dialogs more); on the public regression set, 2 of 57 hits lost at hit@3.
    keyword_floor: float = 0.05


#: hit@3 on the blind sets (bench/blind; product 115 + 115, handbook 29 + 30 questions), dev / test:
#: passage vectors and BM25 2:1 0.791 / 0.730 product, 0.931 / 1.000 handbook; with sentence
#: vectors 1:1:1 0.826 / 0.765, 1.000 / 1.000 (chosen on dev; it also wins on test); 2:1:1 0.809 /
#: 0.748, 1.000 / 1.000; passage and sentence vectors without BM25 0.817 / 0.757, 0.931 / 0.967;
#: heading vectors as a fourth ranking lost on both halves (0.800 / 0.739 product). Earlier, without
#: sentences: dense only 0.696, keyword only 0.687, 1:1 0.791 / 0.931 (dev).
#: Measured later on all six blind sets, hit@3 mean of the dev (test) halves, against 0.858 (0.882)
#: here: fusing scores instead of ranks (each ranking's scores over its best hit's, summed) 0.876
#: (0.887), the gain on two sets only (product2 dev, osguide test), product unchanged; min-max or
#: z-scored 0.861 (0.891) and 0.845 (0.878); pseudo-relevance feedback (the question's vector moved
#: toward the passages of its first 1-5 results, 0.2-0.7 of their mean, and searched again) 0.798
#: to 0.847 (0.854 to 0.873) at every point tried.
DEFAULT_FUSION = Fusion(dense=1.0, sentence=1.0, keyword=1.0)

#: Sentence hits fetched per passage wanted from the sentence ranking (a passage has ~4 sentences).
#: Blind sets, hit@3 mean of the five dev halves (test), 20 passages deep: 1 sentence a passage
#: 0.883 (0.902), 2 0.878 (0.908), 3 0.880 (0.908), 5 0.880 (0.908).
SENTENCES_PER_PASSAGE = 3


class HybridRetriever:
    """Retrieves passages from one index generation: dense (Chroma) and keyword (BM25), fused.

    Each call keeps its own state, so one retriever serves many threads at once.
    """

    def __init__(self, embedder: Embedder, store: Store, manifest: Manifest, fusion: Fusion = DEFAULT_FUSION) -> None:
        from llama_index.retrievers.bm25 import BM25Retriever
        from llama_index.vector_stores.chroma import ChromaVectorStore

        self.embedder = embedder
        self.manifest = manifest
        self.fusion = fusion
        self._collection = store.collection(manifest.collection)
        self._vectors = ChromaVectorStore(chroma_collection=self._collection)
        self._sentences: Collection | None = None
        self._sentence_count = 0
        try:
            self._sentences = store.collection(manifest.sentence_collection)
            self._sentence_count = self._sentences.count()
        except IndexDamagedError:
            raise
        except IndexCorruptError as exc:  # an index written before sentence vectors, or one lost since
            logger.warning("%s Until then passages are ranked without sentence vectors.", exc)
        try:
            self._bm25 = BM25Retriever.from_persist_dir(str(store.bm25_dir(manifest.generation)))
        except Exception as exc:
            raise IndexCorruptError(
                f"The keyword index for generation {manifest.generation} is missing or damaged ({exc}). "
                "Run `assistant index --full` to rebuild it."
            ) from exc

    @cached_property
    def profile(self) -> CorpusProfile:
        """Vocabulary, titles and headings of this generation (see `CorpusProfile`)."""
        bm25 = self._bm25.bm25
        indptr = bm25.scores["indptr"]
        doc_freq = {  # bm25s keeps term scores column by column: a column's length is the term's passage count
            term: int(indptr[i + 1] - indptr[i]) for term, i in bm25.vocab_dict.items() if term and i + 1 < len(indptr)
        }
        return CorpusProfile.from_passages(self._bm25.corpus, doc_freq, self._texts)

    def _texts(self) -> Iterator[str]:
        from llama_index.core.vector_stores.utils import metadata_dict_to_node

        for meta in self._bm25.corpus:
            yield metadata_dict_to_node(dict(meta)).get_content()

    def retrieve(self, question: str, k: int = 5, embedding: Vector | None = None) -> list[Passage]:
        """The ``k`` passages that best match ``question``, best first, without duplicates.

        Args:
            question: The search text.
            k: How many passages to return.
            embedding: The question's embedding, when the caller already has it.

        Returns:
            Up to ``k`` passages.
        """
        if k <= 0:
            return []
        candidates = max(MIN_CANDIDATES, k * CANDIDATES_PER_RESULT)
        embedding = (
            embedding
            if embedding is not None
            else self.embedder.embed_query(self.profile.spelt(question, self.embedder.reads_whole))
        )
        try:
            dense = self.dense(embedding, candidates)
            by_sentence = self.sentences(embedding, candidates)
            keyword = self.keyword(question, candidates)
        except Exception as exc:
            raise StoreError(f"Searching the index failed: {exc}") from exc
        f = self.fusion
        fused = reciprocal_rank(
            [
                (f.dense, [n.node_id for n, _ in dense]),
                (f.sentence, list(by_sentence)),
                (f.keyword, [n.node_id for n, _ in keyword]),
            ],
            f.rank_offset,
        )
        nodes: dict[str, TextNode] = {}
        for node, _ in dense + keyword:
            nodes.setdefault(node.node_id, node)
        best = sorted(fused, key=lambda i: -fused[i])[:k]
        similarities = {node.node_id: cosine for node, cosine in dense}
        try:
            fetched = self._fetch([i for i in best if i not in similarities or i not in nodes], embedding)
        except Exception as exc:
            raise StoreError(f"Searching the index failed: {exc}") from exc
        for node, cosine in fetched:
            nodes.setdefault(node.node_id, node)
            similarities[node.node_id] = cosine
        return [
            _passage(nodes[i], fused[i], similarities.get(i, 0.0), by_sentence.get(i, 0.0)) for i in best if i in nodes
        ]

    def dense(self, embedding: Vector, k: int) -> list[tuple[TextNode, float]]:
        """The ``k`` nearest passages to an embedding, with their cosine similarity."""
        from llama_index.core.vector_stores.types import VectorStoreQuery

        result = self._vectors.query(VectorStoreQuery(query_embedding=list(embedding), similarity_top_k=k))
        # ChromaVectorStore reports exp(-cosine distance); the log gives the cosine back exactly.
        return [(n, 1.0 + math.log(s)) for n, s in zip(result.nodes, result.similarities or [])]

    def keyword(self, question: str, k: int) -> list[tuple[TextNode, float]]:
        """The ``k`` best BM25 matches for the question's words, with their BM25 scores.

        Matches scoring under ``fusion.keyword_floor`` of the best one are left out (`Fusion`).
        """
        import bm25s
        from llama_index.core.vector_stores.utils import metadata_dict_to_node

        bm25 = self._bm25
        question = self.profile.spelt(question, self.embedder.reads_whole)
        tokens = bm25s.tokenize(question, stemmer=bm25.stemmer, token_pattern=bm25.token_pattern, show_progress=False)
        if not any(len(ids) for ids in tokens.ids):
            return []
        indexes, scores = bm25.bm25.retrieve(tokens, k=min(k, self.manifest.chunks), show_progress=False)
        out = []
        floor = self.fusion.keyword_floor * float(max(scores[0], default=0.0))
        for idx, score in zip(indexes[0], scores[0]):
            if score <= 0 or score < floor:
                continue
            node = metadata_dict_to_node(idx if isinstance(idx, dict) else bm25.corpus[int(idx)])
            out.append((node, float(score)))
        return out

    def sentences(self, embedding: Vector, k: int) -> dict[str, float]:
        """The ``k`` passages whose best sentence is nearest to an embedding, best first: each
        passage's id, with the cosine similarity of that sentence."""
        wanted = min(k * SENTENCES_PER_PASSAGE, self._sentence_count)
        if self._sentences is None or wanted <= 0:
            return {}
        result = self._sentences.query(
            query_embeddings=[list(embedding)], n_results=wanted, include=["metadatas", "distances"]
        )
        parents: dict[str, float] = {}
        metas, distances = (result.get("metadatas") or [[]])[0], (result.get("distances") or [[]])[0]
        for meta, distance in zip(metas, distances):
            parent = (meta or {}).get("parent")
            if parent:
                parents.setdefault(str(parent), 1.0 - float(distance))  # the collection's cosine distance
        return dict(list(parents.items())[:k])

    def _fetch(self, ids: Sequence[str], query: Vector) -> list[tuple[TextNode, float]]:
        """Passages the dense search did not return (keyword or sentence hits), with their cosine similarity."""
        if not ids:
            return []
        import numpy as np
        from llama_index.core.vector_stores.utils import metadata_dict_to_node

        got = self._collection.get(ids=list(ids), include=["embeddings", "documents", "metadatas"])
        q = np.asarray(query, dtype=np.float32)
        q /= np.linalg.norm(q) or 1.0
        out = []
        for vector, text, meta in zip(got["embeddings"], got["documents"], got["metadatas"]):
            v = np.asarray(vector, dtype=np.float32)
            out.append((metadata_dict_to_node(dict(meta), text=text), float(v @ q / (np.linalg.norm(v) or 1.0))))
        return out


def reciprocal_rank(rankings: Sequence[tuple[float, Sequence[str]]], rank_offset: int) -> dict[str, float]:
    """Each id's weighted reciprocal-rank score, ``sum(w / (rank_offset + rank))`` over the rankings it is in."""
    fused: dict[str, float] = {}
    for weight, ranking in rankings:
        for rank, key in enumerate(ranking):
            fused[key] = fused.get(key, 0.0) + weight / (rank_offset + rank + 1)
    return fused


def merge_rankings(*rankings: Sequence[Passage], rank_offset: int = DEFAULT_FUSION.rank_offset) -> list[Passage]:
    """Passages from several searches in one ranking (equal-weight reciprocal rank), as long as the longest."""
    fused = reciprocal_rank([(1.0, [p.id for p in ranking]) for ranking in rankings], rank_offset)
    by_id: dict[str, Passage] = {}
    for ranking in rankings:
        for p in ranking:
            by_id.setdefault(p.id, p)
    return [by_id[i] for i in sorted(fused, key=lambda i: -fused[i])][: max(map(len, rankings), default=0)]


def _passage(node: TextNode, score: float, similarity: float, sentence_similarity: float = 0.0) -> Passage:
    meta = node.metadata
    return Passage(
        id=node.node_id,
        text=node.get_content(),
        source=str(meta.get("source", "")),
        title=str(meta.get("title", "")),
        section=str(meta.get("section", "")),
        start=int(meta.get("start", 0)),
        end=int(meta.get("end", 0)),
        score=score,
        similarity=similarity,
        kind=str(meta.get("kind", "article")),
        sentence_similarity=sentence_similarity,
        table_header=str(meta.get("table_header", "")),
        opens_section=bool(meta.get("opens_section", 0)),
    )
