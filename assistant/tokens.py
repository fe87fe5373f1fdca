"""Counting tokens, and cutting an answer to a token budget.

Tokens are the embedding model's WordPiece tokens: the only tokenizer that ships with the
default install, and an estimate of any LLM's. The HTTP API reports ``usage`` with them, and an
extractive answer honours a request's ``max_tokens`` by them (`fit`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: A citation marker as answers write them, "[3]".
MARKER = re.compile(r"\[(\d+)\]")


class TokenCounter:
    """Counts tokens with the tokenizer of the embedding model in ``model_path`` (loaded on first use).

    Safe to share between threads.
    """

    def __init__(self, model_path: str | Path | Callable[[], str | Path]) -> None:
        self._model_path = model_path
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _encode(self, text: str) -> Any:
        with self._lock:
            if self._tokenizer is None:
                from tokenizers import Tokenizer

                path = self._model_path() if callable(self._model_path) else self._model_path
                tokenizer = Tokenizer.from_file(str(Path(path) / "tokenizer.json"))
                tokenizer.no_truncation()
                tokenizer.no_padding()
                self._tokenizer = tokenizer
            return self._tokenizer.encode(text, add_special_tokens=False)

    def count(self, text: str) -> int:
        """How many tokens ``text`` is."""
        return len(self._encode(text).ids)

    def end_of(self, text: str, max_tokens: int) -> int:
        """Where in ``text`` its first ``max_tokens`` tokens end (``len(text)`` when it is no longer)."""
        offsets = self._encode(text).offsets
        return len(text) if len(offsets) <= max_tokens else offsets[max_tokens - 1][1]


@dataclass(frozen=True)
class Fitted:
    """An answer text cut to a budget: the kept text and how many citations its markers use."""

    text: str
    citations: int


def fit(text: str, max_tokens: int, counter: TokenCounter) -> Fitted | None:
    """``text`` cut to at most ``max_tokens`` tokens, or None when it fits already.

    The cut falls after the last citation marker that fits, so every quoted sentence kept still
    carries its marker and no list or code block is left open; when not even the first marked
    sentence fits, the text is cut after its ``max_tokens``-th token, as a model stopped at its
    limit would be.

    Args:
        text: The answer's Markdown, its markers numbered in order of first use ("[1]", then "[2]").
        max_tokens: The budget, at least 1.
        counter: The tokenizer to count with.

    Returns:
        The kept text, and how many of the answer's citations it still points at (its highest marker).
    """
    end = counter.end_of(text, max_tokens)
    if end >= len(text):
        return None
    marker_ends = [m.end() for m in MARKER.finditer(text, 0, end)]
    kept = text[: marker_ends[-1] if marker_ends else end].rstrip()
    used = [int(n) for n in MARKER.findall(kept)]
    return Fitted(kept, max(used, default=0))
