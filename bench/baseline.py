"""The LlamaIndex out-of-the-box pipeline, on the same corpus with the same MiniLM model.

`SimpleDirectoryReader` → `VectorStoreIndex.from_documents` (default splitter, in-memory vector
store, persisted with `storage_context.persist`) → `as_retriever()` / `as_query_engine()`. With
no LLM configured, LlamaIndex's `MockLLM` answers by echoing its prompt, i.e. the retrieved
context: that is what the out-of-the-box engine returns offline, and it never refuses.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llama_index.core import VectorStoreIndex
    from llama_index.core.base.embeddings.base import BaseEmbedding


def default_embed_model() -> BaseEmbedding:
    """MiniLM through LlamaIndex's `HuggingFaceEmbedding` with its default settings (batch size 10)."""
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    from assistant.config import default_embed_model_path

    return HuggingFaceEmbedding(model_name=default_embed_model_path(), device="cpu", show_progress_bar=False)


class LlamaIndexDefault:
    """One out-of-the-box index, built or loaded."""

    def __init__(self, index: VectorStoreIndex) -> None:
        from llama_index.core.llms import MockLLM

        self.index = index
        self._retrievers: dict[int, object] = {}
        self.query_engine = index.as_query_engine(llm=MockLLM())

    @classmethod
    def build(cls, corpus_dir: Path, embed_model: BaseEmbedding, persist_dir: Path | None = None) -> LlamaIndexDefault:
        """Read, split, embed and (optionally) persist the corpus the default way."""
        from llama_index.core import SimpleDirectoryReader, VectorStoreIndex

        documents = SimpleDirectoryReader(str(corpus_dir), recursive=True).load_data()
        index = VectorStoreIndex.from_documents(documents, embed_model=embed_model)
        if persist_dir is not None:
            index.storage_context.persist(persist_dir=str(persist_dir))
        return cls(index)

    @classmethod
    def load(cls, persist_dir: Path, embed_model: BaseEmbedding) -> LlamaIndexDefault:
        """Load a persisted index the documented way."""
        from llama_index.core import StorageContext, load_index_from_storage

        storage = StorageContext.from_defaults(persist_dir=str(persist_dir))
        return cls(load_index_from_storage(storage, embed_model=embed_model))

    @property
    def chunks(self) -> int:
        """How many nodes the default splitter made."""
        return len(self.index.docstore.docs)

    def retrieve(self, question: str, k: int = 10) -> list[str]:
        """The texts of the top ``k`` nodes."""
        if k not in self._retrievers:
            self._retrievers[k] = self.index.as_retriever(similarity_top_k=k)
        return [hit.node.get_content() for hit in self._retrievers[k].retrieve(question)]  # type: ignore[attr-defined]

    def ask(self, question: str) -> str:
        """The default query engine's response text."""
        return str(self.query_engine.query(question))
