"""Ask the docs: should we use prompt engineering, fine-tuning, or both?"""

from .config import Settings
from .engine import Assistant, IndexStatus
from .errors import (
    AssistantError,
    CorpusError,
    CorpusFileError,
    EmbeddingModelError,
    IndexCorruptError,
    IndexLockedError,
    InvalidQuestionError,
    LLMError,
    StoreError,
)
from .ingest import IndexReport
from .retrieval import Passage

__all__ = [
    "Assistant",
    "AssistantError",
    "CorpusError",
    "CorpusFileError",
    "EmbeddingModelError",
    "IndexCorruptError",
    "IndexLockedError",
    "IndexReport",
    "IndexStatus",
    "InvalidQuestionError",
    "LLMError",
    "Passage",
    "Settings",
    "StoreError",
]
