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
        super().__init__(f"{printable_path(self.path)}: {reason}")


class CorpusFileUnreadableError(CorpusFileError):
    """A corpus file exists but cannot be read right now (permissions, I/O); its indexed version is kept."""


def printable_path(path: Path | str) -> str:
    """A path as one safe line for messages and logs.

    Control characters (a newline could forge a log line), bidirectional overrides (they display a
    name reversed) and bytes that are not UTF-8 are shown as escapes instead of raw.
    """
    text = str(path)
    out = []
    for ch in text:
        code = ord(ch)
        if code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0 or code in _BIDI_CONTROLS:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, kept by the file system decoding
            out.append(f"\\x{code - 0xDC00:02x}")
        else:
            out.append(ch)
    return "".join(out)


#: Unicode characters that reorder the display of the text around them.
_BIDI_CONTROLS = frozenset({0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)})


class StoreError(AssistantError):
    """The vector index cannot be opened, read or written."""


class IndexCorruptError(StoreError):
    """The index on disk is damaged or half-written."""


class IndexLockedError(StoreError):
    """Another process is rebuilding the index right now."""


class IndexDamagedError(IndexCorruptError):
    """The Chroma store's files themselves are damaged (not just one generation): it must be rebuilt."""


class EmbeddingModelError(AssistantError):
    """The embedding model cannot be loaded."""


class InvalidQuestionError(AssistantError, ValueError):
    """A question, or the chat history sent with it, is not acceptable."""


class LLMError(AssistantError):
    """The configured language model failed or is misconfigured."""
