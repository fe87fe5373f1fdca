"""Errors raised by the assistant; every message says what to do next."""

from __future__ import annotations

from pathlib import Path


class AssistantError(Exception):
    """Base class for every error this package raises on purpose."""


class CorpusError(AssistantError):
    """The corpus folder is missing or holds nothing that can be indexed."""


class CorpusFileError(CorpusError):
    """One corpus file cannot be read; the rest of the corpus still indexes."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class StoreError(AssistantError):
    """The vector index cannot be opened, read or written."""


class IndexCorruptError(StoreError):
    """The index on disk is damaged or half-written."""


class IndexLockedError(StoreError):
    """Another process is rebuilding the index right now."""


class EmbeddingModelError(AssistantError):
    """The embedding model cannot be loaded."""


class InvalidQuestionError(AssistantError, ValueError):
    """A question, or the chat history sent with it, is not acceptable."""


class LLMError(AssistantError):
    """The configured language model failed or is misconfigured."""
