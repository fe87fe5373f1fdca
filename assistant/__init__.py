"""Ask the docs: should we use prompt engineering, fine-tuning, or both?"""

from .answer import Answer
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
from .guide import GuideSession, Recommendation, Step
from .ingest import IndexReport
from .retrieval import Passage

__all__ = [
    "Answer",
    "Assistant",
    "AssistantError",
    "CorpusError",
    "CorpusFileError",
    "EmbeddingModelError",
    "GuideSession",
    "IndexCorruptError",
    "IndexLockedError",
    "IndexReport",
    "IndexStatus",
    "InvalidQuestionError",
    "LLMError",
    "Passage",
    "Recommendation",
    "Settings",
    "Step",
    "StoreError",
]
