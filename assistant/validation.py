"""Checking what callers hand the engine: a question, and the chat history before it.

Every entry point (the Python API, the CLI, the page, the HTTP API, the guided dialog) passes
its input through here, so a bad question gets the same clear error everywhere. A history that
has grown past the limits is trimmed to its most recent turns rather than refused: chat UIs send
the whole conversation on every turn, and the oldest turns add nothing to a follow-up rewrite.
"""

from __future__ import annotations

import logging
from typing import Any

from .errors import InvalidQuestionError

logger = logging.getLogger(__name__)

Message = dict[str, str]

#: The most recent history entries kept; older turns add nothing to a follow-up rewrite.
MAX_HISTORY_MESSAGES = 100
#: Characters kept of one history entry (a longer assistant answer is cut to its start).
MAX_HISTORY_CHARS = 20_000

ROLES = ("user", "assistant")


def validate_question(question: Any, max_chars: int) -> str:
    """Return the question stripped, or raise `InvalidQuestionError` saying what is wrong."""
    if not isinstance(question, str):
        raise InvalidQuestionError(f"The question must be text, not {type(question).__name__}.")
    question = question.strip()
    if not question:
        raise InvalidQuestionError("The question is empty: type a question.")
    if len(question) > max_chars:
        raise InvalidQuestionError(
            f"The question is {len(question):,} characters long; the limit is {max_chars:,}. Shorten it."
        )
    return question


def validate_history(history: Any) -> list[Message]:
    """Return the history as a clean list of messages, or raise saying what is wrong.

    Only the most recent `MAX_HISTORY_MESSAGES` entries are kept, and each entry's content is cut
    to `MAX_HISTORY_CHARS` characters, so a conversation can grow without ever being refused.

    Args:
        history: ``None`` or a list of ``{"role": "user" | "assistant", "content": str}``, oldest first.

    Returns:
        The messages, with only ``role`` and ``content`` kept.

    Raises:
        InvalidQuestionError: The history is not a list, or has a malformed entry.
    """
    if history is None:
        return []
    if not isinstance(history, (list, tuple)):
        raise InvalidQuestionError(f"history must be a list of messages, not {type(history).__name__}.")
    clean: list[Message] = []
    for i, entry in enumerate(history):
        if not isinstance(entry, dict):
            raise InvalidQuestionError(
                f"history[{i}] must be an object with 'role' and 'content', not {type(entry).__name__}."
            )
        role, content = entry.get("role"), entry.get("content")
        if role not in ROLES:
            raise InvalidQuestionError(f"history[{i}].role must be 'user' or 'assistant', not {role!r}.")
        if not isinstance(content, str):
            raise InvalidQuestionError(f"history[{i}].content must be text, not {type(content).__name__}.")
        clean.append({"role": role, "content": content[:MAX_HISTORY_CHARS]})
    if len(clean) > MAX_HISTORY_MESSAGES:
        logger.debug("History of %d messages trimmed to the last %d", len(clean), MAX_HISTORY_MESSAGES)
        clean = clean[-MAX_HISTORY_MESSAGES:]
    return clean
